"""Lots for the search tests, built with the ORM directly: a small catalogue, sellers in four
provinces, and lots in every state, with known titles, places, quantities, prices and deadlines."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from listings.models import Category, Lot, LotStatus, TradeMode
from tests.factories import make_organisation

# (code, name, name_en, hazardous, hw_code). Codes start with "sx" so they meet no real category.
SEARCH_CATEGORIES = [
    ("sxferrous", "废钢铁", "Ferrous scrap", False, ""),
    ("sxferrous.heavy", "重型废钢", "Heavy melting scrap", False, ""),
    ("sxferrous.heavy.plate", "厚板边角料", "Plate offcuts", False, ""),
    ("sxferrous.turnings", "钢屑", "Steel turnings", False, ""),
    ("sxferrousx", "铁合金", "Ferroalloys", False, ""),  # shares the prefix "sxferrous" but no dot
    ("sxcopper", "废铜", "Copper scrap", False, ""),
    ("sxcopper.bright", "光亮铜", "Bright copper", False, ""),
    ("sxcopper.yellow", "黄杂铜", "Mixed brass", False, ""),
    ("sxbulk", "大宗工业固废", "Bulk industrial solid waste", False, ""),
    ("sxbulk.flyash", "粉煤灰", "Fly ash", False, ""),
    ("sxbulk.gypsum", "脱硫石膏", "FGD gypsum", False, ""),
    ("sxbulk.slag", "钢渣", "Steel slag", False, ""),
    ("sxpaper", "废纸", "Waste paper", False, ""),
    ("sxpaper.occ", "黄板纸", "Old corrugated containers", False, ""),
    ("sxhaz", "危险废物", "Hazardous waste", True, ""),
    ("sxhaz.oil", "废矿物油", "Waste mineral oil", True, "HW08"),
]

# name: (category, region, title, seller, quantity, price, trade mode, hours to close, status)
SEARCH_LOTS = {
    "heavy_ts": (
        "sxferrous.heavy",
        "130203",
        "唐山重废 500 吨，厚度 6mm 以上",
        "hebei",
        "500",
        "2450",
        "auction",
        10,
        "published",
    ),
    "plate_gy": (
        "sxferrous.heavy.plate",
        "130204",
        "重型废钢 厚板边角料",
        "hebei",
        "120",
        "2600",
        "fixed",
        48,
        "published",
    ),
    "turnings_sjz": (
        "sxferrous.turnings",
        "130102",
        "机加工钢屑",
        "hebei",
        "30",
        "1800",
        "tender",
        200,
        "published",
    ),
    "alloy_ts": ("sxferrousx", "130203", "硅锰合金边角", "hebei", "12", "7000", "fixed", 30, "published"),
    "slag_ts": (
        "sxbulk.slag",
        "130203",
        "高比重废渣",
        "hebei_power",
        "800",
        None,
        "quotation",
        None,
        "published",
    ),
    "flyash_ts": (
        "sxbulk.flyash",
        "130203",
        "电厂粉煤灰 散装",
        "hebei_power",
        "5000",
        "40",
        "tender",
        20,
        "published",
    ),
    "bright_sz": (
        "sxcopper.bright",
        "320506",
        "光亮铜米 2 吨",
        "suzhou",
        "2",
        "68000",
        "auction",
        5,
        "published",
    ),
    "brass_nj": (
        "sxcopper.yellow",
        "320102",
        "黄杂铜 水箱铜",
        "nanjing",
        "8",
        "45000",
        "fixed",
        30,
        "published",
    ),
    "wire_dg": (
        "sxcopper",
        "441900",
        "Copper wire scrap, bare",
        "dongguan",
        "15",
        "60000",
        "auction",
        72,
        "published",
    ),
    "flyash_sz": (
        "sxbulk.flyash",
        "320508",
        "热电厂 II 级粉煤灰",
        "suzhou_power",
        "3000",
        "60",
        "fixed",
        100,
        "published",
    ),
    "gypsum_sz": (
        "sxbulk.gypsum",
        "320506",
        "电厂副产石膏",
        "suzhou_power",
        "2000",
        "20",
        "quotation",
        -2,
        "published",
    ),
    "oil_sh": ("sxhaz.oil", "310115", "废机油 桶装", "shanghai", "10", "3000", "tender", 3, "published"),
    "occ_cd": ("sxpaper.occ", "510104", "废纸箱 打包", "chengdu", "50", "1500", "fixed", 6, "published"),
    # Never found: not published.
    "draft_flyash": (
        "sxbulk.flyash",
        "320506",
        "粉煤灰 草稿",
        "suzhou_power",
        "100",
        "50",
        "fixed",
        10,
        "draft",
    ),
    "submitted_copper": (
        "sxcopper.bright",
        "320506",
        "光亮铜 待审核",
        "suzhou",
        "1",
        "66000",
        "auction",
        10,
        "submitted",
    ),
    "withdrawn_heavy": (
        "sxferrous.heavy",
        "130203",
        "重废 已撤回",
        "hebei",
        "300",
        "2400",
        "auction",
        10,
        "withdrawn",
    ),
    "closed_heavy": (
        "sxferrous.heavy",
        "130203",
        "重废 已成交",
        "hebei",
        "300",
        "2500",
        "auction",
        -30,
        "closed",
    ),
    "expired_flyash": (
        "sxbulk.flyash",
        "320508",
        "粉煤灰 已过期",
        "suzhou_power",
        "100",
        "55",
        "fixed",
        -50,
        "expired",
    ),
}

SELLERS = {
    "hebei": ("唐山钢铁集团有限责任公司", "130203"),
    "hebei_power": ("河北建投电力有限公司", "130203"),
    "suzhou": ("苏州金属再生资源有限公司", "320506"),
    "nanjing": ("南京物资回收有限公司", "320102"),
    "dongguan": ("东莞五金加工厂", "441900"),
    "suzhou_power": ("苏州热电有限公司", "320508"),
    "shanghai": ("上海石化股份有限公司", "310115"),
    "chengdu": ("成都纸业有限公司", "510104"),
}

_NOW = object()
NOT_FOUND = {"draft_flyash", "submitted_copper", "withdrawn_heavy", "closed_heavy", "expired_flyash"}


def make_lot(
    *,
    seller,
    category,
    region,
    title,
    quantity="10",
    price=None,
    trade_mode="fixed",
    closes_at=None,
    status=LotStatus.PUBLISHED,
    published_at=_NOW,
    hazardous=None,
    description="",
    specs=None,
) -> Lot:
    today = timezone.localdate()
    category_obj = category if isinstance(category, Category) else Category.objects.get(code=category)
    return Lot.objects.create(
        seller=seller,
        category=category_obj,
        title=title,
        description=description,
        quantity=Decimal(quantity),
        unit="t",
        specs=specs or {},
        region_id=region,
        address="厂区内",
        available_from=today,
        pickup_by=today + timedelta(days=30),
        hazardous=category_obj.hazardous if hazardous is None else hazardous,
        status=status,
        published_at=timezone.now() if published_at is _NOW else published_at,
        trade_mode=trade_mode,
        current_price=None if price is None else Decimal(price),
        closes_at=closes_at,
    )


@pytest.fixture
def search_catalogue(db) -> dict[str, Category]:
    categories = {}
    for code, name, name_en, hazardous, hw_code in SEARCH_CATEGORIES:
        parent = categories.get(code.rpartition(".")[0])
        categories[code] = Category.objects.create(
            code=code,
            parent=parent,
            name=name,
            name_en=name_en,
            hazardous=hazardous,
            hw_code=hw_code,
            tonnes_per_unit=1,
        )
    return categories


@pytest.fixture
def search_sellers(db):
    return {key: make_organisation(name=name, region=region) for key, (name, region) in SELLERS.items()}


@pytest.fixture
def search_lots(search_catalogue, search_sellers) -> dict[str, Lot]:
    """The lots of ``SEARCH_LOTS``, published one minute apart in the order listed (the last one
    newest), not indexed yet."""
    now = timezone.now()
    lots = {}
    for i, (name, row) in enumerate(SEARCH_LOTS.items()):
        category, region, title, seller, quantity, price, mode, hours, status = row
        lots[name] = make_lot(
            seller=search_sellers[seller],
            category=category,
            region=region,
            title=title,
            quantity=quantity,
            price=price,
            trade_mode=mode,
            closes_at=None if hours is None else now + timedelta(hours=hours),
            status=status,
            published_at=None
            if status in (LotStatus.DRAFT, LotStatus.SUBMITTED)
            else now - timedelta(minutes=100 - i),
        )
    return lots


@pytest.fixture
def twin_lots(search_catalogue, search_sellers) -> list[Lot]:
    """25 lots alike in every sort key (published, closing and priced the same), for pagination."""
    now = timezone.now()
    published, closes = now - timedelta(hours=1), now + timedelta(hours=12)
    return [
        make_lot(
            seller=search_sellers["hebei"],
            category="sxferrous.heavy",
            region="130203",
            title="同款重废 统一价",
            quantity="100",
            price="2500",
            trade_mode=TradeMode.FIXED,
            closes_at=closes,
            published_at=published,
        )
        for _ in range(25)
    ]
