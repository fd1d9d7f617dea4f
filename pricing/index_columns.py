"""The set-wise rebuild's elementary values written to PostgreSQL without a Python object per value.

Each day's cells (``index_vector.Cells``, arrays) are kept by month. At the end of a month the bases
are decided for the series that have none (``methodology.base_period`` decides a month on its own
days: a series needs a cell on every business day of the month and a T in each of its business
weeks; the few series that pass are confirmed and priced by ``indices._base_of``, the code the row by
row rebuild runs), levels are computed where the series has a base (I = 1000 * P / P(B) rounded half
up, on integers), and the values are written: one binary ``COPY`` of integer columns into a
temporary table, then one ``INSERT ... SELECT`` that turns them into the value's columns (prices in
millionths to ``numeric(20, 6)``, cents to ``numeric(.., 2)``, the status letter, empty audit lists:
``audit_derived``, the parameters by reference: ``params_set``), with the as-first-published columns
of the values replaced (``Kept``: read into arrays before they are deleted, or while the cells are
computed when a fresh table is written, and looked up by each batch).

Values of series without a base yet are held, as ``index_rebuild._Bases`` holds rows, and written
when the base is found; beyond ``index_rebuild.HOLD_VALUES`` the series holding most are written without
a level, set in SQL from the stored prices by one ``UPDATE`` at the end for those whose base was
found. Series with values before the span and no base are decided at the end on all their values,
as before.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date
from decimal import Decimal

import numpy as np
from django.db import connection

from pricing import index_vector as iv
from pricing import indices as ix
from pricing import methodology as m
from pricing.index_models import IndexSeries, IndexValue, SeriesKind

EPOCH_ORDINAL = date(2000, 1, 1).toordinal()
"""PostgreSQL's binary dates count days from 2000-01-01."""
NONE_DAY = -(2**31)

FIRST_TABLE = "index_rebuild_first"
_PRICE_LIMIT = 9 * 10**12
"""First prices below this (yuan per tonne) fit 64-bit integers of millionths."""
STAGE_TABLE = "index_rebuild_stage"
_COLUMNS = (
    ("series", ">i8"), ("day", ">i4"), ("status", ">i2"), ("price", ">i8"), ("level", ">i8"), ("n", ">i4"),
    ("tonnes", ">i8"), ("amount", ">i8"), ("day_amount", ">i8"), ("min_price", ">i8"), ("max_price", ">i8"),
    ("excluded", ">i4"), ("days_carried", ">i4"), ("carried_from", ">i4"), ("first_price", ">i8"),
    ("first_level", ">i8"), ("first_status", ">i2"),
)  # fmt: skip
_SQL_TYPES = {">i8": "int8", ">i4": "int4", ">i2": "int2"}
_ROW = np.dtype(
    [("fields", ">i2")] + [f for name, kind in _COLUMNS for f in ((f"l_{name}", ">i4"), (name, kind))]
)
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"

_LETTERS = "ARRAY['T', 'E', 'C', 'S']"
_FIRST_STAGED = (
    "s.first_price * 0.000001",
    "CASE WHEN s.first_level < 0 THEN NULL ELSE s.first_level * 0.01 END",
    f"({_LETTERS})[s.first_status]",
)


def _insert_sql(joined: bool) -> str:
    """``INSERT ... SELECT`` from the stage table. The as-first-published columns are the stage's
    (``Kept`` filled them in); ``joined``: those kept in ``FIRST_TABLE`` instead, where it has them."""
    first = _FIRST_STAGED
    if joined:
        first = tuple(
            f"CASE WHEN f.series_id IS NULL THEN {staged} ELSE f.{column} END"
            for staged, column in zip(first, ("first_price", "first_level", "first_status"), strict=True)
        )
    join = (
        f"LEFT JOIN {FIRST_TABLE} f ON f.series_id = s.series AND f.day = DATE '2000-01-01' + s.day"
        if joined
        else ""
    )
    return f"""
INSERT INTO pricing_indexvalue (
    series_id, day, status, price, level, n, tonnes, amount, day_amount, min_price, max_price, excluded,
    days_carried, carried_from, used, unused, review, audit_derived, contributions, params, params_set_id,
    methodology_version, first_price, first_level, first_status, published_at, corrected_at
)
SELECT s.series, DATE '2000-01-01' + s.day, ({_LETTERS})[s.status], s.price * 0.000001,
       CASE WHEN s.level < 0 THEN NULL ELSE s.level * 0.01 END, s.n, s.tonnes * 0.001, s.amount * 0.01,
       s.day_amount * 0.01, CASE WHEN s.min_price < 0 THEN NULL ELSE s.min_price * 0.01 END,
       CASE WHEN s.max_price < 0 THEN NULL ELSE s.max_price * 0.01 END, s.excluded, s.days_carried,
       CASE WHEN s.carried_from = {NONE_DAY} THEN NULL ELSE DATE '2000-01-01' + s.carried_from END,
       '[]', '{{}}', '[]', TRUE, '{{}}', '{{}}', %(params_set)s, %(version)s, {", ".join(first)}, %(now)s, NULL
FROM {STAGE_TABLE} s {join}
"""  # noqa: S608 (constants)


_KEPT_SQL = """
SELECT string_agg(
    int8send((series_id::int8 << 32) | ((day - DATE '2000-01-01') & 4294967295))
    || int8send(CASE WHEN first_price >= 0 AND first_price < %(limit)s AND series_id < 2147483648
                     THEN (first_price * 1000000)::int8 ELSE -2 END)
    || int8send(CASE WHEN first_level IS NULL THEN -1 WHEN first_level >= 0 THEN (first_level * 100)::int8
                     ELSE -2 END)
    || int2send(COALESCE(array_position(ARRAY['T', 'E', 'C', 'S'], first_status::text), -2)::int2),
    ''::bytea
)
FROM {table} WHERE day >= %(start)s AND day <= %(end)s AND first_price IS NOT NULL
GROUP BY series_id %% 64
"""  # one record of 26 bytes a value; in 64 groups, each far below a bytea's 1 GB
_KEPT_ROW = np.dtype([("key", ">i8"), ("price", ">i8"), ("level", ">i8"), ("status", ">i2")])
_KEY_ROW = np.dtype(
    [("fields", ">i2"), ("l_series", ">i4"), ("series", ">i8"), ("l_day", ">i4"), ("day", ">i4")]
)


def _keys(series: np.ndarray, day: np.ndarray) -> np.ndarray:
    """(series id, day since 2000-01-01) as one 64-bit key (as ``_KEPT_SQL`` makes it)."""
    return (series.astype(np.int64) << 32) | (day.astype(np.int64) & 0xFFFFFFFF)


def _days(keys: np.ndarray) -> np.ndarray:
    """The days since 2000-01-01 of ``_keys``."""
    return (keys & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


class Kept:
    """The as-first-published columns of the values a rebuild replaces (in ``table``), as arrays
    sorted by (series, day): each batch of values looks its own up (``first``) and is written with
    them, without a join. (A temporary table of them took 4-5 s to make at 4.2 million values, and
    the writes' joins to it 15 s; reading them takes 4 s, which a rebuild into a fresh table spends
    in the writer's thread while the cells are computed: ``read`` is then called there, and the old
    table is read by its qualified name.) A first price beyond 64-bit millionths, a series id beyond
    31 bits, or anything else the arrays cannot hold, keeps them in ``FIRST_TABLE`` for the writes to
    join instead (``joined``)."""

    def __init__(self, start: date, end: date, table: str | None = None):
        self.start, self.end = start, end
        self.table = table or connection.ops.quote_name(IndexValue._meta.db_table)
        self.done = False
        self.joined = False

    def read(self, cursor=None) -> None:
        """Reads them (once), on ``cursor`` (psycopg's, for another thread) or the connection's."""
        if self.done:
            return
        if cursor is None:
            with connection.cursor() as wrapper:
                self._read(wrapper.cursor)
        else:
            self._read(cursor)

    def _read(self, cursor) -> None:
        bounds = {"start": self.start, "end": self.end}
        cursor.execute(f"DROP TABLE IF EXISTS {FIRST_TABLE}")  # a rebuild before in this transaction
        cursor.execute(_KEPT_SQL.format(table=self.table), {**bounds, "limit": _PRICE_LIMIT})
        rows = np.concatenate([np.frombuffer(data, _KEPT_ROW) for (data,) in cursor.fetchall()] or [
            np.zeros(0, _KEPT_ROW)
        ])  # fmt: skip
        self.joined = bool(
            (rows["price"] == -2).any() or (rows["level"] == -2).any() or (rows["status"] == -2).any()
        )
        if self.joined:
            rows = rows[:0]
            cursor.execute(
                f"CREATE TEMPORARY TABLE {FIRST_TABLE} ON COMMIT DROP AS "  # noqa: S608 (constants)
                f"SELECT series_id, day, first_price, first_level, first_status FROM {self.table} "
                "WHERE day >= %(start)s AND day <= %(end)s AND first_price IS NOT NULL",
                bounds,
            )
            cursor.execute(f"CREATE UNIQUE INDEX ON {FIRST_TABLE} (series_id, day)")
            cursor.execute(f"ANALYZE {FIRST_TABLE}")
        order = np.argsort(rows["key"])
        self.key = rows["key"][order].astype(np.int64)
        self.price = rows["price"][order].astype(np.int64)
        self.level = rows["level"][order].astype(np.int64)
        self.status = rows["status"][order].astype(np.int64)
        self.insert_sql = _insert_sql(self.joined)
        self.done = True

    def first(self, batch: _Batch) -> dict[str, np.ndarray]:
        """The batch's as-first-published columns: kept where the value was published before, else
        its own (stage columns ``first_price``, ``first_level``, ``first_status``)."""
        self.read()
        columns = {f"first_{name}": batch.c[name] for name in ("price", "level", "status")}
        if not len(self.key) or not len(batch):
            return columns
        key = _keys(batch.c["series"], batch.c["day"])
        at = np.minimum(np.searchsorted(self.key, key), len(self.key) - 1)
        found = (self.key[at] == key) & (batch.c["series"] < 1 << 31)  # a key holds a 31-bit series id
        for name, kept in (("price", self.price), ("level", self.level), ("status", self.status)):
            columns[f"first_{name}"] = np.where(found, kept[at], batch.c[name])
        return columns

    def as_dict(self) -> dict:
        """(series id, day) -> (first price, level, status) as ``Decimal``s and a letter, for the
        writes that take them row by row."""
        self.read()
        if self.joined:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT series_id, day, first_price, first_level, first_status FROM {FIRST_TABLE}"  # noqa: S608
                )
                return {(s, d): (price, level, status) for s, d, price, level, status in cursor.fetchall()}
        days = (_days(self.key).astype(np.int64) + EPOCH_ORDINAL).tolist()
        return {
            (series, date.fromordinal(day)): (
                Decimal(price).scaleb(-6), None if level < 0 else Decimal(level).scaleb(-2), "TECS"[status - 1]
            )
            for series, day, price, level, status in zip(
                (self.key >> 32).tolist(), days, self.price.tolist(), self.level.tolist(), self.status.tolist(),
                strict=True,
            )
        }  # fmt: skip

    def table_of(self, series_pks: list[int]) -> str:
        """A table of the (series_id, day) whose first publication is kept, of these series at least
        (``FIRST_TABLE``; in it already when ``joined``)."""
        self.read()
        if not self.joined:
            where = np.isin(self.key >> 32, np.array(series_pks, np.int64))
            rows = np.zeros(int(where.sum()), _KEY_ROW)
            rows["fields"], rows["l_series"], rows["l_day"] = 2, 8, 4
            rows["series"], rows["day"] = self.key[where] >> 32, _days(self.key[where])
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {FIRST_TABLE}")
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {FIRST_TABLE} (series_id int8, day date) ON COMMIT DROP"
                )
                with cursor.cursor.copy(f"COPY {FIRST_TABLE} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(_HEADER + rows.tobytes() + _TRAILER)
                cursor.execute(f"CREATE UNIQUE INDEX ON {FIRST_TABLE} (series_id, day)")
                cursor.execute(f"ANALYZE {FIRST_TABLE}")
        return FIRST_TABLE


def drop() -> None:
    """The temporary tables, at the end of a rebuild (whether or not its transaction ends there)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FIRST_TABLE}, {STAGE_TABLE}")


class _Batch:
    """Values as columns (the names of ``_COLUMNS``; ``num``/``den``: the unrounded price)."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.c = columns

    def __len__(self):
        return len(self.c["series"])

    @classmethod
    def of_cells(cls, cells: iv.Cells, day: date, series_pk: np.ndarray) -> _Batch:
        count = len(cells.series)
        return cls({
            "series": series_pk[cells.series], "day": np.full(count, day.toordinal() - EPOCH_ORDINAL, np.int64),
            "status": cells.status.astype(np.int64), "price": cells.price_micro(), "level": np.full(count, -1, np.int64),
            "n": cells.n, "tonnes": cells.tonnes, "amount": iv.div_half_up(cells.amount, 1000),
            "day_amount": iv.div_half_up(cells.day_amount, 1000), "min_price": cells.min_price,
            "max_price": cells.max_price, "excluded": cells.excluded, "days_carried": cells.days_carried,
            "carried_from": np.where(cells.carried_from > 0, cells.carried_from - EPOCH_ORDINAL, NONE_DAY),
            "num": cells.num, "den": cells.den, "index": cells.series.astype(np.int64),
        })  # fmt: skip

    @classmethod
    def concat(cls, batches: list[_Batch]) -> _Batch:
        if len(batches) == 1:
            return batches[0]
        return cls({k: np.concatenate([b.c[k] for b in batches]) for k in batches[0].c})

    def take(self, where: np.ndarray) -> _Batch:
        return _Batch({k: v[where] for k, v in self.c.items()})

    def history(self, i: int, statuses: dict, totals: dict) -> None:
        """Series ``i``'s statuses, and (amount, tonnes) of its T days, added to what
        ``indices._base_of`` reads (as stored: cents and thousandths of a tonne)."""
        rows = self.c["index"] == i
        columns = (
            self.c["day"][rows],
            self.c["status"][rows],
            self.c["amount"][rows],
            self.c["tonnes"][rows],
        )
        for d, s, amount, tonnes in zip(*(c.tolist() for c in columns), strict=True):
            day = date.fromordinal(d + EPOCH_ORDINAL)
            statuses[day] = iv.STATUS[s]
            if s == 1:
                totals[day] = (Decimal(amount).scaleb(-2), Decimal(tonnes).scaleb(-3))


class ColumnWriter:
    """Batches of values written by binary ``COPY`` into the stage table, then ``INSERT ... SELECT``.

    Each batch is written by a thread of its own on the rebuild's connection (the same transaction)
    while the next days are computed: PostgreSQL's work and Python's overlap on two cores. Nothing
    else uses the connection until ``wait`` has joined the thread (and raised what it raised)."""

    def __init__(self, now, params_set: int, clock, write_rows: int, kept: Kept):
        self.now, self.params_set, self.clock, self.write_rows = now, params_set, clock, write_rows
        self.kept = kept
        self.pending: list[_Batch] = []
        self.count = 0
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        columns = ", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in _COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE_TABLE}")
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGE_TABLE} ({columns}) ON COMMIT DROP")

    def add(self, batch: _Batch) -> None:
        if len(batch):
            self.pending.append(batch)
            self.count += len(batch)
        if self.count >= self.write_rows:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.clock.lap("rows")
        batch = _Batch.concat(self.pending)
        self.pending, self.count = [], 0
        # In the order of the unique (series, day) index: each of its pages is touched once a batch,
        # and a series' values lie together in the table (an index page reads one series).
        order = np.lexsort((batch.c["day"], batch.c["series"]))
        rows = np.zeros(len(batch), _ROW)
        rows["fields"] = len(_COLUMNS)
        for name, kind in _COLUMNS:
            rows[f"l_{name}"] = np.dtype(kind).itemsize
        self.wait()  # the first publications may be read there
        batch.c.update(self.kept.first(batch))
        for name, _kind in _COLUMNS:
            rows[name] = batch.c[name][order]
        payload = _HEADER + rows.tobytes() + _TRAILER
        params = {"params_set": self.params_set, "version": m.METHODOLOGY_VERSION, "now": self.now}
        sql = self.kept.insert_sql

        def write(cursor) -> None:
            cursor.execute(f"TRUNCATE {STAGE_TABLE}")
            with cursor.copy(f"COPY {STAGE_TABLE} FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(payload)
            cursor.execute(sql, params)

        self.background(write)
        self.clock.lap("write")

    def background(self, job) -> None:
        """``job(cursor)`` in the writer's thread, on a cursor of the rebuild's connection, once the
        job before it is done."""
        self.wait()
        connection.ensure_connection()
        raw = connection.connection  # psycopg's connection: usable from another thread, one at a time

        def run() -> None:
            try:
                with raw.cursor() as cursor:
                    job(cursor)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, name="index-rebuild-writer", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        """The batch being written is written (its error raised here)."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
            self.clock.lap("write")
        if self.error is not None:
            error, self.error = self.error, None
            raise error


class ColumnSink:
    """Receives each day's cells; decides bases at month ends; writes through a ``ColumnWriter``."""

    def __init__(
        self, p: m.Params, start: date, series: list[IndexSeries], writer: ColumnWriter, hold_rows: int,
        on_written=None,
    ):  # fmt: skip
        self.p, self.start, self.series, self.writer, self.hold_rows = p, start, series, writer, hold_rows
        self.on_written = on_written  # called once every value is inserted, before any is updated
        self.pk = np.array([s.pk for s in series], np.int64)
        self.index_of_pk = {s.pk: i for i, s in enumerate(series)}
        count = len(series)
        self.base_micro = np.full(count, -1, np.int64)  # bases found in this run, in millionths
        self.before_base = np.array([s.base_price is not None for s in series], bool)  # bases from before
        self.found: dict[int, tuple[date, date, Decimal]] = {}
        self.month: list[_Batch] = []
        self.held: list[_Batch] = []
        self.holding = 0
        self.spilled: set[int] = set()
        self.late: set[int] = set()  # spilled series that found a base: levels set at the end
        # Series with values before the span and no base: decided at the end on all their values.
        self.earlier_statuses: dict[int, dict] = defaultdict(dict)
        self.earlier_totals: dict[int, dict] = defaultdict(dict)
        earlier = IndexValue.objects.filter(
            day__lt=start, series__kind=SeriesKind.ELEMENTARY, series__base_price__isnull=True
        ).values_list("series_id", "day", "status", "amount", "tonnes")
        for series_id, d, status, amount, tonnes in earlier.iterator(chunk_size=10000):
            i = self.index_of_pk[series_id]
            self.earlier_statuses[i][d] = m.Status(status)
            if status == m.Status.TRANSACTION.value:
                self.earlier_totals[i][d] = (amount, tonnes)
        self.before = np.zeros(count, bool)
        self.before[list(self.earlier_statuses)] = True

    def day(self, cells: iv.Cells, day: date) -> None:
        self.month.append(_Batch.of_cells(cells, day, self.pk))

    def month_end(self, days: list[date]) -> None:
        """The month whose business days (in the span) are ``days`` is computed: bases, levels, writes."""
        if not self.month:
            return
        batch = _Batch.concat(self.month)
        self.month = []
        index = batch.c["index"]
        self._levels_before(batch)
        # Series without a base: does this month give them one?
        open_ = (self.base_micro[index] < 0) & ~self.before_base[index] & ~self.before[index]
        self._found(self._month_bases(batch.take(open_), days))
        known = self.base_micro[index] >= 0
        batch.c["level"] = np.where(
            known, iv.div_half_up(batch.c["price"], np.where(known, self.base_micro[index], 1), 100_000),
            batch.c["level"],
        )  # fmt: skip
        waiting = (self.base_micro[index] < 0) & ~self.before_base[index]
        spilled = np.isin(index, list(self.spilled)) if self.spilled else np.zeros(len(batch), bool)
        self.writer.add(batch.take(~waiting | spilled))
        held = batch.take(waiting & ~spilled)
        if len(held):
            self.held.append(held)
            self.holding += len(held)
            if self.holding > self.hold_rows:
                self._spill()

    def _levels_before(self, batch: _Batch) -> None:
        """Series whose base is from before the span: the level from the unrounded price, as the
        daily close computes it (``indices._level``)."""
        index = batch.c["index"]
        for j in np.flatnonzero(self.before_base[index]).tolist():
            base = self.series[int(index[j])].base_price
            with m._ctx():
                price = (Decimal(int(batch.c["num"][j])) / Decimal(int(batch.c["den"][j]))).scaleb(-2)
            batch.c["level"][j] = int(ix._level(price, base).scaleb(2))

    def _month_bases(self, batch: _Batch, days: list[date]) -> list[int]:
        """Series of ``batch`` (one month) that get their base in it."""
        if not len(batch) or not days:
            return []
        first_of_month = date(days[-1].year, days[-1].month, 1)
        month_days = m.business_days(first_of_month, m._month_end(first_of_month), self.p.holidays)
        index, day = batch.c["index"], batch.c["day"]
        cells = np.bincount(index, minlength=len(self.series))
        full = cells == len(month_days)
        if not full.any():
            return []
        # Each business day's week of the month (0, 1, ...), looked up by day.
        first = month_days[0].toordinal() - EPOCH_ORDINAL
        weeks = sorted({d.isocalendar()[:2] for d in month_days})
        week_of_day = np.full(month_days[-1].toordinal() - EPOCH_ORDINAL - first + 1, -1, np.int64)
        for d in month_days:
            week_of_day[d.toordinal() - EPOCH_ORDINAL - first] = weeks.index(d.isocalendar()[:2])
        inside = (day >= first) & (day < first + len(week_of_day))
        week = np.where(inside, week_of_day[np.clip(day - first, 0, len(week_of_day) - 1)], -1)
        t = (batch.c["status"] == 1) & full[index] & (week >= 0)
        pairs = np.unique(index[t] * 64 + week[t])
        counts = np.bincount(pairs // 64, minlength=len(self.series))
        candidates = np.flatnonzero(counts == len(weeks)).tolist()
        found = []
        for i in candidates:
            statuses, totals = {}, {}
            batch.history(i, statuses, totals)
            base = ix._base_of(statuses, totals, self.p)
            if base is not None:
                self.found[i] = base
                found.append(i)
        return found

    def _found(self, found: list[int]) -> None:
        """Series ``found`` have their bases: their held values are written with levels (one pass over
        what is held); the levels of values already written without one (spilled) are set in SQL at
        the end (``_spilled_levels``), not here, so that the writes go on in the background."""
        if not found:
            return
        for i in found:
            self.base_micro[i] = int(self.found[i][2].scaleb(6))
        self.late.update(i for i in found if i in self.spilled)
        if not self.held:
            return
        held = _Batch.concat(self.held)
        mine = np.isin(held.c["index"], found)
        if not mine.any():
            return
        part = held.take(mine)
        part.c["level"] = iv.div_half_up(part.c["price"], self.base_micro[part.c["index"]], 100_000)
        self.writer.add(part)
        self.held = [held.take(~mine)] if len(part) < len(held) else []
        self.holding -= len(part)

    def _spill(self) -> None:
        batch = _Batch.concat(self.held)
        series, counts = np.unique(batch.c["index"], return_counts=True)
        out = []
        total = self.holding
        for k in np.argsort(-counts, kind="stable").tolist():
            out.append(int(series[k]))
            total -= int(counts[k])
            if total <= self.hold_rows // 2:
                break
        leaving = np.isin(batch.c["index"], out)
        self.writer.add(batch.take(leaving))
        self.held = [batch.take(~leaving)]
        self.holding = total
        self.spilled.update(out)

    def _spilled_levels(self) -> None:
        """Levels of the spilled series that found a base (``late``), for their values written without
        one, from the stored prices (as ``index_rebuild._Bases`` sets them), their first publication's
        too unless kept from before: one ``UPDATE``, called once every value is written."""
        if not self.late:
            return
        late = sorted(self.late)
        kept = self.writer.kept.table_of([int(self.pk[i]) for i in late])
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE pricing_indexvalue v SET level = ROUND(v.price * 1000 / b.base, 2),
                    first_level = CASE WHEN EXISTS (SELECT 1 FROM {kept} f
                                                    WHERE f.series_id = v.series_id AND f.day = v.day)
                                       THEN v.first_level ELSE ROUND(v.price * 1000 / b.base, 2) END
                    FROM unnest(%(series)s::int8[], %(bases)s::numeric[]) AS b(series, base)
                    WHERE v.series_id = b.series AND v.day >= %(start)s AND v.level IS NULL""",  # noqa: S608
                {"series": [int(self.pk[i]) for i in late], "bases": [self.found[i][2] for i in late],
                 "start": self.start},
            )  # fmt: skip
        self.late.clear()

    def finish(self) -> None:
        """Series with values before the span: decided on all their values; the rest written (no level
        where no base); the bases found stored."""
        self.writer.wait()
        held = _Batch.concat(self.held) if self.held else None
        if held is not None:
            for i in np.unique(held.c["index"][self.before[held.c["index"]]]).tolist():
                statuses, totals = dict(self.earlier_statuses[i]), dict(self.earlier_totals[i])
                held.history(i, statuses, totals)
                base = ix._base_of(statuses, totals, self.p)
                if base is not None:
                    self.found[i] = base
                    self.base_micro[i] = int(base[2].scaleb(6))
                    if i in self.spilled:
                        self.late.add(i)
                    ix._levels_from_base(
                        IndexValue.objects.filter(series_id=int(self.pk[i]), day__lt=self.start), base[2]
                    )
            index = held.c["index"]
            known = self.base_micro[index] >= 0
            held.c["level"] = np.where(
                known,
                iv.div_half_up(held.c["price"], np.where(known, self.base_micro[index], 1), 100_000),
                -1,
            )
            self.writer.add(held)
            self.held, self.holding = [], 0
        self.writer.flush()
        self.writer.wait()
        if self.on_written:
            self.on_written()
        self._spilled_levels()
        found = [self.series[i] for i in self.found]
        for s in found:
            s.base_start, s.base_end, s.base_price = self.found[self.index_of_pk[s.pk]]
        ix.bases_store(found)
