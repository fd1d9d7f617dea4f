"""Deals: what an award becomes. A contract between two organisations, its payments, the ledger
of every money movement, pickup and weighing, the hazardous-waste transfer manifest, the trace
chain of the lot and the ratings the parties give each other."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from market.accounts.models import Organisation
from market.trading.models import Award, Deposit


class DealStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", _("待付款")
    PAID = "paid", _("已付款")
    PICKUP_SCHEDULED = "pickup_scheduled", _("已预约提货")
    WEIGHED = "weighed", _("已过磅")
    SETTLED = "settled", _("已结算")
    COMPLETED = "completed", _("已完成")
    DISPUTED = "disputed", _("争议处理中")
    DEFAULTED = "defaulted", _("已违约")
    CANCELLED = "cancelled", _("已取消")


S = DealStatus
DEAL_TRANSITIONS = {
    S.AWAITING_PAYMENT: {S.PAID, S.DEFAULTED, S.CANCELLED},
    S.PAID: {S.PICKUP_SCHEDULED, S.DEFAULTED, S.DISPUTED, S.CANCELLED},
    S.PICKUP_SCHEDULED: {S.WEIGHED, S.DEFAULTED, S.DISPUTED, S.CANCELLED},
    S.WEIGHED: {S.SETTLED, S.DISPUTED},
    S.DISPUTED: {S.WEIGHED, S.CANCELLED},
    S.SETTLED: {S.COMPLETED},
    S.COMPLETED: set(),
    S.DEFAULTED: set(),
    S.CANCELLED: set(),
}
# States in which the deal is still running (a deadline can still be missed).
DEAL_OPEN = (S.AWAITING_PAYMENT, S.PAID, S.PICKUP_SCHEDULED, S.WEIGHED, S.DISPUTED)


class DefaultParty(models.TextChoices):
    BUYER = "buyer", _("买方")
    SELLER = "seller", _("卖方")


class Deal(models.Model):
    """The contract an award becomes (成交合同)."""

    award = models.OneToOneField(Award, on_delete=models.PROTECT, related_name="deal")
    number = models.CharField(_("合同编号"), max_length=24, unique=True)
    lot = models.ForeignKey(
        "listings.Lot", null=True, blank=True, on_delete=models.PROTECT, related_name="deals"
    )
    seller = models.ForeignKey(
        Organisation, verbose_name=_("卖方"), on_delete=models.PROTECT, related_name="deals_sold"
    )
    buyer = models.ForeignKey(
        Organisation, verbose_name=_("买方"), on_delete=models.PROTECT, related_name="deals_bought"
    )
    category = models.ForeignKey("listings.Category", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(_("标的名称"), max_length=120)
    region = models.ForeignKey(
        "core.Region", verbose_name=_("提货地（区县）"), on_delete=models.PROTECT, related_name="+"
    )
    pickup_address = models.CharField(_("提货地址"), max_length=255, blank=True)
    hazardous = models.BooleanField(_("危险废物"), default=False)
    hw_code = models.CharField(_("危废代码"), max_length=16, blank=True)
    unit = models.CharField(_("单位"), max_length=8)
    tonnes_per_unit = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    quantity = models.DecimalField(_("成交数量"), max_digits=14, decimal_places=3)
    unit_price = models.DecimalField(_("单价（元/单位）"), max_digits=14, decimal_places=2)
    amount = models.DecimalField(_("合同金额（元）"), max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    fee_rate = models.DecimalField(_("平台服务费率"), max_digits=6, decimal_places=4)
    final_quantity = models.DecimalField(
        _("结算数量"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    final_amount = models.DecimalField(
        _("结算金额（元）"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    net_tonnes = models.DecimalField(
        _("过磅净重（吨）"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    deposit = models.ForeignKey(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="deals"
    )
    trace_chain = models.ForeignKey(
        "deals.TraceChain", null=True, blank=True, on_delete=models.PROTECT, related_name="deals"
    )
    status = models.CharField(
        _("状态"), max_length=20, choices=DealStatus.choices, default=DealStatus.AWAITING_PAYMENT,
        db_index=True,
    )  # fmt: skip
    pay_by = models.DateTimeField(_("付款截止"))
    pickup_from = models.DateField(_("提货开始日期"))
    pickup_by = models.DateField(_("提货截止日期"))
    defaulted_by = models.CharField(_("违约方"), max_length=8, choices=DefaultParty.choices, blank=True)
    status_reason = models.TextField(_("说明"), blank=True)
    created_at = models.DateTimeField(_("签订时间"), auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(_("付款时间"), null=True, blank=True)
    settled_at = models.DateTimeField(_("结算时间"), null=True, blank=True)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("成交合同")
        verbose_name_plural = _("成交合同")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "pay_by"]), models.Index(fields=["status", "pickup_by"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0) & Q(unit_price__gt=0) & Q(amount__gt=0), name="deal_positive"
            ),
        ]

    def __str__(self):
        return f"{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        """Its page in the market (the admin's "view on site"). A URL name, not an import: the
        frontend stays on top of the apps."""
        return reverse("frontend:deal", args=[self.pk])

    @property
    def amount_due_total(self) -> Decimal:
        """What the buyer owes in all: the weighed amount once known, the contract's until then."""
        return self.final_amount if self.final_amount is not None else self.amount

    def party_of(self, organisation_id) -> str | None:
        if organisation_id == self.buyer_id:
            return DefaultParty.BUYER
        if organisation_id == self.seller_id:
            return DefaultParty.SELLER
        return None


class PaymentPurpose(models.TextChoices):
    DEAL = "deal", _("货款")
    TOP_UP = "top_up", _("补款")
    DEPOSIT = "deposit", _("保证金")


class PaymentMethod(models.TextChoices):
    STRIPE = "stripe", _("在线支付（银行卡、支付宝、微信支付）")
    BANK_TRANSFER = "bank_transfer", _("对公转账")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("待支付")
    SUBMITTED = "submitted", _("已提交凭证，待确认")
    SUCCEEDED = "succeeded", _("已到账")
    FAILED = "failed", _("支付失败")
    CANCELLED = "cancelled", _("已取消")


P = PaymentStatus
PAYMENT_TRANSITIONS = {
    P.PENDING: {P.SUBMITTED, P.SUCCEEDED, P.FAILED, P.CANCELLED},
    P.SUBMITTED: {P.SUCCEEDED, P.FAILED, P.CANCELLED},
    P.FAILED: {P.SUCCEEDED, P.CANCELLED},  # a card declined, then another card accepted
    P.SUCCEEDED: set(),
    # Cancelled here, yet paid at the provider (a Stripe payment completed after the deal ended): the
    # money is recorded as it arrived, and returned.
    P.CANCELLED: {P.SUCCEEDED},
}


def slip_path(instance, filename):
    return f"payments/{uuid.uuid4().hex}.{getattr(instance, '_ext', 'bin')}"


class Payment(models.Model):
    """Money the buyer pays to the platform: the price of a deal, a top-up after weighing, or a bid
    deposit. The idempotency key is stored before Stripe is called, so a retry never pays twice."""

    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    deposit = models.ForeignKey(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    payer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="payments")
    purpose = models.CharField(_("用途"), max_length=16, choices=PaymentPurpose.choices)
    method = models.CharField(_("支付方式"), max_length=16, choices=PaymentMethod.choices)
    amount = models.DecimalField(_("金额（元）"), max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(_("状态"), max_length=16, choices=PaymentStatus.choices, default=P.PENDING)
    idempotency_key = models.CharField(max_length=64, unique=True, default=uuid.uuid4)
    stripe_intent = models.CharField(max_length=64, unique=True, null=True, blank=True)
    client_secret = models.CharField(max_length=128, blank=True)
    reference = models.CharField(_("付款附言"), max_length=64, blank=True)
    bank_serial = models.CharField(_("银行流水号"), max_length=64, blank=True)
    slip = models.FileField(_("转账凭证"), upload_to=slip_path, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("付款")
        verbose_name_plural = _("付款")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=Q(deal__isnull=False) | Q(deposit__isnull=False), name="payment_has_target"
            ),
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} ¥{self.amount} · {self.get_status_display()}"


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("退款中")
    SUCCEEDED = "succeeded", _("已退款")
    FAILED = "failed", _("退款失败")


class Refund(models.Model):
    """Money going back to the buyer: a partial refund after weighing, a released deposit."""

    # None: a bank-transfer deposit returned (it has no payment row of its own).
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    deposit = models.ForeignKey(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    amount = models.DecimalField(_("金额（元）"), max_digits=16, decimal_places=2)
    code = models.CharField(max_length=32, default="")  # why, stable: a retried step finds its refund
    reason = models.CharField(_("原因"), max_length=255)
    status = models.CharField(
        _("状态"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    idempotency_key = models.CharField(max_length=64, unique=True, default=uuid.uuid4)
    stripe_refund = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("退款")
        verbose_name_plural = _("退款")
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_positive")]

    def __str__(self):
        return f"{self.get_status_display()} ¥{self.amount}"


class LedgerKind(models.TextChoices):
    PAYMENT = "payment", _("买方付款")
    REFUND = "refund", _("退款")
    FEE = "fee", _("平台服务费")
    PAYOUT = "payout", _("向卖方结算")
    DEPOSIT_HOLD = "deposit_hold", _("保证金收取")
    DEPOSIT_RELEASE = "deposit_release", _("保证金退还")
    DEPOSIT_FORFEIT = "deposit_forfeit", _("保证金没收")
    DEPOSIT_APPLY = "deposit_apply", _("保证金转为货款")
    ADJUSTMENT = "adjustment", _("调整")


class LedgerImmutable(Exception):
    pass


class LedgerEntry(models.Model):
    """One money movement, never changed and never deleted. ``key`` names the movement (e.g.
    ``payment:17``) under a unique constraint, so a retried step writes it once."""

    key = models.CharField(max_length=64, unique=True)
    kind = models.CharField(_("类型"), max_length=20, choices=LedgerKind.choices)
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    deposit = models.ForeignKey(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger"
    )
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="ledger")
    amount = models.DecimalField(_("金额（元）"), max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    memo = models.CharField(_("摘要"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("记账时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("台账分录")
        verbose_name_plural = _("资金台账")
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_positive")]

    def __str__(self):
        return f"{self.get_kind_display()} ¥{self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise LedgerImmutable("ledger entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutable("ledger entries are never deleted")


class StripeEvent(models.Model):
    """A webhook event, stored once by its id; ``processed_at`` is set in the transaction that
    applies it, so a duplicate delivery changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("Stripe 事件")
        verbose_name_plural = _("Stripe 事件")
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class Pickup(models.Model):
    """The buyer's booked pickup (提货预约)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="pickups")
    date = models.DateField(_("提货日期"))
    vehicle_plate = models.CharField(_("车牌号"), max_length=16)
    driver_name = models.CharField(_("司机姓名"), max_length=32)
    driver_phone = models.CharField(_("司机电话"), max_length=32)
    note = models.CharField(_("备注"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("提货预约")
        verbose_name_plural = _("提货预约")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.date} {self.vehicle_plate}"


class WeighingStatus(models.TextChoices):
    ACCEPTED = "accepted", _("在允差内，自动确认")
    AWAITING = "awaiting", _("超出允差，待对方确认")
    CONFIRMED = "confirmed", _("对方已确认")
    DISPUTED = "disputed", _("有争议")
    RESOLVED = "resolved", _("平台已裁定")


def ticket_path(instance, filename):
    return f"weighings/{instance.deal_id}/{uuid.uuid4().hex}.{getattr(instance, '_ext', 'bin')}"


class Weighing(models.Model):
    """A weighbridge ticket (过磅单): the net weight sets the final quantity."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="weighings")
    ticket_no = models.CharField(_("磅单号"), max_length=32)
    gross_t = models.DecimalField(_("毛重（吨）"), max_digits=14, decimal_places=3)
    tare_t = models.DecimalField(_("皮重（吨）"), max_digits=14, decimal_places=3)
    net_t = models.DecimalField(_("净重（吨）"), max_digits=14, decimal_places=3)
    final_quantity = models.DecimalField(_("结算数量"), max_digits=14, decimal_places=3)
    difference = models.DecimalField(_("与合同数量偏差"), max_digits=8, decimal_places=4)
    ticket = models.FileField(_("磅单照片"), upload_to=ticket_path, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=WeighingStatus.choices)
    recorded_by_party = models.CharField(max_length=8, choices=DefaultParty.choices, blank=True)
    decided_against = models.CharField(
        _("裁定不利方"), max_length=8, choices=DefaultParty.choices, blank=True
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    weighed_at = models.DateTimeField(_("过磅时间"))
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("过磅记录")
        verbose_name_plural = _("过磅记录")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gross_t__gt=models.F("tare_t")) & Q(tare_t__gte=0),
                name="weighing_gross_over_tare",
            ),
        ]

    def __str__(self):
        return f"{self.ticket_no} {self.net_t} t"


class ManifestStatus(models.TextChoices):
    OPEN = "open", _("待确认")
    COMPLETED = "completed", _("三方已确认")
    VOID = "void", _("已作废（合同终止，未转移）")


class Manifest(models.Model):
    """The hazardous-waste transfer manifest (危险废物转移联单) of a hazardous deal."""

    deal = models.OneToOneField(Deal, on_delete=models.PROTECT, related_name="manifest")
    number = models.CharField(_("联单编号"), max_length=24, unique=True)
    hw_code = models.CharField(_("废物代码"), max_length=16)
    waste_name = models.CharField(_("废物名称"), max_length=120)
    quantity_t = models.DecimalField(_("转移数量（吨）"), max_digits=14, decimal_places=3)
    packaging = models.CharField(_("包装方式"), max_length=32)
    transporter_name = models.CharField(_("运输单位"), max_length=128)
    transporter_licence = models.CharField(_("道路危险货物运输许可证号"), max_length=64)
    vehicle_plate = models.CharField(_("运输车辆"), max_length=16)
    receiver_licence = models.CharField(_("接收单位危废经营许可证号"), max_length=64)
    # Where the waste leaves from and goes to, fixed when the manifest is opened (for the
    # jurisdictions' in and out flows, whatever the organisations' later addresses).
    origin = models.ForeignKey(
        "core.Region", verbose_name=_("移出地"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    destination = models.ForeignKey(
        "core.Region", verbose_name=_("接收地"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    shipped_on = models.DateField(_("转移日期"), db_index=True)
    received_on = models.DateField(_("接收日期"), null=True, blank=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=ManifestStatus.choices, default=ManifestStatus.OPEN
    )
    generator_confirmed_at = models.DateTimeField(_("产生单位确认"), null=True, blank=True)
    generator_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    transporter_confirmed_at = models.DateTimeField(_("运输单位确认"), null=True, blank=True)
    transporter_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    receiver_confirmed_at = models.DateTimeField(_("接收单位确认"), null=True, blank=True)
    receiver_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("危险废物转移联单")
        verbose_name_plural = _("危险废物转移联单")
        ordering = ["-created_at"]

    def __str__(self):
        return self.number


class TraceChain(models.Model):
    """One lot's tamper-evident history, reachable by a public code (printed as a QR code)."""

    code = models.CharField(_("追溯码"), max_length=16, unique=True)
    lot = models.OneToOneField(
        "listings.Lot", null=True, blank=True, on_delete=models.PROTECT, related_name="trace_chain"
    )
    title = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("追溯链")
        verbose_name_plural = _("追溯链")

    def __str__(self):
        return f"{self.code} {self.title}"


class TraceEntry(models.Model):
    """One event of the chain. ``hash`` = SHA-256 over the previous entry's hash and this entry's
    canonical content, so changing any entry breaks every link after it."""

    chain = models.ForeignKey(TraceChain, on_delete=models.PROTECT, related_name="entries")
    index = models.PositiveIntegerField()
    event = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("追溯记录")
        verbose_name_plural = _("追溯记录")
        ordering = ["chain_id", "index"]
        constraints = [models.UniqueConstraint(fields=["chain", "index"], name="trace_entry_once")]

    def __str__(self):
        return f"{self.chain_id}#{self.index} {self.event}"


class Rating(models.Model):
    """A party's rating of the other after completion (1-5 and a comment)."""

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="ratings")
    rater = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="ratings_given")
    ratee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="ratings_received")
    score = models.PositiveSmallIntegerField(_("评分"))
    comment = models.TextField(_("评价"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("评价")
        verbose_name_plural = _("评价")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "rater"], name="rating_once_per_party"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="rating_score_range"),
        ]

    def __str__(self):
        return f"{self.score}/5"
