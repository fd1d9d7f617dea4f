"""Reads of pricing: trade facts by category subtree, region and settlement time."""

from datetime import datetime

from django.db.models import QuerySet

from listings.models import Category
from market.core.regions import region_code_prefix
from pricing.models import TradeFact


def trade_facts(
    *,
    category_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_void: bool = False,
) -> QuerySet[TradeFact]:
    """Trade facts, newest settlement first.

    ``category_code``: that category and its descendants (codes ``code`` or ``code.*``).
    ``region_code``: a province, city or county code, with everything inside it (by code prefix);
    an unknown region code matches nothing. ``since`` (inclusive) and ``until`` (exclusive) bound
    ``settled_at``. Voided facts are left out unless ``include_void``.
    """
    qs = TradeFact.objects.select_related("category", "region")
    if category_code:
        qs = qs.filter(Category(code=category_code.strip()).descendant_filter("category__code"))
    if region_code:
        prefix = region_code_prefix(region_code)
        if prefix is None:
            return qs.none()
        qs = qs.filter(region__code__startswith=prefix)
    if since is not None:
        qs = qs.filter(settled_at__gte=since)
    if until is not None:
        qs = qs.filter(settled_at__lt=until)
    if not include_void:
        qs = qs.filter(voided_at__isnull=True)
    return qs.order_by("-settled_at", "-id")


def trade_fact_exists(trade_id: str) -> bool:
    return TradeFact.objects.filter(trade_id=str(trade_id or "").strip()).exists()
