"""What the search knows about a lot: its tokens, and the filters over lots as ORM conditions.

Both backends share these: the database backend searches with :func:`lots_filtered`, the
Elasticsearch backend indexes :func:`lot_tokens` and checks ``lot_matches`` with the same filters.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import override

from listings.models import Category, Lot, LotStatus, TradeMode
from listings.search.query import LotQuery, region_prefix
from listings.search.tokens import MAX_TOKENS, tokenise
from market.core.models import Region

# The lots an external index holds: every public state (published, closed, expired).
INDEXED_STATUSES = (LotStatus.PUBLISHED.value, LotStatus.CLOSED.value, LotStatus.EXPIRED.value)
INDEX_RELATED = ("category", "seller", "region__parent__parent")

FACET_SIZES = {"category": 200, "province": 50, "trade_mode": 20}


def region_has_centroids() -> bool:
    """Whether ``Region`` has ``latitude`` / ``longitude`` (migration core 0004)."""
    try:
        Region._meta.get_field("latitude")
        Region._meta.get_field("longitude")
    except FieldDoesNotExist:
        return False
    return True


def category_ancestor_codes(code: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]`` (root first, the code itself last)."""
    parts = code.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def category_map() -> dict[str, Category]:
    """Every category by code (a few hundred rows): one query per indexing batch."""
    return {c.code: c for c in Category.objects.only("code", "name", "name_en", "hw_code")}


def zone_province_codes(zone: str) -> list[str]:
    """Six-digit codes of the provinces of an economic zone."""
    return sorted(Region.objects.filter(economic_zones__code=zone).values_list("code", flat=True))


# --- tokens ---------------------------------------------------------------------------------


def lot_tokens(lot: Lot, categories: dict[str, Category] | None = None) -> list[str]:
    """The tokens a lot is found by: its title, description and text specs; the names (Chinese and
    English) and hazardous-waste class of its category and the category's ancestors; the names of
    its county, city and province; its seller's name; its trade mode and whether it is hazardous.

    ``lot`` should come with ``INDEX_RELATED`` selected; ``categories`` from :func:`category_map`.
    """
    parts: list[str] = [lot.title, lot.description]
    for value in (lot.specs or {}).values() if isinstance(lot.specs, dict) else ():
        if isinstance(value, str):
            parts.append(value)
    if categories is None:
        categories = {
            c.code: c for c in Category.objects.filter(code__in=category_ancestor_codes(lot.category_id))
        }
    for code in category_ancestor_codes(lot.category_id):
        category = categories.get(code)
        if category is not None:
            parts += [category.name, category.name_en, category.aliases, category.hw_code]
    region = lot.region
    while region is not None:
        if not region.is_placeholder:
            parts.append(region.name)
        region = region.parent
    seller = lot.seller
    parts += [seller.legal_name, seller.short_name]
    if lot.trade_mode:
        with override("zh-hans"):
            parts += [lot.trade_mode, str(TradeMode(lot.trade_mode).label)]
    if lot.hazardous:
        parts += ["危险废物 危废 hazardous"]
    tokens: list[str] = []
    for part in parts:
        if part:
            tokens += tokenise(part)
    return tokens[:MAX_TOKENS]


# --- filters --------------------------------------------------------------------------------


def lots_filtered(query: LotQuery, *, zone_provinces: list[str] | None = None) -> QuerySet[Lot]:
    """Lots passing every filter of ``query`` except the text (the backends match text their way)."""
    qs = Lot.objects.filter(status__in=list(query.statuses))
    if query.category:
        # The subtree's codes as a subquery (a few rows of the catalogue), so the category index is
        # read code by code; a LIKE on the lot's category_id would scan every lot of the status.
        subtree = Category.objects.filter(
            Q(code=query.category) | Q(code__startswith=f"{query.category}.")
        ).values("code")
        qs = qs.filter(category_id__in=subtree)
    if query.region:
        qs = qs.filter(region__code__startswith=region_prefix(query.region))
    if query.zone:
        codes = zone_province_codes(query.zone) if zone_provinces is None else zone_provinces
        condition = Q(pk__in=[])
        for code in codes:
            condition |= Q(region__code__startswith=code[:2])
        qs = qs.filter(condition)
    if query.quantity_min is not None:
        qs = qs.filter(quantity__gte=query.quantity_min)
    if query.quantity_max is not None:
        qs = qs.filter(quantity__lte=query.quantity_max)
    if query.price_min is not None:
        qs = qs.filter(current_price__gte=query.price_min)
    if query.price_max is not None:
        qs = qs.filter(current_price__lte=query.price_max)
    if query.trade_mode:
        qs = qs.filter(trade_mode=query.trade_mode)
    if query.hazardous is not None:
        qs = qs.filter(hazardous=query.hazardous)
    if query.closing_within_hours is not None:
        now = timezone.now()
        qs = qs.filter(closes_at__gt=now, closes_at__lte=now + timedelta(hours=query.closing_within_hours))
    if query.near is not None and query.within_km is not None and region_has_centroids():
        qs = _within_km(qs, query.near, query.within_km)
    return qs


def _within_km(qs: QuerySet[Lot], near: tuple[float, float], km: float) -> QuerySet[Lot]:
    """Lots whose region's centroid lies within ``km`` of ``near`` (great circle, as
    ``market.core.selectors.regions_within`` measures it: the kernel's one rule for distances). A
    region without a centroid is never near anything."""
    from market.core.selectors import regions_within

    return qs.filter(region_id__in=regions_within(float(near[0]), float(near[1]), float(km), level=None))


# --- facets ---------------------------------------------------------------------------------


def category_facet_key(code: str, selected: str | None) -> str | None:
    """The bucket of a lot's category: its top-level code, or with a category selected the code one
    level under it (a lot filed on the selected category itself is in no bucket)."""
    if selected is None:
        return code.split(".", 1)[0]
    if not code.startswith(selected + "."):
        return None
    rest = code[len(selected) + 1 :]
    return f"{selected}.{rest.split('.', 1)[0]}"


def facet_sorted(counts: dict[str, int], size: int) -> list[tuple[str, int]]:
    """Buckets by count descending, then key ascending (Elasticsearch's order), at most ``size``."""
    items = [(key, n) for key, n in counts.items() if n > 0]
    items.sort(key=lambda item: (-item[1], item[0]))
    return items[:size]
