"""Deals for the demo market: a few lots of the named demo enterprises are sold through the trading
services (fixed price, and one auction bought at its buy-now price) and their contracts are walked
through the deals services to every state a visitor should see: awaiting payment, paid, pickup
scheduled, weighed and awaiting the other party, disputed, settled, completed with ratings,
defaulted (with a runner-up to offer the lot to), and a hazardous deal whose transfer manifest all
three parties confirmed. Nothing is written around the services, so the ledger, the audit trail and
the trace chains are the real ones.

Idempotent and deterministic: each scenario is keyed by its lot's title and skipped when that lot
exists; the only randomness (spec values, publication times) comes from a generator seeded per
scenario. Each
scenario runs in one transaction, so a failure leaves nothing half made.
"""

import io
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from frontend.demo_lots import _spec_value
from listings.models import Category, Lot, LotStatus, Packaging, TradeMode
from listings.selectors import schema_effective
from listings.specs import specs_validate
from market.accounts.models import MemberRole, Membership, Organisation
from market.core.audit import audit_record
from market.deals import services as deals
from market.deals.models import Deal, DealStatus, DefaultParty, PaymentMethod
from market.trading import services as trading

SEED = 20261129
D = Decimal


@dataclass(frozen=True)
class Scenario:
    key: str
    seller: str  # login key of a demo enterprise (frontend.demo.ORGANISATIONS)
    buyer: str
    category: str
    quantity: str
    price: str
    goal: str  # the state the deal is walked to
    packaging: str = Packaging.BULK
    net: str = ""  # the weighbridge's net weight, for the goals past pickup
    weigher: str = "seller"

    @property
    def title(self) -> str:
        return f"{self._name} {self.quantity} 吨 · 履约演示 {self.key}"

    @property
    def _name(self) -> str:
        return {
            "ferrous.heavy": "重型废钢",
            "ferrous.shredded": "破碎废钢",
            "ferrous.medium": "中型废钢",
            "nonferrous.aluminium.turnings": "铝屑",
            "bulk.slag.steel.bof": "转炉钢渣",
            "bulk.fly_ash": "干排粉煤灰",
            "nonferrous.copper.bright": "光亮铜线",
            "batteries.lead_acid": "废铅酸蓄电池",
        }.get(self.category, self.category)


SCENARIOS = [
    Scenario("A", "steel", "scrapyard", "ferrous.heavy", "300", "2680", DealStatus.AWAITING_PAYMENT),
    Scenario("B", "steel", "scrapyard", "ferrous.shredded", "200", "2750", DealStatus.PAID),
    Scenario(
        "C", "machinery", "aluminium", "nonferrous.aluminium.turnings", "20", "12000",
        DealStatus.PICKUP_SCHEDULED, packaging=Packaging.BAGS,
    ),
    # 5 % short of the contract: beyond the 2 % tolerance, the buyer must confirm.
    Scenario("D", "steel", "cement", "bulk.slag.steel.bof", "3000", "40", DealStatus.WEIGHED, net="2850"),
    # The buyer's ticket 6 % short; the seller disputes it and the operator has a case to decide.
    Scenario(
        "E", "power", "cement", "bulk.fly_ash", "5000", "85", DealStatus.DISPUTED, net="4700", weigher="buyer"
    ),
    # Within the tolerance and a little short: settled, the difference promised back to the buyer.
    Scenario(
        "F", "machinery", "copper", "nonferrous.copper.bright", "10", "68000", DealStatus.SETTLED,
        packaging=Packaging.BAGS, net="9.98",
    ),
    # A little over: the buyer tops up, confirms receipt, both sides rate each other.
    Scenario("G", "steel", "scrapyard", "ferrous.heavy", "500", "2650", DealStatus.COMPLETED, net="503"),
    # Sold at the buy-now price after two bids; the buyer never pays: the seller may offer the runner-up.
    Scenario("H", "steel", "scrapyard", "ferrous.medium", "150", "2600", DealStatus.DEFAULTED),
    # Hazardous (HW31): paid, picked up, the manifest confirmed by all three, weighed, completed.
    Scenario(
        "I", "battery", "lead", "batteries.lead_acid", "40", "9000", DealStatus.COMPLETED,
        packaging=Packaging.PALLETS, net="39.86", weigher="buyer",
    ),
]  # fmt: skip


def _org(key: str) -> Organisation | None:
    from frontend.demo import ORGANISATIONS, _email

    spec = next(s for s in ORGANISATIONS if s.key == key)
    return Organisation.objects.filter(
        memberships__user__email=_email(key), legal_name=spec.legal_name
    ).first()


def _trader(org: Organisation):
    """The member who does the business: a trader if the enterprise has one, else its admin."""
    members = Membership.objects.filter(organisation=org, role__in=[MemberRole.TRADER, MemberRole.ADMIN])
    member = (
        members.filter(role=MemberRole.TRADER).select_related("user").first()
        or members.select_related("user").first()
    )
    return member.user


def _png(text: str, size=(480, 320)) -> SimpleUploadedFile:
    """A placeholder photo (a bank slip, a weighbridge ticket) with a line of ASCII on it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (246, 246, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([8, 8, size[0] - 8, size[1] - 8], outline=(60, 60, 60), width=3)
    draw.text((28, 40), text.encode("ascii", "replace").decode(), fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return SimpleUploadedFile("demo.png", buf.getvalue(), content_type="image/png")


def _lot(sc: Scenario, seller: Organisation, rng: random.Random, now) -> Lot:
    category = Category.objects.get(code=sc.category)
    schema = schema_effective(category)
    raw = {f["key"]: v for f in schema if (v := _spec_value(f, rng)) is not None}
    published = now - timedelta(hours=rng.randrange(6, 72))
    today = timezone.localdate()
    lot = Lot.objects.create(
        seller=seller,
        category=category,
        title=sc.title,
        description=f"{seller.legal_name}厂内自提，过磅结算，提供装车。（演示数据）",
        quantity=D(sc.quantity),
        unit=category.unit,
        specs=specs_validate(schema, raw),
        region=seller.region,
        address=seller.address,
        available_from=today,
        pickup_by=today + timedelta(days=30),
        packaging=sc.packaging,
        hazardous=category.hazardous,
        status=LotStatus.PUBLISHED,
        status_changed_at=published,
        published_at=published,
    )
    audit_record(
        actor=None, action="lot.publish", target=lot, from_state="submitted", to_state="published",
        reason="演示数据",
    )  # fmt: skip
    return lot


def _award(sc: Scenario, lot: Lot, seller_user, buyer: Organisation, buyer_user) -> Deal:
    """The lot sold through trading: bought outright at a fixed price, or (the default scenario) an
    auction with two bids that a third recycler ends at the buy-now price."""
    ends_at = timezone.now() + timedelta(days=7)
    if sc.goal != DealStatus.DEFAULTED:
        trading.sale_configure(
            actor=seller_user, lot=lot, mode=TradeMode.FIXED, fixed_price=sc.price, ends_at=ends_at
        )
        award = trading.buy(actor=buyer_user, organisation=buyer, lot_id=lot.pk, quantity=lot.quantity)
        return Deal.objects.get(award=award)
    price = D(sc.price)
    trading.sale_configure(
        actor=seller_user, lot=lot, mode=TradeMode.AUCTION, start_price=price - 200, increment_amount="10",
        buy_now_price=price, ends_at=ends_at,
    )  # fmt: skip
    for key, amount in (("chongqing", price - 200), ("copper", price - 150)):
        bidder = _org(key)
        trading.bid_place(actor=_trader(bidder), organisation=bidder, lot_id=lot.pk, amount=amount)
    award = trading.buy(actor=buyer_user, organisation=buyer, lot_id=lot.pk)
    return Deal.objects.get(award=award)


def _pay(deal: Deal, buyer_user, confirmer) -> Deal:
    payment = deals.payment_start(actor=buyer_user, deal=deal, method=PaymentMethod.BANK_TRANSFER)
    payment = deals.payment_slip_submit(
        actor=buyer_user, payment=payment, slip=_png(f"BANK SLIP {payment.reference}")
    )
    deals.payment_confirm(actor=confirmer, payment=payment)
    return Deal.objects.get(pk=deal.pk)


def _walk(sc: Scenario, deal: Deal, *, seller_user, buyer_user, operator) -> Deal:
    goal = sc.goal
    if goal == DealStatus.AWAITING_PAYMENT:
        return deal
    if goal == DealStatus.DEFAULTED:
        deals.deal_default(deal_id=deal.pk, party=DefaultParty.BUYER, reason="逾期未付款")
        return Deal.objects.get(pk=deal.pk)
    # Bank transfers: the seller confirms most, the platform's operator some.
    deal = _pay(deal, buyer_user, operator if sc.key in ("C", "I") else seller_user)
    if goal == DealStatus.PAID:
        return deal
    deals.pickup_book(
        actor=buyer_user, deal=deal, date=max(deal.pickup_from, timezone.localdate()),
        vehicle_plate={"C": "浙J3K728", "I": "豫U8H261"}.get(sc.key, "冀B7Q351"),
        driver_name="王师傅", driver_phone="13900000000", note="演示：上午到厂",
    )  # fmt: skip
    deal = Deal.objects.get(pk=deal.pk)
    if deal.hazardous:
        deals.manifest_create(
            actor=buyer_user, deal=deal, transporter_name="济源市安达危险品运输有限公司",
            transporter_licence="豫交运管许可济字 419001000123号", vehicle_plate="豫U8H261",
            shipped_on=timezone.localdate(), packaging="托盘缠绕膜包装",
        )  # fmt: skip
        deals.manifest_confirm(actor=seller_user, deal=deal, role="generator")
        deals.manifest_confirm(actor=buyer_user, deal=deal, role="transporter")
        deals.manifest_confirm(actor=buyer_user, deal=deal, role="receiver")
    if goal == DealStatus.PICKUP_SCHEDULED:
        return deal
    weigher = seller_user if sc.weigher == "seller" else buyer_user
    tare = D("18.400") if D(sc.net) > 100 else D("8.200")
    deals.weighing_record(
        actor=weigher, deal=deal, ticket_no=f"BD{deal.pk:05d}", gross_t=D(sc.net) + tare, tare_t=tare,
        ticket=_png(f"WEIGHBRIDGE TICKET BD{deal.pk:05d} NET {sc.net} t"),
    )  # fmt: skip
    deal = Deal.objects.get(pk=deal.pk)
    if goal == DealStatus.WEIGHED:
        return deal
    if goal == DealStatus.DISPUTED:
        deals.deal_dispute(
            actor=seller_user,
            deal=deal,
            reason="我方地磅复核净重 4,962 吨，买方磅单偏低 6%，请平台核对两张磅单。",
        )
        return Deal.objects.get(pk=deal.pk)
    if deal.status == DealStatus.WEIGHED:  # more than was paid: the buyer tops up the difference
        deal = _pay(deal, buyer_user, seller_user)
    if goal == DealStatus.SETTLED:
        return deal
    deals.deal_confirm(actor=buyer_user, deal=deal)  # receipt: the deal completes
    deal = Deal.objects.get(pk=deal.pk)
    deals.rating_create(actor=buyer_user, deal=deal, score=5, comment="装车及时，磅差在允差内，票据齐全。")
    deals.rating_create(actor=seller_user, deal=deal, score=4, comment="付款及时，车辆按预约时间到厂。")
    return deal


def demo_deals_load(progress=None) -> int:
    """Create the demo deals that are missing (idempotent); returns how many were new."""
    from frontend.demo import _user

    now = timezone.now()
    operator, _created = _user("operator", "平台运营 值班员", staff=True)
    created = 0
    for n, sc in enumerate(SCENARIOS, 1):
        if progress:
            progress(n)
        if Lot.objects.filter(title=sc.title).exists():
            continue
        seller, buyer = _org(sc.seller), _org(sc.buyer)
        if seller is None or buyer is None or not Category.objects.filter(code=sc.category).exists():
            continue
        seller_user, buyer_user = _trader(seller), _trader(buyer)
        with transaction.atomic():
            lot = _lot(sc, seller, random.Random(f"{SEED}-{sc.key}"), now)
            deal = _award(sc, lot, seller_user, buyer, buyer_user)
            deal = _walk(sc, deal, seller_user=seller_user, buyer_user=buyer_user, operator=operator)
            if deal.status != sc.goal:
                raise RuntimeError(f"demo deal {sc.key} ended {deal.status}, not {sc.goal}")
        created += 1
    return created
