"""Writes of the statistics rollups: one fact applied as it changes, or whole months rebuilt.

What is kept (``pricing.models``):

- ``VolumeRollup``: trades, tonnes and value × every ancestor of the category, per month for the
  county, city, province and nation, and per day for the province and the nation only. Weeks are
  summed from days and quarters and years from months at query time; zones from their provinces.
  A county or city has a trade or two a day: a day row of it would hold about one fact three
  times over (once per catalogue depth), so days of a city or county are read from the facts
  themselves, through their covering index (``pricing.selectors``), and the rollups keep only
  the cells that sum many facts.
- ``DisclosureContribution``: each seller's and buyer's trades and tonnes per month × province or
  nation × top-level category or all, for the distinct counts and dominance of the open data.
- ``TradeFactRollupMark``: per fact, whether the rollups hold it.

**Incremental** (:func:`rollups_fact_apply`, run by the statistics worker on the message the
commit that recorded or voided a fact sends, ``pricing.tasks.stats_facts_changed``):
in one transaction the fact row is locked (with the month's advisory lock, below), then the mark is
read and, when it differs from the fact (counted but now voided, or not yet counted), every row of
the fact is incremented by +1 or -1 and the mark set. Applying a fact twice, or concurrently from
the worker and the sweep, changes nothing the second time. The increments are ``INSERT … ON CONFLICT
DO UPDATE SET col = col + EXCLUDED.col`` (additive, unlike the ORM's
``bulk_create(update_conflicts=True)``, which overwrites) with the rows in key order, so concurrent
trades never deadlock. On PostgreSQL the mark read, both tables' increments and the mark write are
one statement of constant text (the rows travel as one JSON parameter per table), so a trade costs two statements
besides BEGIN and COMMIT. That transaction commits asynchronously (``synchronous_commit = off``):
it only follows a fact whose own commit was durable, and if a crash loses it, it loses the
increments and the mark together, the mark stays pending and the sweep applies the fact again.
SQLite (the embedded demo) goes through the ORM and the same upserts; a database without ``ON
CONFLICT`` gets an update-then-insert fallback.

**Rebuild** (:func:`rollups_rebuild`, ``manage.py stats_rebuild``): month by month, each month in
one transaction: its rows deleted and recomputed from a snapshot of its facts (PostgreSQL: SQL
``INSERT … SELECT``; elsewhere: summed in Python), its facts' marks set, and the fill state moved on.

**Live writes during a rebuild**: each month has an advisory lock (PostgreSQL). Applying a fact
takes it shared, so trades apply concurrently; rebuilding a month takes it exclusive, so a fact is
either in the rebuild's snapshot (and its mark says so, and applying it later finds nothing to do)
or applied after the rebuild commits.
"""

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from pricing.models import (
    DisclosureContribution,
    FillStatus,
    RollupFillState,
    RollupGrain,
    RollupLevel,
    TradeFact,
    TradeFactRollupMark,
    VolumeRollup,
)
from pricing.periods import month_add

logger = logging.getLogger(__name__)

NATIONAL = "CN"
ALL_CATEGORIES = "*"
FILL_STATE_NAME = "volume"
# The class id of the per-month advisory locks ("STAT"); the object id is the month's index.
LOCK_CLASS = 0x53544154

ROLLUP_TABLE = VolumeRollup._meta.db_table
CONTRIBUTION_TABLE = DisclosureContribution._meta.db_table


# --- keys of a fact ----------------------------------------------------------------------------


def category_nodes(code: str) -> list[tuple[str, int]]:
    """Every node from the top of the catalogue down to ``code``, with its depth:
    ``"nonferrous.copper.bright"`` -> nonferrous (0), nonferrous.copper (1), itself (2)."""
    parts = code.split(".")
    return [(".".join(parts[: n + 1]), n) for n in range(len(parts))]


def region_level(key: str) -> str:
    """The level a region key stands for, read from the code (GB/T 2260 codes are hierarchical)."""
    if key == NATIONAL:
        return RollupLevel.NATIONAL
    if key.endswith("0000"):
        return RollupLevel.PROVINCE
    if key.endswith("00"):
        return RollupLevel.CITY
    return RollupLevel.COUNTY


def region_keys(county_code: str) -> list[str]:
    """The county, its city, its province and the nation. A city without counties (东莞 441900)
    stands for its own county, so it appears once."""
    keys = [county_code, county_code[:4] + "00", county_code[:2] + "0000", NATIONAL]
    return list(dict.fromkeys(keys))


# The levels kept per day as well as per month; the others (city, county) per month only.
DAY_LEVELS = (RollupLevel.NATIONAL, RollupLevel.PROVINCE)


def region_keys_by_day(county_code: str) -> list[str]:
    """The keys of a fact's day rows: its province and the nation."""
    return [county_code[:2] + "0000", NATIONAL]


def local_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The aware start of ``month`` and of the next one, in the market's time zone."""
    tz = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(month, time.min, tzinfo=tz),
        datetime.combine(month_add(month, 1), time.min, tzinfo=tz),
    )


@dataclass(frozen=True)
class FactFigures:
    """What the rollups need of one fact."""

    day: date
    category: str
    county: str
    seller: str
    buyer: str
    tonnes: Decimal
    value: Decimal

    @classmethod
    def of(cls, fact: TradeFact) -> "FactFigures":
        return cls(
            day=local_day(fact.settled_at),
            category=fact.category_id,
            county=fact.region_id,
            seller=fact.seller_uscc,
            buyer=fact.buyer_uscc,
            tonnes=fact.quantity_t,
            value=fact.amount,
        )


def rollup_rows(f: FactFigures, sign: int) -> list[tuple]:
    """(grain, period, category, depth, region, level, trades, tonnes, value) of one fact, in key
    order: a month row for each enclosing region, a day row for the province and the nation."""
    month = f.day.replace(day=1)
    cells = [(RollupGrain.DAY.value, f.day, key) for key in region_keys_by_day(f.county)]
    cells += [(RollupGrain.MONTH.value, month, key) for key in region_keys(f.county)]
    rows = [
        (grain, period, node, depth, key, region_level(key), sign, sign * f.tonnes, sign * f.value)
        for grain, period, key in cells
        for node, depth in category_nodes(f.category)
    ]
    return sorted(rows, key=lambda r: (r[0], r[4], r[3], r[2], r[1]))  # the unique key's order


def contribution_rows(f: FactFigures, sign: int) -> list[tuple]:
    """(month, region, category, side, uscc, trades, tonnes) of one fact, in key order."""
    month = f.day.replace(day=1)
    top = f.category.split(".", 1)[0]
    rows = [
        (month, region, category, side, uscc, sign, sign * f.tonnes)
        for region in (f.county[:2] + "0000", NATIONAL)
        for category in (top, ALL_CATEGORIES)
        for side, uscc in (("s", f.seller), ("b", f.buyer))
    ]
    return sorted(rows, key=lambda r: r[:5])


# --- additive upserts --------------------------------------------------------------------------

ROLLUP_KEY = ("grain", "region", "depth", "category", "period")
ROLLUP_COLUMNS = ("grain", "period", "category", "depth", "region", "level", "trades", "tonnes", "value")
ROLLUP_ADD = ("trades", "tonnes", "value")
CONTRIBUTION_KEY = ("month", "region", "category", "side", "uscc")
CONTRIBUTION_COLUMNS = ("month", "region", "category", "side", "uscc", "trades", "tonnes")
CONTRIBUTION_ADD = ("trades", "tonnes")


def _native_upsert() -> bool:
    """Whether the database adds on conflict in one statement (PostgreSQL; SQLite 3.24 and later)."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 24, 0)
    return False


def upsert_add(table: str, columns: tuple, key: tuple, add: tuple, rows: list[tuple]) -> None:
    """Insert ``rows`` into ``table``, or add their ``add`` columns to the rows already there."""
    if not rows:
        return
    if not _native_upsert():
        _upsert_add_fallback(table, columns, key, add, rows)
        return
    # Only table and column names from this module are interpolated; every value is a parameter.
    qn = connection.ops.quote_name
    names = ", ".join(qn(c) for c in columns)
    values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    conflict = ", ".join(qn(c) for c in key)
    sets = ", ".join(f"{qn(c)} = {qn(table)}.{qn(c)} + excluded.{qn(c)}" for c in add)
    sql = f"INSERT INTO {qn(table)} ({names}) VALUES {values} ON CONFLICT ({conflict}) DO UPDATE SET {sets}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])


def _upsert_add_fallback(table: str, columns: tuple, key: tuple, add: tuple, rows: list[tuple]) -> None:
    """Portable: ``UPDATE … SET col = col + %s`` and, when no row was there, an ``INSERT`` (in a
    savepoint, so that a concurrent insert of the same key turns into a second update)."""
    from django.db import IntegrityError

    qn = connection.ops.quote_name
    index = {c: i for i, c in enumerate(columns)}
    sets = ", ".join(f"{qn(c)} = {qn(c)} + %s" for c in add)
    where = " AND ".join(f"{qn(c)} = %s" for c in key)
    names = ", ".join(qn(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    update = f"UPDATE {qn(table)} SET {sets} WHERE {where}"  # noqa: S608 - names from this module
    insert = f"INSERT INTO {qn(table)} ({names}) VALUES ({marks})"  # noqa: S608 - names from this module
    with connection.cursor() as cursor:
        for row in rows:
            params = [row[index[c]] for c in add] + [row[index[c]] for c in key]
            cursor.execute(update, params)
            if cursor.rowcount:
                continue
            try:
                with transaction.atomic():
                    cursor.execute(insert, list(row))
            except IntegrityError:
                cursor.execute(update, params)


def _delete_empty(table: str, key: tuple, rows: list[tuple], columns: tuple) -> None:
    """Drop the rows a void brought down to no trades (a cell with nothing in it has no row)."""
    qn = connection.ops.quote_name
    index = {c: i for i, c in enumerate(columns)}
    where = " OR ".join(["(" + " AND ".join(f"{qn(c)} = %s" for c in key) + ")"] * len(rows))
    params = [row[index[c]] for row in rows for c in key]
    with connection.cursor() as cursor:
        sql = f"DELETE FROM {qn(table)} WHERE {qn('trades')} <= 0 AND ({where})"  # noqa: S608 - as above
        cursor.execute(sql, params)


def month_lock(month: date, *, shared: bool) -> None:
    """The advisory lock of one month, to the end of the transaction (PostgreSQL only: SQLite lets
    one writer at a time anyway)."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [LOCK_CLASS, month.year * 12 + month.month - 1])


def _figures_add(f: FactFigures, sign: int) -> None:
    rows = rollup_rows(f, sign)
    contributions = contribution_rows(f, sign)
    upsert_add(ROLLUP_TABLE, ROLLUP_COLUMNS, ROLLUP_KEY, ROLLUP_ADD, rows)
    upsert_add(CONTRIBUTION_TABLE, CONTRIBUTION_COLUMNS, CONTRIBUTION_KEY, CONTRIBUTION_ADD, contributions)
    if sign < 0:
        _delete_empty(ROLLUP_TABLE, ROLLUP_KEY, rows, ROLLUP_COLUMNS)
        _delete_empty(CONTRIBUTION_TABLE, CONTRIBUTION_KEY, contributions, CONTRIBUTION_COLUMNS)


# --- one fact ----------------------------------------------------------------------------------


def rollups_fact_apply(*, fact_id: int) -> int:
    """Bring the rollups in line with one fact: +1 if it is now counted, -1 if its count was taken
    out (voided), 0 if they already agreed (or there is no such fact). Idempotent and safe to run
    concurrently with itself, with other facts and with a rebuild."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _apply_postgresql(fact_id)
        return _apply_portable(fact_id)


def _apply_portable(fact_id: int) -> int:
    fact = (
        TradeFact.objects.select_for_update()
        .only(
            "settled_at",
            "category",
            "region",
            "seller_uscc",
            "buyer_uscc",
            "quantity_t",
            "amount",
            "voided_at",
        )
        .filter(pk=fact_id)
        .first()
    )
    if fact is None:
        return 0
    figures = FactFigures.of(fact)
    month_lock(figures.day.replace(day=1), shared=True)
    mark = TradeFactRollupMark.objects.filter(fact_id=fact_id).values_list("counted", "pending").first()
    counted, pending = mark if mark else (False, True)
    wanted = fact.voided_at is None
    sign = 0 if wanted == counted else (1 if wanted else -1)
    if sign:
        _figures_add(figures, sign)
    if sign or pending or mark is None:
        TradeFactRollupMark.objects.bulk_create(
            [TradeFactRollupMark(fact_id=fact_id, counted=wanted, pending=False)],
            update_conflicts=True,
            unique_fields=["fact"],
            update_fields=["counted", "pending", "updated_at"],
        )
    return sign


# The fact, locked, and the month's advisory lock (shared) taken in the same round trip, with the
# transaction's commit made asynchronous (see the module's doc: a lost commit leaves the mark pending).
_LOCK_FACT_SQL = """
    SELECT settled_at, category_id, region_id, seller_uscc, buyer_uscc, quantity_t, amount,
           voided_at IS NULL,
           pg_advisory_xact_lock_shared(%s, (EXTRACT(YEAR FROM settled_at AT TIME ZONE %s) * 12
                                             + EXTRACT(MONTH FROM settled_at AT TIME ZONE %s) - 1)::int),
           set_config('synchronous_commit', 'off', true)
    FROM pricing_tradefact WHERE id = %s FOR UPDATE
"""

# One statement: the mark read, every increment (only when the mark differs from the fact) and the
# mark set. Its snapshot is taken after the locks of the statement before, so it sees what a rebuild
# of the month committed. The rows come as one JSON parameter each table (``_rows_json``), read in key
# order (``ORDER BY n``), so the text never changes with the number of rows and the driver has one
# string to pass rather than a value per cell.
_APPLY_SQL = """
    WITH state AS (
        SELECT COALESCE((SELECT counted FROM pricing_tradefactrollupmark WHERE fact_id = %s), false) <> %s
               AS go
    ),
    r AS (
        INSERT INTO pricing_volumerollup (grain, period, category, depth, region, level, trades, tonnes, value)
        SELECT v.grain, v.period, v.category, v.depth, v.region, v.level, v.trades, v.tonnes, v.value
        FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (
            grain varchar, period date, category varchar, depth int, region varchar, level varchar,
            trades bigint, tonnes numeric, value numeric
        )) WITH ORDINALITY AS v(grain, period, category, depth, region, level, trades, tonnes, value, n)
        WHERE (SELECT go FROM state)
        ORDER BY v.n
        ON CONFLICT (grain, region, depth, category, period) DO UPDATE SET
            trades = pricing_volumerollup.trades + excluded.trades,
            tonnes = pricing_volumerollup.tonnes + excluded.tonnes,
            value = pricing_volumerollup.value + excluded.value
        RETURNING 1
    ),
    c AS (
        INSERT INTO pricing_disclosurecontribution (month, region, category, side, uscc, trades, tonnes)
        SELECT v.month, v.region, v.category, v.side, v.uscc, v.trades, v.tonnes
        FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (
            month date, region varchar, category varchar, side varchar, uscc varchar, trades int,
            tonnes numeric
        )) WITH ORDINALITY AS v(month, region, category, side, uscc, trades, tonnes, n)
        WHERE (SELECT go FROM state)
        ORDER BY v.n
        ON CONFLICT (month, region, category, side, uscc) DO UPDATE SET
            trades = pricing_disclosurecontribution.trades + excluded.trades,
            tonnes = pricing_disclosurecontribution.tonnes + excluded.tonnes
        RETURNING 1
    )
    INSERT INTO pricing_tradefactrollupmark (fact_id, counted, pending, updated_at)
    VALUES (%s, %s, false, now())
    ON CONFLICT (fact_id) DO UPDATE SET
        counted = excluded.counted, pending = false, updated_at = excluded.updated_at
    RETURNING (SELECT go FROM state)
"""


def _rows_json(columns: tuple, rows: list[tuple]) -> str:
    """Rows as a JSON array of objects (dates ISO, decimals as exact strings) for ``_APPLY_SQL``."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str)


def _apply_postgresql(fact_id: int) -> int:
    """PostgreSQL in two statements (lock, write) besides BEGIN and COMMIT: the path of every trade."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_FACT_SQL, [LOCK_CLASS, settings.TIME_ZONE, settings.TIME_ZONE, fact_id])
        row = cursor.fetchone()
        if row is None:
            return 0
        settled_at, category, county, seller, buyer, tonnes, value, wanted = row[:8]
        figures = FactFigures(local_day(settled_at), category, county, seller, buyer, tonnes, value)
        sign = 1 if wanted else -1
        rows = rollup_rows(figures, sign)
        contributions = contribution_rows(figures, sign)
        params = [
            fact_id,
            wanted,
            _rows_json(ROLLUP_COLUMNS, rows),
            _rows_json(CONTRIBUTION_COLUMNS, contributions),
            fact_id,
            wanted,
        ]
        cursor.execute(_APPLY_SQL, params)
        applied = cursor.fetchone()[0]
    if not applied:
        return 0
    if sign < 0:
        _delete_empty(ROLLUP_TABLE, ROLLUP_KEY, rows, ROLLUP_COLUMNS)
        _delete_empty(CONTRIBUTION_TABLE, CONTRIBUTION_KEY, contributions, CONTRIBUTION_COLUMNS)
    return sign


def rollups_mark_pending(fact_id: int) -> None:
    """Note, in the transaction that records or voids a fact, that its rollups must follow."""
    TradeFactRollupMark.objects.bulk_create(
        [TradeFactRollupMark(fact_id=fact_id, pending=True)],
        update_conflicts=True,
        unique_fields=["fact"],
        update_fields=["pending", "updated_at"],
    )


def rollups_sweep(*, limit: int = 5000) -> int:
    """Apply the facts whose change the rollups have not followed yet (a message lost with a
    crashed process or a broker down); returns how many changed the rollups."""
    ids = list(
        TradeFactRollupMark.objects.filter(pending=True)
        .order_by("fact_id")
        .values_list("fact_id", flat=True)[:limit]
    )
    changed = 0
    for fact_id in ids:
        try:
            changed += rollups_fact_apply(fact_id=fact_id) != 0
        except Exception:  # one bad fact must not stop the others; it stays pending
            logger.exception("rollups: applying trade fact %s failed", fact_id)
    if changed:
        logger.info("rollups sweep: %d of %d pending facts changed the rollups", changed, len(ids))
    return changed


# --- rebuilding months -------------------------------------------------------------------------


def _rebuild_month_sql(month: date) -> None:
    """PostgreSQL: recompute one month's rows from a snapshot of its facts, in SQL."""
    start, end = month_bounds(month)
    next_month = month_add(month, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TABLE IF EXISTS pricing_rebuild_facts, pricing_rebuild_nodes, pricing_rebuild_regions"
        )
        # One snapshot for every statement below: what the rows count and what the marks say agree.
        cursor.execute(
            """
            CREATE TEMPORARY TABLE pricing_rebuild_facts ON COMMIT DROP AS
            SELECT id, (settled_at AT TIME ZONE %s)::date AS day, category_id, region_id,
                   seller_uscc, buyer_uscc, quantity_t, amount, voided_at IS NULL AS counted
            FROM pricing_tradefact
            WHERE settled_at >= %s AND settled_at < %s
            """,
            [settings.TIME_ZONE, start, end],
        )
        cursor.execute("ANALYZE pricing_rebuild_facts")
        # The sums below group a few hundred thousand rows a month at millions of trades: in memory,
        # and without JIT compilation (the row estimates of generate_series and unnest are far above
        # the few rows a leaf or county expands to, which would cost a second of compiling each).
        cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "DELETE FROM pricing_volumerollup WHERE period >= %s AND period < %s", [month, next_month]
        )
        cursor.execute("DELETE FROM pricing_disclosurecontribution WHERE month = %s", [month])
        # The catalogue nodes of each leaf traded (itself and its ancestors, with their depth) and the
        # regions of each county traded (itself, its city, province and the nation, once each), as two
        # small analysed tables joined to the facts' sums (so the planner knows how few rows each
        # leaf or county expands to).
        cursor.execute(
            """
            CREATE TEMPORARY TABLE pricing_rebuild_nodes ON COMMIT DROP AS
            SELECT l.category_id, array_to_string(s.parts[1:n], '.') AS node, n - 1 AS depth
            FROM (SELECT DISTINCT category_id FROM pricing_rebuild_facts WHERE counted) l
            CROSS JOIN LATERAL (SELECT string_to_array(l.category_id, '.') AS parts) s
            CROSS JOIN LATERAL generate_series(1, cardinality(s.parts)) AS n
            """
        )
        cursor.execute(
            """
            CREATE TEMPORARY TABLE pricing_rebuild_regions ON COMMIT DROP AS
            SELECT DISTINCT c.region_id, k.key,
                   CASE WHEN k.key = %s THEN 'national'
                        WHEN right(k.key, 4) = '0000' THEN 'province'
                        WHEN right(k.key, 2) = '00' THEN 'city'
                        ELSE 'county' END AS level
            FROM (SELECT DISTINCT region_id FROM pricing_rebuild_facts WHERE counted) c
            CROSS JOIN LATERAL unnest(ARRAY[
                c.region_id, left(c.region_id, 4) || '00', left(c.region_id, 2) || '0000', %s
            ]) AS k(key)
            """,
            [NATIONAL, NATIONAL],
        )
        cursor.execute("ANALYZE pricing_rebuild_nodes")
        cursor.execute("ANALYZE pricing_rebuild_regions")
        # Day rows: the province and the nation, from the facts summed per day, leaf and province.
        cursor.execute(
            """
            WITH g AS (
                SELECT day, category_id, left(region_id, 2) || '0000' AS province,
                       COUNT(*) AS trades, SUM(quantity_t) AS tonnes, SUM(amount) AS value
                FROM pricing_rebuild_facts WHERE counted
                GROUP BY 1, 2, 3
            )
            INSERT INTO pricing_volumerollup
                (grain, period, category, depth, region, level, trades, tonnes, value)
            SELECT 'day', g.day, n.node, n.depth, r.key, r.level,
                   SUM(g.trades), SUM(g.tonnes), SUM(g.value)
            FROM g
            JOIN pricing_rebuild_nodes n ON n.category_id = g.category_id
            CROSS JOIN LATERAL (VALUES (g.province, 'province'), (%s, 'national')) AS r(key, level)
            GROUP BY g.day, n.node, n.depth, r.key, r.level
            ORDER BY r.key, n.depth, n.node, g.day  -- one region's rows together on disk
            """,
            [NATIONAL],
        )
        # Month rows: every enclosing region, from the facts summed per leaf and county.
        cursor.execute(
            """
            WITH g AS (
                SELECT category_id, region_id,
                       COUNT(*) AS trades, SUM(quantity_t) AS tonnes, SUM(amount) AS value
                FROM pricing_rebuild_facts WHERE counted
                GROUP BY 1, 2
            )
            INSERT INTO pricing_volumerollup
                (grain, period, category, depth, region, level, trades, tonnes, value)
            SELECT 'month', %s, n.node, n.depth, r.key, r.level,
                   SUM(g.trades), SUM(g.tonnes), SUM(g.value)
            FROM g
            JOIN pricing_rebuild_nodes n ON n.category_id = g.category_id
            JOIN pricing_rebuild_regions r ON r.region_id = g.region_id
            GROUP BY n.node, n.depth, r.key, r.level
            ORDER BY r.key, n.depth, n.node
            """,
            [month],
        )
        cursor.execute(
            """
            INSERT INTO pricing_disclosurecontribution (month, region, category, side, uscc, trades, tonnes)
            SELECT %s, r.region, c.category, s.side, s.uscc, COUNT(*), SUM(f.quantity_t)
            FROM pricing_rebuild_facts f
            CROSS JOIN LATERAL (VALUES (left(f.region_id, 2) || '0000'), (%s)) AS r(region)
            CROSS JOIN LATERAL (VALUES (split_part(f.category_id, '.', 1)), (%s)) AS c(category)
            CROSS JOIN LATERAL (VALUES ('s', f.seller_uscc), ('b', f.buyer_uscc)) AS s(side, uscc)
            WHERE f.counted
            GROUP BY r.region, c.category, s.side, s.uscc
            """,
            [month, NATIONAL, ALL_CATEGORIES],
        )
        # A mark made pending by a concurrent record or void stays pending: the change is applied
        # after this commit and then finds the mark (and the rows) as this snapshot left them.
        cursor.execute(
            """
            INSERT INTO pricing_tradefactrollupmark (fact_id, counted, pending, updated_at)
            SELECT id, counted, false, now() FROM pricing_rebuild_facts
            ON CONFLICT (fact_id) DO UPDATE SET counted = excluded.counted, updated_at = excluded.updated_at
            """
        )
        cursor.execute("DROP TABLE pricing_rebuild_facts, pricing_rebuild_nodes, pricing_rebuild_regions")


def _rebuild_month_python(month: date) -> None:
    """Any database (the SQLite demo): the same as :func:`_rebuild_month_sql`, summed in Python."""
    start, end = month_bounds(month)
    facts = list(
        TradeFact.objects.filter(settled_at__gte=start, settled_at__lt=end).only(
            "settled_at", "category", "region", "seller_uscc", "buyer_uscc", "quantity_t", "amount",
            "voided_at",
        )
    )  # fmt: skip
    rollups: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    contributions: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for fact in facts:
        if fact.voided_at is not None:
            continue
        figures = FactFigures.of(fact)
        for row in rollup_rows(figures, 1):
            total = rollups[row[:6]]
            total[0] += 1
            total[1] += row[7]
            total[2] += row[8]
        for row in contribution_rows(figures, 1):
            total = contributions[row[:5]]
            total[0] += 1
            total[1] += row[6]
    VolumeRollup.objects.filter(period__gte=month, period__lt=month_add(month, 1)).delete()
    DisclosureContribution.objects.filter(month=month).delete()
    VolumeRollup.objects.bulk_create(
        [
            VolumeRollup(
                grain=grain, period=period, category=category, depth=depth, region=region, level=level,
                trades=trades, tonnes=tonnes, value=value,
            )
            for (grain, period, category, depth, region, level), (trades, tonnes, value) in rollups.items()
        ],
        batch_size=2000,
    )  # fmt: skip
    DisclosureContribution.objects.bulk_create(
        [
            DisclosureContribution(
                month=m, region=region, category=category, side=side, uscc=uscc, trades=trades, tonnes=tonnes
            )
            for (m, region, category, side, uscc), (trades, tonnes) in contributions.items()
        ],
        batch_size=2000,
    )
    TradeFactRollupMark.objects.bulk_create(
        [TradeFactRollupMark(fact_id=f.pk, counted=f.voided_at is None, pending=False) for f in facts],
        update_conflicts=True,
        unique_fields=["fact"],
        update_fields=["counted", "updated_at"],
        batch_size=2000,
    )


def rebuild_month(month: date) -> None:
    """Recompute every row of one month from its facts (call inside a transaction)."""
    month_lock(month, shared=False)
    if connection.vendor == "postgresql":
        _rebuild_month_sql(month)
    else:
        _rebuild_month_python(month)


def facts_month_range() -> tuple[date, date] | None:
    """The first and last month holding a settled fact, or None when there is none."""
    bounds = TradeFact.objects.aggregate(first=Min("settled_at"), last=Max("settled_at"))
    if bounds["first"] is None:
        return None
    return local_day(bounds["first"]).replace(day=1), local_day(bounds["last"]).replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(month)
        month = month_add(month, 1)
    return out


@dataclass(frozen=True)
class RebuildPlan:
    months: list[date]  # still to do
    total: int  # in the whole range
    resumed: bool


def rollups_rebuild_plan(first: date, last: date, *, restart: bool = False) -> RebuildPlan:
    """Start a rebuild of the months from ``first`` to ``last`` (any days in them), or resume the
    one of the same range that stopped midway. Records the range in the fill state."""
    months = months_between(first.replace(day=1), last.replace(day=1))
    if not months:
        return RebuildPlan([], 0, False)
    state = RollupFillState.objects.filter(name=FILL_STATE_NAME).first()
    same_range = state is not None and (state.range_from, state.range_to) == (months[0], months[-1])
    if state is not None and same_range and state.status == FillStatus.RUNNING and not restart:
        todo = [m for m in months if state.done_through is None or m > state.done_through]
        return RebuildPlan(todo, len(months), True)
    RollupFillState.objects.update_or_create(
        name=FILL_STATE_NAME,
        defaults={
            "status": FillStatus.RUNNING,
            "range_from": months[0],
            "range_to": months[-1],
            "done_through": None,
            "started_at": timezone.now(),
        },
    )
    return RebuildPlan(months, len(months), False)


def rollups_rebuild(
    first: date,
    last: date,
    *,
    restart: bool = False,
    on_month: Callable[[date], None] | None = None,
) -> RebuildPlan:
    """Rebuild the months from ``first`` to ``last``, each in its own transaction together with the
    fill state, so that a crash loses at most the month in progress and a rerun continues."""
    plan = rollups_rebuild_plan(first, last, restart=restart)
    for month in plan.months:
        with transaction.atomic():
            rebuild_month(month)
            RollupFillState.objects.filter(name=FILL_STATE_NAME).update(
                done_through=month, updated_at=timezone.now()
            )
        if on_month is not None:
            on_month(month)
    if plan.total:
        RollupFillState.objects.filter(name=FILL_STATE_NAME).update(
            status=FillStatus.DONE, updated_at=timezone.now()
        )
    return plan
