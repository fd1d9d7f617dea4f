"""Transactions whose commit need not wait for the disk, sent in one round trip."""

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import ClientCursor

from market.core.statements import Statement, execute_many, statement_results

_ASYNC = "SET LOCAL synchronous_commit TO OFF"


def execute_many_async(statements: list[Statement], using: str = DEFAULT_DB_ALIAS) -> list[list[tuple] | int]:
    """Run ``statements`` as one transaction and return each one's result: its rows when it returns
    rows, else the number of rows it changed; each one's ``then`` is called with it.

    In autocommit on PostgreSQL they are sent in one round trip, committed without waiting for the
    disk (``synchronous_commit = off`` for this transaction only): the commit returns before its WAL
    is on disk, and a crash of the database server in the next moments may lose it, whole (it never
    half-applies anything), so this is only for writes that follow a durable commit and can be lost
    with no harm. ``SET LOCAL`` and the statements go in one query string, whose statements are one
    transaction (the simple query protocol's implicit transaction: all or nothing), so the setting
    ends with it. Inside a transaction, or on another database, they run one after the other, in a
    transaction of their own (a savepoint in the caller's transaction, whose commit decides; none
    for one statement)."""
    connection = connections[using]
    connection.ensure_connection()
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        if len(statements) == 1:  # atomic on its own
            return execute_many(statements, using=using)
        with transaction.atomic(using=using):
            return execute_many(statements, using=using)
    # A client-side binding cursor (the connection's own bind on the server, which takes one
    # statement), wrapped as Django wraps its cursors: logged and counted like any other query.
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    sql = "; ".join([_ASYNC, *(s.sql for s in statements)])
    params = [p for s in statements for p in s.params]
    with wrapper(ClientCursor(connection.connection), connection) as cursor:
        cursor.execute(sql, params)
        results = []
        for _statement in statements:
            # From the SET (then each statement) to the next statement's result; one result each, or
            # every later result would go to the wrong statement.
            if not cursor.cursor.nextset():
                raise DatabaseError("fewer results than statements: a Statement held several")
            results.append(cursor.fetchall() if cursor.description is not None else cursor.rowcount)
        if cursor.cursor.nextset():
            raise DatabaseError("more results than statements: a Statement held several")
    return statement_results(statements, results)
