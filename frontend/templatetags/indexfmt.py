"""Numbers of the price index pages, printed the way Chinese market reports print them: levels and
prices grouped by thousands with two decimals (1,023.45 · ¥2,512.00), changes signed in per cent
(+1.25% / -0.40%), coloured the Chinese way (up red, down green) by ``index_move``; "—" for none.
"""

from decimal import Decimal

from django import template
from django.utils.formats import number_format

register = template.Library()

DASH = "—"


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _grouped(number: Decimal, places: int) -> str:
    return number_format(number.quantize(Decimal(1).scaleb(-places)), decimal_pos=places, force_grouping=True)


@register.filter
def index_level(value) -> str:
    """1,023.45"""
    number = _decimal(value)
    return DASH if number is None else _grouped(number, 2)


@register.filter
def index_price(value) -> str:
    """¥2,512.00 (yuan per tonne; the unit is in the heading)."""
    number = _decimal(value)
    return DASH if number is None else "¥" + _grouped(number, 2)


@register.filter
def index_tonnes(value) -> str:
    """12,345.678 → 12,345.678; 300.000 → 300 (trailing zeros of the kilograms dropped)."""
    number = _decimal(value)
    if number is None:
        return DASH
    places = max(0, min(3, -number.normalize().as_tuple().exponent))
    return _grouped(number, places)


@register.filter
def index_change(value) -> str:
    """A change already in per cent: +1.25%, -0.40%, 0.00%."""
    number = _decimal(value)
    if number is None:
        return DASH
    sign = "+" if number > 0 else ""
    return f"{sign}{_grouped(number, 2)}%"


@register.filter
def index_move(value) -> str:
    """CSS class of a change: ``is-up`` (red), ``is-down`` (green) or ``is-flat``."""
    number = _decimal(value)
    if number is None or number == 0:
        return "is-flat"
    return "is-up" if number > 0 else "is-down"


@register.filter
def index_percent(value, places: int = 2) -> str:
    """A number already in per cent (a weight of 37.5) as 37.50%."""
    number = _decimal(value)
    return DASH if number is None else f"{_grouped(number, int(places))}%"


@register.filter
def index_ratio(value) -> str:
    """A relative P(d)/P(L) to four places: 1.0234."""
    number = _decimal(value)
    return DASH if number is None else _grouped(number, 4)


@register.inclusion_tag("frontend/indices/_status.html")
def index_status(code: str):
    """The status letter of a value with its meaning as a tooltip and for screen readers."""
    from frontend.views_indices import STATUS_HELP, STATUS_LABELS

    return {"code": code, "label": STATUS_LABELS.get(code, ""), "help": STATUS_HELP.get(code, "")}
