"""Writes of one transaction sent to PostgreSQL as one statement (``insert_with_updates``).

Under a hot row's lock every round trip to the database is time the other writers of that row
wait, and on a busy machine each round trip also waits for the server process to be scheduled. A
bid writes three rows under its sale's lock (the bidder's standing maximum, the bid, the sale);
sent as one ``INSERT`` whose ``WITH`` clauses are the ``UPDATE``s, they cost one round trip instead
of three. PostgreSQL runs every data-modifying ``WITH`` clause exactly once, whether or not the
statement reads it, and all of them on the statement's one snapshot: the rows updated must not be
the rows inserted, nor updated twice.

Statements can also be compiled and not run (``Statement``), to be sent together
(``market.core.commit``). On paths run once per request, compiling an update or an insert cost more
than running it: ``row_update_statement`` and the inserts here write their SQL once per shape from
the model's fields, and prepare the values as Django does.

Otherwise the SQL is Django's own (``UpdateQuery`` and ``InsertQuery`` compiled as
``QuerySet.update`` and ``bulk_create`` compile them, expressions included). Everything runs
through Django's cursor (logged, counted, errors translated). On other databases (the embedded
SQLite) the writes run one after the other.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

from django.db import DatabaseError, connections, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Statement:
    """One statement compiled but not run, so that several can be sent together
    (``market.core.commit.execute_many_async``). ``then`` is called with its result once it has run
    (its rows when it returns rows, else the number of rows it changed), in the transaction it ran
    in: what must wait for the commit is registered there with ``transaction.on_commit``."""

    sql: str
    params: list | tuple
    then: Callable[[list | int], None] | None = None
    model: type | None = None  # the model an update writes (``insert_with_updates`` checks them)


def execute_many(statements: list[Statement], using: str = "default") -> list[list[tuple] | int]:
    """Run ``statements`` one after the other where the connection stands (in its transaction, if
    any); returns each one's result (``statement_results``). Sent together in one round trip, and
    committed without waiting for the disk: ``market.core.commit.execute_many_async``."""
    results = []
    # As the ORM's writes: a failure marks the caller's transaction for rollback (PostgreSQL aborts it).
    with transaction.mark_for_rollback_on_error(using), connections[using].cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.params)
            results.append(cursor.fetchall() if cursor.description is not None else cursor.rowcount)
    return statement_results(statements, results)


def statement_results(statements: list[Statement], results: list) -> list:
    """Each statement's ``then`` called with its result (its rows, or the rows it changed), once
    they have all run; the results. A ``then`` that fails is logged, and the others still run."""
    for statement, result in zip(statements, results, strict=True):
        if statement.then is not None:
            try:
                statement.then(result)
            except Exception:
                logger.exception("after a statement: %s", statement.sql[:200])
    return results


def _update_sql(queryset, values: dict) -> tuple[str, tuple]:
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    return query.get_compiler(queryset.db).as_sql()


def update_statement(queryset, values: dict, then=None) -> Statement:
    """``queryset.update(**values)`` compiled by Django, not run."""
    sql, params = _update_sql(queryset, values)
    return Statement(sql, params, then, queryset.model)


def row_update_statement(
    model,
    pk,
    values: dict,
    *,
    at_least: dict | None = None,
    below: dict | None = None,
    then=None,
    using="default",
) -> Statement:
    """The update of one row by its primary key, not run: fields set to plain values (no
    expressions); fields of ``at_least`` raised to the value given where they hold less or nothing
    (``Greatest(Coalesce(F(name), v), v)``); only where each field of ``below`` holds less than the
    value given. ``update_statement`` of that, its SQL written once per shape on PostgreSQL
    (compiling an update cost more than running it, on paths that run one per request); values
    prepared by their fields, as ``QuerySet.update`` prepares them."""
    connection = connections[using]
    at_least, below = at_least or {}, below or {}
    if not values and not at_least:
        raise ValueError("an update without values")
    if any(hasattr(v, "resolve_expression") for v in [*values.values(), *at_least.values(), *below.values()]):
        raise TypeError("row_update_statement takes plain values (update_statement takes expressions)")
    if connection.vendor != "postgresql":
        # Django's own compile (the embedded SQLite: there a Decimal parameter is text, which compares
        # above any number unless cast, as Django's Greatest and Value compile it).
        rows = model._default_manager.using(using).filter(pk=pk, **{f"{n}__lt": v for n, v in below.items()})
        raised = {n: Greatest(Coalesce(F(n), Value(v)), Value(v)) for n, v in at_least.items()}
        return update_statement(rows, {**values, **raised}, then)
    sql = _row_update_sql(model, tuple(values), tuple(at_least), tuple(below), connection.alias)
    fields = model._meta
    params = [fields.get_field(name).get_db_prep_save(v, connection) for name, v in values.items()]
    for name, v in at_least.items():
        params.extend([fields.get_field(name).get_db_prep_save(v, connection)] * 2)
    params.append(fields.pk.get_db_prep_value(pk, connection))
    params.extend(fields.get_field(name).get_db_prep_value(v, connection) for name, v in below.items())
    return Statement(sql, params, then, model)


@cache
def _row_update_sql(model, names: tuple, at_least: tuple, below: tuple, alias: str) -> str:
    quote = connections[alias].ops.quote_name
    fields = model._meta

    def column(name):
        return quote(fields.get_field(name).column)

    where = " AND ".join([f"{quote(fields.pk.column)} = %s", *(f"{column(n)} < %s" for n in below)])
    assignments = ", ".join(
        [
            *(f"{column(n)} = %s" for n in names),
            *(f"{column(n)} = GREATEST(COALESCE({column(n)}, %s), %s)" for n in at_least),
        ]
    )
    return f"UPDATE {quote(fields.db_table)} SET {assignments} WHERE {where}"  # noqa: S608 (the model's own names)


def _insert_sql(objs: list, using: str) -> tuple[str, list]:
    """``INSERT … RETURNING`` the primary keys of ``objs`` (of one model): SQL written once per model
    and number of rows, values prepared as Django's insert compiler prepares them (``pre_save``, so
    ``auto_now_add``, then ``get_db_prep_save``); Django's own compile for values that are
    expressions."""
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    connection = connections[using]
    rows = [[f.pre_save(obj, True) for f in fields] for obj in objs]
    if any(hasattr(v, "resolve_expression") for row in rows for v in row):
        query = InsertQuery(model)
        query.insert_values(fields, objs)
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = [model._meta.pk]
        [(sql, params)] = compiler.as_sql()
        return sql, list(params)
    params = [f.get_db_prep_save(v, connection) for row in rows for f, v in zip(fields, row, strict=True)]
    return _insert_rows_sql(model, len(objs), using), params


@lru_cache(maxsize=64)
def _insert_rows_sql(model, n: int, alias: str) -> str:
    quote = connections[alias].ops.quote_name
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    row = f"({', '.join(['%s'] * len(fields))})"
    return (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 (the model's own)
        f"VALUES {', '.join([row] * n)} RETURNING {quote(meta.pk.column)}"
    )


def insert_with_updates(objs: list, updates=(), *, using: str = "default") -> list[int]:
    """Insert ``objs`` (instances of one model, primary keys unset) and run ``updates``, each an
    update ``Statement`` (``update_statement``, ``row_update_statement``) or ``(queryset, values)``
    as ``queryset.update(**values)`` would, in one statement on PostgreSQL (updates alone when there
    is nothing to insert). The objects get their primary keys, as from ``bulk_create``. Returns the
    number of rows each update changed.

    Each update must be of a model of its own, other than the inserted one: one statement must not
    write a row twice (PostgreSQL would apply only one of the writes, silently)."""
    updates = [u if isinstance(u, Statement) else _checked_update(*u, using) for u in updates]
    connection = connections[using]
    if not objs or connection.vendor != "postgresql":
        _one_write_each(objs, updates)
        counts = execute_many(updates, using=using)
        if objs:
            type(objs[0]).objects.using(using).bulk_create(objs)
        return counts
    statement = insert_with_updates_statement(objs, updates, using=using)
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        rows = cursor.fetchall()
    return _inserted(objs, updates, rows, using)


def insert_statement(objs: list, *, using: str = "default") -> Statement:
    """The insert of ``objs`` (instances of one model, primary keys unset), not run; its ``then``
    gives them their keys (PostgreSQL: ``INSERT … RETURNING``)."""
    sql, params = _insert_sql(objs, using)
    return Statement(sql, params, lambda rows: _inserted(objs, [], rows, using))


def insert_with_updates_statement(
    objs: list, updates: list[Statement], *, using: str = "default"
) -> Statement:
    """The one statement ``insert_with_updates`` runs on PostgreSQL (``objs`` not empty), not run: to
    be sent with others (``market.trading.gateway``). Its ``then`` gives the objects their primary
    keys and calls each update's ``then`` with the rows it changed."""
    _one_write_each(objs, updates)
    clauses, counted, params = [], [], []
    for i, update in enumerate(updates):
        clauses.append(f"u{i} AS ({update.sql} RETURNING 1)")
        counted.append(f"(SELECT COUNT(*) FROM u{i})")  # noqa: S608 (a name of this statement's own)
        params.extend(update.params)
    insert, insert_params = _insert_sql(objs, using)
    params.extend(insert_params)
    if clauses:  # each update's row count, from the RETURNING of the insert (the same on every row)
        insert = f"WITH {', '.join(clauses)} {insert}, {', '.join(counted)}"
    return Statement(insert, params, lambda rows: _inserted(objs, updates, rows, using))


def _one_write_each(objs: list, updates: list[Statement]) -> None:
    models = [u.model for u in updates]
    if objs:
        models.append(type(objs[0]))
    if None in models or len(set(models)) != len(models):
        raise ValueError("one statement must not write one table twice (nor a table it cannot tell)")


def _inserted(objs: list, updates: list[Statement], rows: list, using: str) -> list[int]:
    if len(rows) != len(objs):
        raise DatabaseError(f"{len(objs)} rows to insert, {len(rows)} inserted")
    for obj, row in zip(objs, rows, strict=True):
        obj.pk = row[0]
        obj._state.adding = False
        obj._state.db = using
    return statement_results(updates, [int(n) for n in rows[0][1:]]) if updates else []


def _checked_update(queryset, values: dict, using: str) -> Statement:
    if not values:
        raise ValueError("an update without values")
    return update_statement(queryset.using(using), values)
