"""The trade facts of a span of history as arrays of integers, for the set-wise rebuild
(``pricing.index_vector``).

On PostgreSQL the facts come through one ``COPY ... TO STDOUT (FORMAT BINARY)`` of fixed-width
integer columns, which numpy reads as a record array without a Python object per value: times as
PostgreSQL's own microseconds since 2000-01-01 UTC, quantity in thousandths of a tonne and price in
cents (the columns' scales, exact), category, county and organisations as 64-bit hashes of their
codes (``hashtextextended``), which numpy turns into indices into dictionaries of the codes read
first with their hashes. Joining the facts to the dictionaries in PostgreSQL instead cost 10 s of 16
at 5,000,000 trades; hashing costs PostgreSQL 1.5 s and the lookups numpy 2 s. The hashes are exact: a dictionary in which two codes
share a hash is never used that way, the joins are (``_joined``). Elsewhere (the embedded SQLite
demo) the same arrays are built from rows.

A fact's counting day (``methodology.counting_day``: the later of the business days of its award
and of its settlement) is found for all facts at once: the business day of a moment is the first
business day whose cut-off is after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.db import connection

from pricing import indices as ix
from pricing import methodology as m
from pricing.models import TradeFact

logger = logging.getLogger(__name__)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""PostgreSQL's epoch for binary timestamps."""
COPY = True
"""Read with a binary ``COPY`` on PostgreSQL (rows elsewhere, or everywhere when False)."""

_SQL = """
COPY (
    SELECT f.awarded_at, f.settled_at, {category}, {county}, {seller}, {buyer},
           (f.quantity_t * 1000)::int8, (f.unit_price * 100)::int8, f.voided_at IS NOT NULL
    FROM pricing_tradefact f {joins}
    WHERE f.settled_at >= %(lo)s AND f.settled_at < %(hi)s
) TO STDOUT (FORMAT BINARY)
"""
_HASHED = _SQL.format(
    category="hashtextextended(f.category_id, 0)", county="hashtextextended(f.region_id, 0)",
    seller="hashtextextended(f.seller_uscc, 0)", buyer="hashtextextended(f.buyer_uscc, 0)", joins="",
)  # fmt: skip
_JOINED = _SQL.format(
    category="c.k", county="r.k", seller="s.k", buyer="b.k",
    joins="""
    JOIN index_facts_categories c ON c.code = f.category_id
    JOIN index_facts_regions r ON r.code = f.region_id
    JOIN index_facts_orgs s ON s.code = f.seller_uscc
    JOIN index_facts_orgs b ON b.code = f.buyer_uscc""",
)  # fmt: skip
# Every organisation of the span once: each side grouped first, a hash of a few thousand codes, where a
# UNION of every fact's two codes sorted ten million strings (13 s of 34 at 5,000,000 trades).
_ORGS = """
SELECT code FROM (
    SELECT seller_uscc AS code FROM pricing_tradefact WHERE settled_at >= %(lo)s AND settled_at < %(hi)s
    GROUP BY 1
    UNION
    SELECT buyer_uscc FROM pricing_tradefact WHERE settled_at >= %(lo)s AND settled_at < %(hi)s
    GROUP BY 1
) u ORDER BY code
"""
_HASHES = """
SELECT code, hashtextextended(code, 0) FROM unnest(%(codes)s::text[]) WITH ORDINALITY AS c(code, k) ORDER BY k
"""
# The joins' dictionaries, numbered from 1, as temporary tables with statistics, so that the planner
# hashes them (not the facts).
_DICTIONARIES = """
DROP TABLE IF EXISTS index_facts_categories, index_facts_regions, index_facts_orgs;
CREATE TEMPORARY TABLE index_facts_categories AS
    SELECT code, k::int4 FROM unnest(%(categories)s::text[]) WITH ORDINALITY AS c(code, k);
CREATE TEMPORARY TABLE index_facts_regions AS
    SELECT code, k::int4 FROM unnest(%(regions)s::text[]) WITH ORDINALITY AS r(code, k);
CREATE TEMPORARY TABLE index_facts_orgs AS
    SELECT code, k::int4 FROM unnest(%(orgs)s::text[]) WITH ORDINALITY AS o(code, k);
ANALYZE index_facts_categories, index_facts_regions, index_facts_orgs;
"""


def _row(key: str) -> np.dtype:
    """A row of the ``COPY``: ``key`` the type of the category, county and organisation columns."""
    return np.dtype([
        ("fields", ">i2"),
        ("l_awarded", ">i4"), ("awarded", ">i8"), ("l_settled", ">i4"), ("settled", ">i8"),
        ("l_category", ">i4"), ("category", key), ("l_county", ">i4"), ("county", key),
        ("l_seller", ">i4"), ("seller", key), ("l_buyer", ">i4"), ("buyer", key),
        ("l_q", ">i4"), ("q", ">i8"), ("l_p", ">i4"), ("p", ">i8"), ("l_voided", ">i4"), ("voided", "u1"),
    ])  # fmt: skip


_HEADER = 19  # signature (11), flags (4), header extension length (4)
KEYS = ("category", "county", "seller", "buyer")


@dataclass
class FactArrays:
    """Facts counting on business days of the span, sorted by counting day (``day``: an index into
    ``days``). ``categories`` / ``counties`` / ``orgs`` name the indices."""

    days: list[date]
    day: np.ndarray
    category: np.ndarray
    county: np.ndarray
    seller: np.ndarray
    buyer: np.ndarray
    q: np.ndarray
    p: np.ndarray
    voided: np.ndarray
    categories: list[str]
    counties: list[str]
    orgs: list[str]

    def day_bounds(self) -> np.ndarray:
        """Where each day's facts begin and end: facts of ``days[i]`` are [bounds[i], bounds[i+1])."""
        return np.searchsorted(self.day, np.arange(len(self.days) + 1), side="left")


class _Unknown(Exception):
    """A fact's code is not in its dictionary (written after the dictionary was read)."""


class _Dictionary:
    """The 64-bit hashes of a dictionary's codes, in the codes' order, looked up by binary search."""

    def __init__(self, hashes: list[int]):
        hashes = np.array(hashes, np.int64)
        self.order = np.argsort(hashes, kind="stable").astype(np.int32)
        self.sorted = hashes[self.order]

    def unique(self) -> bool:
        return bool(np.all(self.sorted[1:] != self.sorted[:-1]))

    def index(self, hashes: np.ndarray) -> np.ndarray:
        """Each hash's code's index (from 0); ``_Unknown`` if one is not there."""
        if not len(self.sorted):
            if len(hashes):
                raise _Unknown
            return np.zeros(0, np.int32)
        at = np.minimum(np.searchsorted(self.sorted, hashes), len(self.sorted) - 1)
        if not np.array_equal(self.sorted[at], hashes):
            raise _Unknown
        return self.order[at]


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _cutoffs(first: date, last: date, p: m.Params) -> tuple[list[date], np.ndarray]:
    """Every business day from ``first`` to well after ``last``, and each one's cut-off in microseconds."""
    days = m.business_days(first, last + timedelta(days=40), p.holidays)
    return days, np.array([_micros(ix._cutoff(d, p)) for d in days], np.int64)


def _codes() -> tuple[list[str], list[str]]:
    from listings.models import Category
    from market.core.models import Region

    return (
        list(Category.objects.order_by("code").values_list("code", flat=True)),
        list(Region.objects.order_by("code").values_list("code", flat=True)),
    )


def copy_records(cursor, sql: str, params: dict, row: np.dtype) -> np.ndarray:
    """The rows of a binary ``COPY ... TO STDOUT`` as a record array of ``row`` (every field of fixed
    width and never NULL: the field count and each field's length are fields of ``row``)."""
    buffer = bytearray()
    with cursor.cursor.copy(sql, params) as copy:
        for data in copy:  # a message a row
            buffer += data
    count = (len(buffer) - _HEADER - 2) // row.itemsize
    if count < 0 or len(buffer) != _HEADER + 2 + count * row.itemsize:
        raise ValueError("unexpected COPY layout")
    return np.frombuffer(buffer, row, count=count, offset=_HEADER)


def _columns(rows: np.ndarray, keys: dict) -> dict[str, np.ndarray]:
    """The facts' columns: times in microseconds, ``KEYS`` as indices from 0 (``keys`` maps each to
    a function of the ``COPY``'s column)."""
    columns = {name: rows[name].astype(np.int64) for name in ("awarded", "settled", "q", "p")}
    columns["voided"] = rows["voided"].astype(bool)
    for name in KEYS:
        columns[name] = keys[name](rows[name])
    return columns


def _copy(lo: datetime, hi: datetime) -> tuple[dict, list[str], list[str], list[str]]:
    """The facts through ``COPY``, with hashed codes (or joined, where hashes are not exact)."""
    categories, regions = _codes()
    bounds = {"lo": lo, "hi": hi}
    with connection.cursor() as cursor:
        cursor.execute(_ORGS, bounds)
        orgs = [row[0] for row in cursor.fetchall()]
        dictionaries = []
        for codes in (categories, regions, orgs):
            cursor.execute(_HASHES, {"codes": codes})
            dictionaries.append(_Dictionary([h for _code, h in cursor.fetchall()]))
        if all(d.unique() for d in dictionaries):  # else two codes share a hash: the joins are exact
            rows = copy_records(cursor, _HASHED, bounds, _row(">i8"))
            category, county, org = dictionaries
            keys = {
                "category": category.index,
                "county": county.index,
                "seller": org.index,
                "buyer": org.index,
            }
            try:
                return _columns(rows, keys), categories, regions, orgs
            except _Unknown:  # the joins leave that organisation's trades out
                logger.info("rebuild: an organisation's first trade was written while the facts were read")
        return _joined(cursor, bounds, categories, regions, orgs), categories, regions, orgs


def _joined(cursor, bounds: dict, categories: list[str], regions: list[str], orgs: list[str]) -> dict:
    """The facts through ``COPY`` joined to the dictionaries in PostgreSQL (``WITH ORDINALITY``
    counts from 1): a fact whose organisation is not in ``orgs`` is left out."""
    codes = {"categories": categories, "regions": regions, "orgs": orgs}
    for statement in filter(str.strip, _DICTIONARIES.split(";")):
        cursor.execute(statement, codes)
    rows = copy_records(cursor, _JOINED, bounds, _row(">i4"))
    cursor.execute("DROP TABLE index_facts_categories, index_facts_regions, index_facts_orgs")
    return _columns(rows, dict.fromkeys(KEYS, lambda k: k.astype(np.int32) - 1))


def _rows(lo: datetime, hi: datetime) -> tuple[dict, list[str], list[str], list[str]]:
    categories, regions = _codes()
    category_of = {c: i for i, c in enumerate(categories)}
    region_of = {c: i for i, c in enumerate(regions)}
    facts = list(
        TradeFact.objects.filter(settled_at__gte=lo, settled_at__lt=hi).order_by().values_list(
            "awarded_at", "settled_at", "category_id", "region_id", "seller_uscc", "buyer_uscc",
            "quantity_t", "unit_price", "voided_at",
        )
    )  # fmt: skip
    orgs = sorted({f[4] for f in facts} | {f[5] for f in facts})
    org_of = {c: i for i, c in enumerate(orgs)}
    columns = {
        "awarded": [_micros(f[0]) for f in facts], "settled": [_micros(f[1]) for f in facts],
        "category": [category_of[f[2]] for f in facts], "county": [region_of[f[3]] for f in facts],
        "seller": [org_of[f[4]] for f in facts], "buyer": [org_of[f[5]] for f in facts],
        "q": [int(f[6] * 1000) for f in facts], "p": [int(f[7] * 100) for f in facts],
    }  # fmt: skip
    arrays = {k: np.array(v, np.int32 if k in KEYS else np.int64) for k, v in columns.items()}
    arrays["voided"] = np.array([f[8] is not None for f in facts], bool)
    return arrays, categories, regions, orgs


def facts_of(first: date, last: date, p: m.Params) -> FactArrays:
    """The facts counting on business days in [first, last] (those ``indices._facts_between`` reads),
    as arrays sorted by counting day."""
    lo, hi = ix._settled_bounds(first, last, p)
    read = _copy if COPY and connection.vendor == "postgresql" else _rows
    columns, categories, regions, orgs = read(lo, hi)
    days, cutoffs = _cutoffs(first - timedelta(days=15), last, p)
    awarded = np.searchsorted(cutoffs, columns["awarded"], side="right")
    settled = np.searchsorted(cutoffs, columns["settled"], side="right")
    counting = np.maximum(awarded, settled)
    start, end = days.index(first), days.index(last)
    inside = np.flatnonzero((counting >= start) & (counting <= end))
    take = inside[np.argsort(counting[inside], kind="stable")]
    return FactArrays(
        days=days[start : end + 1],
        day=counting[take] - start,
        category=columns["category"][take],
        county=columns["county"][take],
        seller=columns["seller"][take],
        buyer=columns["buyer"][take],
        q=columns["q"][take],
        p=columns["p"][take],
        voided=columns["voided"][take],
        categories=categories,
        counties=regions,
        orgs=orgs,
    )
