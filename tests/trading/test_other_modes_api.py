"""Sealed tenders, fixed price and quotations through /api/v1/."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from listings.models import LotStatus, OfferStatus, WantedListing, WantedOffer, WantedStatus
from market.trading.models import Award, Bid, LotOfferStatus, SaleStatus
from tests.trading.conftest import close_now, make_party

pytestmark = pytest.mark.django_db


def test_sealed_bids_are_unreadable_by_everyone_else_until_the_close(floor, operator):
    a, b, c = floor.buyers[:3]
    sale = floor.sale("tender", start_price="1800", min_bidders=2)
    assert a.bid(floor.lot, 2350).status_code == 201
    assert b.bid(floor.lot, 2400).status_code == 201
    r = a.bid(floor.lot, 2450)  # a revision: a new row, the latest counts
    assert r.status_code == 201 and r.json()["you"]["tender_bid"] == "2450.00"
    assert r.json()["current_price"] is None and r.json()["bid_count"] == 2 and r.json()["bidder_count"] == 2

    ops = c.client.__class__()
    ops.force_authenticate(operator)
    viewers = {"other bidder": b.client, "seller": floor.seller.client, "stranger": c.client, "operator": ops}
    for who, client in viewers.items():
        bids = client.get(f"/api/v1/lots/{floor.lot.pk}/bids/").json()["results"]
        state = client.get(f"/api/v1/lots/{floor.lot.pk}/state/").json()
        text = str(bids) + str(state)
        assert "2450" not in text and "2350" not in text, who
        if who == "other bidder":
            assert [x["amount"] for x in bids] == ["2400.00"]
        else:
            assert bids == []
    assert b.bid(floor.lot, 1700).json()["code"] == "bid_too_low"  # under the start price

    assert close_now(sale) == "closed"
    award = Award.objects.get()
    assert (award.buyer, award.unit_price, award.source) == (a.org, Decimal("2450.00"), "tender")
    bids = c.client.get(f"/api/v1/lots/{floor.lot.pk}/bids/").json()["results"]
    assert sorted(x["amount"] for x in bids) == ["2350.00", "2400.00", "2450.00"]  # open after the close


def test_a_tender_with_too_few_bidders_fails_and_the_lot_can_be_relisted(floor):
    sale = floor.sale("tender", min_bidders=2)
    floor.buyers[0].bid(floor.lot, 2000)
    assert close_now(sale) == "failed"
    sale.refresh_from_db()
    floor.lot.refresh_from_db()
    assert sale.status == SaleStatus.FAILED and sale.fail_reason == "too_few_bidders"
    assert floor.lot.status == LotStatus.EXPIRED and "流标" in floor.lot.status_reason
    assert not Award.objects.exists()
    assert floor.seller.client.post(f"/api/v1/lots/{floor.lot.pk}/relist/").status_code == 200


def test_fixed_price_sells_part_or_all_and_never_more_than_exists(floor):
    a, b = floor.buyers[:2]
    sale = floor.sale("fixed", fixed_price="2300", min_quantity="50")
    url = f"/api/v1/lots/{floor.lot.pk}/buy/"
    r = a.client.post(url, {"quantity": "30"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "quantity_below_minimum"
    r = a.client.post(url, {"quantity": "200"}, format="json")
    assert r.status_code == 201 and r.json()["amount"] == "460000.00" and r.json()["source"] == "fixed"
    r = b.client.post(url, {"quantity": "301"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_remaining"
    state = b.client.get(f"/api/v1/lots/{floor.lot.pk}/state/").json()
    assert state["quantity_remaining"] == "300.000"
    r = b.client.post(url, {"quantity": "300"}, format="json")
    assert r.status_code == 201
    sale.refresh_from_db()
    floor.lot.refresh_from_db()
    assert sale.status == SaleStatus.CLOSED and floor.lot.status == LotStatus.CLOSED
    assert sum(aw.quantity for aw in Award.objects.all()) == Decimal("500")
    assert a.client.post(url, {"quantity": "50"}, format="json").json()["code"] == "not_on_sale"


def test_fixed_price_when_less_than_the_minimum_remains_the_rest_may_be_taken(floor):
    a, b = floor.buyers[:2]
    floor.sale("fixed", fixed_price="2300", min_quantity="200")
    url = f"/api/v1/lots/{floor.lot.pk}/buy/"
    assert a.client.post(url, {"quantity": "200"}, format="json").status_code == 201
    assert a.client.post(url, {"quantity": "200"}, format="json").status_code == 201
    assert b.client.post(url, {"quantity": "100"}, format="json").status_code == 201  # all that is left


def test_a_quotation_accepted_by_the_seller_becomes_the_award(floor):
    a, b = floor.buyers[:2]
    floor.sale("quotation")
    r = a.client.post(
        "/api/v1/offers/", {"lot": floor.lot.pk, "quantity": "500", "unit_price": "2280"}, format="json"
    )
    assert r.status_code == 201
    offer_a = r.json()["id"]
    r = b.client.post(
        "/api/v1/offers/", {"lot": floor.lot.pk, "quantity": "500", "unit_price": "2310"}, format="json"
    )
    offer_b = r.json()["id"]
    # buyers see only their own quotation; the seller sees all
    assert [o["id"] for o in a.client.get("/api/v1/offers/").json()["results"]] == [offer_a]
    assert {o["id"] for o in floor.seller.client.get("/api/v1/offers/").json()["results"]} == {
        offer_a,
        offer_b,
    }
    assert a.client.post(f"/api/v1/offers/{offer_b}/accept/").status_code == 403  # only the seller accepts
    r = floor.seller.client.post(f"/api/v1/offers/{offer_b}/accept/")
    assert r.status_code == 201 and r.json()["unit_price"] == "2310.00" and r.json()["buyer"] == b.org.pk
    from market.trading.models import LotOffer

    assert LotOffer.objects.get(pk=offer_a).status == LotOfferStatus.LAPSED
    r = floor.seller.client.post(f"/api/v1/offers/{offer_a}/accept/")
    assert r.status_code == 409 and r.json()["code"] == "not_on_sale"


def test_a_recycler_accepts_a_sellers_answer_to_its_wanted_listing(floor):
    buyer = floor.buyers[0]
    wanted = WantedListing.objects.create(
        buyer=buyer.org, category_id="ferrous.heavy", title="求购重废 1000 吨", quantity=Decimal("1000"), unit="t",
        price_min=Decimal("2200"), price_max=Decimal("2500"), deadline=timezone.now() + timedelta(days=3),
    )  # fmt: skip
    offer = WantedOffer.objects.create(
        wanted=wanted, seller=floor.seller.org, quantity=Decimal("800"), unit_price=Decimal("2380")
    )
    other = WantedOffer.objects.create(
        wanted=wanted,
        seller=make_party(role="generator").org,
        quantity=Decimal("300"),
        unit_price=Decimal("2400"),
    )
    url = f"/api/v1/wanted/{wanted.pk}/offers/{offer.pk}/accept/"
    assert floor.seller.client.post(url).status_code == 403
    r = buyer.client.post(url, HTTP_IDEMPOTENCY_KEY="accept-1")
    assert (
        r.status_code == 201 and r.json()["amount"] == "1904000.00" and r.json()["source"] == "wanted_offer"
    )
    assert buyer.client.post(url, HTTP_IDEMPOTENCY_KEY="accept-1").json() == r.json()
    assert Award.objects.count() == 1
    wanted.refresh_from_db()
    other.refresh_from_db()
    assert wanted.status == WantedStatus.CLOSED and other.status == OfferStatus.DECLINED
    assert buyer.client.post(url).json()["code"] == "not_open"


def test_bids_are_immutable_rows(floor):
    floor.sale()
    floor.buyers[0].bid(floor.lot, 2000)
    bid = Bid.objects.get()
    bid.amount = Decimal("1")
    with pytest.raises(PermissionError):
        bid.save()
    with pytest.raises(PermissionError):
        bid.delete()
