"""An award's life as a deal, through the services the API calls: the contract, bank-transfer
payment and the deposit, pickup, weighing and its tolerance, disputes, the hazardous-waste
manifest, settlement and its ledger, defaults and the runner-up, ratings, credit and the trace."""

import io
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.utils import timezone

from market.accounts.models import Licence, Organisation
from market.deals import rules, selectors
from market.deals import services as deals
from market.deals.models import (
    Deal,
    DealStatus,
    LedgerEntry,
    LedgerImmutable,
    LedgerKind,
    ManifestStatus,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Rating,
    Refund,
    RefundStatus,
    TraceEntry,
    WeighingStatus,
)
from market.deals.receivers import award_to_deal
from market.deals.services import DealRefused
from market.trading import services as trading
from market.trading.models import Award, AwardSource, Deposit, DepositStatus
from market.trading.signals import award_created
from pricing.models import TradeFact
from tests.deals.conftest import HAZARDOUS_HW, png_upload
from tests.trading.conftest import close_now, published_lot

pytestmark = pytest.mark.django_db

D = Decimal


@contextmanager
def refused(code: str):
    with pytest.raises(DealRefused) as info:
        yield info
    assert info.value.code == code, (info.value.code, str(info.value.detail))


def ledger(deal, kind) -> list[Decimal]:
    return list(LedgerEntry.objects.filter(deal=deal, kind=kind).values_list("amount", flat=True))


def ledger_sum(deal, kind) -> Decimal:
    return LedgerEntry.objects.filter(deal=deal, kind=kind).aggregate(s=Sum("amount"))["s"] or D("0")


def events(deal) -> list[str]:
    return list(
        TraceEntry.objects.filter(chain=deal.trace_chain).order_by("index").values_list("event", flat=True)
    )


def bank_payment(deal, party):
    return deals.payment_start(actor=party.user, deal=deal, method=PaymentMethod.BANK_TRANSFER)


# --- award -> deal ----------------------------------------------------------------------------


def test_an_award_makes_exactly_one_deal(market, awarded_deal):
    deal = awarded_deal
    award = deal.award
    buyer = market.buyers[0]
    assert Deal.objects.count() == 1 and Award.objects.count() == 1
    assert (deal.seller_id, deal.buyer_id) == (market.seller.org.pk, buyer.org.pk)
    assert deal.status == DealStatus.AWAITING_PAYMENT
    assert (deal.quantity, deal.unit, deal.unit_price, deal.amount) == (
        D("500"),
        "t",
        D("2000"),
        D("1000000"),
    )
    assert deal.number == f"HT{timezone.localdate():%Y%m%d}{deal.pk:06d}"
    expected_pay_by = timezone.now() + timedelta(days=3)
    assert abs(deal.pay_by - expected_pay_by) < timedelta(minutes=1)
    assert deal.pickup_from == timezone.localdate() and deal.pickup_by >= market.floor.lot.pickup_by
    assert not deal.hazardous and deal.deposit is None
    assert events(deal) == ["listed", "closed", "awarded"]
    # The buyer is told what to pay, and by when.
    assert buyer.user.notifications.filter(title__contains=deal.number).exists()
    # Making it again (a retried hook) changes nothing.
    assert deals.deal_from_award(award) == deal
    assert Deal.objects.count() == 1 and len(events(deal)) == 3


def test_the_sweep_makes_a_deal_for_an_award_without_one_once(market):
    buyer = market.buyers[1]
    assert award_created.disconnect(dispatch_uid="deals.award_created")  # as if the hook had failed
    try:
        sale = market.floor.sale()
        trading.bid_place(actor=buyer.user, organisation=buyer.org, lot_id=market.floor.lot.pk, amount="2000")
        assert close_now(sale) == "closed"
    finally:
        award_created.connect(award_to_deal, dispatch_uid="deals.award_created")
    award = Award.objects.get(sale=sale)
    assert not Deal.objects.exists()

    counts = deals.deals_sweep()
    assert counts["created"] == 1
    deal = Deal.objects.get(award=award)
    assert deal.buyer_id == buyer.org.pk and deal.amount == D("1000000.00")
    assert events(deal) == ["listed", "closed", "awarded"]

    assert deals.deals_sweep()["created"] == 0
    assert Deal.objects.count() == 1


# --- payment ----------------------------------------------------------------------------------


def test_bank_transfer_confirmed_by_the_seller_pays_the_deal_once(market, awarded_deal):
    deal = awarded_deal
    buyer, other = market.buyers[0], market.buyers[1]
    with pytest.raises(PermissionDenied):
        bank_payment(deal, other)  # not the buyer
    payment = bank_payment(deal, buyer)
    assert (payment.status, payment.amount, payment.purpose) == (
        PaymentStatus.PENDING,
        D("1000000.00"),
        PaymentPurpose.DEAL,
    )
    assert payment.reference == f"FK{payment.pk:08d}"
    assert bank_payment(deal, buyer) == payment  # a retry returns the payment already started

    payment = deals.payment_slip_submit(
        actor=buyer.user, payment=payment, slip=png_upload(), reference=" ICBC 42 "
    )
    payment.refresh_from_db()
    assert (
        payment.status == PaymentStatus.SUBMITTED
        and payment.bank_serial == "ICBC 42"
        and payment.reference.startswith("FK")
    )
    assert payment.slip.name.startswith("payments/") and payment.slip.name.endswith(".png")
    with refused("payment_state"):
        deals.payment_slip_submit(actor=buyer.user, payment=payment, slip=png_upload())

    # Neither another organisation nor the buyer itself can say the money arrived.
    for party in (other, buyer):
        with pytest.raises(PermissionDenied):
            deals.payment_confirm(actor=party.user, payment=payment)
    deal.refresh_from_db()
    assert deal.status == DealStatus.AWAITING_PAYMENT and not ledger(deal, LedgerKind.PAYMENT)

    deals.payment_confirm(actor=market.seller.user, payment=payment)
    payment.refresh_from_db()
    deal.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.confirmed_by == market.seller.user
    assert deal.status == DealStatus.PAID and deal.paid_at is not None
    assert ledger(deal, LedgerKind.PAYMENT) == [D("1000000.00")]
    assert events(deal)[-1] == "paid"
    balance = selectors.deal_balance(deal)
    assert (balance.paid, balance.due) == (D("1000000.00"), D("0.00"))

    # The money arriving twice (a retried webhook, a double click) is one ledger row.
    deals.payment_succeeded(payment_id=payment.pk)
    deals.payment_succeeded(payment_id=payment.pk)
    assert ledger(deal, LedgerKind.PAYMENT) == [D("1000000.00")]
    with refused("payment_state"):
        deals.payment_confirm(actor=market.operator, payment=payment)
    with refused("deal_state"):
        bank_payment(deal, buyer)


def test_an_operator_may_confirm_a_transfer(market, awarded_deal):
    deal = market.pay(awarded_deal, confirmer=market.operator)
    assert deal.status == DealStatus.PAID
    assert Payment.objects.get(deal=deal).confirmed_by == market.operator


def test_the_winners_paid_deposit_is_applied_to_the_price(market, deal_of):
    deal = deal_of(bids=((0, "2000"), (1, "2010")), deposit_amount="50000")
    winner, loser = market.buyers[1], market.buyers[0]
    assert deal.buyer_id == winner.org.pk and deal.amount == D("1005000.00")
    deposit = Deposit.objects.get(organisation=winner.org)
    assert deal.deposit == deposit and deposit.status == DepositStatus.PAID
    # The loser's deposit went back when the sale closed.
    lost = Deposit.objects.get(organisation=loser.org)
    assert lost.status == DepositStatus.RELEASED
    assert LedgerEntry.objects.filter(deposit=lost, kind=LedgerKind.DEPOSIT_RELEASE).count() == 1

    assert deals.deal_due(deal) == D("955000.00")
    payment = bank_payment(deal, winner)
    assert payment.amount == D("955000.00")
    deals.payment_slip_submit(actor=winner.user, payment=payment, slip=png_upload())
    deals.payment_confirm(actor=market.seller.user, payment=payment)

    deal.refresh_from_db()
    deposit.refresh_from_db()
    assert deal.status == DealStatus.PAID
    assert deposit.status == DepositStatus.APPLIED
    assert ledger(deal, LedgerKind.PAYMENT) == [D("955000.00")]
    assert ledger(deal, LedgerKind.DEPOSIT_APPLY) == [D("50000.00")]
    assert deals.deal_paid_total(deal) == deal.amount and deals.deal_due(deal) == 0
    assert [e.kind for e in selectors.deal_ledger(deal)] == [
        LedgerKind.DEPOSIT_HOLD,
        LedgerKind.PAYMENT,
        LedgerKind.DEPOSIT_APPLY,
    ]


# --- pickup and weighing ----------------------------------------------------------------------


def test_pickup_only_after_payment_and_inside_the_window(market, awarded_deal):
    deal = awarded_deal
    buyer = market.buyers[0]
    today = timezone.localdate()
    book = {"vehicle_plate": "冀B12345", "driver_name": "李四", "driver_phone": "13800000000"}
    with refused("deal_state"):
        deals.pickup_book(actor=buyer.user, deal=deal, date=today, **book)
    deal = market.pay(deal)
    with pytest.raises(DealRefused) as info:
        deals.pickup_book(actor=market.seller.user, deal=deal, date=today, **book)
    assert info.value.code == "not_party"
    for day in (today - timedelta(days=1), deal.pickup_by + timedelta(days=1)):
        with refused("pickup_date") as info:
            deals.pickup_book(actor=buyer.user, deal=deal, date=day, **book)
        assert info.value.status_code == 400 and deal.pickup_by.isoformat() in str(info.value.detail)
    deal.refresh_from_db()
    assert deal.status == DealStatus.PAID and not deal.pickups.exists()

    pickup = deals.pickup_book(actor=buyer.user, deal=deal, date=deal.pickup_by, **book)
    deal.refresh_from_db()
    assert deal.status == DealStatus.PICKUP_SCHEDULED and pickup.vehicle_plate == "冀B12345"
    # Rebooking another day keeps the deal scheduled.
    deals.pickup_book(actor=buyer.user, deal=deal, date=today, **book)
    deal.refresh_from_db()
    assert deal.status == DealStatus.PICKUP_SCHEDULED and deal.pickups.count() == 2


def test_weighing_within_tolerance_settles_at_once(market, awarded_deal, django_capture_on_commit_callbacks):
    deal = market.book_pickup(market.pay(awarded_deal))
    with refused("weighing_values"):
        deals.weighing_record(
            actor=market.seller.user, deal=deal, ticket_no="X", gross_t=D("10"), tare_t=D("10")
        )
    with refused("not_party"):
        deals.weighing_record(
            actor=market.buyers[1].user, deal=deal, ticket_no="X", gross_t=D("520"), tare_t=D("20")
        )
    with django_capture_on_commit_callbacks(execute=True):
        deals.weighing_record(
            actor=market.seller.user, deal=deal, ticket_no="BD-7", gross_t=D("538.400"), tare_t=D("38.400"),
            ticket=png_upload("ticket.png"),
        )  # fmt: skip
    deal.refresh_from_db()
    weighing = deal.weighings.get()
    assert weighing.status == WeighingStatus.ACCEPTED and weighing.net_t == D("500.000")
    assert weighing.ticket.name.endswith(".png")
    assert deal.status == DealStatus.SETTLED and deal.settled_at is not None
    assert (deal.net_tonnes, deal.final_quantity, deal.final_amount) == (D("500"), D("500"), D("1000000"))
    assert ledger(deal, LedgerKind.FEE) == [D("5000.00")]  # 0.5 %
    assert ledger(deal, LedgerKind.PAYOUT) == [D("995000.00")]
    assert not Refund.objects.filter(deal=deal).exists()
    fact = TradeFact.objects.get(trade_id=f"deal:{deal.pk}")
    assert (fact.quantity_t, fact.unit_price, fact.amount) == (D("500.000"), D("2000.00"), D("1000000.00"))
    assert fact.category_id == "ferrous.heavy" and fact.seller_uscc == market.seller.org.uscc
    assert events(deal)[-3:] == ["picked_up", "weighed", "settled"]


def test_a_refused_price_fact_never_fails_the_settlement(
    market, awarded_deal, django_capture_on_commit_callbacks, monkeypatch
):
    import pricing.services

    def refuse(**kwargs):
        raise ValidationError({"county_code": "not a county"})

    monkeypatch.setattr(pricing.services, "trade_record", refuse)
    deal = market.book_pickup(market.pay(awarded_deal))
    with django_capture_on_commit_callbacks(execute=True):
        deal = market.weigh(deal, "500")
    assert deal.status == DealStatus.SETTLED and not TradeFact.objects.exists()


def test_a_lighter_load_within_tolerance_settles_with_a_refund_promised(market, awarded_deal):
    deal = market.weigh(market.book_pickup(market.pay(awarded_deal)), "495.500", by="buyer")
    assert deal.status == DealStatus.SETTLED
    assert deal.final_amount == D("991000.00")
    refund = Refund.objects.get(deal=deal)
    assert refund.amount == D("9000.00") and refund.status == RefundStatus.PENDING
    assert selectors.deal_balance(deal).paid == D("991000.00")


def test_beyond_tolerance_the_other_party_confirms_and_the_buyer_tops_up(market, awarded_deal):
    deal = market.book_pickup(market.pay(awarded_deal))
    buyer = market.buyers[0]
    deal = market.weigh(deal, "530", by="seller")  # 6 % heavier
    weighing = deal.weighings.get()
    assert weighing.status == WeighingStatus.AWAITING and weighing.difference == D("0.0600")
    assert deal.status == DealStatus.WEIGHED and deal.final_amount is None
    assert ("confirm_weight", "过磅结果超出允差，请确认或提出异议。") in selectors.next_steps(deal, "buyer")
    with refused("own_weighing"):
        deals.deal_confirm(actor=market.seller.user, deal=deal)
    with refused("nothing_due"):
        bank_payment(deal, buyer)  # nothing is due until the weight is agreed

    deals.deal_confirm(actor=buyer.user, deal=deal)
    deal.refresh_from_db()
    weighing.refresh_from_db()
    assert weighing.status == WeighingStatus.CONFIRMED
    assert deal.status == DealStatus.WEIGHED  # heavier: the buyer owes the difference
    assert (deal.final_quantity, deal.final_amount) == (D("530"), D("1060000"))
    assert deals.deal_due(deal) == D("60000.00")

    top_up = bank_payment(deal, buyer)
    assert (top_up.purpose, top_up.amount) == (PaymentPurpose.TOP_UP, D("60000.00"))
    deals.payment_slip_submit(actor=buyer.user, payment=top_up, slip=png_upload())
    deals.payment_confirm(actor=market.seller.user, payment=top_up)
    deal.refresh_from_db()
    assert deal.status == DealStatus.SETTLED
    assert sorted(ledger(deal, LedgerKind.PAYMENT)) == [D("60000.00"), D("1000000.00")]
    assert ledger_sum(deal, LedgerKind.FEE) + ledger_sum(deal, LedgerKind.PAYOUT) == D("1060000.00")


def test_beyond_tolerance_lighter_confirmed_means_a_refund(market, awarded_deal):
    deal = market.book_pickup(market.pay(awarded_deal))
    deal = market.weigh(deal, "450", by="buyer")  # 10 % lighter, recorded by the buyer
    with refused("own_weighing"):
        deals.deal_confirm(actor=market.buyers[0].user, deal=deal)
    deals.deal_confirm(actor=market.seller.user, deal=deal)
    deal.refresh_from_db()
    assert deal.status == DealStatus.SETTLED and deal.final_amount == D("900000.00")
    refund = Refund.objects.get(deal=deal)
    assert refund.amount == D("100000.00") and refund.payment.deal == deal

    # A bank-transfer refund is made by an operator who marks it done: then it is a ledger row.
    deals.refund_succeeded(refund_id=refund.pk, actor=market.operator)
    deals.refund_succeeded(refund_id=refund.pk, actor=market.operator)
    assert ledger(deal, LedgerKind.REFUND) == [D("100000.00")]


def test_a_dispute_is_decided_by_an_operator_and_counts_against_the_loser(market, awarded_deal):
    deal = market.book_pickup(market.pay(awarded_deal))
    deal = market.weigh(deal, "450", by="seller")
    buyer = market.buyers[0]
    with pytest.raises(Exception):  # noqa: B017 - a reason is required
        deals.deal_dispute(actor=buyer.user, deal=deal, reason="  ")
    deals.deal_dispute(actor=buyer.user, deal=deal, reason="磅单与我方过磅不符")
    deal.refresh_from_db()
    assert deal.status == DealStatus.DISPUTED
    assert deal.weighings.get().status == WeighingStatus.DISPUTED
    with pytest.raises(PermissionDenied):
        deals.dispute_resolve(
            actor=market.seller.user,
            deal=deal,
            decision="weight",
            reason="x",
            net_t=D("480"),
            against="seller",
        )

    deals.dispute_resolve(
        actor=market.operator, deal=deal, decision="weight", reason="复磅净重 480 吨，卖方磅单有误",
        net_t=D("480"), against="seller",
    )  # fmt: skip
    deal.refresh_from_db()
    assert deal.status == DealStatus.SETTLED
    assert (deal.final_quantity, deal.final_amount) == (D("480"), D("960000.00"))
    assert Refund.objects.get(deal=deal).amount == D("40000.00")
    assert ledger_sum(deal, LedgerKind.FEE) + ledger_sum(deal, LedgerKind.PAYOUT) == D("960000.00")
    assert deal.weighings.order_by("-id").first().decided_against == "seller"

    seller, buyer_org = market.seller.org, buyer.org
    assert selectors.credit_record(seller.pk).disputes_lost == 1
    assert selectors.credit_record(buyer_org.pk).disputes_lost == 0
    deals.credit_refresh(organisation_id=seller.pk)
    deals.credit_refresh(organisation_id=buyer_org.pk)
    seller.refresh_from_db()
    buyer_org.refresh_from_db()
    # Both did their part on time (+0.5); the seller lost the dispute (-5).
    assert (buyer_org.credit_score, seller.credit_score) == (81, 76)


def test_a_dispute_cancelled_returns_all_the_buyers_money_with_the_applied_deposit(market, deal_of):
    deal = deal_of(bids=((0, "2000"),), deposit_amount="50000")
    deal = market.book_pickup(market.pay(deal))
    assert Deposit.objects.get(pk=deal.deposit_id).status == DepositStatus.APPLIED
    deals.deal_dispute(actor=market.seller.user, deal=deal, reason="卖方无法按约交货")
    with pytest.raises(ValidationError):
        deals.dispute_resolve(
            actor=market.operator, deal=deal, decision="weight", reason="x", net_t=D("480"), against="nobody"
        )
    deals.dispute_resolve(actor=market.operator, deal=deal, decision="cancel", reason="双方协商取消")
    deal.refresh_from_db()
    assert deal.status == DealStatus.CANCELLED
    # The ¥950,000 transferred and the ¥50,000 deposit applied to the price all go back.
    assert Refund.objects.filter(deal=deal).aggregate(s=Sum("amount"))["s"] == D("1000000.00")
    assert selectors.deal_balance(deal).paid == D("0.00")
    for refund in Refund.objects.filter(deal=deal):
        deals.refund_succeeded(refund_id=refund.pk, actor=market.operator)
    received = ledger_sum(deal, LedgerKind.PAYMENT) + ledger_sum(deal, LedgerKind.DEPOSIT_APPLY)
    assert received == ledger_sum(deal, LedgerKind.REFUND) == D("1000000.00")


# --- hazardous waste --------------------------------------------------------------------------


def test_a_hazardous_deal_settles_only_with_a_completed_manifest(
    hazardous, django_capture_on_commit_callbacks
):
    market = hazardous
    deal = market.deal_of()
    buyer = market.buyers[0]
    assert deal.hazardous and deal.hw_code == HAZARDOUS_HW and deal.amount == D("60000.00")
    deal = market.weigh(market.book_pickup(market.pay(deal)), "30")
    # The weight is agreed and paid for, but without a manifest the deal does not settle.
    assert deal.status == DealStatus.WEIGHED and deal.final_amount == D("60000.00")
    assert ("manifest", "危险废物须填写转移联单后才能结算。") in selectors.next_steps(deal, "buyer")

    licence = Licence.objects.get(organisation=buyer.org)
    Licence.objects.filter(pk=licence.pk).update(hw_codes=["HW08"])  # now it does not cover HW31
    form = {
        "transporter_name": "苏州危运物流有限公司",
        "transporter_licence": "苏交运管许可危字 320500000001",
        "vehicle_plate": "苏e88888",
        "shipped_on": timezone.localdate(),
    }
    with refused("licence_missing") as info:
        deals.manifest_create(actor=buyer.user, deal=deal, **form)
    assert info.value.status_code == 403 and HAZARDOUS_HW in str(info.value.detail)
    Licence.objects.filter(pk=licence.pk).update(hw_codes=[HAZARDOUS_HW])

    manifest = deals.manifest_create(actor=buyer.user, deal=deal, **form)
    assert (
        manifest.number.startswith(f"ZY{timezone.localdate():%Y%m%d}")
        and manifest.status == ManifestStatus.OPEN
    )
    assert (manifest.hw_code, manifest.quantity_t, manifest.receiver_licence) == (
        HAZARDOUS_HW,
        D("30.000"),
        licence.number,
    )
    assert manifest.vehicle_plate == "苏E88888"
    with refused("manifest_exists"):
        deals.manifest_create(actor=buyer.user, deal=deal, **form)

    with refused("not_party"):
        deals.manifest_confirm(actor=buyer.user, deal=deal, role="generator")  # the seller generates it
    deals.manifest_confirm(actor=market.seller.user, deal=deal, role="generator")
    deals.manifest_confirm(actor=buyer.user, deal=deal, role="transporter")
    deal.refresh_from_db()
    assert deal.status == DealStatus.WEIGHED
    with django_capture_on_commit_callbacks(execute=True):
        manifest = deals.manifest_confirm(actor=buyer.user, deal=deal, role="receiver")
    assert manifest.status == ManifestStatus.COMPLETED and manifest.received_on == timezone.localdate()
    deal.refresh_from_db()
    assert deal.status == DealStatus.SETTLED
    assert TradeFact.objects.filter(trade_id=f"deal:{deal.pk}").exists()
    assert "manifest_completed" in events(deal)


def test_a_non_hazardous_deal_needs_no_manifest(market, awarded_deal):
    deal = market.pay(awarded_deal)
    with refused("not_hazardous"):
        deals.manifest_create(
            actor=market.buyers[0].user, deal=deal, transporter_name="x", transporter_licence="y",
            vehicle_plate="z", shipped_on=timezone.localdate(),
        )  # fmt: skip


# --- defaults and the runner-up ---------------------------------------------------------------


def test_unpaid_past_pay_by_defaults_and_forfeits_the_deposit(market, deal_of):
    deal = deal_of(bids=((0, "2000"),), deposit_amount="50000")
    buyer = market.buyers[0]
    started = bank_payment(deal, buyer)  # started, never paid
    assert deals.deals_sweep(now=deal.pay_by - timedelta(minutes=1))["defaulted"] == 0

    counts = deals.deals_sweep(now=deal.pay_by + timedelta(minutes=1))
    assert counts["defaulted"] == 1
    deal.refresh_from_db()
    deposit = Deposit.objects.get(pk=deal.deposit_id)
    started.refresh_from_db()
    assert deal.status == DealStatus.DEFAULTED and deal.defaulted_by == "buyer"
    assert deposit.status == DepositStatus.FORFEITED
    assert ledger(deal, LedgerKind.DEPOSIT_FORFEIT) == [D("50000.00")]
    assert started.status == PaymentStatus.CANCELLED
    assert not Refund.objects.filter(deal=deal).exists()
    assert events(deal)[-1] == "defaulted"
    # Sweeping again changes nothing.
    assert deals.deals_sweep(now=deal.pay_by + timedelta(days=1))["defaulted"] == 0
    assert ledger(deal, LedgerKind.DEPOSIT_FORFEIT) == [D("50000.00")]
    assert selectors.credit_record(buyer.org.pk).defaults == 1


def test_a_transfer_submitted_before_pay_by_is_not_a_default(market, awarded_deal):
    deal = awarded_deal
    buyer = market.buyers[0]
    payment = bank_payment(deal, buyer)
    deals.payment_slip_submit(actor=buyer.user, payment=payment, slip=png_upload())
    assert deals.deals_sweep(now=deal.pay_by + timedelta(hours=2))["defaulted"] == 0
    deal.refresh_from_db()
    assert deal.status == DealStatus.AWAITING_PAYMENT
    deals.payment_confirm(actor=market.seller.user, payment=payment)  # the seller checks the bank late
    deal.refresh_from_db()
    assert deal.status == DealStatus.PAID
    # A slip the operator finds false is failed; then the deadline counts.
    other = market.deal_of(lot=published_lot(market.seller.org), bids=((1, "2000"),))
    payment = bank_payment(other, market.buyers[1])
    deals.payment_slip_submit(actor=market.buyers[1].user, payment=payment, slip=png_upload())
    deals.payment_failed(payment_id=payment.pk, message="查无此笔到账")
    assert deals.deals_sweep(now=other.pay_by + timedelta(hours=2))["defaulted"] == 1
    other.refresh_from_db()
    assert other.status == DealStatus.DEFAULTED


def test_not_collected_by_pickup_by_defaults_keeping_the_applied_deposit(market, deal_of):
    deal = market.pay(deal_of(bids=((0, "2000"),), deposit_amount="50000"))
    later = timezone.make_aware(
        timezone.datetime.combine(deal.pickup_by + timedelta(days=1), timezone.datetime.min.time())
    )
    assert deals.deals_sweep(now=later)["defaulted"] == 1
    deal.refresh_from_db()
    assert deal.status == DealStatus.DEFAULTED
    assert ledger(deal, LedgerKind.DEPOSIT_FORFEIT) == [D("50000.00")]
    assert Refund.objects.get(deal=deal).amount == D("950000.00")  # the rest of the price goes back


def test_the_seller_offers_the_lot_to_the_runner_up(market, deal_of):
    deal = deal_of(bids=((0, "2000"), (1, "2010"), (2, "2020")))
    assert deal.buyer_id == market.buyers[2].org.pk
    with refused("deal_state"):
        deals.runner_up_offer(actor=market.seller.user, deal=deal)
    deals.deals_sweep(now=deal.pay_by + timedelta(minutes=1))
    deal.refresh_from_db()
    assert deal.status == DealStatus.DEFAULTED
    with refused("not_party"):
        deals.runner_up_offer(actor=market.buyers[1].user, deal=deal)

    award = deals.runner_up_offer(actor=market.seller.user, deal=deal)
    assert award.source == AwardSource.RUNNER_UP and award.buyer_id == market.buyers[1].org.pk
    assert (award.unit_price, award.amount) == (D("2010.00"), D("1005000.00"))
    second = Deal.objects.get(award=award)
    assert second.status == DealStatus.AWAITING_PAYMENT and second.buyer_id == market.buyers[1].org.pk
    assert second.amount == D("1005000.00") and second.trace_chain_id == deal.trace_chain_id
    assert Deal.objects.count() == 2
    with refused("no_runner_up"):
        deals.runner_up_offer(actor=market.seller.user, deal=deal)
    # The new buyer can pay the new deal.
    second = market.pay(second)
    assert second.status == DealStatus.PAID


def test_a_buyer_buying_twice_at_a_fixed_price_has_its_deposit_applied_once(market):
    buyer = market.buyers[0]
    lot = market.floor.lot
    market.floor.sale(mode="fixed", deposit_amount="20000")
    deposit = trading.deposit_create(actor=buyer.user, organisation=buyer.org, lot_id=lot.pk)
    trading.deposit_confirm(actor=market.operator, deposit=deposit)
    first = trading.buy(actor=buyer.user, organisation=buyer.org, lot_id=lot.pk, quantity="100")
    second = trading.buy(actor=buyer.user, organisation=buyer.org, lot_id=lot.pk, quantity="100")
    first, second = Deal.objects.get(award=first), Deal.objects.get(award=second)
    assert first.amount == second.amount == D("230000.00")
    assert first.deposit_id == deposit.pk and second.deposit_id is None
    assert deals.deal_due(first) == D("210000.00") and deals.deal_due(second) == D("230000.00")

    first = market.pay(first)
    assert first.status == DealStatus.PAID
    assert ledger(first, LedgerKind.DEPOSIT_APPLY) == [D("20000.00")]
    second = market.pay(second)
    assert second.status == DealStatus.PAID and ledger(second, LedgerKind.PAYMENT) == [D("230000.00")]
    assert not ledger(second, LedgerKind.DEPOSIT_APPLY)


# --- the ledger -------------------------------------------------------------------------------


def test_ledger_rows_cannot_be_changed_or_deleted(market, awarded_deal):
    deal = market.pay(awarded_deal)
    entry = LedgerEntry.objects.get(deal=deal, kind=LedgerKind.PAYMENT)
    entry.amount = D("1.00")
    with pytest.raises(LedgerImmutable):
        entry.save()
    with pytest.raises(LedgerImmutable):
        entry.delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == D("1000000.00")


@pytest.mark.parametrize(("net", "heavier"), [("480", False), ("495", False), ("505", True), ("530", True)])
def test_the_ledger_balances_at_settlement(market, deal_of, net, heavier):
    deal = deal_of(bids=((0, "2000"), (1, "2010")), deposit_amount="50000")
    winner = market.buyer_of(deal)
    deal = market.weigh(market.book_pickup(market.pay(deal)), net, by="buyer")
    if deal.weighings.filter(status=WeighingStatus.AWAITING).exists():  # beyond tolerance
        deals.deal_confirm(actor=market.seller.user, deal=deal)
        deal.refresh_from_db()
    if heavier:
        assert deal.status == DealStatus.WEIGHED
        top_up = bank_payment(deal, winner)
        deals.payment_confirm(actor=market.operator, payment=top_up)
        deal.refresh_from_db()
    assert deal.status == DealStatus.SETTLED
    for refund in Refund.objects.filter(deal=deal):
        deals.refund_succeeded(refund_id=refund.pk, actor=market.operator)

    final = deal.final_amount
    assert final == (D(net) * D("2010")).quantize(D("0.01"))
    received = ledger_sum(deal, LedgerKind.PAYMENT) + ledger_sum(deal, LedgerKind.DEPOSIT_APPLY)
    assert received - ledger_sum(deal, LedgerKind.REFUND) == final
    assert ledger_sum(deal, LedgerKind.FEE) + ledger_sum(deal, LedgerKind.PAYOUT) == final
    assert ledger_sum(deal, LedgerKind.FEE) == rules.fee(final, deal.fee_rate)
    balance = selectors.deal_balance(deal)
    assert (balance.paid, balance.due, balance.to_refund) == (final, D("0.00"), D("0.00"))


# --- completion, ratings and credit -----------------------------------------------------------


def test_ratings_only_after_completion_once_per_party(
    market, awarded_deal, django_capture_on_commit_callbacks
):
    deal = market.weigh(market.book_pickup(market.pay(awarded_deal)), "500")
    buyer, seller = market.buyers[0], market.seller
    assert deal.status == DealStatus.SETTLED
    with refused("deal_state"):
        deals.rating_create(actor=buyer.user, deal=deal, score=5)
    with refused("nothing_to_confirm"):
        deals.deal_confirm(actor=seller.user, deal=deal)  # only the buyer confirms receipt
    deals.deal_confirm(actor=buyer.user, deal=deal)
    deal.refresh_from_db()
    assert deal.status == DealStatus.COMPLETED and deal.completed_at is not None

    with refused("not_party"):
        deals.rating_create(actor=market.buyers[1].user, deal=deal, score=5)
    with refused("rating_score"):
        deals.rating_create(actor=buyer.user, deal=deal, score=6)
    before = Organisation.objects.get(pk=seller.org.pk).credit_score
    with django_capture_on_commit_callbacks(execute=True):
        deals.rating_create(actor=buyer.user, deal=deal, score=1, comment="  重量短缺  ")
    after = Organisation.objects.get(pk=seller.org.pk).credit_score
    assert after != before
    assert after == rules.credit_score(selectors.credit_record(seller.org.pk))
    with refused("already_rated"):
        deals.rating_create(actor=buyer.user, deal=deal, score=5)
    deals.rating_create(actor=seller.user, deal=deal, score=5)
    assert Rating.objects.filter(deal=deal).count() == 2
    assert Rating.objects.get(deal=deal, rater=buyer.org).comment == "重量短缺"
    assert selectors.rating_summary(seller.org.pk) == {"count": 1, "average": 1.0}


def test_a_settled_deal_completes_by_itself_after_some_days(market, awarded_deal, settings):
    deal = market.weigh(market.book_pickup(market.pay(awarded_deal)), "500")
    assert deals.deals_sweep()["completed"] == 0
    later = deal.settled_at + timedelta(days=settings.DEALS_COMPLETE_AFTER_DAYS, minutes=1)
    assert deals.deals_sweep(now=later)["completed"] == 1
    deal.refresh_from_db()
    assert deal.status == DealStatus.COMPLETED
    assert deals.deals_sweep(now=later)["completed"] == 0


# --- trace ------------------------------------------------------------------------------------


def test_a_full_deals_trace_verifies_and_tampering_is_found(market, awarded_deal):
    deal = market.weigh(market.book_pickup(market.pay(awarded_deal)), "500")
    deals.deal_confirm(actor=market.buyers[0].user, deal=deal)
    chain = deal.trace_chain
    assert events(deal) == [
        "listed",
        "closed",
        "awarded",
        "paid",
        "picked_up",
        "weighed",
        "settled",
        "completed",
    ]
    check = selectors.trace_verify(chain)
    assert (check.ok, check.entries, check.first_broken) == (True, 8, None)
    assert selectors.trace_chain_by_code(chain.code.lower()) == chain

    target = TraceEntry.objects.get(chain=chain, event="weighed")
    forged = {**target.data, "net_t": "450.000"}
    TraceEntry.objects.filter(pk=target.pk).update(data=forged)
    check = selectors.trace_verify(chain)
    assert check.ok is False and check.first_broken == target.index == 5

    # The command checks every chain, names the broken link and fails the run.
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 broken"):
        call_command("trace_verify", "--no-progress", stdout=out)
    assert f"BROKEN {chain.code}" in out.getvalue() and "entry #5" in out.getvalue()
    TraceEntry.objects.filter(pk=target.pk).update(data=target.data)
    call_command("trace_verify", "--no-progress", stdout=out)
    assert "0 broken" in out.getvalue()


def test_a_trace_entry_dated_in_local_time_still_verifies(market, awarded_deal):
    chain = awarded_deal.trace_chain
    deals.trace_append(chain, "inspected", {"by": "SGS", "fe": D("98.5")}, at=timezone.localtime())
    entry = TraceEntry.objects.get(chain=chain, event="inspected")
    assert entry.data == {"by": "SGS", "fe": "98.5"}
    assert selectors.trace_verify(chain).ok
