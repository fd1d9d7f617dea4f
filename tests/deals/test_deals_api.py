"""The deals API as a buyer, a seller, an operator, a government office and a stranger use it."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from market.deals.models import Deal, LedgerEntry, LedgerKind
from market.trading import services as trading
from tests.trading.conftest import close_now


def png(name="slip.png") -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, format="PNG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/png")


@pytest.fixture
def deal(floor):
    sale = floor.sale("auction")
    buyer = floor.buyers[0]
    trading.bid_place(actor=buyer.user, organisation=buyer.org, lot_id=floor.lot.pk, amount=Decimal("2100"))
    close_now(sale)
    return Deal.objects.get(award__sale=sale)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_only_the_parties_and_operators_see_a_deal(floor, deal, operator):
    buyer, seller, stranger = floor.buyers[0], floor.seller, floor.buyers[1]
    assert buyer.client.get(f"/api/v1/deals/{deal.pk}/").json()["your_party"] == "buyer"
    assert seller.client.get(f"/api/v1/deals/{deal.pk}/").json()["your_party"] == "seller"
    assert api(operator).get(f"/api/v1/deals/{deal.pk}/").status_code == 200
    assert stranger.client.get(f"/api/v1/deals/{deal.pk}/").status_code == 404
    assert (
        stranger.client.post(f"/api/v1/deals/{deal.pk}/payments/", {"method": "bank_transfer"}).status_code
        == 404
    )
    assert stranger.client.get("/api/v1/deals/").json()["count"] == 0
    assert buyer.client.get("/api/v1/deals/").json()["results"][0]["number"] == deal.number
    assert APIClient().get(f"/api/v1/deals/{deal.pk}/").status_code in (401, 403)


@pytest.mark.django_db
def test_a_whole_deal_through_the_api_with_a_bank_transfer(floor, deal):
    buyer, seller = floor.buyers[0], floor.seller
    url = f"/api/v1/deals/{deal.pk}"
    detail = buyer.client.get(f"{url}/").json()
    assert detail["status"] == "awaiting_payment" and detail["next_steps"][0]["code"] == "pay"
    assert detail["balance"]["due"] == str(deal.amount) and "fee" not in detail["balance"]

    started = buyer.client.post(f"{url}/payments/", {"method": "bank_transfer"}, HTTP_IDEMPOTENCY_KEY="pay-1")
    assert started.status_code == 201, started.json()
    payment = started.json()
    assert payment["bank"]["reference"].startswith("FK") and payment["amount"] == str(deal.amount)
    replay = buyer.client.post(f"{url}/payments/", {"method": "bank_transfer"}, HTTP_IDEMPOTENCY_KEY="pay-1")
    assert replay.json()["id"] == payment["id"] and replay["Idempotent-Replayed"] == "true"

    slip = buyer.client.post(
        f"{url}/payments/{payment['id']}/slip/",
        {"slip": png(), "reference": "ICBC-778812"},
        format="multipart",
    )
    assert slip.status_code == 200 and slip.json()["status"] == "submitted"
    # The buyer cannot confirm its own transfer; the seller can.
    assert buyer.client.post(f"{url}/payments/{payment['id']}/confirm/").status_code == 403
    assert seller.client.post(f"{url}/payments/{payment['id']}/confirm/").json()["status"] == "succeeded"
    assert buyer.client.get(f"{url}/").json()["status"] == "paid"

    day = deal.pickup_from + timedelta(days=1)
    late = buyer.client.post(
        f"{url}/pickups/", {"date": str(deal.pickup_by + timedelta(days=1)), "vehicle_plate": "苏E12345",
                            "driver_name": "王师傅", "driver_phone": "13800000000"},
    )  # fmt: skip
    assert late.status_code == 400 and late.json()["code"] == "pickup_date"
    booked = buyer.client.post(
        f"{url}/pickups/",
        {
            "date": str(day),
            "vehicle_plate": "苏e12345",
            "driver_name": "王师傅",
            "driver_phone": "13800000000",
        },
    )
    assert booked.status_code == 201 and booked.json()["vehicle_plate"] == "苏E12345"

    # 500 t contracted, 497.5 t on the weighbridge: within 2 %, so the deal settles at once.
    weighed = seller.client.post(
        f"{url}/weighings/",
        {"ticket_no": "BD-0091", "gross_t": "532.500", "tare_t": "35.000", "ticket": png("ticket.png")},
        format="multipart",
    )
    assert weighed.status_code == 201, weighed.json()
    assert weighed.json()["status"] == "accepted" and weighed.json()["net_t"] == "497.500"
    settled = seller.client.get(f"{url}/").json()
    final = (Decimal("497.5") * Decimal("2100")).quantize(Decimal("0.01"))
    assert settled["status"] == "settled" and settled["final_amount"] == str(final)
    assert Decimal(settled["balance"]["fee"]) + Decimal(settled["balance"]["payout"]) == final
    refund = LedgerEntry.objects.filter(deal=deal, kind=LedgerKind.REFUND)
    assert not refund.exists()  # the overpayment is promised (pending transfer), not yet moved
    assert Decimal(settled["balance"]["paid"]) == final

    # Rating waits for completion; the buyer confirms receipt, then both rate once.
    assert buyer.client.post(f"{url}/ratings/", {"score": 5}).json()["code"] == "deal_state"
    assert buyer.client.post(f"{url}/confirm/").json()["status"] == "completed"
    assert buyer.client.post(f"{url}/ratings/", {"score": 5, "comment": "货好，称准"}).status_code == 201
    assert buyer.client.post(f"{url}/ratings/", {"score": 4}).json()["code"] == "already_rated"
    assert buyer.client.post(f"{url}/ratings/", {"score": 9}).status_code == 400
    assert seller.client.post(f"{url}/ratings/", {"score": 4}).status_code == 201

    trace = APIClient().get(f"/api/v1/trace/{settled['trace_code']}/").json()
    assert trace["verified"] is True
    events = [e["event"] for e in trace["entries"]]
    assert events[:3] == ["listed", "closed", "awarded"]
    assert {"paid", "weighed", "settled", "completed"} <= set(events)


@pytest.mark.django_db
def test_a_weighing_beyond_tolerance_needs_the_other_side_and_a_dispute_goes_to_an_operator(
    floor, deal, operator
):
    buyer, seller = floor.buyers[0], floor.seller
    url = f"/api/v1/deals/{deal.pk}"
    payment = buyer.client.post(f"{url}/payments/", {"method": "bank_transfer"}).json()
    operator = api(operator)
    assert operator.post(f"{url}/payments/{payment['id']}/confirm/").status_code == 200
    buyer.client.post(
        f"{url}/pickups/",
        {"date": str(deal.pickup_from), "vehicle_plate": "苏E1", "driver_name": "李", "driver_phone": "1"},
    )
    # 460 t against 500 t: 8 % short.
    weighed = buyer.client.post(f"{url}/weighings/", {"ticket_no": "B-2", "gross_t": "480", "tare_t": "20"})
    assert weighed.json()["status"] == "awaiting"
    assert buyer.client.post(f"{url}/confirm/").json()["code"] == "own_weighing"
    steps = [s["code"] for s in seller.client.get(f"{url}/").json()["next_steps"]]
    assert "confirm_weight" in steps
    disputed = seller.client.post(f"{url}/dispute/", {"reason": "我方地磅 498 吨，差异过大"})
    assert disputed.json()["status"] == "disputed"
    assert (
        seller.client.post(f"{url}/dispute/resolve/", {"decision": "weight", "reason": "x"}).status_code
        == 403
    )
    resolved = operator.post(
        f"{url}/dispute/resolve/",
        {"decision": "weight", "net_t": "495.000", "against": "buyer", "reason": "复磅 495 吨，以复磅为准"},
    )
    assert resolved.status_code == 200, resolved.json()
    body = resolved.json()
    assert body["status"] == "settled" and body["final_quantity"] == "495.000"


@pytest.mark.django_db
def test_a_government_office_reads_hazardous_deals_of_its_jurisdiction_only(floor, deal):
    from market.accounts.models import GovernmentOffice, GovernmentOfficer
    from tests.factories import make_user

    officer = make_user()
    office = GovernmentOffice.objects.create(
        name="唐山市生态环境局", jurisdiction_id=deal.region_id[:4] + "00"
    )
    GovernmentOfficer.objects.create(user=officer, office=office)
    client = api(officer)
    assert client.get(f"/api/v1/deals/{deal.pk}/").status_code == 404  # not hazardous
    Deal.objects.filter(pk=deal.pk).update(hazardous=True, hw_code="HW08")
    assert client.get(f"/api/v1/deals/{deal.pk}/").status_code == 200
    assert client.post(f"/api/v1/deals/{deal.pk}/dispute/", {"reason": "x"}).status_code == 404  # read only


@pytest.mark.django_db
def test_bad_input_is_refused_with_codes(floor, deal):
    buyer = floor.buyers[0]
    url = f"/api/v1/deals/{deal.pk}"
    assert buyer.client.post(f"{url}/payments/", {"method": "cash"}).status_code == 400
    bad = buyer.client.post(f"{url}/weighings/", {"ticket_no": "X", "gross_t": "10", "tare_t": "20"})
    assert bad.status_code == 400 and bad.json()["code"] == "weighing_values"
    early = buyer.client.post(f"{url}/weighings/", {"ticket_no": "X", "gross_t": "30", "tare_t": "20"})
    assert early.status_code == 409 and early.json()["code"] == "deal_state"
    assert buyer.client.post(f"{url}/manifest/", {"transporter_name": "x", "transporter_licence": "y",
                                                 "vehicle_plate": "z", "shipped_on": str(timezone.localdate())}
                             ).json()["code"] == "not_hazardous"  # fmt: skip
    assert APIClient().get("/api/v1/trace/NOSUCHCODE/").status_code == 404


@pytest.mark.django_db
def test_the_database_itself_refuses_to_rewrite_the_ledger(floor, deal):
    from django.db import IntegrityError, connection, transaction

    buyer = floor.buyers[0]
    payment = buyer.client.post(f"/api/v1/deals/{deal.pk}/payments/", {"method": "bank_transfer"}).json()
    floor.seller.client.post(f"/api/v1/deals/{deal.pk}/payments/{payment['id']}/confirm/")
    entry = LedgerEntry.objects.get(deal=deal, kind=LedgerKind.PAYMENT)
    for sql in (
        "UPDATE deals_ledgerentry SET amount = 1 WHERE id = %s",
        "DELETE FROM deals_ledgerentry WHERE id = %s",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount == deal.amount


@pytest.mark.django_db
def test_an_operator_reverses_a_settled_trade_and_its_price_fact_is_voided(
    floor, deal, operator, django_capture_on_commit_callbacks
):
    from pricing.models import TradeFact

    buyer, seller = floor.buyers[0], floor.seller
    url = f"/api/v1/deals/{deal.pk}"
    payment = buyer.client.post(f"{url}/payments/", {"method": "bank_transfer"}).json()
    seller.client.post(f"{url}/payments/{payment['id']}/confirm/")
    buyer.client.post(
        f"{url}/pickups/",
        {"date": str(deal.pickup_from), "vehicle_plate": "苏E1", "driver_name": "李", "driver_phone": "1"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        seller.client.post(f"{url}/weighings/", {"ticket_no": "B-9", "gross_t": "520", "tare_t": "20"})
    fact = TradeFact.objects.get(trade_id=f"deal:{deal.pk}")
    assert fact.quantity_t == Decimal("500.000") and fact.unit_price == Decimal("2100.00")
    assert seller.client.post(f"{url}/reverse/", {"reason": "虚假交易"}).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(operator).post(f"{url}/reverse/", {"reason": "经核查为虚假交易"})
    assert answer.status_code == 200
    fact.refresh_from_db()
    assert fact.voided_at is not None and fact.void_reason == "经核查为虚假交易"
