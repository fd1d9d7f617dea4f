"""Region rules shared by every app that records where something is."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from market.core.models import Region, RegionLevel


def region_county_require(code, *, field: str = "region") -> Region:
    """The county-level region for ``code``, or a ValidationError on ``field``.

    A prefecture-level city without counties (东莞, 中山, 儋州, 嘉峪关) stands for its own county.
    """
    region = Region.objects.filter(pk=str(code or "").strip()).first()
    if region is None:
        raise ValidationError({field: ValidationError(_("行政区划代码不存在。"), code="region_unknown")})
    if region.level != RegionLevel.COUNTY and not (
        region.level == RegionLevel.CITY and not region.children.exists()
    ):
        raise ValidationError({field: ValidationError(_("请选择到区县一级。"), code="region_not_county")})
    return region


def region_code_prefix(code: str) -> str | None:
    """The code prefix shared by a region and everything inside it (province: 2 digits, city: 4,
    county: all 6), or None for an unknown code."""
    region = Region.objects.filter(pk=str(code or "").strip()).only("level").first()
    return None if region is None else region_prefix(region)


def region_prefix(region: Region) -> str:
    """The code prefix shared by a loaded region and everything inside it (no query)."""
    return {RegionLevel.PROVINCE: region.code[:2], RegionLevel.CITY: region.code[:4]}.get(
        region.level, region.code
    )
