"""Reads about administrative divisions (GB/T 2260) and economic zones.

Regions are reference data loaded by migrations and changed only by new migrations, so callers
may cache what these return.
"""

from django.db.models import Prefetch, QuerySet

from market.core.geo import bounding_box, haversine_km
from market.core.models import EconomicZone, Region, RegionDataset, RegionLevel


def region_get(code: str) -> Region | None:
    """The region with this six-digit code, its parent chain loaded; None if there is none."""
    if not isinstance(code, str) or len(code) != 6 or not code.isdigit():
        return None
    return Region.objects.select_related("parent__parent").filter(code=code).first()


def region_children(parent_code: str | None = None, *, level: str | None = None) -> QuerySet[Region]:
    """The divisions directly under ``parent_code``, or the provinces when it is None."""
    qs = (
        Region.objects.filter(parent__isnull=True)
        if parent_code is None
        else Region.objects.filter(parent_id=parent_code)
    )
    if level:
        qs = qs.filter(level=level)
    return qs.order_by("code")


def region_list(*, level: str | None = None, within: "Region | str | None" = None) -> QuerySet[Region]:
    """All divisions, optionally of one level and inside one region (by code prefix)."""
    qs = Region.objects.all()
    if level:
        qs = qs.filter(level=level)
    if within:
        region = within if isinstance(within, Region) else region_get(within)
        if region is None:
            return qs.none()
        qs = qs.filter(code__startswith=region_code_prefix(region))
    return qs.order_by("code")


def region_code_prefix(region: Region) -> str:
    """The code prefix that every region inside ``region`` shares: 2, 4 or 6 digits."""
    return {RegionLevel.PROVINCE: region.code[:2], RegionLevel.CITY: region.code[:4]}.get(
        region.level, region.code
    )


def region_province_of(code: str) -> Region | None:
    """The province a code lies in (the province itself for a province code)."""
    if not isinstance(code, str) or len(code) != 6 or not code.isdigit():
        return None
    return Region.objects.filter(code=code[:2] + "0000", level=RegionLevel.PROVINCE).first()


def region_city_of(code: str) -> Region | None:
    """The city-level entry a county or city code lies in; None for a province or an unknown code."""
    if not isinstance(code, str) or len(code) != 6 or not code.isdigit() or code[2:] == "0000":
        return None
    return Region.objects.filter(code=code[:4] + "00", level=RegionLevel.CITY).first()


def region_exists(code: str, *, level: str | None = None) -> bool:
    qs = Region.objects.filter(code=code)
    if level:
        qs = qs.filter(level=level)
    return qs.exists()


def region_dataset_current() -> RegionDataset | None:
    """The most recently loaded division list: its source, snapshot date and counts."""
    return RegionDataset.objects.order_by("-loaded_at", "-id").first()


def economic_zones() -> QuerySet[EconomicZone]:
    """Every zone in display order, each with its provinces prefetched in code order."""
    return EconomicZone.objects.prefetch_related(
        Prefetch("provinces", queryset=Region.objects.order_by("code"))
    ).order_by("sort_order", "code")


def economic_zone_get(code: str) -> EconomicZone | None:
    return economic_zones().filter(code=code).first()


def economic_zones_of(code: str) -> QuerySet[EconomicZone]:
    """The zones that hold the province of ``code`` (any level)."""
    return EconomicZone.objects.filter(provinces__code=code[:2] + "0000").order_by("sort_order", "code")


def regions_within(lat: float, lon: float, km: float, level: str | None = "county") -> list[str]:
    """Codes of the regions of ``level`` (all levels when None) whose centroid lies within ``km``
    kilometres (great circle) of (``lat``, ``lon``), nearest first. Regions without coordinates
    are left out.

    A latitude/longitude box prefilters in the database; the exact haversine distance decides.
    """
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, km)
    pad = 1e-9  # degrees: keeps points on the circle itself from falling off the box by rounding
    qs = Region.objects.filter(
        latitude__gte=min_lat - pad,
        latitude__lte=max_lat + pad,
        longitude__gte=min_lon - pad,
        longitude__lte=max_lon + pad,
    )
    if level:
        qs = qs.filter(level=level)
    found = []
    for code, rlat, rlon in qs.values_list("code", "latitude", "longitude"):
        distance = haversine_km(lat, lon, rlat, rlon)
        if distance <= km:
            found.append((distance, code))
    return [code for _, code in sorted(found)]
