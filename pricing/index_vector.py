"""Every elementary series' cells over a run of business days, computed on arrays (numpy): what
``indices._Cells`` computes trade by trade with ``Decimal``, for ``indices_rebuild`` over history.

``indices._Cells`` (through ``pricing.methodology``) stays the one definition of the rules: the daily
close, corrections and the audit lists use it, and the tests hold this module to it value for value.
Here the same rules run set-wise on one business day's facts at a time, every series at once:

* A fact is a row of integers: quantity in thousandths of a tonne, price in cents (the columns'
  own scales, so nothing is rounded), organisations, category and county as indices into tables.
  Amounts are quantity times price in units of 10^-5 yuan: sums of them are exact.
* Rule 1 is decided per fact, once (the same for each series the fact counts in).
* Rule 2 sorts each series' eligible trades by price once. The weighted median of ln p is found on
  the integer weights (the logarithm keeps the order), so which price it is, or which two it lies
  between, is exact; the deviations and the MAD are then computed in floating point. A trade is an
  outlier when its deviation exceeds the threshold; where any deviation lies within ``AMBIGUOUS`` of
  the threshold (a price exactly 5 % off the median, say) floating point cannot decide it, and that
  series' day runs ``methodology.outliers`` in ``Decimal`` instead.
* Rule 3 counts distinct buyers and sellers and each organisation's tonnes on entries ordered by
  series and organisation; the share test is an integer comparison (``largest * den <= num * tonnes``).
* Sorting is most of the time: orders are made by numpy's radix sort of 16-bit integers where the
  fields fit (series and organisation indices), else by one sort of 64-bit keys that carry the
  fields and the entry's index, else by ``lexsort`` (``_order``). At
  5,000,000 trades (8,150 series, 527 business days) the cells took 34.7 s with ``argsort`` and
  ``lexsort``, 20-21 s so.
* The ladder T / E / C / S, the window and the carry keep per-series state in arrays; the window
  pools the kept trades of its days (each day's rule 2 as decided on that day).
* Prices are rounded as ``Decimal`` would round them: P to 6 places is the integer quotient
  amount * 10^4 / tonnes rounded half up. (The quotient of integers below 10^20 is never within
  10^-26 of a rounding boundary without being on it, far above ``PRECISION``'s error, so rounding
  the 50-digit quotient and rounding the exact one agree.)

The values hold no lists of trades: those are derived when asked for (``indices.value_audit_lists``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np

from pricing import methodology as m

AMBIGUOUS = 1e-9
"""Deviations closer than this to rule 2's threshold (in ln units) are decided in ``Decimal``."""

STATUS = {1: m.Status.TRANSACTION, 2: m.Status.WINDOW, 3: m.Status.CARRIED, 4: m.Status.STALE}
_T, _E, _C, _S = 1, 2, 3, 4
SAFE = 2**62
"""Products above this are computed in Python integers (numpy's are 64-bit and wrap around)."""
_LOG_CENT = float(np.log(100.0))


def _ceil_milli(tonnes: Decimal) -> int:
    """The least whole number of thousandths of a tonne that is at least ``tonnes``."""
    scaled = tonnes * 1000
    whole = int(scaled)
    return whole + (1 if scaled > whole else 0)


def _risky(values: np.ndarray, factor: int) -> np.ndarray:
    """Where ``values * factor`` (or twice it) could overflow 64 bits."""
    return np.abs(values) >= SAFE // (2 * factor)


def div_half_up(num: np.ndarray, den: np.ndarray, factor: int = 1) -> np.ndarray:
    """num * factor / den rounded half up to an integer (num >= 0, den > 0), exact: in 64-bit
    integers, or in Python's where they could overflow."""
    num = np.asarray(num, dtype=np.int64)
    den = np.broadcast_to(np.asarray(den, dtype=np.int64), num.shape)
    risky = _risky(num, factor)
    out = (2 * np.where(risky, 0, num) * factor + den) // (2 * den)
    for i in np.flatnonzero(risky).tolist():
        out[i] = (2 * int(num[i]) * factor + int(den[i])) // (2 * int(den[i]))
    return out


def _product_le(a: np.ndarray, fa: int, b: np.ndarray, fb: int) -> np.ndarray:
    """a * fa <= b * fb, exact (a, b >= 0)."""
    risky = _risky(a, fa) | _risky(b, fb)
    out = np.where(risky, 0, a) * fa <= np.where(risky, 0, b) * fb
    for i in np.flatnonzero(risky).tolist():
        out[i] = int(a[i]) * fa <= int(b[i]) * fb
    return out


@dataclass
class DayFacts:
    """The facts counting on one business day, as arrays of equal length."""

    pair: np.ndarray  # int32: index into the engine's pairs (category, county)
    seller: np.ndarray  # int32: organisation index
    buyer: np.ndarray  # int32
    q: np.ndarray  # int64: thousandths of a tonne
    p: np.ndarray  # int64: cents per tonne
    voided: np.ndarray  # bool

    @classmethod
    def empty(cls) -> DayFacts:
        i32, i64 = np.zeros(0, np.int32), np.zeros(0, np.int64)
        return cls(i32, i32, i32, i64, i64, np.zeros(0, bool))

    def __len__(self):
        return len(self.q)


@dataclass
class Cells:
    """One business day's cells with a status (arrays of equal length, one entry per series)."""

    series: np.ndarray  # int32 series index
    status: np.ndarray  # int8: 1 T, 2 E, 3 C, 4 S
    num: np.ndarray  # int64: unrounded P = num / den / 100 yuan per tonne
    den: np.ndarray  # int64
    n: np.ndarray
    tonnes: np.ndarray  # int64 thousandths of a tonne
    amount: np.ndarray  # int64 10^-5 yuan
    day_amount: np.ndarray  # int64 10^-5 yuan
    min_price: np.ndarray  # int64 cents; -1 for none
    max_price: np.ndarray
    excluded: np.ndarray
    days_carried: np.ndarray
    carried_from: np.ndarray  # int64 date ordinal; 0 for none

    def price_micro(self) -> np.ndarray:
        """P to 6 places (in millionths of a yuan), rounded half up."""
        return div_half_up(self.num, self.den, 10_000)


@dataclass
class _Kept:
    """Trades kept after rules 1 and 2 on one day, one entry per (series, trade)."""

    s: np.ndarray
    seller: np.ndarray
    buyer: np.ndarray
    q: np.ndarray
    a: np.ndarray
    p: np.ndarray


@dataclass
class _Stats:
    """Rule 3's figures per series (``series`` sorted, unique)."""

    series: np.ndarray
    n: np.ndarray
    tonnes: np.ndarray
    amount: np.ndarray
    min_price: np.ndarray
    max_price: np.ndarray
    ok: np.ndarray


def _packed_order(fields: list[np.ndarray]) -> np.ndarray | None:
    """Indices that order entries by the non-negative integer ``fields`` (most significant first) and
    then by index, from one ``sort`` of keys that hold the fields' bits and the index's (a sort of
    64-bit integers takes about two thirds of the time of an ``argsort``, a ``lexsort`` several times
    more); ``None`` when they do not fit 63 bits or a field is negative."""
    n = len(fields[0])
    if not n:
        return np.zeros(0, np.int64)
    widths = []
    for f in fields:
        if f.min() < 0:
            return None
        widths.append(int(f.max()).bit_length())
    index_bits = (n - 1).bit_length()
    if sum(widths) + index_bits > 63:
        return None
    key = np.zeros(n, np.int64)
    for f, width in zip(fields, widths, strict=True):
        key <<= width
        key |= f
    key <<= index_bits
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    key &= (1 << index_bits) - 1
    return key


def _radix_order(fields: list[np.ndarray]) -> np.ndarray | None:
    """Indices that order entries by one or two integer ``fields`` in [0, 65536) (most significant
    first), ties by index: one stable sort of 16-bit integers per field (numpy's radix sort, linear in
    the entries: for 200,000 entries about half the time of one sort of 64-bit keys); ``None`` when a
    field does not fit or there are more."""
    if len(fields) > 2 or any(len(f) and (f.min() < 0 or f.max() >= 1 << 16) for f in fields):
        return None
    order = np.arange(len(fields[0]))
    for f in reversed(fields):
        order = order[np.argsort(f[order].astype(np.uint16), kind="stable")]
    return order


def _order(fields: list[np.ndarray]) -> np.ndarray:
    """Indices that order entries by the integer ``fields`` (most significant first), ties by index:
    by radix passes where the fields fit 16 bits, else by one sort of keys, else by ``lexsort``."""
    order = _radix_order(fields)
    if order is None:
        order = _packed_order(fields)
    return np.lexsort(fields[::-1]) if order is None else order


def _by_series_price(series: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Indices that order entries by (series, price) (nothing computed depends on the order among
    equal pairs: sums, minima, maxima, and medians of values, whose rank among equal values is not
    used)."""
    return _order([series, price])


def _within_groups(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indices that order floating-point ``values`` ascending within consecutive ``group``s (``group``
    sorted ascending): ``lexsort((values, group))``, in under half its time when the groups' indices
    fit 16 bits (one ``argsort`` of the values, then a stable radix sort by group)."""
    if not len(group) or group[-1] >= 1 << 16:
        return np.lexsort((values, group))
    order = np.argsort(values)
    return order[np.argsort(group[order].astype(np.uint16), kind="stable")]


def _starts(sorted_keys: np.ndarray) -> np.ndarray:
    """The first index of each run of equal keys in a sorted array."""
    if not sorted_keys.size:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def _weighted_median(
    values: np.ndarray, weights: np.ndarray, starts: np.ndarray, ends: np.ndarray, exact_values
):
    """Per group (values sorted ascending within each group, groups consecutive): the weighted median
    of ``methodology.weighted_median`` (the first value whose cumulative weight passes half, or the
    midpoint with the next distinct value when it is exactly half). ``exact_values``: the values'
    comparable form (integers for prices, the floats themselves for deviations). Returns (the index
    of the median value, the index of the next value for a midpoint or -1)."""
    cum = np.cumsum(weights)
    before = cum[starts] - weights[starts]
    total = cum[ends - 1] - before
    k = np.searchsorted(cum, before + (total + 1) // 2, side="left")
    nxt = np.minimum(k + 1, len(values) - 1)
    tie = (2 * (cum[k] - before) == total) & (k + 1 < ends) & (exact_values[nxt] != exact_values[k])
    return k, np.where(tie, nxt, -1)


class VectorCells:
    """``indices._Cells.close`` on arrays. ``pair_category``: each pair's category code;
    ``pair_series``: each pair's series indices; ``series_category``: each series' category code.
    ``previous``: series index -> the stored value of the business day before the first one
    computed (status letter, price in millionths, days carried, carried from)."""

    def __init__(self, p: m.Params, pair_category: list[str], pair_series: list[tuple[int, ...]],
                 series_category: list[str], previous: dict | None = None):  # fmt: skip
        self.p = p
        self.S = len(series_category)
        self.pair_min_lot = np.array([_ceil_milli(p.min_lot_for(c)) for c in pair_category], np.int64)
        counts = np.array([len(s) for s in pair_series], np.int64)
        self.pair_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.pair_members = np.array([i for s in pair_series for i in s], np.int64)
        self.min_cell = np.array([_ceil_milli(p.min_cell_for(c)) for c in series_category], np.int64)
        num, den = p.max_share.as_integer_ratio()
        self.share_num, self.share_den = num, den
        self.mad_factor = float(p.mad_factor)
        self.floor = float(np.log1p(float(p.floor_pct)))
        S = self.S
        self.status = np.zeros(S, np.int8)
        self.num = np.zeros(S, np.int64)
        self.den = np.ones(S, np.int64)
        self.days_carried = np.zeros(S, np.int64)
        self.carried_from = np.zeros(S, np.int64)
        self.last_traded = np.full(S, -(10**6), np.int64)
        self.ring: list[tuple[int, _Kept, np.ndarray]] = []  # (day index, kept, excluded per series)
        self.decimal_cells = 0  # series-days whose rule 2 was decided in Decimal
        letters = {v.value: k for k, v in STATUS.items()}
        for s, (status, price_micro, days_carried, carried_from) in (previous or {}).items():
            self.status[s] = letters[status]
            self.num[s], self.den[s] = price_micro, 10_000
            self.days_carried[s] = days_carried
            self.carried_from[s] = carried_from.toordinal() if carried_from else 0

    # --- rules 1 and 2 ----------------------------------------------------------------------

    def _memberships(self, facts: DayFacts) -> tuple[np.ndarray, np.ndarray]:
        """(fact index, series index) for each series each fact counts in."""
        off = self.pair_offsets[facts.pair]
        cnt = self.pair_offsets[facts.pair + 1] - off
        t = np.repeat(np.arange(len(facts), dtype=np.int64), cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        pos = np.arange(len(t), dtype=np.int64) - first + np.repeat(off, cnt)
        return t, self.pair_members[pos]

    def _eligible(self, facts: DayFacts) -> np.ndarray:
        """Rule 1 per fact (the conditions a fact can fail: the others hold for every trade fact)."""
        ok = ~facts.voided & (facts.q > 0) & (facts.p > 0) & (facts.seller != facts.buyer)
        ok &= facts.q >= self.pair_min_lot[facts.pair]
        if not self.p.vat_included:  # facts are stated including VAT
            ok[:] = False
        return ok

    def _rule2(self, s, q, p):
        """Rule 2 on eligible memberships sorted by (series, price): (outlier mask, excluded per group,
        group starts)."""
        starts = _starts(s)
        ends = np.append(starts[1:], len(s)).astype(np.int64)
        n = ends - starts
        out = np.zeros(len(s), bool)
        applied = n >= self.p.outlier_min_n
        if not applied.any():
            return out, np.zeros(len(starts), np.int64), starts
        # Only the groups rule 2 applies to.
        g_idx = np.flatnonzero(applied)
        member = np.repeat(applied, n)
        qa, pa = q[member], p[member]
        a_starts = np.concatenate(([0], np.cumsum(n[g_idx])[:-1])).astype(np.int64)
        a_ends = a_starts + n[g_idx]
        lnp = np.log(pa.astype(np.float64)) - _LOG_CENT
        k, nxt = _weighted_median(pa, qa, a_starts, a_ends, pa)
        median = np.where(nxt >= 0, (lnp[k] + lnp[np.maximum(nxt, 0)]) / 2, lnp[k])
        group_of = np.repeat(np.arange(len(g_idx)), n[g_idx])
        dev = np.abs(lnp - median[group_of])
        order = _within_groups(group_of, dev)
        dev_sorted, q_sorted = dev[order], qa[order]
        k2, nxt2 = _weighted_median(dev_sorted, q_sorted, a_starts, a_ends, dev_sorted)
        mad = np.where(nxt2 >= 0, (dev_sorted[k2] + dev_sorted[np.maximum(nxt2, 0)]) / 2, dev_sorted[k2])
        threshold = np.maximum(self.mad_factor * mad, self.floor)
        limit = threshold[group_of]
        outlier = dev > limit
        unsure = np.abs(dev - limit) < AMBIGUOUS
        if unsure.any():
            for g in np.unique(group_of[unsure]):
                lo, hi = a_starts[g], a_ends[g]
                outlier[lo:hi] = self._outliers_decimal(qa[lo:hi], pa[lo:hi])
                self.decimal_cells += 1
        out[member] = outlier
        excluded = np.zeros(len(starts), np.int64)
        excluded[g_idx] = np.add.reduceat(outlier.astype(np.int64), a_starts) if len(g_idx) else 0
        return out, excluded, starts

    def _outliers_decimal(self, q: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``methodology.outliers`` on one group's trades (the reference rule, in ``Decimal``)."""
        moment = datetime(2000, 1, 1, tzinfo=UTC)
        trades = [
            m.Trade(trade_id=str(i), quantity_t=Decimal(int(qi)).scaleb(-3), unit_price=Decimal(int(pi)).scaleb(-2),
                    awarded_at=moment, seller="s", buyer="b", category="")
            for i, (qi, pi) in enumerate(zip(q, p, strict=True))
        ]  # fmt: skip
        result = m.outliers(trades, self.p)
        return np.array([str(i) in result.excluded for i in range(len(trades))], bool)

    # --- rule 3 -----------------------------------------------------------------------------

    def _stats(self, kept: _Kept) -> _Stats:
        """Rule 3 per series on kept trades sorted by series (the order within a series is not used)."""
        s = kept.s
        starts = _starts(s)
        if not len(starts):
            z = np.zeros(0, np.int64)
            return _Stats(z, z, z, z, z, z, np.zeros(0, bool))
        series = s[starts]
        n = np.diff(np.append(starts, len(s)))
        tonnes = np.add.reduceat(kept.q, starts)
        amount = np.add.reduceat(kept.a, starts)
        min_price = np.minimum.reduceat(kept.p, starts)
        max_price = np.maximum.reduceat(kept.p, starts)
        sellers, buyers, largest = self._organisations(kept, series)
        p = self.p
        ok = (n >= p.liquidity_min_n) & (buyers >= p.min_buyers) & (sellers >= p.min_sellers)
        ok &= (tonnes >= self.min_cell[series]) & (tonnes > 0)
        ok &= _product_le(largest, self.share_den, tonnes, self.share_num)
        return _Stats(series, n, tonnes, amount, min_price, max_price, ok)

    def _organisations(self, kept: _Kept, series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per series (sorted, unique): distinct sellers, distinct buyers, and the largest
        organisation's tonnes on ``Params.share_basis``. The entries (series, seller) and (series,
        buyer) are ordered once, by series, organisation and index (two radix passes, else one sort of
        keys, else the lexsort): in a run of one organisation in one series the sales come first
        (indices below the number of trades), so a run is a seller's when it starts with a sale and a
        buyer's when it ends with a purchase. (Two sorts for the distinct counts and an ``argsort``
        for the tonnes took twice the time.)"""
        n = len(kept.s)
        s = np.concatenate((kept.s, kept.s))
        org = np.concatenate((kept.seller, kept.buyer))
        order = _order([s, org])
        s, org = s[order], org[order]
        starts = np.flatnonzero(np.concatenate(([True], (s[1:] != s[:-1]) | (org[1:] != org[:-1]))))
        ends = np.append(starts[1:], len(s))
        owner = s[starts]
        sellers = np.bincount(owner[order[starts] < n], minlength=self.S)[series]
        buyers = np.bincount(owner[order[ends - 1] >= n], minlength=self.S)[series]
        q = np.concatenate((kept.q, kept.q))[order]
        if self.p.share_basis is m.ShareBasis.COMBINED:
            tonnes = np.add.reduceat(q, starts)
        else:
            sale = order < n
            tonnes = np.maximum(np.add.reduceat(np.where(sale, q, 0), starts),
                                np.add.reduceat(np.where(sale, 0, q), starts))  # fmt: skip
        owner_starts = _starts(owner)
        largest = np.zeros(len(series), np.int64)
        largest[np.searchsorted(series, owner[owner_starts])] = np.maximum.reduceat(tonnes, owner_starts)
        return sellers, buyers, largest

    # --- the ladder -------------------------------------------------------------------------

    def assess(self, day_index: int, facts: DayFacts, window_first: int) -> _Stats:
        """Rules 1 and 2 on one business day's facts, kept for the windows it falls in (a day before
        the first one computed is only assessed, as ``indices._Cells.assess`` does); returns rule 3's
        figures of the day per series."""
        t, s = self._memberships(facts)
        self.last_traded[s] = day_index
        eligible = self._eligible(facts)[t]
        t, s = t[eligible], s[eligible]
        q, price = facts.q[t], facts.p[t]
        order = _by_series_price(s, price)
        s, q, price, t = s[order], q[order], price[order], t[order]
        outlier, excluded, groups = self._rule2(s, q, price)
        excluded_by_series = np.zeros(self.S, np.int64)
        if len(groups):
            excluded_by_series[s[groups]] = excluded
        keep = ~outlier
        kept = _Kept(s[keep], facts.seller[t][keep].astype(np.int64), facts.buyer[t][keep].astype(np.int64),
                     q[keep], q[keep] * price[keep], price[keep])  # fmt: skip
        self.ring = [r for r in self.ring if r[0] >= window_first]
        self.ring.append((day_index, kept, excluded_by_series))
        return self._stats(kept)

    def close(self, day_index: int, day: date, facts: DayFacts, window_first: int) -> Cells:
        """The cells of business day ``day`` (``day_index`` in the run; ``window_first`` the index of
        the first day of its window) from the facts counting on it."""
        p = self.p
        today = self.assess(day_index, facts, window_first)
        excluded_by_series = self.ring[-1][2]

        active = (self.last_traded >= window_first) | (self.status > 0)
        status = np.zeros(self.S, np.int8)
        num, den = self.num.copy(), self.den.copy()
        n = np.zeros(self.S, np.int64)
        tonnes = np.zeros(self.S, np.int64)
        amount = np.zeros(self.S, np.int64)
        min_price = np.full(self.S, -1, np.int64)
        max_price = np.full(self.S, -1, np.int64)
        day_amount = np.zeros(self.S, np.int64)
        day_amount[today.series] = today.amount
        excluded_out = excluded_by_series.copy()

        def take(stats: _Stats, letter: int, where: np.ndarray):
            sel = stats.series[where]
            status[sel] = letter
            num[sel], den[sel] = stats.amount[where], stats.tonnes[where]
            n[sel], tonnes[sel], amount[sel] = stats.n[where], stats.tonnes[where], stats.amount[where]
            min_price[sel], max_price[sel] = stats.min_price[where], stats.max_price[where]

        take(today, _T, today.ok)
        # The window (status E) for active series without T: their kept trades of the window's days.
        candidate = active & (status == 0)
        masks = [candidate[r[1].s] for r in self.ring] if candidate.any() else []
        if any(mask.any() for mask in masks):
            fields = _Kept.__dataclass_fields__
            sub = _Kept(
                *(np.concatenate([getattr(r[1], f)[mask] for r, mask in zip(self.ring, masks, strict=True)])
                  for f in fields)
            )  # fmt: skip
            # Rule 3 groups by series only (each ring entry is sorted by series and price already).
            order = _order([sub.s])
            sub = _Kept(*(getattr(sub, f)[order] for f in fields))
            window = self._stats(sub)
            take(window, _E, window.ok)
            if window.ok.any():
                e = window.series[window.ok]
                excluded_out[e] = sum(r[2][e] for r in self.ring)
        # The carry: active series still without a status that had one the day before.
        carry = active & (status == 0) & (self.status > 0)
        was_carried = carry & (self.status >= _C)
        days_carried = np.zeros(self.S, np.int64)
        carried_from = np.zeros(self.S, np.int64)
        days_carried[carry] = np.where(was_carried[carry], self.days_carried[carry] + 1, 1)
        previous_day = m.previous_business_day(day, p.holidays).toordinal()
        carried_from[carry] = np.where(was_carried[carry], self.carried_from[carry], previous_day)
        status[carry] = np.where(days_carried[carry] > p.stale_after, _S, _C)

        out = np.flatnonzero(status > 0)
        self.status = np.zeros(self.S, np.int8)
        self.status[out] = status[out]
        self.num[out], self.den[out] = num[out], den[out]
        self.days_carried[out] = days_carried[out]
        self.carried_from[out] = carried_from[out]
        return Cells(
            out.astype(np.int32), status[out], num[out], den[out], n[out], tonnes[out], amount[out],
            day_amount[out], min_price[out], max_price[out], excluded_out[out], days_carried[out],
            carried_from[out],
        )  # fmt: skip
