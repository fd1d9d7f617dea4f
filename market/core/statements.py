"""Writes of one transaction sent to PostgreSQL as one statement (``insert_with_updates``).

Under a hot row's lock every round trip to the database is time the other writers of that row
wait, and on a busy machine each round trip also waits for the server process to be scheduled. A
bid writes three rows under its sale's lock (the bidder's standing maximum, the bid, the sale);
sent as one ``INSERT`` whose ``WITH`` clauses are the ``UPDATE``s, they cost one round trip instead
of three. PostgreSQL runs every data-modifying ``WITH`` clause exactly once, whether or not the
statement reads it, and all of them on the statement's one snapshot: the rows updated must not be
the rows inserted, nor updated twice.

The SQL is Django's own (``UpdateQuery`` and ``InsertQuery`` compiled as ``QuerySet.update`` and
``bulk_create`` compile them: expressions, ``auto_now_add`` and database preparation included), run
through Django's cursor (logged, counted, errors translated). On other databases (the embedded
SQLite) the writes run one after the other.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery


@dataclass(frozen=True)
class Statement:
    """One statement compiled but not run, so that several can be sent together
    (``market.core.commit.execute_many_async``). ``then`` is called with its result once it has run
    (its rows when it returns rows, else the number of rows it changed), in the transaction it ran
    in: what must wait for the commit is registered there with ``transaction.on_commit``."""

    sql: str
    params: list | tuple
    then: Callable[[list | int], None] | None = None


def _update_sql(queryset, values: dict) -> tuple[str, tuple]:
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    return query.get_compiler(queryset.db).as_sql()


def update_statement(queryset, values: dict, then=None) -> Statement:
    """``queryset.update(**values)`` compiled by Django, not run."""
    sql, params = _update_sql(queryset, values)
    return Statement(sql, params, then)


def insert_with_updates(objs: list, updates=(), *, using: str = "default") -> list[int]:
    """Insert ``objs`` (instances of one model, primary keys unset) and run ``updates``, a list of
    ``(queryset, values)`` as ``queryset.update(**values)`` would, in one statement on PostgreSQL
    (updates alone when there is nothing to insert). The objects get their primary keys, as from
    ``bulk_create``. Returns the number of rows each update changed.

    Each update must be of a model of its own, other than the inserted one: one statement must not
    write a row twice (PostgreSQL would apply only one of the writes, silently)."""
    models = [queryset.model for queryset, _values in updates]
    if objs:
        models.append(type(objs[0]))
    if len(set(models)) != len(models):
        raise ValueError("one statement must not write one table twice")
    if any(not values for _queryset, values in updates):
        raise ValueError("an update without values")
    connection = connections[using]
    if not objs or connection.vendor != "postgresql":
        counts = [queryset.using(using).update(**values) for queryset, values in updates]
        if objs:
            type(objs[0]).objects.using(using).bulk_create(objs)
        return counts
    model = type(objs[0])
    clauses, counted, params = [], [], []
    for i, (queryset, values) in enumerate(updates):
        sql, update_params = _update_sql(queryset.using(using), values)
        clauses.append(f"u{i} AS ({sql} RETURNING 1)")
        counted.append(f"(SELECT COUNT(*) FROM u{i})")  # noqa: S608 (a name of this statement's own)
        params.extend(update_params)
    query = InsertQuery(model)
    query.insert_values([f for f in model._meta.concrete_fields if not f.primary_key], objs)
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = [model._meta.pk]
    [(insert, insert_params)] = compiler.as_sql()
    params.extend(insert_params)
    if clauses:  # each update's row count, from the RETURNING of the insert (the same on every row)
        insert = f"WITH {', '.join(clauses)} {insert}, {', '.join(counted)}"
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(insert, params)
        rows = cursor.fetchall()
    if len(rows) != len(objs):
        raise DatabaseError(f"{len(objs)} rows to insert, {len(rows)} inserted")
    for obj, row in zip(objs, rows, strict=True):
        obj.pk = row[0]
        obj._state.adding = False
        obj._state.db = using
    return [int(n) for n in rows[0][1:]]
