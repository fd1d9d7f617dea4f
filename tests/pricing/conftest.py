"""Trade facts for the pricing tests, recorded through ``pricing.services.trade_record``.

Categories and regions are the real ones loaded by migrations (``listings.0002_catalogue``,
``core.0002_regions_load``).
"""

import itertools
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from market.accounts.uscc import uscc_make
from pricing.services import trade_record

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 唐山市路北区 and 苏州市吴中区 (tests.factories), with a neighbour of each.
TANGSHAN_LUBEI, TANGSHAN_GUYE = "130203", "130204"
SUZHOU_WUZHONG, SUZHOU_GUSU = "320506", "320508"
SELLER_USCC = uscc_make(TANGSHAN_LUBEI, "000000011")
BUYER_USCC = uscc_make(SUZHOU_WUZHONG, "000000022")

_seq = itertools.count(1)


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A Shanghai time in March 2026."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def trade_args(**overrides) -> dict:
    """Valid arguments of trade_record (a fresh trade_id each call), with ``overrides`` applied."""
    args = {
        "trade_id": f"deal:{next(_seq)}",
        "awarded_at": at(2, 10),
        "settled_at": at(5, 15),
        "category_code": "ferrous.heavy",
        "county_code": TANGSHAN_LUBEI,
        "seller_uscc": SELLER_USCC,
        "buyer_uscc": BUYER_USCC,
        "quantity_t": Decimal("120.500"),
        "unit_price": Decimal("2450.00"),
    }
    args.update(overrides)
    return args


def make_trade(**overrides):
    return trade_record(**trade_args(**overrides))


def committed(change, /, **kwargs):
    """``change(**kwargs)`` (``trade_record`` or ``trade_void``) as after a real commit: its
    after-commit hook run (which hands the fact to the sender's thread), then what the statistics
    worker does on the message: every change still pending applied to the rollups (the sweep's
    code, ``pricing.tasks.stats_sweep``; ``tests/pricing/test_rollups_record_path.py`` follows a
    message through a real worker)."""
    from django.test import TestCase

    from pricing.tasks import stats_sweep

    with TestCase.captureOnCommitCallbacks(execute=True):
        result = change(**kwargs)
    stats_sweep()
    return result


def record_on(day, **overrides):
    """A trade settled at 14:00 on ``day`` (Shanghai), awarded three hours earlier, counted."""
    from datetime import timedelta

    settled = datetime(day.year, day.month, day.day, 14, tzinfo=SHANGHAI)
    return committed(
        trade_record, **trade_args(awarded_at=settled - timedelta(hours=3), settled_at=settled, **overrides)
    )
