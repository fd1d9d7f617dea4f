"""Wanted listings (requests for quotation), sellers' offers, and saved-search alerts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from listings.models import SavedSearchHit, WantedOffer
from listings.services import lot_create, lot_submit
from listings.tasks import saved_searches_alert
from tests.factories import COUNTY_SUZHOU, make_organisation, make_user
from tests.listings import test_lots

pytestmark = pytest.mark.django_db

categories = test_lots.categories  # the shared fixture
lot_payload = test_lots.lot_payload


@pytest.fixture
def parties():
    buyer_admin, seller_admin = make_user(), make_user()
    buyer = make_organisation(role="recycler", admin=buyer_admin, region=COUNTY_SUZHOU)
    seller = make_organisation(role="generator", admin=seller_admin)
    return buyer, buyer_admin, seller, seller_admin


def wanted_payload(**overrides):
    data = {
        "category": "zz.scrap",
        "title": "长期求购重型废钢",
        "quantity": "2000",
        "unit": "t",
        "region": "130000",
        "price_min": "2300",
        "price_max": "2600",
        "deadline": (timezone.now() + timedelta(days=7)).isoformat(),
    }
    data.update(overrides)
    return data


def test_recycler_posts_a_wanted_listing_and_sellers_offer(api, categories, parties):
    buyer, buyer_admin, seller, seller_admin = parties
    api.force_authenticate(buyer_admin)
    response = api.post("/api/v1/wanted/", wanted_payload(), format="json")
    assert response.status_code == 201, response.json()
    wanted_id = response.json()["id"]

    # Sellers find it by category and by the region the goods come from.
    api.force_authenticate(seller_admin)
    assert [w["id"] for w in api.get("/api/v1/wanted/?category=zz").json()] == [wanted_id]
    assert [
        w["id"] for w in api.get("/api/v1/wanted/?region=130203").json()
    ] == []  # wants Hebei, not one county
    assert [w["id"] for w in api.get("/api/v1/wanted/?region=130000").json()] == [wanted_id]
    assert api.get("/api/v1/wanted/?region=999999").json()["code"] == "region_unknown"

    response = api.post(
        f"/api/v1/wanted/{wanted_id}/offers/", {"quantity": "500", "unit_price": "2450"}, format="json"
    )
    assert response.status_code == 201, response.json()
    response = api.post(
        f"/api/v1/wanted/{wanted_id}/offers/", {"quantity": "500", "unit_price": "2400"}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "offer_exists"

    # The buyer sees the offers; another seller sees none of them.
    api.force_authenticate(buyer_admin)
    assert [o["unit_price"] for o in api.get(f"/api/v1/wanted/{wanted_id}/offers/").json()] == ["2450.00"]
    other = make_user()
    make_organisation(role="generator", admin=other)
    api.force_authenticate(other)
    assert api.get(f"/api/v1/wanted/{wanted_id}/offers/").json() == []


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"quantity": "0"}, "quantity", "not_positive"),
        ({"price_min": "3000", "price_max": "2000"}, "price_max", "range_order"),
        ({"unit": "piece"}, "unit", "unit_mismatch"),
        ({"region": "999999"}, "region", "region_unknown"),
        ({"deadline": "2020-01-01T00:00:00+08:00"}, "deadline", "date_past"),
    ],
)
def test_wanted_bad_input(api, categories, parties, overrides, field, code):
    buyer, buyer_admin, *_ = parties
    api.force_authenticate(buyer_admin)
    response = api.post("/api/v1/wanted/", wanted_payload(**overrides), format="json")
    assert response.status_code == 400
    assert response.json()["fields"][field][0]["code"] == code


def test_a_generator_cannot_post_wanted_and_a_buyer_cannot_offer_to_itself(api, categories, parties):
    buyer, buyer_admin, seller, seller_admin = parties
    api.force_authenticate(seller_admin)
    assert api.post("/api/v1/wanted/", wanted_payload(), format="json").status_code == 403
    api.force_authenticate(buyer_admin)
    wanted_id = api.post("/api/v1/wanted/", wanted_payload(), format="json").json()["id"]
    response = api.post(
        f"/api/v1/wanted/{wanted_id}/offers/", {"quantity": "1", "unit_price": "1"}, format="json"
    )
    assert response.status_code == 403  # a recycler-only organisation does not sell
    assert not WantedOffer.objects.exists()


def test_saved_search_alert_is_sent_once_per_new_lot(
    api, categories, parties, mailoutbox, django_capture_on_commit_callbacks
):
    buyer, buyer_admin, seller, seller_admin = parties
    api.force_authenticate(buyer_admin)
    response = api.post(
        "/api/v1/saved-searches/",
        {"name": "河北重废", "query": {"category": "zz", "region": "130000"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    response = api.post(
        "/api/v1/saved-searches/", {"name": "坏条件", "query": {"region": "999999"}}, format="json"
    )
    assert response.status_code == 400

    lot = lot_create(
        actor=seller_admin,
        organisation=seller,
        **{
            **lot_payload(),
            "available_from": timezone.localdate(),
            "pickup_by": timezone.localdate() + timedelta(days=9),
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        lot_submit(actor=seller_admin, lot=lot)
    from listings.search import get_backend

    get_backend().index_lots([lot.pk])  # the indexing task, run inline
    with django_capture_on_commit_callbacks(execute=True):
        assert saved_searches_alert(lot_id=lot.pk) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert saved_searches_alert(lot_id=lot.pk) == 0  # a retried task announces nothing twice
    assert SavedSearchHit.objects.count() == 1


def test_a_lot_outside_the_saved_search_sends_nothing(api, categories, parties):
    buyer, buyer_admin, seller, seller_admin = parties
    api.force_authenticate(buyer_admin)
    api.post(
        "/api/v1/saved-searches/",
        {"name": "江苏重废", "query": {"category": "zz", "region": "320000"}},
        format="json",
    )
    lot = lot_create(
        actor=seller_admin,
        organisation=seller,
        **{
            **lot_payload(),
            "available_from": timezone.localdate(),
            "pickup_by": timezone.localdate() + timedelta(days=9),
        },
    )
    lot_submit(actor=seller_admin, lot=lot)
    from listings.search import get_backend

    get_backend().index_lots([lot.pk])
    assert saved_searches_alert(lot_id=lot.pk) == 0
