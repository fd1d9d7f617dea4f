"""The set-based rebuild of history (``indices_rebuild``, ``pricing.index_rebuild``) against the daily
close, on random facts: the rebuild stores for every elementary series what closing the same days one
by one stores; rebuilding again, from the middle of history, with small read chunks and write batches,
or through ``executemany`` (the embedded SQLite demo's path) stores the same again; as-first-published
values and bases behave as documented."""

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from pricing import index_facts, index_rebuild, indices
from pricing.index_models import CompositeComponent, IndexCorrection, IndexSeries, IndexValue, SeriesKind
from pricing.models import TradeFact

SH = ZoneInfo("Asia/Shanghai")
START, END = date(2025, 11, 3), date(2026, 2, 27)  # crosses a year: two chain periods of the composites
CATEGORIES = {
    "ferrous.heavy": 2400,
    "ferrous.medium": 2200,
    "nonferrous.copper.bright": 52000,
    "paper.occ": 1500,
}
COUNTIES = ["130203", "320506", "440103"]  # 河北 (京津冀), 江苏 (长三角), 广东 (大湾区, 珠三角)
SKIP = {"id", "series_id", "published_at", "corrected_at"}
FIELDS = [f.attname for f in IndexValue._meta.concrete_fields if f.attname not in SKIP]


def facts_make(seed: int, start: date = START, end: date = END, per_day: int = 24) -> int:
    """Random settled trades: busy, thin and empty days, a few parties or many, trades awarded after
    the cut-off or settled days later, outliers, voided trades and trades between one organisation."""
    rng = random.Random(seed)
    rows = []
    d = start
    while d <= end:
        k = (
            rng.choice([0, 2, per_day // 2, per_day, per_day, 2 * per_day])
            if d.weekday() < 5
            else rng.choice([0, 2])
        )
        for _ in range(k):
            category = rng.choice(list(CATEGORIES))
            awarded = datetime.combine(
                d, time(rng.randrange(7, 20), rng.choice([0, 15, 29, 30, 45])), tzinfo=SH
            )
            settled = awarded + timedelta(hours=rng.choice([0, 1, 3, 30, 80]))
            price = CATEGORIES[category] * (1 + (d - start).days / 800) * rng.uniform(0.93, 1.07)
            if rng.random() < 0.04:
                price *= rng.choice([0.4, 2.2])
            price = Decimal(str(round(price, 2)))
            q = Decimal(rng.randrange(500, 400000)) / 1000
            sellers, buyers = rng.choice([2, 10, 20]), rng.choice([2, 10, 20])
            seller = f"S{rng.randrange(sellers):017d}"
            buyer = seller if rng.random() < 0.02 else f"B{rng.randrange(buyers):017d}"
            rows.append(
                TradeFact(
                    trade_id=f"r{seed}:{len(rows)}", source="import", awarded_at=awarded, settled_at=settled,
                    category_id=category, region_id=rng.choice(COUNTIES[: rng.choice([1, 3])]),
                    seller_uscc=seller, buyer_uscc=buyer, quantity_t=q, unit_price=price,
                    amount=(q * price).quantize(Decimal("0.01")),
                    voided_at=settled + timedelta(days=1) if rng.random() < 0.03 else None,
                )
            )  # fmt: skip
        d += timedelta(days=1)
    TradeFact.objects.bulk_create(rows)
    return len(rows)


def business_days(start: date, end: date):
    d = start
    while d <= end:
        if d.weekday() < 5:
            yield d
        d += timedelta(days=1)


def stored(kind: str | None = None, *, derive: bool = False) -> dict:
    """(series, day) -> every stored field but keys and times (whether published or corrected).
    ``derive``: the audit lists and parameters of a value of the set-wise rebuild as it gives them when
    asked for, in place of the empty ones it stores (as if they were stored)."""
    qs = IndexValue.objects.select_related("series")
    if kind:
        qs = qs.filter(series__kind=kind)
    out = {}
    for v in qs:
        if derive and v.audit_derived:
            v.used, v.unused, v.review = indices.value_audit_lists(v)
            v.params, v.params_set_id = indices.value_params(v), None
            v.audit_derived = False
        out[(v.series.code, v.day)] = (
            *(getattr(v, f) for f in FIELDS), v.published_at is not None, v.corrected_at is not None
        )  # fmt: skip
    return out


def bases() -> dict:
    return {s.code: (s.base_start, s.base_end, s.base_price) for s in IndexSeries.objects.all()}


def components() -> dict:
    return {
        (c.composite.code, c.component.code, c.year): (c.weight, c.link_price, c.link_value)
        for c in CompositeComponent.objects.select_related("composite", "component")
    }


def everything() -> tuple:
    return stored(), bases(), components()


def differences(a: dict, b: dict) -> list:
    names = [*FIELDS, "published", "corrected"]
    out = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a or key not in b:
            out.append((key, "only in", "first" if key in a else "second"))
        elif a[key] != b[key]:
            out.append((key, [(n, x, y) for n, x, y in zip(names, a[key], b[key], strict=True) if x != y]))
    return out


def forget() -> None:
    """No value, base or chain period stored (the series stay)."""
    IndexCorrection.objects.all().delete()
    IndexValue.objects.all().delete()
    CompositeComponent.objects.all().delete()
    IndexSeries.objects.update(base_start=None, base_end=None, base_price=None)


@pytest.mark.django_db
def test_the_rebuild_stores_what_closing_the_days_one_by_one_stores():
    end = date(2026, 1, 9)
    assert facts_make(1, START, end) > 500
    timings = {}
    assert indices.indices_rebuild(START, end, timings=timings) == len(list(business_days(START, end)))
    assert {"read", "cells", "rows", "write", "composites"} <= set(timings)
    elementary = IndexValue.objects.filter(series__kind=SeriesKind.ELEMENTARY)
    assert not elementary.filter(audit_derived=False).exists(), "computed set-wise, lists derived"
    rebuilt, rebuilt_bases = stored(SeriesKind.ELEMENTARY, derive=True), bases()
    statuses = {v[FIELDS.index("status")] for v in rebuilt.values()}
    assert statuses == {"T", "E", "C", "S"}, "the facts exercise the whole ladder"
    assert sum(1 for b in rebuilt_bases.values() if b[2]) >= 4 and len(rebuilt) > 800

    forget()
    for d in business_days(START, end):
        indices.indices_close(d)
    closed = stored(SeriesKind.ELEMENTARY)
    assert bases() == rebuilt_bases
    # Every field is equal but the level, which can differ by a cent: the close computes a value's
    # level from its unrounded price once the series has a base, the rebuild (before and now) from the
    # stored price once the bases are found. Composites are not compared: the close composes a day with
    # the members that had a base that day, the rebuild with those that have one at its end (as before).
    level = FIELDS.index("level")
    first_level = FIELDS.index("first_level")
    diffs = []
    for key in rebuilt.keys() | closed.keys():
        a, b = rebuilt.get(key), closed.get(key)
        if a is None or b is None:
            diffs.append((key, a, b))
            continue
        for i in (level, first_level):
            if a[i] != b[i] and abs(a[i] - b[i]) <= Decimal("0.01"):
                b = (*b[:i], a[i], *b[i + 1 :])
        if a != b:
            diffs.append((key, differences({key: a}, {key: b})))
    assert not diffs, diffs[:5]


@pytest.mark.django_db
def test_rebuilding_again_in_chunks_in_batches_or_without_copy_stores_the_same(monkeypatch):
    facts_make(2)
    indices.indices_rebuild(START, END)
    first = everything()
    assert first[2], "the composites have chain periods"
    assert any(k[0].startswith("composite.") for k in first[0])

    # Again over the stored values: the same, and the values' first publications are kept.
    value = IndexValue.objects.filter(series__kind=SeriesKind.ELEMENTARY, day=date(2026, 1, 7)).first()
    IndexValue.objects.filter(pk=value.pk).update(first_price=value.price + 1, first_status="C")
    IndexCorrection.objects.create(value=value, old_price=1, new_price=2, reason="x")
    # Few values held in memory: series without a base yet are written without levels, set in SQL
    # once the base is found, but where the first publication is kept.
    monkeypatch.setattr(index_rebuild, "HOLD_VALUES", 50)
    monkeypatch.setattr(index_rebuild, "HOLD_ROWS", 50)  # the same with rows (below)
    indices.indices_rebuild(START, END)
    again = everything()
    key = (value.series.code, value.day)
    i, j = FIELDS.index("first_price"), FIELDS.index("first_status")
    assert again[0][key][i] == value.price + 1 and again[0][key][j] == "C"
    assert not IndexCorrection.objects.exists()  # notices of replaced values go with them
    again[0][key] = first[0][key]
    assert differences(first[0], again[0]) == [] and again[1:] == first[1:]

    # Small read chunks (trades settled days after their award cross them), small write batches
    # (composites written before each chain year reads its link day), executemany instead of COPY.
    monkeypatch.setattr(index_rebuild, "CHUNK_DAYS", 1)
    monkeypatch.setattr(index_rebuild, "WRITE_ROWS", 97)
    monkeypatch.setattr(index_rebuild, "COPY", False)
    monkeypatch.setattr(index_facts, "COPY", False)
    forget()
    indices.indices_rebuild(START, END)
    assert differences(first[0], stored()) == [] and (bases(), components()) == first[1:]

    # Through ``indices._Cells`` (Decimal, trade by trade), which stores the audit lists: the same
    # values, composites, bases and chain periods.
    monkeypatch.setattr(index_rebuild, "ENGINE", "decimal")
    forget()
    indices.indices_rebuild(START, END)
    lists = [
        FIELDS.index(f) for f in ("used", "unused", "review", "audit_derived", "params", "params_set_id")
    ]
    decimal = stored()
    assert any(v[lists[0]] for v in decimal.values()) and all(not v[lists[0]] for v in first[0].values())

    def numbers(values):
        return {k: tuple(x for i, x in enumerate(v) if i not in lists) for k, v in values.items()}

    assert numbers(decimal) == numbers(first[0]) and (bases(), components()) == first[1:]


@pytest.mark.django_db
def test_a_rebuild_from_the_middle_of_history_continues_from_the_stored_values():
    facts_make(3)
    middle = date(2026, 1, 12)
    # The rebuild reads the facts of its own span only, so that the middle's first windows see what
    # the whole rebuild sees, no trade counts on the four business days before it.
    quiet = datetime.combine(date(2026, 1, 5), time(0), tzinfo=SH)
    TradeFact.objects.filter(settled_at__gte=quiet, settled_at__lt=quiet + timedelta(days=7)).delete()
    indices.indices_rebuild(START, END)
    whole = everything()
    # A value of the span first published otherwise: its first publication is read before the span's
    # values are deleted, and kept.
    value = (
        IndexValue.objects.filter(series__kind=SeriesKind.ELEMENTARY, day__gte=middle).order_by("day").first()
    )
    IndexValue.objects.filter(pk=value.pk).update(first_price=value.price + 2, first_status="C")
    indices.indices_rebuild(middle, END)
    again = everything()
    key = (value.series.code, value.day)
    i, j = FIELDS.index("first_price"), FIELDS.index("first_status")
    assert (again[0][key][i], again[0][key][j]) == (value.price + 2, "C")
    row = list(again[0][key])
    row[i], row[j] = whole[0][key][i], whole[0][key][j]
    again[0][key] = tuple(row)
    # The previous day's values start the ladder, bases found before are kept, the composites' chain
    # periods from the middle's year are made again. The levels of series with a base from before are
    # computed from the unrounded price, as the daily close does: they may differ by a cent.
    assert again[1] == whole[1] and again[2] == whole[2]
    level, first_level = FIELDS.index("level"), FIELDS.index("first_level")
    for key, value in again[0].items():
        other = whole[0].get(key)
        assert other is not None, key
        if key[1] >= middle and not key[0].startswith("composite."):
            for i in (level, first_level):
                if value[i] != other[i] and abs(value[i] - other[i]) <= Decimal("0.01"):
                    other = (*other[:i], value[i], *other[i + 1 :])
        assert value == other, (key, differences({key: value}, {key: other}))
    assert again[0].keys() == whole[0].keys()


@pytest.mark.django_db
def test_a_base_found_in_the_rebuild_sets_the_levels_from_the_stored_prices():
    facts_make(4, START, date(2026, 1, 9))
    indices.indices_rebuild(START, date(2026, 1, 9))
    series = IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY, base_price__isnull=False)
    assert series.exists()
    for s in series:
        values = IndexValue.objects.filter(series=s)
        assert not values.filter(level__isnull=True).exists()
        for v in values.filter(day__gte=s.base_end)[:5]:
            assert v.level == (1000 * v.price / s.base_price).quantize(Decimal("0.01"))
            assert (v.first_price, v.first_level, v.first_status) == (v.price, v.level, v.status)
            assert v.published_at is not None
    unbased = IndexValue.objects.filter(series__kind=SeriesKind.ELEMENTARY, series__base_price__isnull=True)
    assert not unbased.filter(level__isnull=False).exists()


@pytest.mark.django_db
def test_the_audit_of_a_rebuilt_value_is_the_facts_as_they_were_at_its_publication():
    from django.utils import timezone
    from rest_framework.test import APIClient

    facts_make(5, START, date(2025, 12, 12))
    indices.indices_rebuild(START, date(2025, 12, 12))
    value = (
        IndexValue.objects.filter(
            series__kind=SeriesKind.ELEMENTARY, status="T", series__code__endswith="@CN"
        )
        .order_by("-n", "day")
        .select_related("series")
        .first()
    )
    assert value.audit_derived and value.used == [] and value.n >= 5
    lists = indices.value_audit_lists(value)
    assert len(lists[0]) == value.n and len(set(lists[0]) & set(lists[1])) == 0
    # Later, one of its trades is voided and another is recorded for the same day: the audit still
    # shows what the value was computed from.
    fact = TradeFact.objects.get(trade_id=lists[0][0])
    TradeFact.objects.filter(pk=fact.pk).update(voided_at=timezone.now())
    fact.pk, fact.trade_id, fact.voided_at = None, "recorded-later", None
    fact.save()
    assert indices.value_audit_lists(value) == lists
    # The public audit: every trade examined, parties anonymous, no trade ids.
    audit = APIClient().get(f"/api/v1/indices/{value.series.code}/values/{value.day}/audit/").json()
    assert sum(t["used"] for t in audit["trades"]) == value.n
    assert len(audit["trades"]) == len(lists[0]) + len(lists[1])
    assert "review" not in audit and all("trade_id" not in t for t in audit["trades"])


@pytest.mark.django_db
def test_a_failed_write_of_values_fails_the_rebuild_and_leaves_what_was_stored(monkeypatch):
    import psycopg

    from pricing import index_columns

    end = date(2025, 12, 12)
    facts_make(6, START, end)
    indices.indices_rebuild(START, end)
    before = stored()
    # The values are inserted from a second thread: its error is the rebuild's, and the rebuild's
    # transaction rolls back everything it did.
    monkeypatch.setattr(
        index_columns, "_insert_sql", lambda joined: "INSERT INTO pricing_indexvalue (series_id) SELECT 1 / 0"
    )
    with pytest.raises(psycopg.errors.DivisionByZero):
        indices.indices_rebuild(START, end)
    assert stored() == before


@pytest.mark.django_db
def test_first_publications_are_kept_from_arrays_from_a_join_and_row_by_row(monkeypatch):
    from pricing import index_columns

    end = date(2025, 12, 12)
    facts_make(7, START, end)
    indices.indices_rebuild(START, end)
    first = stored()
    elementary = IndexValue.objects.filter(
        series__kind=SeriesKind.ELEMENTARY, series__base_price__isnull=False
    )
    # Published before the series had a base (no level), at another price, as a carry.
    corrected = elementary.filter(level__isnull=False).order_by("day", "series_id")[3]
    IndexValue.objects.filter(pk=corrected.pk).update(
        first_price=corrected.price + Decimal("1.5"), first_level=None, first_status="C"
    )
    i, j, k = FIELDS.index("first_price"), FIELDS.index("first_level"), FIELDS.index("first_status")
    huge = Decimal("12345678901234.123456")  # beyond 64-bit millionths
    reads = []
    read = index_columns.Kept.read

    def spy(kept, cursor=None):
        done = kept.done
        read(kept, cursor)
        if not done:
            reads.append(kept.joined)

    monkeypatch.setattr(index_columns.Kept, "read", spy)

    lists = {
        FIELDS.index(f) for f in ("used", "unused", "review", "audit_derived", "params", "params_set_id")
    }

    def numbers(values: dict) -> dict:  # the row by row cells store their audit lists (not compared)
        return {key: tuple(x for n, x in enumerate(v) if n not in lists) for key, v in values.items()}

    def rebuilt_keeping(values: dict) -> None:
        forgotten = dict(first)
        indices.indices_rebuild(START, end)
        now = stored()
        for v, (price, level, status) in values.items():
            key = (v.series.code, v.day)
            assert (now[key][i], now[key][j], now[key][k]) == (price, level, status), key
            forgotten[key] = now[key]
        assert numbers(forgotten) == numbers(now)

    kept = {corrected: (corrected.price + Decimal("1.5"), None, "C")}
    rebuilt_keeping(kept)  # looked up in arrays
    # Through the Decimal cells (the sums too large for 64 bits): the same, row by row.
    monkeypatch.setattr(index_rebuild, "_sums_fit", lambda facts, p: False)
    rebuilt_keeping(kept)
    monkeypatch.undo()
    monkeypatch.setattr(index_columns.Kept, "read", spy)
    assert reads == [False, False]

    # A first price the arrays cannot hold: every first publication joined in SQL instead.
    other = elementary.exclude(pk=corrected.pk).order_by("-day", "series_id").first()
    IndexValue.objects.filter(pk=other.pk).update(first_price=huge)
    kept[other] = (huge, other.level, other.status)
    rebuilt_keeping(kept)
    monkeypatch.setattr(index_rebuild, "_sums_fit", lambda facts, p: False)
    rebuilt_keeping(kept)
    assert reads == [False, False, True, True]


@pytest.mark.django_db
def test_levels_set_in_sql_keep_a_first_publication_without_a_level(monkeypatch):
    from pricing import index_columns

    facts_make(8)
    indices.indices_rebuild(START, END)
    first = stored()
    # Every value first published before its series had a base: no level.
    IndexValue.objects.filter(series__kind=SeriesKind.ELEMENTARY).update(first_level=None)
    monkeypatch.setattr(index_rebuild, "HOLD_VALUES", 50)  # series without a base written without levels
    tables = []
    table_of = index_columns.Kept.table_of
    monkeypatch.setattr(
        index_columns.Kept, "table_of", lambda kept, pks: tables.append(len(pks)) or table_of(kept, pks)
    )
    indices.indices_rebuild(START, END)
    assert tables and tables[0] > 0, "levels were set in SQL"
    now = stored()
    level, first_level = FIELDS.index("level"), FIELDS.index("first_level")
    for key, value in now.items():
        if not key[0].startswith("composite."):
            assert value[first_level] is None, key
            value = (*value[:first_level], first[key][first_level], *value[first_level + 1 :])
        assert value == first[key], key
    assert any(v[level] is not None for key, v in now.items() if not key[0].startswith("composite."))


def test_first_publications_are_found_by_series_and_day_before_2000_too_and_never_for_long_ids():
    import numpy as np

    from pricing import index_columns as ic

    series = np.array([1, 7, 7, 2**31 - 1], np.int64)
    day = np.array([-1, -730000, -(2**31), 9000], np.int64)  # days since 2000-01-01
    key = ic._keys(series, day)
    assert (key >> 32).tolist() == series.tolist() and ic._days(key).tolist() == day.tolist()

    kept = ic.Kept(START, END)
    kept.done = True  # as read: nothing yet
    kept.key = kept.price = kept.level = kept.status = np.zeros(0, np.int64)
    batch = ic._Batch({
        "series": np.array([1, 7, 2**32 + 1], np.int64), "day": np.array([-1, 5, -1], np.int64),
        "price": np.array([10, 20, 30], np.int64), "level": np.array([-1, 200, 300], np.int64),
        "status": np.array([1, 2, 3], np.int64),
    })  # fmt: skip
    own = {"first_price": [10, 20, 30], "first_level": [-1, 200, 300], "first_status": [1, 2, 3]}
    assert {k: v.tolist() for k, v in kept.first(batch).items()} == own
    # Series 1's value of 1999-12-31 was published before; a 33-bit series id that wraps onto its key is
    # not it.
    order = np.argsort(key)
    kept.key = key[order]
    kept.price = np.array([11, 71, 72, 99], np.int64)[order]
    kept.level = np.array([-1, 710, 720, 990], np.int64)[order]
    kept.status = np.array([3, 1, 1, 4], np.int64)[order]
    first = {k: v.tolist() for k, v in kept.first(batch).items()}
    assert first == {"first_price": [11, 20, 30], "first_level": [-1, 200, 300], "first_status": [3, 2, 3]}
    assert kept.first(batch.take(np.zeros(3, bool)))["first_price"].size == 0
