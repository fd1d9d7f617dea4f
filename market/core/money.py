"""Money as people read it (Decimal in, text out)."""

from decimal import Decimal

from django.utils.formats import number_format


def yuan_text(value: Decimal) -> str:
    """An amount of yuan the Chinese way, with thousands separators and two places: 2,510.00."""
    return number_format(value, decimal_pos=2, force_grouping=True)
