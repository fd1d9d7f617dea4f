"""Transactions whose commit need not wait for the disk."""

from django.db import DEFAULT_DB_ALIAS, connections


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
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
