"""A small trading floor: a verified steel mill with a published lot of heavy scrap, and verified
recyclers in two provinces, each with a trader; helpers to put the lot on sale and to bid."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from listings.models import Category, Lot, LotStatus
from market.accounts.models import MemberRole, Organisation
from market.trading import services
from tests.factories import COUNTY_SUZHOU, COUNTY_TANGSHAN, make_member, make_organisation, make_user


def published_lot(
    seller: Organisation, *, category="ferrous.heavy", quantity="500", title="唐山重废 500 吨"
) -> Lot:
    cat = Category.objects.get(code=category)
    today = timezone.localdate()
    return Lot.objects.create(
        seller=seller,
        category=cat,
        title=title,
        quantity=Decimal(quantity),
        unit=cat.unit,
        region_id=seller.region_id,
        address="厂区内",
        available_from=today,
        pickup_by=today + timedelta(days=30),
        hazardous=cat.hazardous,
        status=LotStatus.PUBLISHED,
        published_at=timezone.now(),
    )


@dataclass
class Party:
    org: Organisation
    user: object
    client: APIClient = field(default_factory=APIClient)

    def __post_init__(self):
        self.client.force_authenticate(self.user)

    def act_as(self, user) -> None:
        """The party's client acts for ``user`` now, signed in or by API token as it was."""
        self.user = user
        if self.client._credentials.get("HTTP_AUTHORIZATION"):
            by_token(self)
        else:
            self.client.force_authenticate(user)

    def bid(self, lot, amount, maximum=None, key=None):
        body = {"amount": str(amount)}
        if maximum is not None:
            body["maximum"] = str(maximum)
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return self.client.post(f"/api/v1/lots/{lot.pk}/bids/", body, format="json", **headers)


@dataclass
class Floor:
    seller: Party
    buyers: list[Party]
    lot: Lot

    def sale(self, mode="auction", lot=None, **terms):
        lot = lot or self.lot
        now = timezone.now()
        defaults = {
            "auction": {"start_price": "2000", "increment_amount": "10"},
            "tender": {"start_price": "1800"},
            "fixed": {"fixed_price": "2300", "min_quantity": "50"},
            "quotation": {},
        }[mode]
        values = {"ends_at": now + timedelta(hours=1), **defaults, **terms}
        return services.sale_configure(actor=self.seller.user, lot=lot, mode=mode, **values)


def make_due(sale) -> None:
    """Move a sale's end into the past (and its start before it), as if its time had run out."""
    from market.trading.models import Sale

    now = timezone.now()
    Sale.objects.filter(pk=sale.pk).update(
        starts_at=now - timedelta(hours=1), closes_at=now - timedelta(seconds=1)
    )


def close_now(sale) -> str:
    make_due(sale)
    return services.sale_close(sale_id=sale.pk)


def by_token(party: Party) -> Party:
    """The party's client sends an API token instead of being signed in (bids then go through the
    bid gateway: ``market.trading.gateway``)."""
    from rest_framework.authtoken.models import Token

    party.client.force_authenticate(None)
    party.client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=party.user)[0].key}"
    )
    return party


def make_party(*, role="recycler", region=COUNTY_SUZHOU, **org_kwargs) -> Party:
    user = make_user()
    org = make_organisation(role=role, region=region, **org_kwargs)
    make_member(org, role=MemberRole.TRADER, user=user)
    return Party(org=org, user=user)


@pytest.fixture
def floor(db) -> Floor:
    seller = make_party(role="generator", region=COUNTY_TANGSHAN, name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"回收利用{i}号有限公司") for i in range(4)]
    return Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))
