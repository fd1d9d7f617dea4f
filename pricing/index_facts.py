"""The trade facts of a span of history as arrays of integers, for the set-wise rebuild
(``pricing.index_vector``).

On PostgreSQL the facts come through one ``COPY ... TO STDOUT (FORMAT BINARY)`` of fixed-width
integer columns, which numpy reads as a record array without a Python object per value: times as
PostgreSQL's own microseconds since 2000-01-01 UTC, quantity in thousandths of a tonne and price in
cents (the columns' scales, exact), category, county and organisations as indices into tables
passed with the query. Elsewhere (the embedded SQLite demo) the same arrays are built from rows.

A fact's counting day (``methodology.counting_day``: the later of the business days of its award
and of its settlement) is found for all facts at once: the business day of a moment is the first
business day whose cut-off is after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.db import connection

from pricing import indices as ix
from pricing import methodology as m
from pricing.models import TradeFact

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""PostgreSQL's epoch for binary timestamps."""
COPY = True
"""Read with a binary ``COPY`` on PostgreSQL (rows elsewhere, or everywhere when False)."""

_SQL = """
COPY (
    SELECT f.awarded_at, f.settled_at, c.k, r.k, s.k, b.k,
           (f.quantity_t * 1000)::int8, (f.unit_price * 100)::int8, f.voided_at IS NOT NULL
    FROM pricing_tradefact f
    JOIN index_facts_categories c ON c.code = f.category_id
    JOIN index_facts_regions r ON r.code = f.region_id
    JOIN index_facts_orgs s ON s.code = f.seller_uscc
    JOIN index_facts_orgs b ON b.code = f.buyer_uscc
    WHERE f.settled_at >= %(lo)s AND f.settled_at < %(hi)s
) TO STDOUT (FORMAT BINARY)
"""
# Dictionaries of the codes, numbered from 1, as temporary tables with statistics, so that the
# planner hashes them (not the facts) for the joins. The organisations are grouped on each side
# first: a hash of a few thousand codes, where a UNION of every fact's two codes sorted ten million
# strings (13 s of 34 at 5,000,000 trades).
_DICTIONARIES = """
DROP TABLE IF EXISTS index_facts_categories, index_facts_regions, index_facts_orgs;
CREATE TEMPORARY TABLE index_facts_categories AS
    SELECT code, k::int4 FROM unnest(%(categories)s::text[]) WITH ORDINALITY AS c(code, k);
CREATE TEMPORARY TABLE index_facts_regions AS
    SELECT code, k::int4 FROM unnest(%(regions)s::text[]) WITH ORDINALITY AS r(code, k);
CREATE TEMPORARY TABLE index_facts_orgs AS
    SELECT code, (row_number() OVER (ORDER BY code))::int4 AS k FROM (
        SELECT seller_uscc AS code FROM pricing_tradefact WHERE settled_at >= %(lo)s AND settled_at < %(hi)s
        GROUP BY 1
        UNION
        SELECT buyer_uscc FROM pricing_tradefact WHERE settled_at >= %(lo)s AND settled_at < %(hi)s
        GROUP BY 1
    ) u;
ANALYZE index_facts_categories, index_facts_regions, index_facts_orgs;
"""
_ROW = np.dtype([
    ("fields", ">i2"),
    ("l_awarded", ">i4"), ("awarded", ">i8"), ("l_settled", ">i4"), ("settled", ">i8"),
    ("l_category", ">i4"), ("category", ">i4"), ("l_county", ">i4"), ("county", ">i4"),
    ("l_seller", ">i4"), ("seller", ">i4"), ("l_buyer", ">i4"), ("buyer", ">i4"),
    ("l_q", ">i4"), ("q", ">i8"), ("l_p", ">i4"), ("p", ">i8"), ("l_voided", ">i4"), ("voided", "u1"),
])  # fmt: skip
_HEADER = 19  # signature (11), flags (4), header extension length (4)


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


def _copy(lo: datetime, hi: datetime) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    categories, regions = _codes()
    with connection.cursor() as cursor:
        for statement in filter(str.strip, _DICTIONARIES.split(";")):
            cursor.execute(statement, {"categories": categories, "regions": regions, "lo": lo, "hi": hi})
        chunks = []
        with cursor.cursor.copy(_SQL, {"lo": lo, "hi": hi}) as copy:
            for data in copy:
                chunks.append(bytes(data))
        cursor.execute("SELECT code FROM index_facts_orgs ORDER BY k")
        orgs = [row[0] for row in cursor.fetchall()]
        cursor.execute("DROP TABLE index_facts_categories, index_facts_regions, index_facts_orgs")
    buffer = b"".join(chunks)
    count = (len(buffer) - _HEADER - 2) // _ROW.itemsize
    if count < 0 or len(buffer) != _HEADER + 2 + count * _ROW.itemsize:
        raise ValueError("unexpected COPY layout")
    rows = np.frombuffer(buffer, _ROW, count=count, offset=_HEADER)
    # ``WITH ORDINALITY`` counts from 1.
    return rows, categories, regions, orgs


def _rows(lo: datetime, hi: datetime) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    categories, regions = _codes()
    category_of = {c: i + 1 for i, c in enumerate(categories)}
    region_of = {c: i + 1 for i, c in enumerate(regions)}
    facts = list(
        TradeFact.objects.filter(settled_at__gte=lo, settled_at__lt=hi).order_by().values_list(
            "awarded_at", "settled_at", "category_id", "region_id", "seller_uscc", "buyer_uscc",
            "quantity_t", "unit_price", "voided_at",
        )
    )  # fmt: skip
    orgs = sorted({f[4] for f in facts} | {f[5] for f in facts})
    org_of = {c: i + 1 for i, c in enumerate(orgs)}
    rows = np.zeros(len(facts), _ROW)
    for i, (awarded, settled, category, county, seller, buyer, q, price, voided) in enumerate(facts):
        rows[i] = (
            9, 8, _micros(awarded), 8, _micros(settled), 4, category_of[category], 4, region_of[county],
            4, org_of[seller], 4, org_of[buyer], 8, int(q * 1000), 8, int(price * 100), 1, voided is not None,
        )  # fmt: skip
    return rows, categories, regions, orgs


def facts_of(first: date, last: date, p: m.Params) -> FactArrays:
    """The facts counting on business days in [first, last] (those ``indices._facts_between`` reads),
    as arrays sorted by counting day."""
    lo, hi = ix._settled_bounds(first, last, p)
    read = _copy if COPY and connection.vendor == "postgresql" else _rows
    rows, categories, regions, orgs = read(lo, hi)
    days, cutoffs = _cutoffs(first - timedelta(days=15), last, p)
    awarded = np.searchsorted(cutoffs, rows["awarded"].astype(np.int64), side="right")
    settled = np.searchsorted(cutoffs, rows["settled"].astype(np.int64), side="right")
    counting = np.maximum(awarded, settled)
    start, end = days.index(first), days.index(last)
    inside = (counting >= start) & (counting <= end)
    rows, counting = rows[inside], counting[inside] - start
    order = np.argsort(counting, kind="stable")
    rows, counting = rows[order], counting[order]
    return FactArrays(
        days=days[start : end + 1],
        day=counting,
        category=rows["category"].astype(np.int32) - 1,
        county=rows["county"].astype(np.int32) - 1,
        seller=rows["seller"].astype(np.int32) - 1,
        buyer=rows["buyer"].astype(np.int32) - 1,
        q=rows["q"].astype(np.int64),
        p=rows["p"].astype(np.int64),
        voided=rows["voided"].astype(bool),
        categories=categories,
        counties=regions,
        orgs=orgs,
    )
