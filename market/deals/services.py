"""Writes of the deals app: award -> deal -> payment -> pickup -> weighing -> settlement.

Row locks are taken in one order: the deal, then the sale, then the deposit, then the payment.
Every money movement is one immutable ledger row named by a unique key, so a retried step writes it
once. Side effects (Stripe calls, e-mails, price facts) run after the commit.
"""

import logging
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from market.accounts.models import Organisation
from market.accounts.selectors import licence_valid_for, membership_of, trading_members
from market.accounts.services import member_require
from market.core.audit import audit_record
from market.core.drf import Refusal
from market.core.money import yuan_text as _yuan
from market.core.notify import notify_users
from market.core.state import transition
from market.core.uploads import upload_check
from market.deals import rules, stripe_gateway
from market.deals.models import (
    DEAL_OPEN,
    DEAL_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    Deal,
    DealStatus,
    DefaultParty,
    LedgerEntry,
    LedgerKind,
    Manifest,
    ManifestStatus,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Pickup,
    Rating,
    Refund,
    RefundStatus,
    StripeEvent,
    TraceChain,
    TraceEntry,
    Weighing,
    WeighingStatus,
)
from market.trading.models import Award, Bidder, Deposit, DepositStatus, Sale
from market.trading.services import deposit_settle

logger = logging.getLogger(__name__)

# code -> (HTTP status, message). Messages are marked for translation and translated when raised.
REFUSALS = {
    "deal_state": (409, gettext_noop("合同当前状态为“%(state)s”，不能%(what)s。")),
    "not_party": (403, gettext_noop("只有合同的%(party)s可以%(what)s。")),
    "nothing_due": (409, gettext_noop("本合同目前没有待付款项。")),
    "payment_method_unavailable": (400, gettext_noop("在线支付暂未开通，请使用对公转账。")),
    "payment_state": (409, gettext_noop("这笔付款当前为“%(state)s”，不能%(what)s。")),
    "payment_provider_error": (502, gettext_noop("支付服务暂时无法连接，请稍后重试（不会重复扣款）。")),
    "pickup_date": (400, gettext_noop("提货日期须在 %(start)s 至 %(end)s 之间，且不早于今天。")),
    "weighing_values": (400, gettext_noop("毛重必须大于皮重，皮重不能为负数。")),
    "nothing_to_confirm": (409, gettext_noop("目前没有需要您确认的事项。")),
    "own_weighing": (403, gettext_noop("过磅结果须由对方确认，不能确认自己录入的磅单。")),
    "not_hazardous": (400, gettext_noop("非危险废物交易不需要转移联单。")),
    "manifest_exists": (409, gettext_noop("本合同已有转移联单 %(number)s。")),
    "manifest_missing": (409, gettext_noop("请先填写危险废物转移联单。")),
    "licence_missing": (
        403,
        gettext_noop("接收单位没有在 %(date)s 有效且涵盖 %(hw)s 的危险废物经营许可证，不能接收转移。"),
    ),
    "already_rated": (409, gettext_noop("您已评价过这笔交易。")),
    "rating_score": (400, gettext_noop("评分须为 1 到 5 之间的整数。")),
    "no_runner_up": (409, gettext_noop("没有可以递补的其他竞买人。")),
}


class DealRefused(Refusal):
    """A rule of settlement refused the request: a 4xx with a stable code and a message in the user's language."""

    REFUSALS = REFUSALS


def deal_url(deal: Deal) -> str:
    return reverse("frontend:deal", args=[deal.pk])


def _notify(deal: Deal, organisation_ids, title: str, *, kind: str = "deal") -> None:
    notify_users(trading_members(*organisation_ids), title=title, url=deal_url(deal), kind=kind)


def _party(actor, deal: Deal, *, trade: bool = True) -> str:
    """The side (buyer or seller) the actor acts for; operators act for neither."""
    for org_id, party in ((deal.buyer_id, DefaultParty.BUYER), (deal.seller_id, DefaultParty.SELLER)):
        membership = membership_of(actor, org_id) if getattr(actor, "is_authenticated", False) else None
        if membership is not None and (membership.can_trade or not trade):
            return party
    return ""


def _party_require(actor, deal: Deal, party: str, what: str) -> None:
    if _party(actor, deal) != party:
        raise DealRefused("not_party", party=DefaultParty(party).label, what=what)


def _state_require(deal: Deal, allowed, what: str) -> None:
    if deal.status not in allowed:
        raise DealRefused("deal_state", state=deal.get_status_display(), what=what)


def _deal_lock(deal_id: int) -> Deal:
    return Deal.objects.select_for_update(of=("self",)).select_related("category").get(pk=deal_id)


def _deal_move(deal: Deal, to: str, *, actor=None, action: str, reason: str = "", ip=None, extra=()) -> Deal:
    deal.status_changed_at = timezone.now()
    return transition(
        deal, field="status", to=to, table=DEAL_TRANSITIONS, actor=actor, action=action, reason=reason,
        ip=ip, extra_fields=["status_changed_at", *extra],
    )  # fmt: skip


def _ledger(key: str, kind: str, *, organisation_id: int, amount: Decimal, memo: str = "", **links) -> bool:
    """Write one movement once: ``False`` if a movement of that key is already there."""
    if amount <= 0:
        return False
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                key=key, kind=kind, organisation_id=organisation_id, amount=rules.money(amount),
                memo=memo[:255], **links,
            )  # fmt: skip
    except IntegrityError:
        return False
    return True


# --- trace ----------------------------------------------------------------------------------


def _trace_code() -> str:
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # nothing to misread on paper
    return "".join(secrets.choice(alphabet) for _ in range(10))


def trace_chain_for(*, lot=None, title: str) -> TraceChain:
    if lot is not None:
        chain = TraceChain.objects.filter(lot=lot).first()
        if chain is not None:
            return chain
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return TraceChain.objects.create(code=_trace_code(), lot=lot, title=title[:120])
        except IntegrityError:
            if lot is not None and (chain := TraceChain.objects.filter(lot=lot).first()) is not None:
                return chain
    raise RuntimeError("no free trace code")


def trace_append(chain: TraceChain, event: str, data: dict | None = None, *, at: datetime | None = None):
    """Append one event to the chain under the chain's row lock: entries are numbered without gaps
    and each holds the hash of the one before."""
    with transaction.atomic():
        TraceChain.objects.select_for_update().filter(pk=chain.pk).first()
        last = TraceEntry.objects.filter(chain=chain).order_by("-index").first()
        index = 0 if last is None else last.index + 1
        prev = rules.GENESIS if last is None else last.hash
        # In UTC, as the database gives it back: the hash covers its ISO text, which trace_verify
        # recomputes from the stored value (a local-time ``at`` would never verify).
        occurred = (at or timezone.now()).astimezone(UTC).replace(microsecond=0)
        data = {k: str(v) if isinstance(v, Decimal) else v for k, v in (data or {}).items()}
        digest = rules.trace_hash(
            prev_hash=prev, chain=chain.code, index=index, event=event, data=data,
            occurred_at=occurred.isoformat(),
        )  # fmt: skip
        return TraceEntry.objects.create(
            chain=chain,
            index=index,
            event=event,
            data=data,
            occurred_at=occurred,
            prev_hash=prev,
            hash=digest,
        )


def _trace(deal: Deal, event: str, **data) -> None:
    chain = TraceChain.objects.filter(pk=deal.trace_chain_id).first() if deal.trace_chain_id else None
    if chain is not None:
        trace_append(chain, event, {"deal": deal.number, **data})


# --- award -> deal --------------------------------------------------------------------------


def deal_from_award(award: Award) -> Deal:
    """The contract of an award, made in the award's transaction (idempotent)."""
    existing = Deal.objects.filter(award=award).first()
    if existing is not None:
        return existing
    lot = award.lot
    category = award.category
    now = timezone.now()
    pay_by = now + timedelta(days=settings.DEALS_PAYMENT_DAYS)
    today = timezone.localdate()
    pickup_from = max(today, lot.available_from) if lot is not None else today
    pickup_by = max(
        lot.pickup_by if lot is not None else today,
        timezone.localdate(pay_by) + timedelta(days=settings.DEALS_PICKUP_DAYS),
    )
    deposit = None
    if award.sale_id:
        # A deposit secures one deal: a second award to the same buyer (fixed price) gets none,
        # else both deals would count it and its ledger rows would land on the wrong one.
        deposit = Deposit.objects.filter(
            sale_id=award.sale_id,
            organisation_id=award.buyer_id,
            status=DepositStatus.PAID,
            deals__isnull=True,
        ).first()
    title = lot.title if lot is not None else award.wanted_offer.wanted.title
    chain = trace_chain_for(lot=lot, title=title)
    deal = Deal.objects.create(
        award=award, number=f"T{now:%y%m%d%H%M%S}{award.pk}"[-24:], lot=lot, seller_id=award.seller_id,
        buyer_id=award.buyer_id, category=category, title=title,
        region_id=lot.region_id if lot is not None else award.seller.region_id,
        pickup_address=lot.address if lot is not None else award.seller.address,
        hazardous=category.hazardous, hw_code=category.hw_code or "", unit=award.unit,
        tonnes_per_unit=category.tonnes_per_unit, quantity=award.quantity, unit_price=award.unit_price,
        amount=award.amount, fee_rate=settings.DEALS_FEE_RATE, deposit=deposit, pay_by=pay_by,
        pickup_from=pickup_from, pickup_by=pickup_by, trace_chain=chain,
    )  # fmt: skip
    deal.number = f"HT{timezone.localtime(now):%Y%m%d}{deal.pk:06d}"
    deal.save(update_fields=["number"])
    audit_record(
        actor=None, action="deal.create", target=deal, to_state=deal.status, data={"award": award.pk}
    )
    if lot is not None and not chain.entries.exists():
        trace_append(
            chain, "listed",
            {"lot": lot.pk, "category": category.code, "quantity": lot.quantity, "unit": lot.unit,
             "region": lot.region_id, "hazardous": lot.hazardous},
            at=lot.published_at or lot.created_at,
        )  # fmt: skip
    sale = award.sale
    if sale is not None and award.source in (
        "auction",
        "tender",
        "buy_now",
        "lot_offer",
    ):  # these end the sale
        trace_append(
            chain, "closed", {"mode": sale.mode, "bids": sale.bid_count, "bidders": sale.bidder_count}
        )
    trace_append(
        chain, "awarded",
        {"deal": deal.number, "source": award.source, "quantity": award.quantity, "unit": award.unit,
         "unit_price": award.unit_price, "amount": award.amount},
    )  # fmt: skip
    _notify(
        deal, [deal.buyer_id],
        _("合同 %(number)s 已生成：请在 %(date)s 前支付 ¥%(amount)s。")
        % {"number": deal.number, "date": timezone.localtime(pay_by).strftime("%Y-%m-%d %H:%M"),
           "amount": _yuan(deal.amount)},
    )  # fmt: skip
    return deal


def deals_from_awards() -> int:
    """A deal for every award without one (awards made before this app, or by a failed hook)."""
    made = 0
    for award_id in Award.objects.filter(deal__isnull=True).values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            # Only the award's own row is locked: lot and sale are nullable (outer joins).
            award = (
                Award.objects.select_for_update(of=("self",))
                .select_related("lot", "category", "sale")
                .get(pk=award_id)
            )
            if not Deal.objects.filter(award=award).exists():
                deal_from_award(award)
                made += 1
    return made


# --- money ----------------------------------------------------------------------------------


def deal_paid_total(deal: Deal) -> Decimal:
    """What the buyer has paid towards the deal, from the ledger (refunds promised count as paid back)."""
    sums = dict(
        LedgerEntry.objects.filter(deal=deal, kind__in=[LedgerKind.PAYMENT, LedgerKind.DEPOSIT_APPLY])
        .values_list("kind")
        .annotate(s=Sum("amount"))
        .order_by()
    )
    refunded = (
        Refund.objects.filter(deal=deal).exclude(status=RefundStatus.FAILED).aggregate(s=Sum("amount"))["s"]
    )
    return sum(sums.values(), Decimal("0")) - (refunded or Decimal("0"))


def deal_due(deal: Deal) -> Decimal:
    """What the buyer still owes: a held deposit counts towards the first payment."""
    due = deal.amount_due_total - deal_paid_total(deal)
    if deal.status == DealStatus.AWAITING_PAYMENT and deal.deposit_id:
        deposit = Deposit.objects.filter(pk=deal.deposit_id, status=DepositStatus.PAID).first()
        if deposit is not None:
            due -= deposit.amount
    return max(due, Decimal("0.00"))


def payment_start(*, actor, deal: Deal, method: str, ip=None) -> Payment:
    """The buyer starts paying what is due. A retry returns the payment already started; with Stripe
    the PaymentIntent is created under the key stored here first, so a lost answer is retried safely."""
    member_require(actor, deal.buyer, trade=True)
    if method == PaymentMethod.STRIPE and not stripe_gateway.enabled():
        raise DealRefused("payment_method_unavailable")
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(deal, (DealStatus.AWAITING_PAYMENT, DealStatus.WEIGHED), _("付款"))
        due = deal_due(deal)
        if due <= 0:
            raise DealRefused("nothing_due")
        purpose = PaymentPurpose.DEAL if deal.status == DealStatus.AWAITING_PAYMENT else PaymentPurpose.TOP_UP
        payment = (
            Payment.objects.select_for_update()
            .filter(deal=deal, purpose=purpose, method=method, amount=due,
                    status__in=[PaymentStatus.PENDING, PaymentStatus.SUBMITTED])
            .first()
        )  # fmt: skip
        if payment is None:
            payment = Payment.objects.create(
                deal=deal,
                payer_id=deal.buyer_id,
                purpose=purpose,
                method=method,
                amount=due,
                created_by=actor,
            )
            if method == PaymentMethod.BANK_TRANSFER:
                payment.reference = f"FK{payment.pk:08d}"
                payment.save(update_fields=["reference"])
            audit_record(actor=actor, action="payment.start", target=payment, to_state=payment.status, ip=ip)
    if method == PaymentMethod.STRIPE:
        payment_intent_ensure(payment.pk)
        payment.refresh_from_db()
    return payment


def deposit_payment_start(*, actor, deposit: Deposit, ip=None) -> Payment:
    """A bidder pays a deposit online (bank-transfer deposits are confirmed by an operator in trading)."""
    member_require(actor, deposit.organisation, trade=True)
    if not stripe_gateway.enabled():
        raise DealRefused("payment_method_unavailable")
    with transaction.atomic():
        Sale.objects.select_for_update().filter(pk=deposit.sale_id).first()
        deposit = Deposit.objects.select_for_update().get(pk=deposit.pk)
        if deposit.status != DepositStatus.PENDING:
            raise DealRefused("payment_state", state=deposit.get_status_display(), what=_("付款"))
        payment = Payment.objects.filter(
            deposit=deposit, status__in=[PaymentStatus.PENDING, PaymentStatus.FAILED]
        ).first()
        if payment is None:
            payment = Payment.objects.create(
                deposit=deposit, payer_id=deposit.organisation_id, purpose=PaymentPurpose.DEPOSIT,
                method=PaymentMethod.STRIPE, amount=deposit.amount, created_by=actor,
            )  # fmt: skip
            audit_record(actor=actor, action="payment.start", target=payment, to_state=payment.status, ip=ip)
    payment_intent_ensure(payment.pk)
    payment.refresh_from_db()
    return payment


def payment_intent_ensure(payment_id: int) -> Payment:
    """Create the payment's PaymentIntent if it has none yet (never inside a transaction: it calls
    Stripe). The stored idempotency key makes a second call return the same intent."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.stripe_intent:
        return payment
    try:
        intent = stripe_gateway.intent_create(
            amount=payment.amount, idempotency_key=str(payment.idempotency_key),
            metadata={"payment": payment.pk, "deal": payment.deal_id or "", "deposit": payment.deposit_id or ""},
            description=f"{payment.get_purpose_display()} #{payment.pk}",
        )  # fmt: skip
    except Exception as exc:  # the key is stored: the next try (or the reconcile) creates the same one
        logger.warning("stripe: intent for payment %s failed: %s", payment.pk, exc)
        raise DealRefused("payment_provider_error") from exc
    Payment.objects.filter(pk=payment.pk, stripe_intent__isnull=True).update(
        stripe_intent=intent.id, client_secret=intent.client_secret or ""
    )
    return Payment.objects.get(pk=payment.pk)


def payment_slip_submit(*, actor, payment: Payment, slip=None, reference: str = "", ip=None) -> Payment:
    """The buyer says the bank transfer is made and uploads the slip (转账凭证)."""
    member_require(actor, payment.payer, trade=True)
    checked = upload_check(slip, max_bytes=settings.LOT_MEDIA_MAX_BYTES) if slip is not None else None
    with transaction.atomic():
        if payment.deal_id:
            _deal_lock(payment.deal_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.method != PaymentMethod.BANK_TRANSFER or payment.status != PaymentStatus.PENDING:
            raise DealRefused("payment_state", state=payment.get_status_display(), what=_("提交转账凭证"))
        if checked is not None:
            payment._ext = checked.extension
            payment.slip.save(f"slip.{checked.extension}", slip, save=False)
        if reference:
            payment.bank_serial = reference.strip()[:64]  # the bank's serial; ``reference`` is our memo
        transition(
            payment, field="status", to=PaymentStatus.SUBMITTED, table=PAYMENT_TRANSITIONS, actor=actor,
            action="payment.submit", ip=ip, extra_fields=["slip", "bank_serial"],
        )  # fmt: skip
        if payment.deal_id:
            deal = payment.deal
            _notify(
                deal, [deal.seller_id],
                _("合同 %(number)s 的买方已提交转账凭证 ¥%(amount)s，请核对到账后确认。")
                % {"number": deal.number, "amount": _yuan(payment.amount)},
            )  # fmt: skip
    return payment


def payment_confirm(*, actor, payment: Payment, ip=None) -> Payment:
    """An operator (or, for a deal's payment, the seller) confirms that a bank transfer arrived."""
    is_operator = getattr(actor, "is_operator", False)
    if payment.method != PaymentMethod.BANK_TRANSFER:
        raise DealRefused("payment_state", state=payment.get_status_display(), what=_("人工确认"))
    if not is_operator and (payment.deal_id is None or _party(actor, payment.deal) != DefaultParty.SELLER):
        raise PermissionDenied(_("只有平台运营人员或本合同的卖方可以确认转账到账。"))
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.SUBMITTED):
        raise DealRefused("payment_state", state=payment.get_status_display(), what=_("确认到账"))
    return payment_succeeded(payment_id=payment.pk, actor=actor, ip=ip)


def payment_succeeded(*, payment_id: int, actor=None, ip=None) -> Payment:
    """The money arrived: one ledger row, the deposit applied, the deal paid (or settled, for a
    top-up). Safe to call any number of times."""
    with transaction.atomic():
        deal_id, deposit_id = Payment.objects.filter(pk=payment_id).values_list("deal_id", "deposit_id").get()
        deal = _deal_lock(deal_id) if deal_id else None
        if deposit_id and deal is None:
            return _deposit_payment_succeeded(payment_id, deposit_id, actor=actor, ip=ip)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status == PaymentStatus.SUCCEEDED:
            return payment
        payment.succeeded_at = timezone.now()
        if actor is not None and getattr(actor, "is_authenticated", False):
            payment.confirmed_by = actor
        transition(
            payment, field="status", to=PaymentStatus.SUCCEEDED, table=PAYMENT_TRANSITIONS, actor=actor,
            action="payment.succeed", ip=ip, extra_fields=["succeeded_at", "confirmed_by"],
        )  # fmt: skip
        _ledger(
            f"payment:{payment.pk}", LedgerKind.PAYMENT, organisation_id=payment.payer_id, amount=payment.amount,
            deal=deal, payment=payment, memo=f"{deal.number} {payment.get_purpose_display()}",
        )  # fmt: skip
        if deal.status not in (DealStatus.AWAITING_PAYMENT, DealStatus.WEIGHED):
            # Paid after the deal ended (a default, a cancellation): the money goes back.
            _refund_create(payment, payment.amount, code="ended", deal=deal)
            return payment
        if deal.status == DealStatus.AWAITING_PAYMENT:
            if deal.deposit_id:
                deposit = Deposit.objects.filter(pk=deal.deposit_id).first()
                if deposit is not None and deposit.status == DepositStatus.PAID:
                    deposit_settle(deposit_id=deposit.pk, to=DepositStatus.APPLIED, reason=deal.number)
            if deal_due(deal) <= 0:
                deal.paid_at = timezone.now()
                _deal_move(deal, DealStatus.PAID, actor=actor, action="deal.paid", ip=ip, extra=["paid_at"])
                _trace(deal, "paid", amount=deal_paid_total(deal), method=payment.method)
                _notify(
                    deal, [deal.buyer_id, deal.seller_id],
                    _("合同 %(number)s 货款已到账，请买方预约提货。") % {"number": deal.number},
                )  # fmt: skip
        else:
            settle_try(deal)
        return payment


def _deposit_payment_succeeded(payment_id: int, deposit_id: int, *, actor=None, ip=None) -> Payment:
    deposit = Deposit.objects.get(pk=deposit_id)
    Sale.objects.select_for_update().filter(pk=deposit.sale_id).first()
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status == PaymentStatus.SUCCEEDED:
        return payment
    payment.succeeded_at = timezone.now()
    transition(
        payment, field="status", to=PaymentStatus.SUCCEEDED, table=PAYMENT_TRANSITIONS, actor=actor,
        action="payment.succeed", ip=ip, extra_fields=["succeeded_at"],
    )  # fmt: skip
    if deposit.status == DepositStatus.PENDING:
        deposit_settle(deposit_id=deposit.pk, to=DepositStatus.PAID, reference=payment.stripe_intent or "")
    else:  # released or closed meanwhile: return the money
        _refund_create(payment, payment.amount, code="deposit_not_needed", deposit=deposit)
    return payment


def payment_failed(*, payment_id: int, message: str = "") -> Payment:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status not in (PaymentStatus.PENDING, PaymentStatus.SUBMITTED):
            return payment
        payment.failure_message = message[:255]
        return transition(
            payment, field="status", to=PaymentStatus.FAILED, table=PAYMENT_TRANSITIONS, actor=None,
            action="payment.fail", reason=message, extra_fields=["failure_message"],
        )  # fmt: skip


# Why money goes back: a stable code (a retried step finds the refund it made) and the reason shown.
REFUND_REASONS = {
    "ended": gettext_noop("合同已终止，退回付款"),
    "deposit_not_needed": gettext_noop("保证金无需再缴，退回付款"),
    "cancelled": gettext_noop("争议裁定取消合同，退回全部货款"),
    "overpaid": gettext_noop("按过磅结算退还差额"),
    "default": gettext_noop("合同违约终止，退回已付货款"),
    "deposit_release": gettext_noop("保证金退还"),
}


def _refund_create(
    payment: Payment | None, amount: Decimal, *, code: str, deal=None, deposit=None
) -> Refund | None:
    """Promise a refund of ``amount`` (once per payment or deposit and ``code``). Against a Stripe
    payment it is made after the commit; a bank transfer (or a bank-transfer deposit, which has no
    payment row) is sent by an operator, who marks it done."""
    amount = rules.money(amount)
    if amount <= 0:
        return None
    existing = Refund.objects.filter(payment=payment, deposit=deposit, deal=deal, code=code).first()
    if existing is not None:
        return existing
    refund = Refund.objects.create(
        payment=payment, deal=deal, deposit=deposit, amount=amount, code=code, reason=REFUND_REASONS[code]
    )
    audit_record(
        actor=None, action="refund.create", target=refund, data={"amount": str(amount), "code": code}
    )
    if payment is not None and payment.method == PaymentMethod.STRIPE:
        from market.deals.tasks import refund_execute

        transaction.on_commit(lambda: refund_execute.delay(refund.pk), robust=True)
    return refund


def refund_execute(refund_id: int) -> Refund:
    """Make a pending Stripe refund (outside any transaction; the stored key makes it once)."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if (
        refund.status != RefundStatus.PENDING
        or refund.payment is None
        or refund.payment.method != PaymentMethod.STRIPE
    ):
        return refund
    remote = stripe_gateway.refund_create(
        intent_id=refund.payment.stripe_intent, amount=refund.amount,
        idempotency_key=str(refund.idempotency_key), metadata={"refund": refund.pk},
    )  # fmt: skip
    if remote.status in ("succeeded", "pending"):
        return refund_succeeded(refund_id=refund.pk, stripe_refund=remote.id)
    return refund


def refund_succeeded(*, refund_id: int, stripe_refund: str = "", actor=None) -> Refund:
    with transaction.atomic():
        refund = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("payment", "deposit")
            .get(pk=refund_id)
        )
        if refund.status == RefundStatus.SUCCEEDED:
            return refund
        refund.status = RefundStatus.SUCCEEDED
        refund.succeeded_at = timezone.now()
        refund.stripe_refund = stripe_refund or refund.stripe_refund
        refund.save(update_fields=["status", "succeeded_at", "stripe_refund"])
        audit_record(actor=actor, action="refund.succeed", target=refund, to_state=refund.status)
        _ledger(
            f"refund:{refund.pk}", LedgerKind.REFUND,
            organisation_id=refund.payment.payer_id if refund.payment else refund.deposit.organisation_id,
            amount=refund.amount,
            deal=refund.deal, deposit=refund.deposit, payment=refund.payment, refund=refund, memo=refund.reason,
        )  # fmt: skip
    return refund


# --- Stripe webhooks ------------------------------------------------------------------------


def stripe_event_receive(event) -> tuple[StripeEvent, bool]:
    """Store a verified event once; ``True`` if it is new (and must be processed after commit)."""
    obj = event.data.object
    with transaction.atomic():
        stored, created = StripeEvent.objects.get_or_create(
            event_id=event.id,
            defaults={
                "type": event.type,
                "object_id": getattr(obj, "id", "") or "",
                "payload": event.to_dict(),
            },
        )
        if not created:
            StripeEvent.objects.filter(pk=stored.pk).update(deliveries=stored.deliveries + 1)
        elif stored.object_id:
            from market.deals.tasks import stripe_event_process

            transaction.on_commit(lambda: stripe_event_process.delay(stored.pk), robust=True)
    return stored, created


def stripe_event_process(event_pk: int) -> str:
    """Apply an event by re-reading its object from Stripe, so events arriving late or out of order
    cannot move a payment backwards; the event is marked processed in the transaction that applies it."""
    event = StripeEvent.objects.get(pk=event_pk)
    if event.processed_at is not None:
        return "already"
    intent_id = event.object_id if event.object_id.startswith("pi_") else ""
    if not intent_id:
        intent_id = (event.payload.get("data", {}).get("object", {}) or {}).get("payment_intent") or ""
    intent = stripe_gateway.intent_retrieve(intent_id) if intent_id else None
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.processed_at is not None:
            return "already"
        outcome = "ignored"
        if intent is not None:
            payment = Payment.objects.filter(stripe_intent=intent.id).first()
            if payment is None and (intent.metadata or {}).get("payment"):
                payment = Payment.objects.filter(pk=int(intent.metadata["payment"])).first()
                if payment is not None and not payment.stripe_intent:
                    Payment.objects.filter(pk=payment.pk).update(stripe_intent=intent.id)
            if payment is not None:
                outcome = payment_sync(payment, intent)
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])
    return outcome


def payment_sync(payment: Payment, intent) -> str:
    """Bring a payment to the state of its PaymentIntent as Stripe has it now."""
    if intent.status == "succeeded":
        if rules.money(stripe_gateway.yuan(intent.amount_received or intent.amount)) < payment.amount:
            logger.error("stripe: intent %s received less than payment %s", intent.id, payment.pk)
            return "short"
        payment_succeeded(payment_id=payment.pk)
        return "succeeded"
    if intent.status == "canceled":
        with transaction.atomic():
            p = Payment.objects.select_for_update().get(pk=payment.pk)
            if p.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
                transition(p, field="status", to=PaymentStatus.CANCELLED, table=PAYMENT_TRANSITIONS,
                           actor=None, action="payment.cancel")  # fmt: skip
        return "cancelled"
    error = getattr(intent, "last_payment_error", None)
    if error:
        payment_failed(payment_id=payment.pk, message=getattr(error, "message", "") or "")
        return "failed"
    return "pending"


# --- pickup, weighing, disputes ---------------------------------------------------------------


def pickup_book(
    *,
    actor,
    deal: Deal,
    date,
    vehicle_plate: str,
    driver_name: str,
    driver_phone: str,
    note: str = "",
    ip=None,
) -> Pickup:
    _party_require(actor, deal, DefaultParty.BUYER, _("预约提货"))
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(deal, (DealStatus.PAID, DealStatus.PICKUP_SCHEDULED), _("预约提货"))
        if not (max(deal.pickup_from, timezone.localdate()) <= date <= deal.pickup_by):
            raise DealRefused(
                "pickup_date", start=deal.pickup_from.isoformat(), end=deal.pickup_by.isoformat()
            )
        pickup = Pickup.objects.create(
            deal=deal, date=date, vehicle_plate=vehicle_plate.strip().upper(), driver_name=driver_name.strip(),
            driver_phone=driver_phone.strip(), note=note.strip(), created_by=actor,
        )  # fmt: skip
        if deal.status == DealStatus.PAID:
            _deal_move(deal, DealStatus.PICKUP_SCHEDULED, actor=actor, action="deal.pickup", ip=ip)
        else:
            audit_record(
                actor=actor, action="deal.pickup_rebook", target=deal, ip=ip, data={"pickup": pickup.pk}
            )
        _notify(
            deal, [deal.seller_id],
            _("合同 %(number)s：买方预约 %(date)s 提货，车牌 %(plate)s。")
            % {"number": deal.number, "date": date.isoformat(), "plate": pickup.vehicle_plate},
        )  # fmt: skip
    return pickup


def weighing_record(
    *,
    actor,
    deal: Deal,
    ticket_no: str,
    gross_t: Decimal,
    tare_t: Decimal,
    weighed_at=None,
    ticket=None,
    ip=None,
) -> Weighing:
    """A weighbridge ticket: within the tolerance it sets the final quantity at once; beyond it the
    other party must confirm (or dispute)."""
    party = _party(actor, deal)
    if not party:
        raise DealRefused("not_party", party=_("买卖双方"), what=_("录入过磅结果"))
    if gross_t <= tare_t or tare_t < 0:
        raise DealRefused("weighing_values")
    checked = (
        upload_check(ticket, allowed=("jpeg", "png", "pdf"), max_bytes=settings.LOT_MEDIA_MAX_BYTES)
        if ticket
        else None
    )
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(deal, (DealStatus.PICKUP_SCHEDULED,), _("录入过磅结果"))
        result = rules.weigh(
            gross_t=gross_t, tare_t=tare_t, unit=deal.unit, quantity=deal.quantity, unit_price=deal.unit_price,
            tolerance=settings.DEALS_WEIGHT_TOLERANCE,
        )  # fmt: skip
        weighing = Weighing(
            deal=deal, ticket_no=ticket_no.strip()[:32], gross_t=gross_t, tare_t=tare_t, net_t=result.net_t,
            final_quantity=result.final_quantity, difference=result.difference,
            status=WeighingStatus.ACCEPTED if result.within_tolerance else WeighingStatus.AWAITING,
            recorded_by_party=party, recorded_by=actor, weighed_at=weighed_at or timezone.now(),
        )  # fmt: skip
        if checked is not None:
            weighing._ext = checked.extension
            weighing.ticket.save(f"ticket.{checked.extension}", ticket, save=False)
        weighing.save()
        deal.net_tonnes = result.net_t
        _deal_move(deal, DealStatus.WEIGHED, actor=actor, action="deal.weigh", ip=ip, extra=["net_tonnes"])
        _trace(deal, "picked_up")  # the public chain carries no plates or names
        _trace(deal, "weighed", ticket=weighing.ticket_no, net_t=result.net_t, difference=result.difference)
        if result.within_tolerance:
            _weighing_apply(deal, weighing)
        else:
            other = deal.seller_id if party == DefaultParty.BUYER else deal.buyer_id
            _notify(
                deal, [other],
                _("合同 %(number)s 过磅净重 %(net)s 吨，与合同数量相差 %(pct)s%%，超出允差，请确认或提出异议。")
                % {"number": deal.number, "net": result.net_t, "pct": (result.difference * 100).quantize(Decimal("0.01"))},
            )  # fmt: skip
    return weighing


def _weighing_apply(deal: Deal, weighing: Weighing) -> None:
    deal.final_quantity = weighing.final_quantity
    deal.final_amount = rules.money(weighing.final_quantity * deal.unit_price)
    deal.net_tonnes = weighing.net_t
    deal.save(update_fields=["final_quantity", "final_amount", "net_tonnes"])
    settle_try(deal)


def deal_confirm(*, actor, deal: Deal, ip=None) -> Deal:
    """The other party confirms a weighing beyond the tolerance; after settlement the buyer confirms
    receipt, which completes the deal."""
    party = _party(actor, deal)
    if not party:
        raise DealRefused("not_party", party=_("买卖双方"), what=_("确认"))
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        if deal.status == DealStatus.SETTLED and party == DefaultParty.BUYER:
            return deal_complete(deal=deal, actor=actor, ip=ip)
        weighing = deal.weighings.filter(status=WeighingStatus.AWAITING).first()
        if deal.status != DealStatus.WEIGHED or weighing is None:
            raise DealRefused("nothing_to_confirm")
        if weighing.recorded_by_party == party:
            raise DealRefused("own_weighing")
        weighing.status = WeighingStatus.CONFIRMED
        weighing.decided_by = actor
        weighing.decided_at = timezone.now()
        weighing.save(update_fields=["status", "decided_by", "decided_at"])
        audit_record(
            actor=actor, action="weighing.confirm", target=deal, ip=ip, data={"weighing": weighing.pk}
        )
        _weighing_apply(deal, weighing)
    return deal


def deal_dispute(*, actor, deal: Deal, reason: str, ip=None) -> Deal:
    party = _party(actor, deal)
    if not party:
        raise DealRefused("not_party", party=_("买卖双方"), what=_("提出异议"))
    if not reason.strip():
        raise ValidationError({"reason": _("请说明异议的理由。")})
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(
            deal, (DealStatus.PAID, DealStatus.PICKUP_SCHEDULED, DealStatus.WEIGHED), _("提出异议")
        )
        deal.weighings.filter(status=WeighingStatus.AWAITING).update(status=WeighingStatus.DISPUTED)
        deal.status_reason = reason.strip()[:2000]
        _deal_move(deal, DealStatus.DISPUTED, actor=actor, action="deal.dispute", reason=reason, ip=ip,
                   extra=["status_reason"])  # fmt: skip
        _trace(deal, "disputed", by=party)
        _notify(
            deal, [deal.buyer_id, deal.seller_id],
            _("合同 %(number)s 已提出异议，平台将介入处理。") % {"number": deal.number},
        )  # fmt: skip
    return deal


def dispute_resolve(
    *, actor, deal: Deal, decision: str, reason: str, net_t: Decimal | None = None, against: str = "", ip=None
) -> Deal:
    """An operator decides a dispute: ``decision`` "weight" fixes the net weight (and so the final
    quantity), "cancel" ends the deal and returns the buyer's money. ``against`` names the party
    the decision goes against (it counts in that party's credit)."""
    if not getattr(actor, "is_operator", False):
        raise PermissionDenied(_("只有平台运营人员可以裁定争议。"))
    if not reason.strip():
        raise ValidationError({"reason": _("请写明裁定理由。")})
    if decision not in ("weight", "cancel"):
        raise ValidationError({"decision": _("裁定结果须为 weight 或 cancel。")})
    if against not in ("", *DefaultParty.values):  # it is stored and counts in a party's credit
        raise ValidationError({"against": _("不利方须为 buyer、seller 或留空。")})
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(deal, (DealStatus.DISPUTED,), _("裁定"))
        if decision == "cancel":
            _deal_move(deal, DealStatus.CANCELLED, actor=actor, action="deal.cancel", reason=reason, ip=ip)
            _refund_all(deal)
            _manifest_void(deal)
            _release_deposit(deal, reason)
            _trace(deal, "cancelled", reason=reason)
        else:
            if net_t is None or net_t <= 0:
                raise ValidationError({"net_t": _("请填写裁定的净重（吨）。")})
            result = rules.weigh(
                gross_t=net_t, tare_t=Decimal("0"), unit=deal.unit, quantity=deal.quantity,
                unit_price=deal.unit_price, tolerance=settings.DEALS_WEIGHT_TOLERANCE,
            )  # fmt: skip
            weighing = Weighing.objects.create(
                deal=deal, ticket_no="裁定", gross_t=net_t, tare_t=Decimal("0"), net_t=result.net_t,
                final_quantity=result.final_quantity, difference=result.difference,
                status=WeighingStatus.RESOLVED, recorded_by_party="", decided_against=against, recorded_by=actor,
                weighed_at=timezone.now(), decided_by=actor, decided_at=timezone.now(), decision_note=reason,
            )  # fmt: skip
            _deal_move(deal, DealStatus.WEIGHED, actor=actor, action="deal.resolve", reason=reason, ip=ip)
            _trace(deal, "resolved", net_t=result.net_t)
            _weighing_apply(deal, weighing)
        audit_record(actor=actor, action="dispute.decide", target=deal, reason=reason, ip=ip,
                     data={"decision": decision, "against": against, "net_t": str(net_t or "")})  # fmt: skip
        _notify(deal, [deal.buyer_id, deal.seller_id], _("合同 %(number)s 的争议已裁定：%(reason)s")
                % {"number": deal.number, "reason": reason})  # fmt: skip
    return deal


def _refund_all(deal: Deal) -> None:
    """Return all the buyer paid towards the deal: every payment, and the deposit applied to the
    price (which can no longer be released): to the card it was paid with, or by bank transfer."""
    payments = list(deal.payments.filter(status=PaymentStatus.SUCCEEDED).order_by("-amount", "pk"))
    deposit = (
        Deposit.objects.filter(pk=deal.deposit_id, status=DepositStatus.APPLIED).first()
        if deal.deposit_id
        else None
    )
    if deposit is not None:
        online = Payment.objects.filter(deposit=deposit, status=PaymentStatus.SUCCEEDED).first()
        # Online: back to the card it came from; by bank transfer: its own refund, sent by an operator.
        _refund_create(online, deposit.amount, code="cancelled", deal=deal, deposit=deposit)
    for payment in payments:
        _refund_create(payment, payment.amount, code="cancelled", deal=deal)


def _manifest_void(deal: Deal) -> None:
    """A deal ended without the transfer: its open manifest is void (never a transfer that did not happen)."""
    for manifest in Manifest.objects.select_for_update().filter(deal=deal, status=ManifestStatus.OPEN):
        manifest.status = ManifestStatus.VOID
        manifest.save(update_fields=["status"])
        audit_record(actor=None, action="manifest.void", target=manifest, to_state=manifest.status)


def _release_deposit(deal: Deal, reason: str) -> None:
    if deal.deposit_id:
        deposit = Deposit.objects.get(pk=deal.deposit_id)
        if deposit.status == DepositStatus.PAID:
            deposit_settle(deposit_id=deposit.pk, to=DepositStatus.RELEASED, reason=reason)


# --- manifest -------------------------------------------------------------------------------


def manifest_create(
    *,
    actor,
    deal: Deal,
    transporter_name: str,
    transporter_licence: str,
    vehicle_plate: str,
    shipped_on,
    packaging: str = "",
    ip=None,
) -> Manifest:
    """The transfer manifest of a hazardous deal: the receiver (buyer) must hold a licence valid on
    the transfer date that covers the lot's HW code."""
    if not _party(actor, deal):
        raise DealRefused("not_party", party=_("买卖双方"), what=_("填写转移联单"))
    if not deal.hazardous:
        raise DealRefused("not_hazardous")
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(
            deal, (DealStatus.PAID, DealStatus.PICKUP_SCHEDULED, DealStatus.WEIGHED), _("填写转移联单")
        )
        existing = Manifest.objects.filter(deal=deal).first()
        if existing is not None:
            raise DealRefused("manifest_exists", number=existing.number)
        licence = licence_valid_for(deal.buyer, hw_code=deal.hw_code or None, on=shipped_on)
        if licence is None:
            raise DealRefused(
                "licence_missing", date=shipped_on.isoformat(), hw=deal.hw_code or _("危险废物")
            )
        quantity_t = deal.net_tonnes or (deal.quantity * (deal.tonnes_per_unit or 1)).quantize(
            Decimal("0.001")
        )
        manifest = Manifest.objects.create(
            deal=deal, number="pending", hw_code=deal.hw_code, waste_name=deal.category.name,
            quantity_t=quantity_t, packaging=packaging or (deal.lot.get_packaging_display() if deal.lot else ""),
            transporter_name=transporter_name.strip(), transporter_licence=transporter_licence.strip(),
            vehicle_plate=vehicle_plate.strip().upper(), receiver_licence=licence.number, shipped_on=shipped_on,
            origin_id=deal.region_id, destination_id=deal.buyer.region_id,
            created_by=actor,
        )  # fmt: skip
        manifest.number = f"ZY{shipped_on:%Y%m%d}{manifest.pk:06d}"
        manifest.save(update_fields=["number"])
        audit_record(actor=actor, action="manifest.create", target=manifest, ip=ip)
        _trace(deal, "manifest_opened", manifest=manifest.number, hw=manifest.hw_code)
    return manifest


MANIFEST_ROLES = {
    # role -> (party that confirms, timestamp field, user field)
    "generator": (DefaultParty.SELLER, "generator_confirmed_at", "generator_confirmed_by"),
    "transporter": (DefaultParty.BUYER, "transporter_confirmed_at", "transporter_confirmed_by"),
    "receiver": (DefaultParty.BUYER, "receiver_confirmed_at", "receiver_confirmed_by"),
}


def manifest_confirm(*, actor, deal: Deal, role: str, ip=None) -> Manifest:
    """The generator (seller) confirms the handover, the transporter (on the buyer's side, who hires
    it) the carriage, the receiver (buyer) the arrival; all three complete the manifest."""
    if role not in MANIFEST_ROLES:
        raise ValidationError({"role": _("角色须为 generator、transporter 或 receiver。")})
    party, at_field, by_field = MANIFEST_ROLES[role]
    _party_require(actor, deal, party, _("以该身份确认联单"))
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        manifest = Manifest.objects.select_for_update().filter(deal=deal).first()
        if manifest is None:
            raise DealRefused("manifest_missing")
        if getattr(manifest, at_field) is not None:
            return manifest
        now = timezone.now()
        setattr(manifest, at_field, now)
        setattr(manifest, by_field, actor)
        fields = [at_field, by_field]
        if role == "receiver":
            manifest.received_on = timezone.localdate()
            fields.append("received_on")
        if all(getattr(manifest, f) for _p, f, _u in MANIFEST_ROLES.values()):
            manifest.status = ManifestStatus.COMPLETED
            fields.append("status")
        manifest.save(update_fields=fields)
        audit_record(actor=actor, action=f"manifest.confirm.{role}", target=manifest, ip=ip)
        if manifest.status == ManifestStatus.COMPLETED:
            _trace(deal, "manifest_completed", manifest=manifest.number)
            if deal.status == DealStatus.WEIGHED:
                settle_try(deal)
    return manifest


# --- settlement -----------------------------------------------------------------------------


def settle_try(deal: Deal) -> bool:
    """Under the deal's lock: settle once the weight is agreed, the manifest (if hazardous) is
    complete and the money is square; ask for a top-up or promise a refund otherwise."""
    if deal.status != DealStatus.WEIGHED or deal.final_amount is None:
        return False
    latest = deal.weighings.order_by("-created_at", "-id").first()  # a decision supersedes the tickets
    if latest is None or latest.status in (WeighingStatus.AWAITING, WeighingStatus.DISPUTED):
        return False
    if deal.hazardous and not Manifest.objects.filter(deal=deal, status=ManifestStatus.COMPLETED).exists():
        return False
    balance = deal.final_amount - deal_paid_total(deal)
    if balance > 0:
        _notify(
            deal, [deal.buyer_id],
            _("合同 %(number)s 按过磅结算金额 ¥%(final)s，还需补款 ¥%(due)s。")
            % {"number": deal.number, "final": _yuan(deal.final_amount), "due": _yuan(balance)},
        )  # fmt: skip
        return False
    if balance < 0:
        payment = deal.payments.filter(status=PaymentStatus.SUCCEEDED).order_by("-amount").first()
        if payment is not None:
            _refund_create(payment, -balance, code="overpaid", deal=deal)
    now = timezone.now()
    deal.settled_at = now
    _deal_move(deal, DealStatus.SETTLED, action="deal.settle", extra=["settled_at"])
    fee = rules.fee(deal.final_amount, deal.fee_rate)
    _ledger(f"fee:{deal.pk}", LedgerKind.FEE, organisation_id=deal.seller_id, amount=fee, deal=deal,
            memo=f"{deal.number} {_('平台服务费')}")  # fmt: skip
    _ledger(f"payout:{deal.pk}", LedgerKind.PAYOUT, organisation_id=deal.seller_id,
            amount=deal.final_amount - fee, deal=deal, memo=f"{deal.number} {_('货款结算')}")  # fmt: skip
    _trace(deal, "settled", quantity=deal.final_quantity, amount=deal.final_amount, fee=fee)
    _notify(
        deal, [deal.buyer_id, deal.seller_id],
        _("合同 %(number)s 已结算：%(qty)s %(unit)s，金额 ¥%(amount)s。")
        % {"number": deal.number, "qty": deal.final_quantity, "unit": deal.unit, "amount": _yuan(deal.final_amount)},
    )  # fmt: skip
    deal_id = deal.pk
    # Robust: the deal is settled whatever happens to its price fact (a refusal is logged, not a 500).
    transaction.on_commit(lambda: _trade_record(deal_id), robust=True)
    _credit_refresh_later(deal)
    return True


def _trade_record(deal_id: int) -> None:
    """Feed the price indices once (idempotent by trade id) with the weighed quantity and price."""
    from pricing.services import trade_record

    deal = Deal.objects.select_related("seller", "buyer", "award").get(pk=deal_id)
    price_t = rules.unit_price_per_tonne(deal.unit_price, deal.unit, deal.tonnes_per_unit)
    quantity_t = deal.net_tonnes
    if quantity_t is None and deal.tonnes_per_unit:
        quantity_t = (deal.final_quantity * deal.tonnes_per_unit).quantize(Decimal("0.001"))
    if price_t is None or not quantity_t:
        logger.info("deal %s: no tonnage or price per tonne, not a price fact", deal.number)
        return
    if deal.unit not in rules.WEIGHT_UNITS:  # priced per piece: the price per tonne follows the weight
        price_t = rules.money(deal.final_amount / quantity_t)
    trade_record(
        trade_id=f"deal:{deal.pk}", awarded_at=deal.award.awarded_at, settled_at=deal.settled_at,
        category_code=deal.category_id, county_code=deal.region_id, seller_uscc=deal.seller.uscc,
        buyer_uscc=deal.buyer.uscc, quantity_t=quantity_t, unit_price=price_t,
    )  # fmt: skip


def deal_complete(*, deal: Deal, actor=None, ip=None) -> Deal:
    deal.completed_at = timezone.now()
    _deal_move(deal, DealStatus.COMPLETED, actor=actor, action="deal.complete", ip=ip, extra=["completed_at"])
    _trace(deal, "completed")
    _notify(
        deal,
        [deal.buyer_id, deal.seller_id],
        _("合同 %(number)s 已完成，欢迎评价对方。") % {"number": deal.number},
    )
    _credit_refresh_later(deal)
    return deal


def deal_reverse(*, actor, deal: Deal, reason: str, ip=None) -> None:
    """A settled trade found wrong (e.g. a fraud): its price fact is voided. Money is not moved here."""
    if not getattr(actor, "is_operator", False):
        raise PermissionDenied(_("只有平台运营人员可以撤销成交记录。"))
    if not reason.strip():
        raise ValidationError({"reason": _("请写明撤销理由。")})
    _state_require(deal, (DealStatus.SETTLED, DealStatus.COMPLETED), _("撤销成交记录"))
    from pricing.services import trade_void

    # One transaction: the audit, the trace and the void stand or fall together (the operator sees
    # an error and may try again; the void defers its own side effects until after the commit).
    with transaction.atomic():
        audit_record(actor=actor, action="deal.reverse", target=deal, reason=reason, ip=ip)
        _trace(deal, "reversed")
        trade_void(trade_id=f"deal:{deal.pk}", reason=reason)


# --- deadlines ------------------------------------------------------------------------------


def deal_default(*, deal_id: int, party: str, reason: str) -> bool:
    """The deal defaults (late payment, no-show): the defaulting buyer's deposit is forfeited, money
    paid beyond it is returned, the seller may offer the lot to the runner-up."""
    with transaction.atomic():
        deal = _deal_lock(deal_id)
        if deal.status not in DEAL_OPEN or deal.status in (DealStatus.WEIGHED, DealStatus.DISPUTED):
            return False
        deal.defaulted_by = party
        deal.status_reason = reason
        _deal_move(deal, DealStatus.DEFAULTED, action="deal.default", reason=reason,
                   extra=["defaulted_by", "status_reason"])  # fmt: skip
        penalty = Decimal("0")
        if deal.deposit_id and party == DefaultParty.BUYER:
            deposit = Deposit.objects.get(pk=deal.deposit_id)
            if deposit.status == DepositStatus.PAID:
                deposit_settle(deposit_id=deposit.pk, to=DepositStatus.FORFEITED, reason=reason)
            elif deposit.status == DepositStatus.APPLIED:
                penalty = deposit.amount  # it became part of the payment: kept as the penalty
                _ledger(f"forfeit:deal:{deal.pk}", LedgerKind.DEPOSIT_FORFEIT, organisation_id=deal.buyer_id,
                        amount=penalty, deal=deal, deposit=deposit, memo=reason)  # fmt: skip
        paid = deal_paid_total(deal) - penalty
        payment = deal.payments.filter(status=PaymentStatus.SUCCEEDED).order_by("-amount").first()
        if paid > 0 and payment is not None:
            _refund_create(payment, min(paid, payment.amount), code="default", deal=deal)
        # Payments not yet made are cancelled; a transfer whose slip is submitted stays to be confirmed
        # (then refunded, as paid after the end) or failed: cancelled, money that arrived could not be.
        for pending in deal.payments.filter(status=PaymentStatus.PENDING):
            transition(pending, field="status", to=PaymentStatus.CANCELLED, table=PAYMENT_TRANSITIONS,
                       actor=None, action="payment.cancel", reason=reason)  # fmt: skip
        _manifest_void(deal)
        _trace(deal, "defaulted", by=party)
        _notify(
            deal,
            [deal.buyer_id],
            _("合同 %(number)s 已违约终止：%(reason)s") % {"number": deal.number, "reason": reason},
        )
        _notify(
            deal, [deal.seller_id],
            _("合同 %(number)s 因买方违约终止：%(reason)s。您可以将标的转给下一位竞买人。")
            % {"number": deal.number, "reason": reason},
        )  # fmt: skip
        _credit_refresh_later(deal)
    return True


def deals_sweep(now=None) -> dict:
    """Deadlines: unpaid past ``pay_by``, not collected by the end of ``pickup_by``, settled long
    enough ago to complete by itself; and a deal for any award that lacks one."""
    now = now or timezone.now()
    counts = {"created": deals_from_awards(), "defaulted": 0, "completed": 0}
    counts["requeued"] = _stripe_work_requeue(now)
    # A bank transfer whose slip is awaiting confirmation is not a missed deadline: it is confirmed
    # (paid) or failed by the seller or an operator first.
    unpaid = Deal.objects.filter(status=DealStatus.AWAITING_PAYMENT, pay_by__lt=now).exclude(
        payments__status=PaymentStatus.SUBMITTED
    )
    for deal_id in unpaid.values_list("pk", flat=True):
        counts["defaulted"] += deal_default(deal_id=deal_id, party=DefaultParty.BUYER, reason=_("逾期未付款"))
    today = timezone.localdate(now)
    late = Deal.objects.filter(status__in=[DealStatus.PAID, DealStatus.PICKUP_SCHEDULED], pickup_by__lt=today)
    for deal_id in late.values_list("pk", flat=True):
        counts["defaulted"] += deal_default(deal_id=deal_id, party=DefaultParty.BUYER, reason=_("逾期未提货"))
    due = now - timedelta(days=settings.DEALS_COMPLETE_AFTER_DAYS)
    for deal_id in Deal.objects.filter(status=DealStatus.SETTLED, settled_at__lt=due).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            deal = _deal_lock(deal_id)
            if deal.status == DealStatus.SETTLED:
                deal_complete(deal=deal)
                counts["completed"] += 1
    return counts


STRIPE_REQUEUE_AFTER = timedelta(minutes=5)


def _stripe_work_requeue(now) -> int:
    """Stripe events stored but not applied, and Stripe refunds still pending, five minutes on: their
    task was lost (queued while the broker was away, say). Both tasks are idempotent: send them again."""
    from market.deals.tasks import refund_execute, stripe_event_process

    due = now - STRIPE_REQUEUE_AFTER
    events = list(
        StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=due)
        .exclude(object_id="")
        .values_list("pk", flat=True)
    )
    refunds = list(
        Refund.objects.filter(
            status=RefundStatus.PENDING, payment__method=PaymentMethod.STRIPE, created_at__lt=due
        ).values_list("pk", flat=True)
    )
    for pk in events:
        stripe_event_process.delay(pk)
    for pk in refunds:
        refund_execute.delay(pk)
    return len(events) + len(refunds)


def runner_up_offer(*, actor, deal: Deal, ip=None) -> Award:
    """After the buyer defaulted, the seller offers the lot to the next-best bidder at that bidder's
    own best bid: a new award, and so a new deal."""
    from market.trading.models import AwardSource, Bid

    _party_require(actor, deal, DefaultParty.SELLER, _("转给下一位竞买人"))
    with transaction.atomic():
        deal = _deal_lock(deal.pk)
        _state_require(deal, (DealStatus.DEFAULTED,), _("转给下一位竞买人"))
        award = deal.award
        if (
            award.sale_id is None
            or Award.objects.filter(sale_id=award.sale_id, source=AwardSource.RUNNER_UP).exists()
        ):
            raise DealRefused("no_runner_up")
        defaulted = set(Deal.objects.filter(award__sale_id=award.sale_id).values_list("buyer_id", flat=True))
        best = (
            Bid.objects.filter(sale_id=award.sale_id)
            .exclude(organisation_id__in=defaulted)
            .exclude(organisation__blacklisted_at__isnull=False)
            .order_by("-amount", "sequence")
            .first()
        )
        if (
            best is None
            or not Bidder.objects.filter(sale_id=award.sale_id, organisation_id=best.organisation_id).exists()
        ):
            raise DealRefused("no_runner_up")
        new = Award.objects.create(
            sale_id=award.sale_id, lot=award.lot, source=AwardSource.RUNNER_UP, seller_id=award.seller_id,
            buyer_id=best.organisation_id, category=award.category, quantity=award.quantity, unit=award.unit,
            unit_price=best.amount, amount=rules.money(award.quantity * best.amount),
        )  # fmt: skip
        audit_record(actor=actor, action="award.runner_up", target=new, ip=ip, data={"after": deal.number})
        deal_from_award(new)
    return new


# --- ratings and credit ---------------------------------------------------------------------


def rating_create(*, actor, deal: Deal, score: int, comment: str = "", ip=None) -> Rating:
    party = _party(actor, deal)
    if not party:
        raise DealRefused("not_party", party=_("买卖双方"), what=_("评价"))
    if deal.status != DealStatus.COMPLETED:
        raise DealRefused("deal_state", state=deal.get_status_display(), what=_("评价"))
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise DealRefused("rating_score")
    rater, ratee = (
        (deal.buyer_id, deal.seller_id) if party == DefaultParty.BUYER else (deal.seller_id, deal.buyer_id)
    )
    try:
        with transaction.atomic():
            rating = Rating.objects.create(
                deal=deal,
                rater_id=rater,
                ratee_id=ratee,
                score=score,
                comment=comment.strip()[:2000],
                created_by=actor,
            )
            audit_record(actor=actor, action="rating.create", target=deal, ip=ip, data={"score": score})
    except IntegrityError:
        raise DealRefused("already_rated") from None
    transaction.on_commit(lambda: credit_refresh(organisation_id=ratee), robust=True)
    return rating


def _credit_refresh_later(deal: Deal) -> None:
    from market.deals.tasks import credit_refresh_task

    for org_id in (deal.buyer_id, deal.seller_id):
        transaction.on_commit(lambda o=org_id: credit_refresh_task.delay(o), robust=True)


def credit_refresh(*, organisation_id: int) -> int:
    """Derive the organisation's credit score from its record and store it."""
    from market.deals.selectors import credit_record

    score = rules.credit_score(credit_record(organisation_id))
    Organisation.objects.filter(pk=organisation_id).exclude(credit_score=score).update(credit_score=score)
    return score


__all__ = [
    "DealRefused",
    "deal_complete",
    "deal_confirm",
    "deal_default",
    "deal_dispute",
    "deal_from_award",
    "deals_sweep",
    "dispute_resolve",
    "manifest_confirm",
    "manifest_create",
    "payment_confirm",
    "payment_start",
    "payment_slip_submit",
    "payment_succeeded",
    "pickup_book",
    "rating_create",
    "refund_succeeded",
    "runner_up_offer",
    "stripe_event_process",
    "stripe_event_receive",
    "trace_append",
    "weighing_record",
]


def deposit_moved_record(deposit: Deposit, *, from_state: str, to_state: str) -> None:
    """The ledger row of a deposit's move (in trading's transaction); a released deposit that was
    paid online is refunded through Stripe after the commit."""
    from market.deals.models import LedgerKind as K

    if to_state == DepositStatus.RELEASED and from_state != DepositStatus.PAID:
        return  # never paid: nothing moves
    kind = {
        DepositStatus.PAID: K.DEPOSIT_HOLD,
        DepositStatus.RELEASED: K.DEPOSIT_RELEASE,
        DepositStatus.FORFEITED: K.DEPOSIT_FORFEIT,
        DepositStatus.APPLIED: K.DEPOSIT_APPLY,
    }.get(to_state)
    if kind is None:
        return
    deal = Deal.objects.filter(deposit=deposit).order_by("-pk").first() if kind != K.DEPOSIT_HOLD else None
    _ledger(
        f"{kind}:{deposit.pk}", kind, organisation_id=deposit.organisation_id, amount=deposit.amount,
        deposit=deposit, deal=deal, memo=deposit.reference,
    )  # fmt: skip
    if to_state == DepositStatus.RELEASED:
        payment = Payment.objects.filter(deposit=deposit, status=PaymentStatus.SUCCEEDED).first()
        if payment is not None:
            _refund_create(payment, payment.amount, code="deposit_release", deposit=deposit)
