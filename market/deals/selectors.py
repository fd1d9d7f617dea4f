"""Reads of the deals app: who may see a deal, what its parties must do next, its ledger and
balance, the trace chain and whether it verifies, an organisation's credit record."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from market.accounts.selectors import government_officer_for, memberships_of
from market.core.regions import region_code_prefix
from market.deals import rules
from market.deals.models import (
    Deal,
    DealStatus,
    DefaultParty,
    LedgerEntry,
    LedgerKind,
    Manifest,
    ManifestStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Rating,
    Refund,
    RefundStatus,
    TraceChain,
    TraceEntry,
    Weighing,
    WeighingStatus,
)
from market.trading.models import Award, AwardSource, Bidder


def deals_visible(user) -> QuerySet[Deal]:
    """Operators see every deal; members their organisations' deals; a government office (read only)
    the hazardous deals whose goods leave from its jurisdiction."""
    qs = Deal.objects.select_related("seller", "buyer", "category", "region")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if getattr(user, "is_operator", False):
        return qs
    org_ids = list(memberships_of(user).values_list("organisation_id", flat=True))
    condition = Q(buyer_id__in=org_ids) | Q(seller_id__in=org_ids)
    officer = government_officer_for(user)
    if officer is not None:
        condition |= Q(
            hazardous=True, region__code__startswith=region_code_prefix(officer.office.jurisdiction_id) or "-"
        )
    return qs.filter(condition)


def deals_of_organisation(organisation_id: int) -> QuerySet[Deal]:
    return Deal.objects.filter(Q(buyer_id=organisation_id) | Q(seller_id=organisation_id)).select_related(
        "seller", "buyer", "category"
    )


def party_of(user, deal: Deal) -> str:
    """buyer, seller or "" (an operator, an officer, a viewer of another organisation)."""
    org_ids = (
        set(memberships_of(user).values_list("organisation_id", flat=True))
        if user.is_authenticated
        else set()
    )
    if deal.buyer_id in org_ids:
        return DefaultParty.BUYER
    if deal.seller_id in org_ids:
        return DefaultParty.SELLER
    return ""


@dataclass(frozen=True)
class Balance:
    total: Decimal  # what the buyer owes in all (the weighed amount once known)
    paid: Decimal  # payments and the applied deposit, less refunds made or promised
    due: Decimal  # still to pay (never negative)
    to_refund: Decimal  # paid beyond the total, not yet promised back
    fee: Decimal
    payout: Decimal


def deal_balance(deal: Deal) -> Balance:
    from market.deals.services import deal_due, deal_paid_total

    paid = deal_paid_total(deal)
    total = deal.amount_due_total
    sums = dict(
        LedgerEntry.objects.filter(deal=deal, kind__in=[LedgerKind.FEE, LedgerKind.PAYOUT])
        .values_list("kind")
        .annotate(s=Sum("amount"))
        .order_by()
    )
    return Balance(
        total=total,
        paid=paid,
        due=deal_due(deal)
        if deal.status in (DealStatus.AWAITING_PAYMENT, DealStatus.WEIGHED)
        else Decimal("0.00"),
        to_refund=max(paid - total, Decimal("0.00")),
        fee=sums.get(LedgerKind.FEE, Decimal("0.00")),
        payout=sums.get(LedgerKind.PAYOUT, Decimal("0.00")),
    )


def deal_ledger(deal: Deal) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(
        Q(deal=deal) | Q(deposit_id=deal.deposit_id, deposit__isnull=False)
    ).order_by("created_at", "id")


def deal_payments(deal: Deal) -> QuerySet[Payment]:
    return deal.payments.order_by("created_at", "id")


def deal_weighing(deal: Deal) -> Weighing | None:
    return deal.weighings.order_by("-created_at", "-id").first()


def deal_manifest(deal: Deal) -> Manifest | None:
    return Manifest.objects.filter(deal=deal).first()


def next_steps(deal: Deal, party: str) -> list[tuple[str, str]]:
    """What the party must do next, as (code, sentence): the page's call to action. Reads only what
    ``deals_with_steps`` loads with the deal (a page of deals costs no query per deal); a deal loaded
    otherwise is read again that way first."""
    if not hasattr(deal, "paid_in"):
        deal = deals_with_steps(Deal.objects.filter(pk=deal.pk)).get()
    s = deal.status
    weighings = list(deal.weighings.all())
    weighing = weighings[0] if weighings else None
    steps = []
    # A bank transfer whose slip the buyer submitted: the seller or the platform checks it next, so
    # the buyer is told to wait, not to pay again.
    slip_sent = ("payment_check", _("凭证已提交，等待卖方或平台核对到账。确认后合同即为已付款。"))
    if party == DefaultParty.BUYER:
        if s == DealStatus.AWAITING_PAYMENT:
            steps.append(slip_sent if deal.slip_waiting else ("pay", _("请在付款截止前支付货款。")))
        elif s == DealStatus.PAID:
            steps.append(("pickup", _("请预约提货（车牌、司机、日期）。")))
        elif s == DealStatus.PICKUP_SCHEDULED:
            steps.append(("weigh", _("提货过磅后录入磅单。")))
        elif s == DealStatus.SETTLED:
            steps.append(("receive", _("确认收货，完成交易。")))
    if party == DefaultParty.SELLER and s == DealStatus.PICKUP_SCHEDULED:
        steps.append(("weigh", _("装车过磅后可录入磅单。")))
    runner_up = (
        deal.award.source in (AwardSource.AUCTION, AwardSource.TENDER, AwardSource.BUY_NOW)
        and deal.other_bidders
    )
    if (
        party == DefaultParty.SELLER
        and s == DealStatus.DEFAULTED
        and deal.defaulted_by == DefaultParty.BUYER
        and runner_up
        and not deal.runner_up_taken
    ):
        steps.append(("runner_up", _("买方违约：可以将标的转给下一位竞买人。")))
    awaiting = s == DealStatus.WEIGHED and weighing is not None and weighing.status == WeighingStatus.AWAITING
    if awaiting and party and weighing.recorded_by_party != party:
        steps.append(("confirm_weight", _("过磅结果超出允差，请确认或提出异议。")))
    due = deal.amount_due_total - (deal.paid_in - deal.refunded)
    if s == DealStatus.WEIGHED and party == DefaultParty.BUYER and deal.final_amount is not None and due > 0:
        steps.append(slip_sent if deal.slip_waiting else ("top_up", _("按过磅结果补足差额。")))
    if deal.hazardous and party and s in (DealStatus.PAID, DealStatus.PICKUP_SCHEDULED, DealStatus.WEIGHED):
        manifest = _manifest_of(deal)
        if manifest is None:
            steps.append(("manifest", _("危险废物须填写转移联单后才能结算。")))
        elif manifest.status != ManifestStatus.COMPLETED:
            steps.append(("manifest_confirm", _("转移联单待各方确认。")))
    if s == DealStatus.COMPLETED and party:
        rater = deal.buyer_id if party == DefaultParty.BUYER else deal.seller_id
        if not any(r.rater_id == rater for r in deal.ratings.all()):
            steps.append(("rate", _("评价对方。")))
    return steps


def _manifest_of(deal: Deal) -> Manifest | None:
    try:
        return deal.manifest
    except ObjectDoesNotExist:
        return None


def deals_with_steps(deals):
    """Deals with what ``next_steps`` needs loaded with them (the latest weighing first,
    the manifest, the ratings, what was paid and refunded, whether a bank slip awaits checking)."""
    paid_in = (
        LedgerEntry.objects.filter(
            deal=OuterRef("pk"), kind__in=[LedgerKind.PAYMENT, LedgerKind.DEPOSIT_APPLY]
        )
        .order_by()
        .values("deal")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    refunded = (
        Refund.objects.filter(deal=OuterRef("pk"))
        .exclude(status=RefundStatus.FAILED)
        .order_by()
        .values("deal")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    money = DecimalField(max_digits=16, decimal_places=2)
    zero = Value(Decimal("0.00"), output_field=money)
    return (
        deals.select_related("seller", "buyer", "manifest", "lot", "award")
        .prefetch_related(
            Prefetch("weighings", queryset=Weighing.objects.order_by("-created_at", "-id")),
            "ratings",
        )
        .annotate(
            paid_in=Coalesce(Subquery(paid_in, output_field=money), zero, output_field=money),
            refunded=Coalesce(Subquery(refunded, output_field=money), zero, output_field=money),
            slip_waiting=Exists(
                Payment.objects.filter(
                    deal=OuterRef("pk"), method=PaymentMethod.BANK_TRANSFER, status=PaymentStatus.SUBMITTED
                )
            ),
            # The runner-up: an auction or tender with other bidders, none offered the lot yet.
            other_bidders=Exists(
                Bidder.objects.filter(sale_id=OuterRef("award__sale_id")).exclude(
                    organisation_id=OuterRef("buyer_id")
                )
            ),
            runner_up_taken=Exists(
                Award.objects.filter(sale_id=OuterRef("award__sale_id"), source=AwardSource.RUNNER_UP)
            ),
        )
        .order_by("-created_at", "-id")
    )


# --- trace ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_broken: int | None  # the index of the first entry whose hash or link is wrong


def trace_chain_by_code(code: str) -> TraceChain | None:
    return TraceChain.objects.filter(code=(code or "").strip().upper()).first()


def trace_entries(chain: TraceChain) -> QuerySet[TraceEntry]:
    return TraceEntry.objects.filter(chain=chain).order_by("index")


def trace_verify(chain: TraceChain) -> ChainCheck:
    prev = rules.GENESIS
    count = 0
    for expected_index, entry in enumerate(trace_entries(chain).iterator()):
        count += 1
        digest = rules.trace_hash(
            prev_hash=prev, chain=chain.code, index=entry.index, event=entry.event, data=entry.data,
            occurred_at=entry.occurred_at.isoformat(),
        )  # fmt: skip
        if entry.index != expected_index or entry.prev_hash != prev or entry.hash != digest:
            return ChainCheck(ok=False, entries=count, first_broken=entry.index)
        prev = entry.hash
    return ChainCheck(ok=True, entries=count, first_broken=None)


# --- credit ---------------------------------------------------------------------------------


def credit_record(organisation_id: int) -> rules.CreditRecord:
    deals = deals_of_organisation(organisation_id)
    ended = deals.filter(status__in=[DealStatus.SETTLED, DealStatus.COMPLETED, DealStatus.DEFAULTED])
    as_buyer_on_time = deals.filter(buyer_id=organisation_id, paid_at__isnull=False).filter(
        paid_at__lte=F("pay_by")
    )
    as_seller_settled = deals.filter(
        seller_id=organisation_id, status__in=[DealStatus.SETTLED, DealStatus.COMPLETED]
    )
    defaults = Deal.objects.filter(
        Q(buyer_id=organisation_id, defaulted_by=DefaultParty.BUYER)
        | Q(seller_id=organisation_id, defaulted_by=DefaultParty.SELLER),
        status=DealStatus.DEFAULTED,
    ).count()
    lost = (
        Weighing.objects.filter(status=WeighingStatus.RESOLVED)
        .filter(
            Q(deal__buyer_id=organisation_id, decided_against=DefaultParty.BUYER)
            | Q(deal__seller_id=organisation_id, decided_against=DefaultParty.SELLER)
        )
        .count()
    )
    ratings = Rating.objects.filter(ratee_id=organisation_id).aggregate(n=Count("pk"), s=Sum("score"))
    return rules.CreditRecord(
        deals=ended.count(),
        on_time=as_buyer_on_time.count() + as_seller_settled.count(),
        defaults=defaults,
        disputes_lost=lost,
        rating_sum=ratings["s"] or 0,
        ratings=ratings["n"] or 0,
    )


def rating_summary(organisation_id: int) -> dict:
    agg = Rating.objects.filter(ratee_id=organisation_id).aggregate(n=Count("pk"), avg=Avg("score"))
    return {"count": agg["n"] or 0, "average": round(agg["avg"], 1) if agg["avg"] is not None else None}


def manifest_flows(prefix: str, first: date, last: date, category: str | None = None) -> list[dict]:
    """Hazardous-waste transfer manifests shipped from ``first`` to ``last`` leaving the region of
    code ``prefix`` (origin, the pickup county, in it) and entering it (destination, the receiver's
    county when it was opened, in it), by month and HW code: counts and tonnes, and how many moved
    within it. Open and completed manifests alike; void ones (the deal ended without the transfer)
    never count. One query."""
    from django.db.models.functions import TruncMonth

    from listings.models import Category

    out_q = Q(origin__code__startswith=prefix)
    in_q = Q(destination__code__startswith=prefix)
    qs = Manifest.objects.filter(out_q | in_q, shipped_on__gte=first, shipped_on__lte=last).exclude(
        status=ManifestStatus.VOID
    )
    if category:
        qs = qs.filter(Category(code=category).descendant_filter("deal__category__code"))
    return list(
        qs.annotate(month=TruncMonth("shipped_on"))
        .values("month", "hw_code")
        .annotate(
            out_n=Count("pk", filter=out_q),
            out_t=Sum("quantity_t", filter=out_q),
            in_n=Count("pk", filter=in_q),
            in_t=Sum("quantity_t", filter=in_q),
            within_n=Count("pk", filter=out_q & in_q),
            within_t=Sum("quantity_t", filter=out_q & in_q),
        )
        .order_by("month", "hw_code")
    )
