"""Deals on the trading floor of tests/trading: an auction run to its award through the trading
services, so the award signal makes the deal exactly as it does in production; a hazardous floor
whose buyers hold a verified hazardous-waste licence; helpers that walk a deal through payment,
pickup and weighing."""

import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from market.accounts.models import LicenceKind
from market.accounts.services import licence_add, licence_decide
from market.deals import services as deals
from market.deals.models import Deal, DealStatus, PaymentMethod
from market.trading import services as trading
from tests.factories import COUNTY_TANGSHAN
from tests.trading.conftest import Floor, Party, close_now, make_party, published_lot

HAZARDOUS_CATEGORY = "batteries.lead_acid"  # 废铅酸蓄电池, HW31
HAZARDOUS_HW = "HW31"


def png_bytes(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (20, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


def png_upload(name="slip.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png_bytes(), content_type="image/png")


def licence_give(party: Party, operator, *, hw_codes=(HAZARDOUS_HW,), number=None, days=365):
    """A hazardous-waste licence uploaded by the party's trader and verified by an operator."""
    today = timezone.localdate()
    licence = licence_add(
        actor=party.user,
        organisation=party.org,
        kind=LicenceKind.HAZARDOUS_WASTE,
        number=number or f"HW-{party.org.pk:06d}",
        issuer="江苏省生态环境厅",
        valid_from=today - timedelta(days=30),
        valid_to=today + timedelta(days=days),
        hw_codes=list(hw_codes),
        annual_capacity_t=5000,
        document=png_upload("licence.png"),
    )
    return licence_decide(actor=operator, licence=licence, decision="verify")


@dataclass
class DealFloor:
    floor: Floor
    operator: object

    @property
    def seller(self) -> Party:
        return self.floor.seller

    @property
    def buyers(self) -> list[Party]:
        return self.floor.buyers

    def deal_of(self, *, bids=((0, "2000"),), lot=None, deposit_amount=None, **terms) -> Deal:
        """Run an auction on ``lot`` (the floor's 500 t of heavy scrap by default) to its award:
        ``bids`` are (buyer index, amount) placed in order through trading's ``bid_place``; with
        ``deposit_amount`` every bidder's deposit is created and confirmed by the operator first."""
        lot = lot or self.floor.lot
        if deposit_amount is not None:
            terms["deposit_amount"] = deposit_amount
        sale = self.floor.sale(lot=lot, **terms)
        bidders = list(dict.fromkeys(i for i, _amount in bids))
        if deposit_amount is not None:
            for i in bidders:
                party = self.buyers[i]
                deposit = trading.deposit_create(actor=party.user, organisation=party.org, lot_id=lot.pk)
                trading.deposit_confirm(actor=self.operator, deposit=deposit, reference=f"ICBC-{i}")
        for i, amount in bids:
            party = self.buyers[i]
            trading.bid_place(actor=party.user, organisation=party.org, lot_id=lot.pk, amount=amount)
        assert close_now(sale) == "closed"
        return Deal.objects.get(award__sale=sale)

    def party(self, deal: Deal, side: str) -> Party:
        org_id = deal.buyer_id if side == "buyer" else deal.seller_id
        for p in [self.seller, *self.buyers]:
            if p.org.pk == org_id:
                return p
        raise LookupError(org_id)

    def buyer_of(self, deal: Deal) -> Party:
        return self.party(deal, "buyer")

    def pay(self, deal: Deal, *, confirmer=None) -> Deal:
        """The buyer pays what is due by bank transfer and the seller (or ``confirmer``) confirms."""
        buyer = self.buyer_of(deal)
        payment = deals.payment_start(actor=buyer.user, deal=deal, method=PaymentMethod.BANK_TRANSFER)
        payment = deals.payment_slip_submit(actor=buyer.user, payment=payment, slip=png_upload())
        deals.payment_confirm(actor=confirmer or self.seller.user, payment=payment)
        deal.refresh_from_db()
        return deal

    def book_pickup(self, deal: Deal, *, date=None) -> Deal:
        deals.pickup_book(
            actor=self.buyer_of(deal).user, deal=deal, date=date or max(deal.pickup_from, timezone.localdate()),
            vehicle_plate="冀b12345", driver_name="李四", driver_phone="13800000000",
        )  # fmt: skip
        deal.refresh_from_db()
        assert deal.status == DealStatus.PICKUP_SCHEDULED
        return deal

    def weigh(self, deal: Deal, net: str, *, by="seller", tare="20.000", ticket_no="BD-001") -> Deal:
        tare_t = Decimal(tare)
        deals.weighing_record(
            actor=self.party(deal, by).user, deal=deal, ticket_no=ticket_no,
            gross_t=Decimal(net) + tare_t, tare_t=tare_t,
        )  # fmt: skip
        deal.refresh_from_db()
        return deal


@pytest.fixture
def floor(db):
    seller = make_party(role="generator", region=COUNTY_TANGSHAN, name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"回收利用{i}号有限公司") for i in range(3)]
    return Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))


@pytest.fixture
def market(floor, operator) -> DealFloor:
    return DealFloor(floor=floor, operator=operator)


@pytest.fixture
def deal_of(market):
    """``deal_of(bids=..., deposit_amount=..., lot=..., **sale terms)`` -> the awarded Deal."""
    return market.deal_of


@pytest.fixture
def awarded_deal(market) -> Deal:
    """Buyer 0 wins the 500 t at ¥2,000/t: a ¥1,000,000 deal awaiting payment."""
    return market.deal_of()


@pytest.fixture
def hazardous(market) -> DealFloor:
    """The floor with a lot of 30 t of waste lead-acid batteries (HW31); buyers 0 and 1 hold a
    verified hazardous-waste licence covering HW31."""
    for party in market.buyers[:2]:
        licence_give(party, market.operator)
    market.floor.lot = published_lot(
        market.seller.org, category=HAZARDOUS_CATEGORY, quantity="30", title="废铅酸蓄电池 30 吨"
    )
    return market
