"""Numbers of the statistics pages, written the way readers of each language expect.

Chinese readers count large sums in 万 (10⁴) and 亿 (10⁸): 1.23亿元, 456.78万吨. English readers count
in thousands, millions and billions: ¥123.5 million. Exact figures (tables, exports) keep yuan with
two decimals and tonnes with three, grouped by thousands (``market/formats``: ¥1,234,567.89).
Changes are ratios from ``pricing.selectors`` (0.2750 = +27.5 %), None when undefined ("—").

The scale differs between the languages, so the short forms are chosen in code by the active
language rather than translated.
"""

from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import get_language

register = template.Library()

DASH = "—"
WAN = Decimal(10_000)
YI = Decimal(100_000_000)
MILLION = Decimal(1_000_000)
BILLION = Decimal(1_000_000_000)


def _english() -> bool:
    return (get_language() or "").lower().startswith("en")


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def grouped(value, places: int = 0) -> str:
    """``value`` with thousands separators and ``places`` decimals (— for None)."""
    number = _decimal(value)
    if number is None:
        return DASH
    return number_format(number, decimal_pos=places, force_grouping=True)


@register.filter
def yuan(value) -> str:
    """¥1,234,567.89"""
    number = _decimal(value)
    if number is None:
        return DASH
    return "¥" + grouped(number, 2)


@register.filter
def tonnes(value) -> str:
    """1,234.500 (the unit is in the column's heading)."""
    return grouped(value, 3)


@register.filter
def count(value) -> str:
    return grouped(value, 0)


def _scaled(number: Decimal, units: list[tuple[Decimal, str]], fallback_places: int, fallback_unit: str):
    for size, unit in units:
        if abs(number) >= size:
            return grouped((number / size).quantize(Decimal("0.01")), 2) + unit
    return grouped(number, fallback_places) + fallback_unit


@register.filter
def yuan_short(value) -> str:
    """1.23亿元, 45.68万元, 9,876.00元; in English ¥1.23 billion, ¥45.68 million, ¥9,876.00."""
    number = _decimal(value)
    if number is None:
        return DASH
    if _english():
        return "¥" + _scaled(number, [(BILLION, " billion"), (MILLION, " million")], 2, "")
    return _scaled(number, [(YI, "亿元"), (WAN, "万元")], 2, "元")


@register.filter
def tonnes_short(value) -> str:
    """12.35万吨, 980.500吨; in English 1.23 million t, 980.500 t."""
    number = _decimal(value)
    if number is None:
        return DASH
    if _english():
        return _scaled(number, [(MILLION, " million t")], 3, " t")
    return _scaled(number, [(YI, "亿吨"), (WAN, "万吨")], 3, "吨")


@register.filter
def count_short(value) -> str:
    """1.23万 (笔 is said by the label); in English 12,300."""
    number = _decimal(value)
    if number is None:
        return DASH
    if _english():
        return _scaled(number, [(MILLION, " million")], 0, "")
    return _scaled(number, [(YI, "亿"), (WAN, "万")], 0, "")


@register.filter
def change(value) -> str:
    """A ratio of change as a signed percentage: +27.5%, -3.0%, — when undefined."""
    number = _decimal(value)
    if number is None:
        return DASH
    pct = (number * 100).quantize(Decimal("0.1"))
    sign = "+" if pct > 0 else ""
    return f"{sign}{grouped(pct, 1)}%"


@register.filter
def change_class(value) -> str:
    """CSS class of a change: ``is-up``, ``is-down`` or ``is-flat``."""
    number = _decimal(value)
    if number is None or number == 0:
        return "is-flat"
    return "is-up" if number > 0 else "is-down"


@register.filter
def share(value, places: int = 1) -> str:
    """A share (0.7826) as a percentage: 78.3% (``share:2``: 78.26%)."""
    number = _decimal(value)
    if number is None:
        return DASH
    places = int(places)
    return f"{grouped((number * 100).quantize(Decimal(1).scaleb(-places)), places)}%"


@register.filter
def pct_points(value) -> str:
    """A change already in per cent (the indices' 1.25): +1.25%."""
    number = _decimal(value)
    if number is None:
        return DASH
    sign = "+" if number > 0 else ""
    return f"{sign}{grouped(number, 2)}%"
