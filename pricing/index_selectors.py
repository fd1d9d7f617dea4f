"""Reads of the price indices: the list with last values and changes, one series' history, the
audit list behind a value (anonymised for the public, named for operators), corrections."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from market.accounts.models import Organisation
from pricing.index_models import IndexCorrection, IndexSeries, IndexValue, SeriesKind
from pricing.indices import value_audit_lists, value_params
from pricing.models import TradeFact

STATUS_LABELS = {
    "T": gettext_lazy("成交价"),  # transaction-based
    "E": gettext_lazy("窗口价"),
    "C": gettext_lazy("沿用"),
    "S": gettext_lazy("停滞"),
}


@dataclass(frozen=True)
class SeriesRow:
    series: IndexSeries
    value: IndexValue | None
    previous: IndexValue | None

    @property
    def change(self) -> Decimal | None:
        if not self.value or not self.previous or self.value.level is None or not self.previous.level:
            return None
        return ((self.value.level / self.previous.level - 1) * 100).quantize(Decimal("0.01"))


def series_published() -> QuerySet[IndexSeries]:
    """Series with at least one value and a base (an index level to show)."""
    has_level = IndexValue.objects.filter(
        series=OuterRef("pk"), level__isnull=False, published_at__isnull=False
    )
    return IndexSeries.objects.filter(pk__in=has_level.values("series_id")).select_related(
        "category", "zone", "province"
    )


# What a list of values never shows (the audit lists and parameters): not read for the overview.
OVERVIEW_DEFERRED = ("used", "unused", "review", "contributions", "params", "params_set")


def indices_overview(
    *, scope: str | None = None, kind: str | None = None, category: str | None = None, where: Q | None = None
) -> list[SeriesRow]:
    """Every published series with its last value and the one before (two queries in all).
    ``where``: a further condition on the series (a page that shows a few reads only those)."""
    qs = series_published()
    if scope:
        qs = qs.filter(scope=scope)
    if kind:
        qs = qs.filter(kind=kind)
    if category:
        qs = qs.filter(category__code__startswith=category)
    if where is not None:
        qs = qs.filter(where)
    latest = IndexValue.objects.filter(series=OuterRef("pk"), published_at__isnull=False).order_by("-day")
    series = list(
        qs.annotate(last_id=Subquery(latest.values("pk")[:1]), prev_id=Subquery(latest.values("pk")[1:2]))
    )
    values = IndexValue.objects.defer(*OVERVIEW_DEFERRED).in_bulk(
        [i for s in series for i in (s.last_id, s.prev_id) if i]
    )
    rows = [SeriesRow(s, values.get(s.last_id), values.get(s.prev_id)) for s in series]
    rows.sort(key=lambda r: (r.series.kind != SeriesKind.COMPOSITE, r.series.sort_order, r.series.code))
    return rows


def series_by_code(code: str) -> IndexSeries | None:
    return IndexSeries.objects.filter(code=code).select_related("category", "zone", "province").first()


def series_values(series: IndexSeries, *, date_from: date | None = None, date_to: date | None = None):
    qs = IndexValue.objects.filter(series=series, published_at__isnull=False).order_by("day")
    if date_from:
        qs = qs.filter(day__gte=date_from)
    if date_to:
        qs = qs.filter(day__lte=date_to)
    return qs


def series_corrections(series: IndexSeries) -> QuerySet[IndexCorrection]:
    return (
        IndexCorrection.objects.filter(value__series=series).select_related("value").order_by("-created_at")
    )


def corrections_recent(limit: int = 20) -> QuerySet[IndexCorrection]:
    return IndexCorrection.objects.select_related("value__series").order_by("-created_at")[:limit]


def value_audit(value: IndexValue, *, named: bool) -> dict:
    """The trades a value was computed from and those examined and left out, with why. The public
    sees anonymised parties (卖方 A, 买方 B) and no trade ids; operators see names and ids."""
    used, unused, review = value_audit_lists(value)
    ids = used + list(unused)
    facts = {
        f.trade_id: f for f in TradeFact.objects.filter(trade_id__in=ids).select_related("category", "region")
    }
    names = {}
    if named:
        usccs = {u for f in facts.values() for u in (f.seller_uscc, f.buyer_uscc)}
        names = dict(Organisation.objects.filter(uscc__in=usccs).values_list("uscc", "legal_name"))
    labels: dict[str, str] = {}

    def party(uscc: str, side: str) -> str:
        if named:
            return f"{names.get(uscc, '')} {uscc}".strip()
        side = str(_("卖方")) if side == "seller" else str(_("买方"))
        if uscc not in labels:
            labels[uscc] = chr(ord("A") + len(labels) % 26) + (
                "" if len(labels) < 26 else str(len(labels) // 26)
            )
        return f"{side} {labels[uscc]}"

    def row(trade_id, used, reason=None):
        f = facts.get(trade_id)
        if f is None:
            return None
        data = {
            "used": used,
            "reason": reason[0] if reason else "",
            # The detail may name organisations (same party, linked parties): operators only.
            **({"reason_detail": reason[1] if reason else ""} if named else {}),
            "awarded_at": f.awarded_at,
            "settled_at": f.settled_at,
            "category": f.category_id,
            "region": f.region.name,
            "quantity_t": f.quantity_t,
            "unit_price": f.unit_price,
            "seller": party(f.seller_uscc, "seller"),
            "buyer": party(f.buyer_uscc, "buyer"),
        }
        if named:
            data["trade_id"] = f.trade_id
        return data

    rows = [row(t, True) for t in used] + [row(t, False, r) for t, r in unused.items()]
    return {
        "series": value.series.code,
        "day": value.day,
        "status": value.status,
        "price": value.price,
        "level": value.level,
        "n": value.n,
        "excluded": value.excluded,
        "params": value_params(value),
        "methodology_version": value.methodology_version,
        "trades": [r for r in rows if r is not None],
        # Trades flagged for an operator's review (rule 2 could not run): their ids for operators only.
        "review_count": len(review),
        **({"review": review} if named else {}),
    }
