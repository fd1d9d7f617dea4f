"""The demo market: realistic (fictional) enterprises across several provinces, their members and
licences, a city government office and an operator.

Loaded by ``manage.py demo_load`` (used by ``make run``). Idempotent: every row is keyed by a
natural key (USCC, e-mail, licence number), so running it again changes nothing. Later
capabilities (lots, trades, indices) extend it here.
"""

import io
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from market.accounts.models import (
    GovernmentOffice,
    GovernmentOfficer,
    Licence,
    LicenceKind,
    LicenceStatus,
    MemberRole,
    Membership,
    Organisation,
    OrganisationRole,
    User,
    VerificationStatus,
)
from market.accounts.uscc import uscc_make
from market.core.audit import audit_record

DEMO_PASSWORD = "demo-market-2026"  # noqa: S105 - published demo logins, printed by make run
DEMO_DOMAIN = "demo.market"


@dataclass
class DemoLicence:
    kind: str
    number: str
    issuer: str
    years: int = 5
    hw_codes: list[str] = field(default_factory=list)
    capacity_t: int | None = None
    status: str = LicenceStatus.VERIFIED


@dataclass
class DemoOrg:
    key: str  # login prefix: <key>@demo.market is the admin
    legal_name: str
    short_name: str
    county: str
    org_code: str  # positions 9-17 of the USCC
    role: str
    address: str
    contact_name: str
    contact_phone: str
    description: str
    status: str = VerificationStatus.VERIFIED
    members: list[tuple[str, str, str]] = field(default_factory=list)  # (key, full name, role)
    licences: list[DemoLicence] = field(default_factory=list)


G, R, B = OrganisationRole.GENERATOR, OrganisationRole.RECYCLER, OrganisationRole.BOTH

ORGANISATIONS: list[DemoOrg] = [
    DemoOrg(
        "steel",
        "唐山丰南宏达钢铁有限公司",
        "宏达钢铁",
        "130207",
        "MA07GT001",
        G,
        "河北省唐山市丰南区沿海工业区钢铁大道18号",
        "刘建国",
        "0315-8123456",
        "年产粗钢 600 万吨的长流程钢厂，常年产出转炉钢渣、高炉水渣、氧化铁皮和厂内废钢。",
        members=[("steel.trader", "赵海涛", MemberRole.TRADER), ("steel.viewer", "孙丽", MemberRole.VIEWER)],
    ),
    DemoOrg(
        "power",
        "朔州晋北热电有限公司",
        "晋北热电",
        "140602",
        "MA0TYRD02",
        G,
        "山西省朔州市朔城区电厂路1号",
        "王志强",
        "0349-2234567",
        "2×660 MW 燃煤热电厂，产出粉煤灰、炉渣和脱硫石膏。",
    ),
    DemoOrg(
        "paper",
        "东莞华南纸业有限公司",
        "华南纸业",
        "441900",
        "MA0DGYY03",
        B,
        "广东省东莞市麻涌镇造纸工业园8号",
        "陈伟",
        "0769-88345678",
        "箱板纸生产企业，回收国产废纸（OCC），同时产出造纸污泥和废塑料。",
        members=[("paper.trader", "黄敏", MemberRole.TRADER)],
    ),
    DemoOrg(
        "battery",
        "界首市恒源电池有限公司",
        "恒源电池",
        "341282",
        "MA0JTDC04",
        G,
        "安徽省界首市田营循环经济园电池路6号",
        "张强",
        "0558-4456789",
        "铅酸蓄电池生产企业，产出废铅酸蓄电池、含铅废物（HW31）。",
    ),
    DemoOrg(
        "machinery",
        "苏州吴中精密机械制造有限公司",
        "吴中精机",
        "320506",
        "MA0WYJX05",
        G,
        "江苏省苏州市吴中区越溪街道精工路55号",
        "周明",
        "0512-66567890",
        "精密机加工企业，产出铝屑、铜屑、不锈钢边角料和废切削液（HW09）。",
    ),
    DemoOrg(
        "scrapyard",
        "台州路桥金属再生资源有限公司",
        "路桥再生",
        "331004",
        "MA0LQYT06",
        R,
        "浙江省台州市路桥区金属再生产业基地3号",
        "林国华",
        "0576-82678901",
        "废钢、废有色金属回收加工基地，具备破碎、剪切、打包生产线。",
        members=[("scrapyard.trader", "吴晓东", MemberRole.TRADER)],
        licences=[DemoLicence(LicenceKind.RENEWABLE_RECORD, "浙台商再备〔2024〕017号", "台州市路桥区商务局")],
    ),
    DemoOrg(
        "copper",
        "贵溪江南铜业冶炼有限公司",
        "江南铜业",
        "360681",
        "MA0GXTY07",
        R,
        "江西省贵溪市铜产业循环经济基地冶炼大道9号",
        "徐斌",
        "0701-3789012",
        "再生铜冶炼企业，采购废杂铜、光亮铜、黄杂铜，年处理能力 20 万吨。",
        members=[("copper.trader", "郑凯", MemberRole.TRADER)],
        licences=[DemoLicence(LicenceKind.RENEWABLE_RECORD, "赣鹰商再备〔2023〕042号", "贵溪市商务局")],
    ),
    DemoOrg(
        "aluminium",
        "佛山顺德铝业再生有限公司",
        "顺德铝业",
        "440606",
        "MA0TDLY08",
        R,
        "广东省佛山市顺德区北滘镇再生铝产业园2号",
        "何永",
        "0757-26890123",
        "再生铝锭生产企业，回收废铝型材、易拉罐、铝屑。",
        licences=[
            DemoLicence(LicenceKind.RENEWABLE_RECORD, "粤佛商再备〔2025〕008号", "佛山市顺德区经济促进局")
        ],
    ),
    DemoOrg(
        "cement",
        "唐山北方水泥有限公司",
        "北方水泥",
        "130203",
        "MA0BFTN09",
        R,
        "河北省唐山市路北区建材路21号",
        "高峰",
        "0315-3901234",
        "熟料水泥生产企业，消纳钢渣、矿渣微粉、粉煤灰和脱硫石膏作为混合材。",
    ),
    DemoOrg(
        "lead",
        "济源市金利再生铅业有限公司",
        "金利铅业",
        "419001",
        "MA0JYQY10",
        R,
        "河南省济源市虎岭产业集聚区冶炼路12号",
        "杨帆",
        "0391-6012345",
        "持危险废物经营许可证的再生铅企业，处置废铅酸蓄电池和含铅废物。",
        members=[("lead.trader", "马丽娟", MemberRole.TRADER)],
        licences=[
            DemoLicence(
                LicenceKind.HAZARDOUS_WASTE,
                "豫环许可危废字〔2024〕第88号",
                "河南省生态环境厅",
                hw_codes=["HW31", "HW49"],
                capacity_t=150000,
            )
        ],
    ),
    DemoOrg(
        "hazwaste",
        "天津滨海环保科技有限公司",
        "滨海环保",
        "120116",
        "MA0BHHB11",
        R,
        "天津市滨海新区临港经济区环保路5号",
        "韩雪",
        "022-25123456",
        "综合性危险废物处置企业：废矿物油再生、废乳化液处理、废催化剂回收。",
        licences=[
            DemoLicence(
                LicenceKind.HAZARDOUS_WASTE,
                "津危废经许〔2023〕第015号",
                "天津市生态环境局",
                hw_codes=["HW08", "HW09", "HW49", "HW50"],
                capacity_t=80000,
            ),
            DemoLicence(
                LicenceKind.HAZARDOUS_WASTE,
                "津危废经许〔2026〕第102号（扩项）",
                "天津市生态环境局",
                hw_codes=["HW17", "HW22"],
                capacity_t=20000,
                status=LicenceStatus.PENDING,
            ),
        ],
    ),
    DemoOrg(
        "chongqing",
        "重庆巴南再生资源回收有限公司",
        "巴南再生",
        "500113",
        "MA0BNYT12",
        B,
        "重庆市巴南区界石镇再生资源分拣中心",
        "罗军",
        "023-67234567",
        "城市再生资源分拣中心，兼营报废机动车回收拆解。",
        licences=[
            DemoLicence(LicenceKind.RENEWABLE_RECORD, "巴南商再备〔2024〕003号", "重庆市巴南区商务委员会"),
            DemoLicence(LicenceKind.ELV_DISMANTLING, "渝报废拆资〔2022〕011号", "重庆市商务委员会", years=6),
        ],
    ),
    DemoOrg(
        "wuhan",
        "武汉江夏新材料科技有限公司",
        "江夏新材",
        "420115",
        "MA0JXXC13",
        R,
        "湖北省武汉市江夏区庙山产业园4号",
        "邓超",
        "027-81345678",
        "新注册的废塑料改性造粒企业，等待平台认证。",
        status=VerificationStatus.PENDING,
    ),
]

GOVERNMENT_OFFICES = [
    # (key, office name, jurisdiction code, officer name)
    ("gov.tangshan", "唐山市商务局", "130200", "唐山市商务局 循环经济科"),
    ("gov.hebei", "河北省发展和改革委员会", "130000", "河北省发改委 资源节约和环境保护处"),
]


def _email(key: str) -> str:
    return f"{key}@{DEMO_DOMAIN}"


def _user(key: str, full_name: str, *, staff: bool = False) -> tuple[User, bool]:
    user, created = User.objects.get_or_create(
        email=_email(key), defaults={"full_name": full_name, "is_staff": staff, "is_superuser": staff}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user, created


def _scan_png(title: str) -> bytes:
    """A small placeholder scan: a certificate-like frame with the number in ASCII."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (600, 420), (250, 248, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([12, 12, 588, 408], outline=(150, 30, 30), width=6)
    draw.text((40, 60), "LICENCE / CERTIFICATE (demo scan)", fill=(80, 20, 20))
    draw.text((40, 120), title.encode("ascii", "replace").decode(), fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _licence(org: Organisation, spec: DemoLicence, uploader: User, operator: User) -> bool:
    if Licence.objects.filter(kind=spec.kind, number=spec.number, issuer=spec.issuer).exists():
        return False
    today = timezone.localdate()
    start = date(today.year - 1, 3, 1)
    licence = Licence(
        organisation=org,
        kind=spec.kind,
        number=spec.number,
        issuer=spec.issuer,
        valid_from=start,
        valid_to=start + timedelta(days=365 * spec.years),
        hw_codes=spec.hw_codes,
        annual_capacity_t=spec.capacity_t,
        document_name="scan.png",
        document_type="image/png",
        uploaded_by=uploader,
        status=LicenceStatus.PENDING,
    )
    data = _scan_png(spec.number)
    licence._document_ext = "png"
    licence.document_size = len(data)
    licence.document.save("scan.png", ContentFile(data), save=False)
    licence.save()
    audit_record(actor=uploader, action="licence.add", target=licence, to_state=LicenceStatus.PENDING)
    if spec.status == LicenceStatus.VERIFIED:
        licence.status = LicenceStatus.VERIFIED
        licence.status_changed_at = timezone.now()
        licence.save(update_fields=["status", "status_changed_at"])
        audit_record(
            actor=operator,
            action="licence.verify",
            target=licence,
            from_state=LicenceStatus.PENDING,
            to_state=LicenceStatus.VERIFIED,
            reason="演示数据：已核对原件",
        )
    return True


def demo_steps():
    """The loader's steps, each a (label, callable returning rows created); used for the progress bar."""
    state: dict = {}

    def operator_step():
        state["operator"], created = _user("operator", "平台运营 值班员", staff=True)
        return int(created)

    def org_step(spec: DemoOrg):
        def run():
            operator = state["operator"]
            created = 0
            with transaction.atomic():
                admin, new = _user(spec.key, spec.contact_name)
                created += new
                org = Organisation.objects.filter(uscc=uscc_make(spec.county, spec.org_code)).first()
                if org is None:
                    org = Organisation.objects.create(
                        legal_name=spec.legal_name,
                        short_name=spec.short_name,
                        uscc=uscc_make(spec.county, spec.org_code),
                        region_id=spec.county,
                        address=spec.address,
                        contact_name=spec.contact_name,
                        contact_phone=spec.contact_phone,
                        contact_email=_email(spec.key),
                        role=spec.role,
                        description=spec.description,
                        created_by=admin,
                    )
                    audit_record(actor=admin, action="organisation.register", target=org, to_state=org.status)
                    if spec.status == VerificationStatus.VERIFIED:
                        org.status = VerificationStatus.VERIFIED
                        org.status_changed_at = timezone.now()
                        org.save(update_fields=["status", "status_changed_at"])
                        audit_record(
                            actor=operator,
                            action="organisation.verify",
                            target=org,
                            from_state=VerificationStatus.PENDING,
                            to_state=VerificationStatus.VERIFIED,
                            reason="演示数据：营业执照已核对",
                        )
                    created += 1
                Membership.objects.get_or_create(
                    user=admin, organisation=org, defaults={"role": MemberRole.ADMIN}
                )
                for key, name, role in spec.members:
                    user, new = _user(key, name)
                    created += new
                    Membership.objects.get_or_create(user=user, organisation=org, defaults={"role": role})
                for licence in spec.licences:
                    created += _licence(org, licence, admin, operator)
            return created

        return run

    def government_step():
        created = 0
        for key, office_name, code, person in GOVERNMENT_OFFICES:
            office, new = GovernmentOffice.objects.get_or_create(
                name=office_name, defaults={"jurisdiction_id": code}
            )
            created += new
            user, new = _user(key, person)
            created += new
            GovernmentOfficer.objects.get_or_create(user=user, defaults={"office": office})
        return created

    steps = [("平台运营人员", operator_step)]
    steps += [(spec.short_name, org_step(spec)) for spec in ORGANISATIONS]
    steps.append(("政府机构", government_step))

    def lots_step():
        from frontend.demo_lots import demo_lots_load

        return demo_lots_load()

    steps.append(("挂牌标的", lots_step))

    def sales_step():
        from frontend.demo_trading import demo_sales_load

        return demo_sales_load()

    steps.append(("交易场次", sales_step))

    def deals_step():
        from frontend.demo_deals import demo_deals_load

        return demo_deals_load()

    steps.append(("履约合同", deals_step))

    def prices_step():
        from frontend.demo_pricing import demo_pricing_load

        return demo_pricing_load()

    steps.append(("价格历史", prices_step))
    return steps


def demo_logins() -> list[tuple[str, str]]:
    """(email, what it is) for the people a visitor can log in as."""
    rows = [(_email("operator"), "平台运营人员（后台 /admin/）")]
    for spec in ORGANISATIONS:
        rows.append((_email(spec.key), f"{spec.legal_name} 管理员"))
    for key, office_name, _code, _person in GOVERNMENT_OFFICES:
        rows.append((_email(key), f"{office_name}（政府用户）"))
    return rows
