"""Transactions whose commit need not wait for the disk."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import ClientCursor

_ASYNC = "SET LOCAL synchronous_commit TO OFF"


def commit_async(using: str = DEFAULT_DB_ALIAS) -> None:
    """Make the current transaction's commit asynchronous on PostgreSQL (``synchronous_commit = off``
    for this transaction only): the commit returns before its WAL is on disk, and a crash of the
    database server in the next moments may lose it, whole (it never half-applies anything). Only for
    writes that follow a durable commit and can be lost with no harm; nothing changes on SQLite."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("commit_async() is for a transaction: call it inside atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_ASYNC)


def execute_async(sql: str, params, using: str = DEFAULT_DB_ALIAS) -> list[tuple]:
    """Run one statement that returns rows, and return them. In autocommit on PostgreSQL the
    statement is its own transaction, committed without waiting for the disk (what ``commit_async``
    does for a transaction, with the same caveat), in one round trip: ``SET LOCAL`` is sent with it
    in one query string, whose statements are one transaction, so the setting ends with it. Inside
    a transaction (whose commit decides), or on another database, the statement runs as it is."""
    connection = connections[using]
    connection.ensure_connection()
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # A client-side binding cursor (the connection's own bind on the server, which takes one
    # statement), wrapped as Django wraps its cursors: logged and counted like any other query.
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(ClientCursor(connection.connection), connection) as cursor:
        cursor.execute(f"{_ASYNC}; {sql}", params)
        cursor.cursor.nextset()  # from the SET to the statement's result
        return cursor.fetchall()
