"""Rebuilding the price indices over a span of history, set-based (``indices.indices_rebuild``).

The daily close computes one day: a few queries per day and series are nothing there. Over two years
of history they were most of the cost, so the rebuild reads the trade facts once and computes every
series' cells day after day in memory, then writes the values in bulk: ``COPY`` on PostgreSQL, one
prepared ``INSERT`` run for many rows (``executemany``) elsewhere (the embedded SQLite demo).

The cells are computed set-wise (``ENGINE = "vector"``): the facts as integer arrays
(``pricing.index_facts``, one binary ``COPY``), every series of a day at once
(``pricing.index_vector``), the values without lists of trades (``audit_derived``: derived when asked
for). ``ENGINE = "decimal"`` runs the daily close's own ``indices._Cells`` instead, trade by trade,
on facts read in chunks of settlement time, storing the lists: the reference the tests hold the
set-wise cells to, and the path taken if a window's amounts could overflow 64-bit integers.
The window days before the first day are assessed (rules 1 and 2) so that the first days' windows
hold their trades, as the daily close's do.

What is stored is what the day-by-day rebuild stored before it:

* Every value of the span is replaced; values outside it, and the as-first-published prices of the
  values replaced (kept where they existed), stay.
* Bases are found from scratch when nothing is stored before the span. A series that has no base
  gets the first full month of its values (``methodology.base_period``) and P(s,B) from the stored
  amounts and tonnes of that month's T days (``indices._base_of``); every value of it then has
  I = 1000 * P / P(s,B) from its stored price. A series that already had a base keeps it, and its
  values' levels come from the unrounded price, as in the daily close. A month is decided at its
  last business day: only that month's days decide it, so the values of a series whose base is
  known are written at once and only the others are held (up to ``HOLD_ROWS``: beyond, they are
  written without a level, set in SQL when the base is found, as the day-by-day rebuild did).
* Composites are computed after the elementary values, from their stored values, by the daily
  close's ``indices._composite_fields`` and ``indices._chain_period``.
* Everything recomputed is published at once (``published_at`` = one time), with its first
  publication being its own value unless it had one before.

On PostgreSQL the values' table is locked against other writers for the rebuild (readers go on
reading what was stored), and a set-wise rebuild that replaces every stored value writes a fresh
copy of the table, swapped in at its end (``pricing.index_swap``).
"""

import json
import logging
import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Round
from django.utils import timezone

from pricing import index_columns, index_facts, index_swap
from pricing import index_vector as iv
from pricing import indices as ix
from pricing import methodology as m
from pricing.index_models import CompositeComponent, IndexCorrection, IndexSeries, IndexValue, SeriesKind
from pricing.models import TradeFact

CHUNK_DAYS = 7
"""Calendar days of settlement time read per query of facts."""
FETCH_ROWS = 10000
"""Rows fetched per round trip of the server-side cursor."""
WRITE_ROWS = 20000
"""Values written per ``COPY`` (or ``executemany``)."""
COLUMN_ROWS = 200000
"""Values written per binary ``COPY`` and ``INSERT ... SELECT`` of the set-wise cells (PostgreSQL)."""
HOLD_ROWS = 200000
"""Values held in memory at most while their series' base is not known (beyond it, the series
holding most are written without a level, which is set later if a base is found): rows (dictionaries
of about 2 KB each) of ``_Bases``."""
HOLD_VALUES = 1000000
"""``HOLD_ROWS`` of the set-wise cells on PostgreSQL (``index_columns.ColumnSink``: about 140 bytes a
value, held as columns). At 5,000,000 trades 200,000 left 206,522 values of 1,787 series to the
``UPDATE`` that sets their levels, 2.8 s; 1,000,000 left none."""
ENGINE = "vector"
"""``"vector"``: cells computed set-wise (``pricing.index_vector``); ``"decimal"``: through
``indices._Cells``, trade by trade (the reference the tests compare it with)."""
COPY = True
"""Write with ``COPY`` on PostgreSQL (``executemany`` on other databases, or everywhere when False)."""

logger = logging.getLogger(__name__)

_ELEMENTARY_DEFAULTS = {
    "contributions": {},
    "corrected_at": None,
    "audit_derived": False,
    "params_set_id": None,
}
# What a composite's value stores beyond ``indices._composite_fields`` (the model's defaults).
_COMPOSITE_DEFAULTS = {
    "min_price": None, "max_price": None, "excluded": 0, "days_carried": 0, "carried_from": None,
    "used": [], "unused": {}, "review": [], "corrected_at": None, "audit_derived": False, "params_set_id": None,
}  # fmt: skip


class _Clock:
    """Seconds spent by phase, added into the caller's ``timings`` dict."""

    def __init__(self, timings: dict | None):
        self.timings = timings if timings is not None else {}
        self.started = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.timings[phase] = self.timings.get(phase, 0.0) + now - self.started
        self.started = now


# --- writing values -------------------------------------------------------------------------


class _Writer:
    """Values to insert, published as recomputed: first publication kept from ``first`` (series id,
    day) -> (price, level, status) where the value had one, else its own. Written in batches."""

    def __init__(self, first: dict, now, clock: _Clock):
        self.first = first
        self.now = now
        self.clock = clock
        self.rows: list[dict] = []
        self.written = 0
        self.fields = [f for f in IndexValue._meta.concrete_fields if not f.primary_key]
        self.json = {f.attname for f in self.fields if f.get_internal_type() == "JSONField"}
        self.copy = COPY and connection.vendor == "postgresql"
        self.phase = "rows"  # the phase the time before a write belongs to
        self.columnar = False  # elementary values written by ``index_columns`` (first publications: ``kept``)
        self.kept: index_columns.Kept | None = None  # with ``columnar``: the first publications kept
        self.on_written = None  # with ``columnar``: called once every elementary value is inserted
        self._dumped: dict[int, tuple[dict, str]] = {}

    def add(self, row: dict) -> None:
        first = self.first.get((row["series_id"], row["day"]))
        if first is None:
            first = (row["price"], row["level"], row["status"])
        row["first_price"], row["first_level"], row["first_status"] = first
        row["published_at"] = self.now
        self.rows.append(row)
        if len(self.rows) >= WRITE_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        self.clock.lap(self.phase)
        rows, self.rows = self.rows, []
        if self.copy:
            self._copy(rows)
        else:
            self._insert(rows)
        self.written += len(rows)
        self.clock.lap("write")

    def _params(self, value: dict) -> str:
        """The parameters, one dict per category shared by all its values: dumped once (as
        ``JSONField`` dumps them, ``json.dumps`` without an encoder)."""
        hit = self._dumped.get(id(value))
        if hit is None or hit[0] is not value:
            hit = self._dumped[id(value)] = (value, json.dumps(value))
        return hit[1]

    def _insert(self, rows: list[dict]) -> None:
        """One prepared ``INSERT`` run for every row (``executemany``), each value prepared by its
        field as ``bulk_create`` prepares it, without compiling a statement per few dozen rows."""
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        sql = f"INSERT INTO {quote(IndexValue._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
        db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the per-thread proxy
        prepared = [
            (f.attname, (lambda v, _db: self._params(v)) if f.attname == "params" else f.get_db_prep_save)
            for f in self.fields
        ]
        params = [[prep(row[name], db) for name, prep in prepared] for row in rows]
        with db.cursor() as cursor:
            cursor.executemany(sql, params)

    def _copy(self, rows: list[dict]) -> None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        sql = f"COPY {quote(IndexValue._meta.db_table)} ({columns}) FROM STDIN"
        names = [f.attname for f in self.fields]
        json_at = [
            (i, self._params if name == "params" else _dumps)
            for i, name in enumerate(names)
            if name in self.json
        ]
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            write = copy.write_row
            for row in rows:
                values = [row[name] for name in names]
                for i, dumps in json_at:
                    values[i] = dumps(values[i])
                write(values)


def _dumps(value) -> str:
    """``json.dumps``, without encoding the empty lists and dicts most values hold."""
    if not value:
        if value == []:
            return "[]"
        if value == {}:
            return "{}"
    return json.dumps(value)


# --- bases ----------------------------------------------------------------------------------


class _Bases:
    """The bases found as the days are computed (what ``indices._bases_fix`` finds at the end of a
    day-by-day rebuild), and the values held until their series' base is known.

    ``check`` runs at each month's last business day on the month's statuses of every series still
    without a base: the first month that passes is the one ``methodology.base_period`` finds over all
    of them, since it decides each month on that month's days alone. Series with values stored before
    the span (a rebuild from the middle of history) are decided at the end on all their values, as
    before, and their earlier values' levels are set in SQL (``indices._levels_from_base``).

    Values of a series without a base are held, so that they are written once with their level; past
    ``HOLD_ROWS`` the series holding most are written without one (``spilled``), and their levels are
    set in SQL from the stored prices when the base is found, as ``indices._bases_fix`` does."""

    def __init__(self, p: m.Params, start: date, writer: _Writer):
        self.p = p
        self.start = start
        self.writer = writer
        self.found: dict[int, tuple[date, date, object]] = {}
        self.held: dict[int, list[dict]] = defaultdict(list)
        self.holding = 0
        self.spilled: set[int] = set()
        self.kept: dict[int, list[date]] | None = None
        self.statuses: dict[int, dict] = defaultdict(dict)  # since the last check (all, for ``before``)
        self.totals: dict[int, dict] = defaultdict(dict)
        self.before: set[int] = set()
        earlier = IndexValue.objects.filter(
            day__lt=start, series__kind=SeriesKind.ELEMENTARY, series__base_price__isnull=True
        ).values_list("series_id", "day", "status", "amount", "tonnes")
        for series_id, d, status, amount, tonnes in earlier.iterator(chunk_size=FETCH_ROWS):
            self.before.add(series_id)
            self._note(series_id, d, status, amount, tonnes)

    def _note(self, series_id, d, status, amount, tonnes) -> None:
        self.statuses[series_id][d] = m.Status(status)
        if status == m.Status.TRANSACTION.value:
            self.totals[series_id][d] = (amount, tonnes)

    def add(self, series: IndexSeries, row: dict) -> None:
        if series.base_price is not None:  # a base from before: the level is already in the row
            self.writer.add(row)
            return
        found = self.found.get(series.pk)
        if found is not None:
            row["level"] = ix._level(row["price"], found[2])
            self.writer.add(row)
            return
        self._note(series.pk, row["day"], row["status"], row["amount"], row["tonnes"])
        self.held[series.pk].append(row)
        self.holding += 1
        if self.holding > HOLD_ROWS:
            self._spill()

    def _spill(self) -> None:
        for series_id in sorted(self.held, key=lambda k: -len(self.held[k])):
            rows = self.held.pop(series_id)
            for row in rows:
                self.writer.add(row)
            self.spilled.add(series_id)
            self.holding -= len(rows)
            if self.holding <= HOLD_ROWS // 2:
                break

    def _spilled_levels(self, series_id: int, base) -> None:
        """The levels of a spilled series' values written so far, from their stored prices; their
        first publication's level too, but where it was kept from before the rebuild."""
        self.writer.flush()
        level = Round(F("price") * 1000 / Value(base), 2)
        if self.kept is None:  # the days whose first publication is kept, by series (read once)
            self.kept = defaultdict(list)
            for s, d in self.writer.first:
                self.kept[s].append(d)
        kept = self.kept.get(series_id)
        first_level = Case(When(day__in=kept, then=F("first_level")), default=level) if kept else level
        IndexValue.objects.filter(series_id=series_id, day__gte=self.start).update(
            level=level, first_level=first_level
        )

    def check(self, *, final: bool = False) -> None:
        for series_id in list(self.statuses):
            if series_id in self.before and not final:
                continue
            base = ix._base_of(self.statuses[series_id], self.totals[series_id], self.p)
            del self.statuses[series_id]
            self.totals.pop(series_id, None)
            if base is None:
                continue
            self.found[series_id] = base
            if series_id in self.spilled:
                self._spilled_levels(series_id, base[2])
            rows = self.held.pop(series_id, ())
            self.holding -= len(rows)
            for row in rows:
                row["level"] = ix._level(row["price"], base[2])
                self.writer.add(row)

    def finish(self) -> None:
        """Decide the last (partial) month and the series with earlier values; write the values of
        series without a base (no level); store the bases found."""
        self.check(final=True)
        for rows in self.held.values():
            for row in rows:
                self.writer.add(row)
        self.held.clear()
        self.holding = 0
        self.writer.flush()
        series = list(IndexSeries.objects.filter(pk__in=self.found))
        for s in series:
            s.base_start, s.base_end, s.base_price = self.found[s.pk]
        ix.bases_store(series)
        for series_id in self.before & set(self.found):
            ix._levels_from_base(
                IndexValue.objects.filter(series_id=series_id, day__lt=self.start), self.found[series_id][2]
            )


# --- the rebuild ----------------------------------------------------------------------------


def _fact_chunks(start: date, end: date, p: m.Params, clock: _Clock):
    """The facts counting on business days in [start, end] (those ``indices._facts_between`` reads),
    in chunks of settlement time: yields (facts by counting day, the first day that may still get
    facts from later chunks; None after the last chunk). A fact counts on the later of its award's
    and its settlement's business days, so once every fact settled before t is read, the days
    before t's business day are complete."""
    lo, hi = ix._settled_bounds(start, end, p)
    base = TradeFact.objects.order_by()
    while lo < hi:
        upper = min(lo + timedelta(days=CHUNK_DAYS), hi)
        rows = base.filter(settled_at__gte=lo, settled_at__lt=upper).values_list(*ix.FACT_FIELDS)
        out: dict[date, list] = defaultdict(list)
        ix._facts_bucket(rows.iterator(chunk_size=FETCH_ROWS), start, end, p, out)
        clock.lap("read")
        yield out, (m.business_day_of(upper, p) if upper < hi else None)
        lo = upper


def _notices_delete(start: date, end: date) -> None:
    """The correction notices of the values of [start, end] (one statement, no rows loaded)."""
    IndexCorrection.objects.filter(value__day__gte=start, value__day__lte=end).delete()


def _values_delete(start: date, end: date) -> None:
    """The values of [start, end] and their correction notices, in two statements (no rows loaded)."""
    _notices_delete(start, end)
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(IndexValue._meta.db_table)
        cursor.execute(f"DELETE FROM {table} WHERE day >= %s AND day <= %s", [start, end])  # noqa: S608 (model table)


def _window_before(days: list[date], p: m.Params) -> list[date]:
    """The business days before ``days[0]`` in its window: assessed (rules 1 and 2), not computed,
    so the first days' windows hold their trades as the daily close's do."""
    return m.business_window(days[0], p.window_days, p.holidays)[:-1]


def _elementary_decimal(days: list[date], p: m.Params, writer: _Writer, progress, clock: _Clock) -> None:
    """The cells through ``indices._Cells`` (``Decimal``, trade by trade): the reference."""
    cells = ix._Cells(p)
    cells.start(days[0])
    bases = _Bases(p, days[0], writer)
    clock.lap("prepare")
    before = _window_before(days, p)
    pending: dict[date, list] = defaultdict(list)
    i = 0
    for chunk, complete_before in _fact_chunks((before or days)[0], days[-1], p, clock):
        for d, facts in chunk.items():
            pending[d].extend(facts)
        while before and (complete_before is None or before[0] < complete_before):
            d = before.pop(0)
            cells.assess(d, pending.pop(d, ()))
        while i < len(days) and (complete_before is None or days[i] < complete_before):
            d = days[i]
            results = cells.close(d, pending.pop(d, ()))
            clock.lap("cells")
            for series, cell in results:
                row = ix._value_fields(cell, series, p)
                row["series_id"], row["day"] = series.pk, d
                row.update(_ELEMENTARY_DEFAULTS)
                bases.add(series, row)
            i += 1
            if i == len(days) or days[i].month != d.month:
                bases.check()
            clock.lap("rows")
            if progress:
                progress(i, len(days))
    bases.finish()
    clock.lap("bases")


def _elementary(days: list[date], p: m.Params, writer: _Writer, progress, clock: _Clock) -> None:
    if ENGINE == "vector":
        facts = index_facts.facts_of((_window_before(days, p) or days)[0], days[-1], p)
        clock.lap("read")
        if _sums_fit(facts, p):
            _elementary_vector(days, facts, p, writer, progress, clock)
            return
    if writer.columnar:  # the first publications kept (``index_columns.Kept``) are needed row by row
        writer.first.update(writer.kept.as_dict())
    _elementary_decimal(days, p, writer, progress, clock)


def _sums_fit(facts: index_facts.FactArrays, p: m.Params) -> bool:
    """Whether every sum of amounts the cells make (a window's, at most) fits 64-bit integers; if not,
    the rebuild runs through ``Decimal``."""
    if not len(facts.q):
        return True
    amounts = facts.q.astype(np.float64) * facts.p
    bounds = facts.day_bounds()
    by_day = np.add.reduceat(np.append(amounts, 0.0), bounds[:-1]) if len(bounds) > 1 else amounts
    by_day[bounds[:-1] == bounds[1:]] = 0.0  # reduceat gives an empty day the next value
    return float(by_day.max()) * p.window_days < iv.SAFE / 2


def _previous_stored(day: date, index_of: dict[str, int]) -> dict[int, tuple]:
    """The stored values of the business day before ``day`` (what ``indices._Cells.start`` reads)."""
    return {
        index_of[code]: (status, int(price * 1_000_000), days_carried, carried_from)
        for code, status, price, days_carried, carried_from in IndexValue.objects.filter(
            day=day, series__kind=SeriesKind.ELEMENTARY
        ).values_list("series__code", "status", "price", "days_carried", "carried_from")
        if code in index_of
    }


def _elementary_vector(days, facts, p: m.Params, writer: _Writer, progress, clock: _Clock) -> None:
    """The cells through ``index_vector.VectorCells`` (set-wise, every series at once)."""
    counties = len(facts.counties)
    pair_keys, pair_of = np.unique(
        facts.category.astype(np.int64) * counties + facts.county, return_inverse=True
    )
    pairs = [(facts.categories[k // counties], facts.counties[k % counties]) for k in pair_keys.tolist()]
    # A fact's series depend on its category and its county's province only.
    by_province = {(category, county[:2]): county for category, county in pairs}
    ix.series_ensure_many((category, county) for (category, _p), county in by_province.items())
    series = list(IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY).order_by("pk"))
    index_of = {s.code: i for i, s in enumerate(series)}
    members = {
        key: tuple(index_of[c] for c in ix.series_of_fact(key[0], county))
        for key, county in by_province.items()
    }
    engine = iv.VectorCells(
        p, [c for c, _county in pairs], [members[(c, county[:2])] for c, county in pairs],
        [s.category_id for s in series],
        _previous_stored(m.previous_business_day(days[0], p.holidays), index_of),
    )  # fmt: skip
    params_set = ix.params_set(p).pk
    if writer.columnar:
        columns = index_columns.ColumnWriter(writer.now, params_set, clock, COLUMN_ROWS, writer.kept)
        sink = index_columns.ColumnSink(p, days[0], series, columns, HOLD_VALUES, writer.on_written)
    else:
        sink = _RowSink(p, days[0], series, params_set, writer)
    bounds = facts.day_bounds()
    offset = len(facts.days) - len(days)
    month: list[date] = []
    if writer.columnar:
        columns.background(writer.kept.read)  # while the first days' cells are computed
    clock.lap("prepare")
    for i, d in enumerate(facts.days):
        lo, hi = bounds[i], bounds[i + 1]
        day_facts = iv.DayFacts(
            pair_of[lo:hi], facts.seller[lo:hi], facts.buyer[lo:hi], facts.q[lo:hi], facts.p[lo:hi],
            facts.voided[lo:hi],
        )  # fmt: skip
        window_first = max(0, i - p.window_days + 1)
        if i < offset:
            engine.assess(i, day_facts, window_first)
            continue
        cells = engine.close(i, d, day_facts, window_first)
        clock.lap("cells")
        sink.day(cells, d)
        month.append(d)
        if i + 1 == len(facts.days) or facts.days[i + 1].month != d.month:
            sink.month_end(month)
            month = []
        clock.lap("rows")
        if progress:
            progress(i - offset + 1, len(days))
    logger.info("rebuild: %d series-days decided rule 2 in Decimal", engine.decimal_cells)
    sink.finish()
    clock.lap("bases")


class _RowSink:
    """The set-wise cells as rows through ``_Bases`` and ``_Writer`` (databases other than PostgreSQL,
    or ``COPY`` off)."""

    def __init__(self, p: m.Params, start: date, series: list[IndexSeries], params_set: int, writer: _Writer):
        self.bases = _Bases(p, start, writer)
        self.series, self.params_set = series, params_set

    def day(self, cells: iv.Cells, d: date) -> None:
        for s, row in _vector_rows(cells, d, self.series, self.params_set):
            self.bases.add(s, row)

    def month_end(self, _days) -> None:
        self.bases.check()

    def finish(self) -> None:
        self.bases.finish()


_LETTERS = {k: v.value for k, v in iv.STATUS.items()}


def _vector_rows(cells: iv.Cells, d: date, series: list[IndexSeries], params_set: int):
    """(series, the fields ``indices._value_fields`` stores) for each cell of a day; no lists of
    trades (derived when asked for: ``audit_derived``)."""
    price = cells.price_micro().tolist()
    amount = iv.div_half_up(cells.amount, 1000).tolist()
    day_amount = iv.div_half_up(cells.day_amount, 1000).tolist()
    columns = zip(
        cells.series.tolist(), cells.status.tolist(), price, cells.num.tolist(), cells.den.tolist(), cells.n.tolist(),
        cells.tonnes.tolist(), amount, day_amount, cells.min_price.tolist(), cells.max_price.tolist(),
        cells.excluded.tolist(), cells.days_carried.tolist(), cells.carried_from.tolist(), strict=True,
    )  # fmt: skip
    for (
        s,
        status,
        price_micro,
        num,
        den,
        n,
        tonnes,
        cents,
        day_cents,
        low,
        high,
        excluded,
        carried,
        since,
    ) in columns:
        one = series[s]
        level = None
        if one.base_price is not None:
            with m._ctx():
                level = ix._level((Decimal(num) / Decimal(den)).scaleb(-2), one.base_price)
        yield one, {
            "status": _LETTERS[status], "price": Decimal(price_micro).scaleb(-6), "level": level, "n": n,
            "tonnes": Decimal(tonnes).scaleb(-3), "amount": Decimal(cents).scaleb(-2),
            "day_amount": Decimal(day_cents).scaleb(-2),
            "min_price": Decimal(low).scaleb(-2) if low >= 0 else None,
            "max_price": Decimal(high).scaleb(-2) if high >= 0 else None,
            "excluded": excluded, "days_carried": carried,
            "carried_from": date.fromordinal(since) if since else None,
            "used": [], "unused": {}, "review": [], "audit_derived": True, "params": {}, "params_set_id": params_set,
            "methodology_version": m.METHODOLOGY_VERSION, "contributions": {}, "corrected_at": None,
            "series_id": one.pk, "day": d,
        }  # fmt: skip


class _Stored:
    """A component's stored value of a day, as ``indices._composite_fields`` reads it."""

    __slots__ = ("price", "status", "n", "tonnes", "amount", "day_amount")

    def __init__(self, price, status, n, tonnes, amount, day_amount):
        self.price, self.status, self.n = price, status, n
        self.tonnes, self.amount, self.day_amount = tonnes, amount, day_amount


def _composites(days: list[date], p: m.Params, writer: _Writer) -> None:
    """Every composite's value of every day, from its components' stored values read in one query;
    held back values are written before a chain year is made, which reads the composite's own."""
    writer.phase = "composites"
    cache = ix._composites_cache(None)
    members = {s.pk: s.code for group in cache["members"].values() for s in group.values()}
    stored: dict[date, dict[str, _Stored]] = defaultdict(dict)
    rows = IndexValue.objects.filter(series_id__in=members, day__gte=days[0], day__lte=days[-1]).values_list(
        "series_id", "day", "price", "status", "n", "tonnes", "amount", "day_amount"
    )
    for series_id, d, *fields in rows.iterator(chunk_size=FETCH_ROWS):
        stored[d][members[series_id]] = _Stored(*fields)
    for d in days:
        day_values = stored.get(d, {})
        for composite, comps in ix._composites_of_day(d, p, cache, before_chain=writer.flush):
            values = {
                c.component.code: day_values[c.component.code]
                for c in comps
                if c.component.code in day_values
            }
            if not values:
                continue
            row = ix._composite_fields(comps, values, p)
            row.update(series_id=composite.pk, day=d, **_COMPOSITE_DEFAULTS)
            writer.add(row)
    writer.flush()


def rebuild(start: date, end: date, *, progress=None, timings: dict | None = None) -> int:
    """``indices.indices_rebuild``: see the module's docstring."""
    clock = _Clock(timings)
    p = ix.params()
    days = m.business_days(start, end, p.holidays)
    # The set-wise cells on PostgreSQL keep the elementary values' first publications in ``Kept``.
    columnar = ENGINE == "vector" and COPY and connection.vendor == "postgresql"
    firsts = IndexValue.objects.filter(day__gte=start, day__lte=end, first_price__isnull=False)
    if columnar:
        firsts = firsts.filter(series__kind=SeriesKind.COMPOSITE)
    first = {
        (s, d): (price, level, status)
        for s, d, price, level, status in firsts.values_list(
            "series_id", "day", "first_price", "first_level", "first_status"
        )
    }
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Scans and inserts of millions of rows, each compiled afresh: compiling cost more than
                # it saved (0.4 s on the facts' COPY alone). Off until the outermost transaction ends.
                cursor.execute("SET LOCAL jit = off")
            index_swap.lock()
        fresh = kept = None
        if columnar:
            stored = IndexValue.objects.filter(day__gte=start, day__lte=end).exists()
            if days and stored and not IndexValue.objects.exclude(day__gte=start, day__lte=end).exists():
                fresh = index_swap.Fresh()  # every stored value is replaced: into a fresh table
            kept = index_columns.Kept(start, end, fresh.old if fresh else None)
        if kept and not fresh:
            kept.read()  # before the values are deleted (the old table is kept while a fresh one is written)
        if fresh:
            _notices_delete(start, end)
            fresh.begin()
        else:
            _values_delete(start, end)
        CompositeComponent.objects.filter(year__gte=start.year).delete()
        if not IndexValue.objects.filter(day__lt=start).exists():
            IndexSeries.objects.update(base_start=None, base_end=None, base_price=None)
        clock.lap("prepare")
        if days:
            writer = _Writer(first, timezone.now(), clock)
            writer.columnar, writer.kept = columnar, kept
            if fresh:
                # Before any value is updated: a table with updated rows is given indexes that this
                # transaction cannot use (``pg_index.indcheckxmin``); the composites look values up.
                writer.on_written = lambda: (fresh.index(), clock.lap("indexes"))
            _elementary(days, p, writer, progress, clock)
            if fresh:
                fresh.index()  # where the cells were not set-wise (else done already)
            _composites(days, p, writer)
            clock.lap("composites")
        if columnar:
            index_columns.drop()
        if fresh:
            fresh.end()
            clock.lap("swap")
    return len(days)
