"""Demo lots: a few hundred realistic listings across the catalogue and the provinces.

Deterministic (a fixed random seed), so ``demo_load`` stays idempotent: each lot is keyed by its
title, which carries a running number. Price levels follow the market in late 2026 (yuan per unit):
scrap steel 2,000-3,000, copper scrap tens of thousands, slag and fly ash tens of yuan. Specs are
drawn inside each category's schema and pass the same validation as a seller's form.
"""

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from listings.models import Category, Lot, LotStatus, Packaging, TradeMode
from listings.selectors import schema_effective
from listings.specs import specs_validate
from market.accounts.models import MemberRole, Membership, Organisation, OrganisationRole, VerificationStatus
from market.accounts.uscc import uscc_make
from market.core.audit import audit_record
from market.core.models import Region

SEED = 20261122

# category prefix -> (price low, price high per unit, quantity low, high, packaging, what it comes from)
PROFILES: list[tuple[str, tuple[int, int], tuple[int, int], str, str]] = [
    ("ferrous.heavy", (2500, 2950), (100, 3000), Packaging.BULK, "轧钢车间切头切尾及设备检修件"),
    ("ferrous.medium", (2350, 2750), (50, 1500), Packaging.BULK, "机加工及结构件拆除料"),
    ("ferrous.small", (2200, 2600), (30, 800), Packaging.BULK, "冲压车间边角料"),
    ("ferrous.light", (1900, 2350), (20, 500), Packaging.BALES, "彩钢板及薄板下脚料"),
    ("ferrous.shredded", (2550, 2900), (200, 2000), Packaging.BULK, "破碎线产出的破碎料"),
    ("ferrous.turnings", (1800, 2200), (20, 300), Packaging.BULK, "数控车床钢屑，已压块"),
    ("ferrous.cast_iron", (2300, 2700), (20, 400), Packaging.BULK, "报废铸件及机床床身"),
    ("nonferrous.copper.bright", (66000, 71000), (3, 60), Packaging.BAGS, "电机厂光亮铜线"),
    ("nonferrous.copper.red", (60000, 66000), (3, 80), Packaging.BAGS, "紫杂铜，含少量镀层"),
    ("nonferrous.copper.yellow", (42000, 48000), (5, 100), Packaging.BAGS, "阀门黄铜件"),
    ("nonferrous.copper.wire", (28000, 42000), (5, 60), Packaging.BALES, "废旧电线电缆"),
    ("nonferrous.aluminium.extrusion", (16500, 18500), (5, 120), Packaging.BALES, "门窗铝型材边角料"),
    ("nonferrous.aluminium.ubc", (13500, 15500), (10, 200), Packaging.BALES, "易拉罐压块"),
    ("nonferrous.aluminium.cast", (14000, 16500), (5, 150), Packaging.BULK, "铸铝件，已拆除铁件"),
    ("nonferrous.aluminium.turnings", (11000, 13500), (5, 80), Packaging.BAGS, "铝屑，含少量切削液"),
    ("nonferrous.stainless.s300", (9500, 11500), (5, 150), Packaging.BULK, "304 不锈钢板边角料"),
    ("nonferrous.zinc.dross", (11000, 14500), (5, 80), Packaging.DRUMS, "热镀锌锌渣"),
    ("paper.occ", (1500, 2100), (30, 600), Packaging.BALES, "纸箱厂及商超回收的黄板纸"),
    ("paper.sop", (2000, 2600), (10, 120), Packaging.BALES, "办公废纸"),
    ("paper.mixed", (1100, 1600), (20, 300), Packaging.BALES, "混合废纸"),
    ("plastics.pet", (4200, 6200), (10, 200), Packaging.BALES, "PET 瓶砖"),
    ("plastics.hdpe", (4800, 7200), (10, 150), Packaging.BAGS, "HDPE 桶料破碎"),
    ("plastics.ldpe", (3200, 5600), (10, 200), Packaging.BALES, "LDPE 包装膜"),
    ("plastics.pp", (4500, 6800), (10, 150), Packaging.BAGS, "PP 编织袋及周转箱破碎料"),
    ("rubber.tyres", (600, 1400), (50, 1500), Packaging.BULK, "废旧载重轮胎"),
    ("glass.mixed", (150, 380), (50, 2000), Packaging.BULK, "混色碎玻璃"),
    ("textiles.offcuts", (800, 2200), (5, 120), Packaging.BALES, "服装厂纺织边角料"),
    ("weee.tv", (25, 80), (300, 5000), Packaging.PALLETS, "回收网点汇集的废电视机"),
    ("weee.fridge", (60, 150), (200, 3000), Packaging.OTHER, "家电以旧换新回收的废冰箱"),
    ("vehicles.passenger", (2500, 9000), (10, 200), Packaging.OTHER, "报废乘用车"),
    ("batteries.lead_acid", (8400, 9600), (10, 300), Packaging.PALLETS, "蓄电池厂及维修网点的废铅酸蓄电池"),
    ("batteries.lithium.lfp", (12000, 26000), (5, 120), Packaging.PALLETS, "储能及商用车退役磷酸铁锂电池包"),
    ("batteries.lithium.ncm", (28000, 52000), (5, 80), Packaging.PALLETS, "退役三元动力电池包"),
    ("bulk.slag.steel.bof", (20, 55), (2000, 50000), Packaging.BULK, "转炉钢渣，已热焖处理"),
    ("bulk.slag.steel.eaf", (15, 45), (1000, 20000), Packaging.BULK, "电炉钢渣"),
    ("bulk.slag.blast_furnace", (60, 130), (5000, 80000), Packaging.BULK, "高炉水淬矿渣"),
    ("bulk.fly_ash", (30, 160), (1000, 60000), Packaging.BULK, "电厂干排粉煤灰"),
    ("bulk.bottom_ash", (10, 40), (1000, 20000), Packaging.BULK, "锅炉炉渣"),
    ("bulk.coal_gangue", (8, 35), (5000, 100000), Packaging.BULK, "洗煤厂煤矸石"),
    ("bulk.gypsum.fgd", (10, 55), (2000, 60000), Packaging.BULK, "湿法脱硫石膏"),
    ("bulk.gypsum.phospho", (5, 30), (5000, 100000), Packaging.BULK, "磷化工副产磷石膏"),
    ("bulk.red_mud", (5, 20), (5000, 80000), Packaging.BULK, "拜耳法赤泥"),
    ("bulk.tailings.iron", (5, 25), (10000, 200000), Packaging.BULK, "铁矿选矿尾矿"),
    ("bulk.construction.concrete", (10, 45), (500, 30000), Packaging.BULK, "拆迁废混凝土"),
    ("biomass.straw", (180, 420), (100, 5000), Packaging.BALES, "玉米秸秆，已打捆"),
    ("biomass.forestry", (220, 480), (100, 3000), Packaging.BULK, "林业采伐剩余物"),
    (
        "hazardous.hw08.mineral_oil",
        (2200, 3800),
        (10, 200),
        Packaging.DRUMS,
        "设备检修产生的废液压油、废机油",
    ),
    ("hazardous.hw49.circuit_boards", (6000, 18000), (2, 50), Packaging.BAGS, "电子厂废电路板"),
    ("hazardous.hw50.scr", (1500, 4500), (20, 300), Packaging.PALLETS, "电厂更换下来的废脱硝催化剂"),
]

# What each kind of enterprise plausibly sells (category code prefixes).
INDUSTRIES = {
    "steel": ("ferrous", "bulk.slag", "bulk.tailings", "hazardous.hw08"),
    "power": (
        "bulk.fly_ash",
        "bulk.bottom_ash",
        "bulk.coal_gangue",
        "bulk.gypsum.fgd",
        "hazardous.hw50",
        "hazardous.hw08",
    ),
    "paper": ("paper", "plastics.ldpe", "plastics.pp"),
    "battery": ("batteries", "nonferrous.zinc", "hazardous.hw49"),
    "metal": ("ferrous", "nonferrous", "bulk.red_mud", "hazardous.hw08"),
    "electronics": ("weee", "hazardous.hw49", "plastics", "nonferrous.copper"),
    "sorting": (
        "paper",
        "plastics",
        "glass",
        "textiles",
        "weee",
        "rubber",
        "vehicles",
        "ferrous.light",
        "bulk.construction",
    ),
    "biomass": ("biomass",),
    "chemical": ("bulk.gypsum.phospho", "plastics", "hazardous.hw08"),
}
# The enterprises of frontend.demo, by their login key.
DEMO_ORG_INDUSTRY = {
    "steel": "steel",
    "power": "power",
    "paper": "paper",
    "battery": "battery",
    "machinery": "metal",
    "chongqing": "sorting",
}

# Extra fictional generators, so lots come from many provinces: (county, name, short, industry).
SELLERS: list[tuple[str, str, str, str]] = [
    ("150203", "包头北方钢联有限公司", "北方钢联", "steel"),
    ("210303", "鞍山鞍钢铁西钢材加工有限公司", "鞍西钢材", "steel"),
    ("320582", "张家港沙洲特钢有限公司", "沙洲特钢", "steel"),
    ("370303", "淄博张店热电有限公司", "张店热电", "power"),
    ("410303", "洛阳西工铝业加工有限公司", "西工铝业", "metal"),
    ("430102", "长沙芙蓉再生资源分拣有限公司", "芙蓉分拣", "sorting"),
    ("440306", "深圳宝安电子制造有限公司", "宝安电子", "electronics"),
    ("450102", "南宁兴宁糖业有限公司", "兴宁糖业", "biomass"),
    ("510114", "成都新都机车车辆检修有限公司", "新都机车", "metal"),
    ("530112", "昆明西山磷化工有限公司", "西山磷化", "chemical"),
    ("610116", "西安长安汽车零部件有限公司", "长安零部件", "metal"),
    ("620102", "兰州城关铝冶炼有限公司", "城关铝冶", "metal"),
    ("340104", "合肥蜀山新能源汽车有限公司", "蜀山新能源", "battery"),
    ("350104", "福州仓山纸业有限公司", "仓山纸业", "paper"),
    ("420107", "武汉青山特钢有限公司", "青山特钢", "steel"),
    ("130403", "邯郸丛台热电有限公司", "丛台热电", "power"),
]


def _spec_value(field: dict, rng: random.Random):
    kind = field.get("type")
    if kind == "choice":
        return field["choices"][rng.randrange(len(field["choices"]))][0]
    if kind == "bool":
        return rng.random() < 0.5
    if kind in ("number", "integer"):
        lo = field.get("min", 0) or 0
        hi = field.get("max")
        if field.get("unit") == "%":
            low_is_good = any(
                w in field["key"]
                for w in ("impurity", "moisture", "oil", "loi", "water", "feo", "fcao", "cl")
            )
            value = rng.uniform(0.5, 12) if low_is_good else rng.uniform(max(lo, 60), min(hi or 100, 99.5))
        else:
            value = lo + ((hi - lo) if hi is not None else 100) * rng.uniform(0.05, 0.4)
        value = max(lo, value if hi is None else min(hi, value))
        return int(value) if kind == "integer" else round(value, 1)
    return None  # text fields are optional in the demo


def _sellers() -> list[tuple[Organisation, str]]:
    """The demo's generators with their industry: the named ones plus extra fictional plants."""
    from frontend.demo import ORGANISATIONS, _email, _user

    out = []
    for spec in ORGANISATIONS:
        if spec.key in DEMO_ORG_INDUSTRY:
            org = Organisation.objects.filter(
                memberships__user__email=_email(spec.key), legal_name=spec.legal_name
            ).first()
            if org is not None:
                out.append((org, DEMO_ORG_INDUSTRY[spec.key]))
    for i, (county, name, short, industry) in enumerate(SELLERS):
        uscc = uscc_make(county, f"MA1DL{i:04d}")
        org = Organisation.objects.filter(uscc=uscc).first()
        if org is None:
            admin, _created = _user(f"seller{i:02d}", f"{short}业务员")
            org = Organisation.objects.create(
                legal_name=name,
                short_name=short,
                uscc=uscc,
                region_id=county,
                address=f"{Region.objects.get(pk=county).full_name}工业园区",
                contact_name=f"{short}业务员",
                contact_phone="400-800-2026",
                role=OrganisationRole.GENERATOR,
                status=VerificationStatus.VERIFIED,
                status_changed_at=timezone.now(),
                created_by=admin,
            )
            Membership.objects.get_or_create(
                user=admin, organisation=org, defaults={"role": MemberRole.ADMIN}
            )
        out.append((org, industry))
    return out


def demo_lots_load(count: int = 320, progress=None) -> int:
    """Create up to ``count`` published lots (idempotent); returns how many were new."""
    rng = random.Random(SEED)
    sellers = _sellers()
    categories = {c.code: c for c in Category.objects.filter(code__in=[p[0] for p in PROFILES])}
    profiles = [p for p in PROFILES if p[0] in categories]
    today = timezone.localdate()
    now = timezone.now()
    created, new_ids = 0, []
    for n in range(1, count + 1):
        code, (p_lo, p_hi), (q_lo, q_hi), packaging, origin = profiles[rng.randrange(len(profiles))]
        fitting = [org for org, industry in sellers if code.startswith(INDUSTRIES[industry])] or [
            o for o, _ in sellers
        ]
        seller = fitting[rng.randrange(len(fitting))]
        category = categories[code]
        quantity = Decimal(rng.randrange(q_lo, q_hi + 1))
        price = Decimal(rng.randrange(p_lo, p_hi + 1))
        mode = rng.choice([TradeMode.AUCTION, TradeMode.AUCTION, TradeMode.FIXED, TradeMode.TENDER])
        schema = schema_effective(category)
        raw = {f["key"]: v for f in schema if (v := _spec_value(f, rng)) is not None}
        title = f"{category.name} {quantity} {category.get_unit_display()} · {seller.short_name or seller.legal_name} #{n:03d}"
        published = now - timedelta(hours=rng.randrange(1, 24 * 20))
        # Every random draw happens before the existence check, so reruns follow the same sequence.
        pickup_days = rng.randrange(20, 90)
        closes_in = rng.randrange(2, 24 * 14)
        if progress:
            progress(n)
        if Lot.objects.filter(title=title).exists():
            continue
        with transaction.atomic():
            lot = Lot.objects.create(
                seller=seller,
                category=category,
                title=title,
                description=f"{origin}。{seller.legal_name}厂内自提，过磅结算，提供装车。",
                quantity=quantity,
                unit=category.unit,
                specs=specs_validate(schema, raw),
                region=seller.region,
                address=seller.address,
                available_from=today,
                pickup_by=today + timedelta(days=pickup_days),
                packaging=packaging,
                hazardous=category.hazardous,
                status=LotStatus.PUBLISHED,
                status_changed_at=published,
                published_at=published,
                trade_mode=mode,
                current_price=price,
                closes_at=now + timedelta(hours=closes_in) if mode != TradeMode.FIXED else None,
            )
            audit_record(
                actor=None,
                action="lot.publish",
                target=lot,
                from_state="submitted",
                to_state="published",
                reason="演示数据",
            )
        created += 1
        new_ids.append(lot.pk)
    if new_ids:
        from listings.search import get_backend

        get_backend().index_lots(new_ids)
    return created
