"""Two organisations, A and B, each with a trader login and an API token, and a third one, C, to
trade with: B owns one private object of every kind the API serves (a draft lot with a photo, a
sealed tender bid, a deposit, a deal with a bank-transfer slip, a licence with its scan, an
invitation, a saved search, a notification, a wanted listing with an offer, a quotation with an
offer). A is the stranger who must be refused all of it.

Built through the same services users go through (tests/factories.py, tests/trading/conftest.py,
tests/deals/conftest.py), so the objects are the ones production makes."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from listings import services as listings
from listings.models import Lot, LotMedia, SavedSearch, WantedListing, WantedOffer
from market.accounts import services as accounts
from market.accounts.models import Invitation, Licence, LicenceKind, MemberRole, Membership, Organisation
from market.core.models import Notification
from market.core.notify import notify_users
from market.deals import services as deals
from market.deals.models import Deal, Payment, PaymentMethod
from market.trading import services as trading
from market.trading.models import Bid, Deposit, LotOffer
from tests.deals.conftest import DealFloor, png_upload
from tests.factories import COUNTY_SUZHOU, COUNTY_TANGSHAN, make_member, make_user
from tests.trading.conftest import Floor, Party, make_party, published_lot

# B's sealed tender bids: amounts nobody else may ever read before the close.
SEALED_ON_A_LOT = "1987.65"  # B's bid on A's own tender (A is the seller)
SEALED_ON_C_LOT = "1876.54"  # B's bid on C's tender, which A bids on too
# Strings only B's private objects carry: none may reach A.
B_SECRETS = ("B-私有搜索-7731", "B-私人通知-5519", "B-求购私信-2280", "B-询价私信-4417")


@dataclass
class Login:
    party: Party
    token: str
    client: APIClient = field(default_factory=APIClient)

    def __post_init__(self):
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")

    @property
    def user(self):
        return self.party.user

    @property
    def org(self) -> Organisation:
        return self.party.org


def login_for(party: Party) -> Login:
    token, _ = Token.objects.get_or_create(user=party.user)
    return Login(party=party, token=token.key)


@dataclass
class World:
    a: Login
    b: Login
    c: Party
    operator: object
    b_admin: object
    # B's private objects
    b_draft_lot: Lot
    b_draft_media: LotMedia
    b_published_lot: Lot
    b_published_media: LotMedia
    b_membership: Membership
    b_invitation: Invitation
    b_licence: Licence
    b_saved_search: SavedSearch
    b_notification: Notification
    b_wanted: WantedListing
    b_wanted_offer: WantedOffer  # C's offer to B's wanted listing: only B may accept it
    b_quotation_lot: Lot
    b_lot_offer: LotOffer  # C's quotation on B's lot: only B may accept it
    b_deposit: Deposit
    b_deal: Deal  # C sold to B; A is no party to it
    b_payment: Payment  # B's bank transfer with its slip, awaiting confirmation
    b_sealed_bids: list[Bid]
    # lots where B's sealed bids are
    a_tender_lot: Lot
    c_tender_lot: Lot
    # A's own objects, for the fuzzing of part (b)
    a_draft_lot: Lot
    a_deal: Deal | None = None

    def b_rows(self) -> dict:
        """B's private objects as stored now (to prove that a refused request changed nothing)."""
        from django.forms.models import model_to_dict

        rows = {}
        for name, obj in vars(self).items():
            if name.startswith("b_") and hasattr(obj, "_meta") and hasattr(obj, "pk"):
                fresh = type(obj).objects.filter(pk=obj.pk).first()
                rows[name] = None if fresh is None else model_to_dict(fresh)
        for i, bid in enumerate(self.b_sealed_bids):
            fresh = Bid.objects.filter(pk=bid.pk).first()
            rows[f"b_sealed_bid_{i}"] = None if fresh is None else model_to_dict(fresh)
        rows["b_org"] = model_to_dict(Organisation.objects.get(pk=self.b.org.pk))
        return rows


def build_world() -> World:
    operator = make_user(email="operator-apisec@market.test", is_staff=True)
    a = make_party(role="both", region=COUNTY_SUZHOU, name="甲方再生资源有限公司")
    b = make_party(role="both", region=COUNTY_TANGSHAN, name="乙方钢铁再生有限公司")
    c = make_party(role="both", region=COUNTY_SUZHOU, name="丙方物资有限公司")
    # B's trader is the member whose role A must not change; B's admin invites.
    b_admin = make_member(b.org, role=MemberRole.ADMIN).user
    b_membership = Membership.objects.get(user=b.user, organisation=b.org)
    today = timezone.localdate()

    # --- listings: a draft with a photo, a published lot with a photo -----------------------
    b_draft_lot = listings.lot_create(
        actor=b.user, organisation=b.org, category="ferrous.heavy", title="乙方草稿 重废 80 吨",
        quantity="80", unit="t", region=COUNTY_TANGSHAN, address="乙方厂区 3 号门",
        available_from=today, pickup_by=today + timedelta(days=20),
    )  # fmt: skip
    b_draft_media = listings.lot_media_add(actor=b.user, lot=b_draft_lot, file=png_upload("draft.png"))
    b_published_lot = published_lot(b.org, title="乙方已发布 重废 300 吨", quantity="300")
    b_published_media = listings.lot_media_add(
        actor=b.user, lot=b_published_lot, file=png_upload("published.png")
    )

    # --- accounts: an invitation, a licence with its scan ------------------------------------
    b_invitation = accounts.member_invite(
        actor=b_admin, organisation=b.org, email="newcomer-b@market.test", role=MemberRole.TRADER
    )
    b_licence = accounts.licence_add(
        actor=b.user, organisation=b.org, kind=LicenceKind.HAZARDOUS_WASTE, number="HW-B-000001",
        issuer="河北省生态环境厅", valid_from=today - timedelta(days=10), valid_to=today + timedelta(days=300),
        hw_codes=["HW31"], annual_capacity_t=1000, document=png_upload("licence-b.png"),
    )  # fmt: skip

    # --- a saved search and a notification of B's trader ------------------------------------
    b_saved_search = listings.saved_search_create(
        actor=b.user, organisation=b.org, name=B_SECRETS[0], query={"q": "废铜"}
    )
    notify_users([b.user.pk], title=B_SECRETS[1], body="只给乙方", email=False, kind="deal")
    b_notification = Notification.objects.get(user=b.user, title=B_SECRETS[1])

    # --- B's wanted listing with C's offer ----------------------------------------------------
    b_wanted = listings.wanted_create(
        actor=b.user, organisation=b.org, category="ferrous.heavy", title="乙方求购重废",
        quantity="50", unit="t", deadline=timezone.now() + timedelta(days=5),
    )  # fmt: skip
    b_wanted_offer = listings.offer_create(
        actor=c.user, wanted=b_wanted, organisation=c.org, quantity="50", unit_price="2100",
        message=B_SECRETS[2],
    )  # fmt: skip

    # --- B's lot sold by request for quotation, with C's quotation ----------------------------
    b_quotation_lot = published_lot(b.org, title="乙方询价 重废 100 吨", quantity="100")
    trading.sale_configure(
        actor=b.user, lot=b_quotation_lot, mode="quotation", ends_at=timezone.now() + timedelta(hours=2)
    )
    b_lot_offer = trading.lot_offer_create(
        actor=c.user, organisation=c.org, lot_id=b_quotation_lot.pk, quantity="100", unit_price="2050",
        message=B_SECRETS[3],
    )  # fmt: skip

    # --- sealed tenders: A's own lot and C's lot, B bids on both -----------------------------
    a_tender_lot = published_lot(a.org, title="甲方招标 重废 200 吨", quantity="200")
    trading.sale_configure(
        actor=a.user, lot=a_tender_lot, mode="tender", start_price="1800",
        ends_at=timezone.now() + timedelta(hours=3),
    )  # fmt: skip
    c_tender_lot = published_lot(c.org, title="丙方招标 重废 150 吨", quantity="150")
    trading.sale_configure(
        actor=c.user, lot=c_tender_lot, mode="tender", start_price="1700",
        ends_at=timezone.now() + timedelta(hours=3),
    )  # fmt: skip
    trading.bid_place(
        actor=b.user, organisation=b.org, lot_id=a_tender_lot.pk, amount=Decimal(SEALED_ON_A_LOT)
    )
    trading.bid_place(actor=a.user, organisation=a.org, lot_id=c_tender_lot.pk, amount=Decimal("1750.00"))
    trading.bid_place(
        actor=b.user, organisation=b.org, lot_id=c_tender_lot.pk, amount=Decimal(SEALED_ON_C_LOT)
    )
    b_sealed_bids = list(Bid.objects.filter(organisation=b.org))

    # --- a deposit B asked to pay on C's auction ----------------------------------------------
    c_deposit_lot = published_lot(c.org, title="丙方拍卖 需保证金", quantity="120")
    trading.sale_configure(
        actor=c.user, lot=c_deposit_lot, mode="auction", start_price="2000", increment_amount="10",
        deposit_amount="5000", ends_at=timezone.now() + timedelta(hours=4),
    )  # fmt: skip
    b_deposit = trading.deposit_create(actor=b.user, organisation=b.org, lot_id=c_deposit_lot.pk)

    # --- a deal: C sells to B, B pays by bank transfer and uploads the slip -------------------
    market = DealFloor(
        floor=Floor(seller=c, buyers=[b, a], lot=published_lot(c.org, title="丙方拍卖 成交给乙方")),
        operator=operator,
    )
    b_deal = market.deal_of(bids=((0, "2000"),))
    payment = deals.payment_start(actor=b.user, deal=b_deal, method=PaymentMethod.BANK_TRANSFER)
    b_payment = deals.payment_slip_submit(actor=b.user, payment=payment, slip=png_upload("slip-b.png"))

    # --- A's own things (the fuzzer of part (b) acts on them) ---------------------------------
    a_draft_lot = listings.lot_create(
        actor=a.user, organisation=a.org, category="ferrous.heavy", title="甲方草稿 重废 60 吨",
        quantity="60", unit="t", region=COUNTY_SUZHOU, address="甲方厂区",
        available_from=today, pickup_by=today + timedelta(days=20),
    )  # fmt: skip
    a_market = DealFloor(
        floor=Floor(seller=c, buyers=[a], lot=published_lot(c.org, title="丙方拍卖 成交给甲方")),
        operator=operator,
    )
    a_deal = a_market.deal_of(bids=((0, "2000"),))

    return World(
        a=login_for(a), b=login_for(b), c=c, operator=operator, b_admin=b_admin,
        b_draft_lot=b_draft_lot, b_draft_media=b_draft_media, b_published_lot=b_published_lot,
        b_published_media=b_published_media, b_membership=b_membership, b_invitation=b_invitation,
        b_licence=b_licence, b_saved_search=b_saved_search, b_notification=b_notification,
        b_wanted=b_wanted, b_wanted_offer=b_wanted_offer, b_quotation_lot=b_quotation_lot,
        b_lot_offer=b_lot_offer, b_deposit=b_deposit, b_deal=b_deal, b_payment=b_payment,
        b_sealed_bids=b_sealed_bids, a_tender_lot=a_tender_lot, c_tender_lot=c_tender_lot,
        a_draft_lot=a_draft_lot, a_deal=a_deal,
    )  # fmt: skip
