"""Reads of listings: the catalogue, visible lots, wanted listings, saved searches.

A lot is public once published (and stays readable when closed or expired); drafts, submitted and
withdrawn lots are visible only to the seller's members and to operators.
"""

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from listings.models import Category, Lot, LotStatus, SavedSearch, WantedListing, WantedStatus
from listings.specs import schema_merge

PUBLIC_STATUSES = (LotStatus.PUBLISHED, LotStatus.CLOSED, LotStatus.EXPIRED)


def categories_active() -> QuerySet[Category]:
    return Category.objects.filter(is_active=True).order_by("code")


def category_ancestors(category: Category) -> list[Category]:
    """Root first, the category itself last."""
    parts = category.code.split(".")
    codes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    found = {c.code: c for c in Category.objects.filter(code__in=codes)}
    return [found[c] for c in codes if c in found]


def schema_effective(category: Category) -> list[dict]:
    """The spec fields of a category: its ancestors' fields, overridden by its own."""
    return schema_merge([c.spec_schema or [] for c in category_ancestors(category)])


def lots_visible(user) -> QuerySet[Lot]:
    qs = Lot.objects.select_related("category", "region", "region__parent", "seller")
    if getattr(user, "is_authenticated", False):
        if user.is_operator:
            return qs
        return qs.filter(Q(status__in=PUBLIC_STATUSES) | Q(seller__memberships__user=user)).distinct()
    return qs.filter(status__in=PUBLIC_STATUSES)


def lot_visible_get(user, pk) -> Lot | None:
    return lots_visible(user).filter(pk=pk).first()


def lots_by_ids(ids: list[int]) -> list[Lot]:
    """Lots in the given order (the order a search returned)."""
    if not ids:
        return []
    order = Case(*[When(pk=pk, then=Value(i)) for i, pk in enumerate(ids)], output_field=IntegerField())
    return list(
        Lot.objects.filter(pk__in=ids)
        .select_related("category", "region", "region__parent", "seller")
        .prefetch_related("media")
        .order_by(order)
    )


def lots_of(organisation) -> QuerySet[Lot]:
    return organisation.lots.select_related("category", "region").order_by("-updated_at", "-id")


def wanted_open() -> QuerySet[WantedListing]:
    from django.utils import timezone

    return WantedListing.objects.filter(status=WantedStatus.OPEN, deadline__gt=timezone.now()).select_related(
        "buyer", "category", "region"
    )


def saved_searches_of(user) -> QuerySet[SavedSearch]:
    return SavedSearch.objects.filter(user=user)
