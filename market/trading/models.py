"""The trading floor: a lot's sale (auction, tender, fixed price or quotation), its bids, bidders'
deposits and the award every sale ends in.

``Sale`` is the lot's trading row: every bid locks it (``select_for_update``), so bids on one lot
are applied one at a time in the order the database grants the lock, and the sequence number
counts every change a watcher must see. Bids are immutable rows; a tender bidder's revision is a
new row and the latest one counts.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from listings.models import Lot, TradeMode, WantedOffer
from market.accounts.models import Organisation


class SaleStatus(models.TextChoices):
    ACTIVE = "active", _("进行中")
    CLOSED = "closed", _("已成交")
    FAILED = "failed", _("未成交")
    CANCELLED = "cancelled", _("已取消")


SALE_TRANSITIONS = {
    SaleStatus.ACTIVE: {SaleStatus.CLOSED, SaleStatus.FAILED, SaleStatus.CANCELLED},
    SaleStatus.CLOSED: set(),
    SaleStatus.FAILED: set(),
    SaleStatus.CANCELLED: set(),
}


class FailReason(models.TextChoices):
    NO_BIDS = "no_bids", _("无人出价（流拍）")
    RESERVE_NOT_MET = "reserve_not_met", _("未达到保留价（流拍）")
    TOO_FEW_BIDDERS = "too_few_bidders", _("有效投标人数不足（流标）")
    NOT_PUBLISHED = "not_published", _("截止时标的未挂牌")
    WITHDRAWN = "withdrawn", _("标的已撤回")
    SOLD_OUT = "sold_out", _("已售罄")


class Sale(models.Model):
    lot = models.ForeignKey(Lot, verbose_name=_("标的"), on_delete=models.PROTECT, related_name="sales")
    mode = models.CharField(_("交易方式"), max_length=16, choices=TradeMode.choices)
    status = models.CharField(
        _("状态"), max_length=16, choices=SaleStatus.choices, default=SaleStatus.ACTIVE, db_index=True
    )
    currency = models.CharField(max_length=3, default="CNY")
    # Terms, fixed once the first bid is in.
    start_price = models.DecimalField(_("起拍价"), max_digits=14, decimal_places=2, null=True, blank=True)
    increment_amount = models.DecimalField(
        _("加价幅度（元）"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    increment_percent = models.DecimalField(
        _("加价幅度（%）"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    reserve_price = models.DecimalField(_("保留价"), max_digits=14, decimal_places=2, null=True, blank=True)
    buy_now_price = models.DecimalField(
        _("一口价成交价"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    fixed_price = models.DecimalField(_("挂牌价"), max_digits=14, decimal_places=2, null=True, blank=True)
    min_quantity = models.DecimalField(
        _("最小购买量"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    quantity_remaining = models.DecimalField(
        _("剩余数量"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    min_bidders = models.PositiveSmallIntegerField(_("最少有效投标人数"), default=2)
    deposit_amount = models.DecimalField(_("保证金"), max_digits=14, decimal_places=2, default=Decimal("0"))
    allowed_provinces = models.JSONField(_("限定竞买人所在省份"), default=list, blank=True)
    min_credit_score = models.PositiveSmallIntegerField(_("竞买人最低信用分"), null=True, blank=True)
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("原定截止时间"))
    closes_at = models.DateTimeField(_("截止时间"), db_index=True)
    max_closes_at = models.DateTimeField(_("最晚截止时间"), null=True, blank=True)
    extend_window_s = models.PositiveIntegerField(_("延时触发窗口（秒）"), default=300)
    extend_by_s = models.PositiveIntegerField(_("每次延时（秒）"), default=300)
    # Live state, written under the row lock.
    sequence = models.PositiveBigIntegerField(default=0)
    current_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    leader = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    leader_maximum = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    leader_order = models.BigIntegerField(null=True, blank=True)
    bid_count = models.PositiveIntegerField(default=0)
    bidder_count = models.PositiveIntegerField(default=0)
    closing_warned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    fail_reason = models.CharField(max_length=32, choices=FailReason.choices, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("交易场次")
        verbose_name_plural = _("交易场次")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["lot"], condition=Q(status="active"), name="sale_one_active_per_lot"
            ),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("starts_at")), name="sale_times_ordered"
            ),
        ]
        indexes = [models.Index(fields=["status", "closes_at"])]

    def __str__(self):
        return f"{self.get_mode_display()} #{self.pk} · {self.lot_id}"

    @property
    def is_sealed(self) -> bool:
        return self.mode == TradeMode.TENDER


class Bidder(models.Model):
    """An organisation taking part in a sale: its anonymous label and its standing proxy maximum."""

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="bidders")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    label_index = models.PositiveIntegerField()
    maximum = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "organisation"], name="bidder_once_per_sale"),
            models.UniqueConstraint(fields=["sale", "label_index"], name="bidder_label_once"),
        ]

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        return bidder_label(self.label_index)


def bidder_label(index: int) -> str:
    """竞买人 A, B, ... Z, AA, AB, ...: anonymous and stable for a sale."""
    letters = ""
    n = index
    while True:
        letters = chr(ord("A") + n % 26) + letters
        n = n // 26 - 1
        if n < 0:
            break
    return str(_("竞买人 %(letter)s") % {"letter": letters})


class BidKind(models.TextChoices):
    MANUAL = "manual", _("出价")
    PROXY = "proxy", _("代理出价")
    RAISE = "raise", _("提高代理上限")
    BUY_NOW = "buy_now", _("一口价")
    TENDER = "tender", _("投标")


class Bid(models.Model):
    """One immutable bid row: never updated, never deleted."""

    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="bids")
    bidder = models.ForeignKey(Bidder, on_delete=models.PROTECT, related_name="bids")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    amount = models.DecimalField(_("出价（元/单位）"), max_digits=14, decimal_places=2)
    maximum = models.DecimalField(_("代理上限"), max_digits=14, decimal_places=2, null=True, blank=True)
    kind = models.CharField(max_length=16, choices=BidKind.choices)
    sequence = models.PositiveBigIntegerField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("出价")
        verbose_name_plural = _("出价")
        ordering = ["sale", "sequence", "id"]
        indexes = [models.Index(fields=["sale", "sequence"])]

    def __str__(self):
        return f"{self.sale_id}/{self.sequence} {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("bids are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("bids are immutable")


class DepositStatus(models.TextChoices):
    PENDING = "pending", _("待缴纳")
    PAID = "paid", _("已缴纳")
    RELEASED = "released", _("已退还")
    FORFEITED = "forfeited", _("已没收")
    APPLIED = "applied", _("已转为货款")


DEPOSIT_TRANSITIONS = {
    DepositStatus.PENDING: {DepositStatus.PAID, DepositStatus.RELEASED},
    DepositStatus.PAID: {DepositStatus.RELEASED, DepositStatus.FORFEITED, DepositStatus.APPLIED},
    DepositStatus.RELEASED: set(),
    DepositStatus.FORFEITED: set(),
    DepositStatus.APPLIED: set(),
}


class DepositMethod(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", _("对公转账")
    STRIPE = "stripe", _("在线支付")


class Deposit(models.Model):
    """A bidder's bid deposit (保证金) for one sale."""

    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="deposits")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="deposits")
    amount = models.DecimalField(_("金额"), max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    status = models.CharField(
        _("状态"), max_length=16, choices=DepositStatus.choices, default=DepositStatus.PENDING
    )
    method = models.CharField(
        _("缴纳方式"), max_length=16, choices=DepositMethod.choices, default=DepositMethod.BANK_TRANSFER
    )
    reference = models.CharField(_("转账流水号"), max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("保证金")
        verbose_name_plural = _("保证金")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["sale", "organisation"], name="deposit_once_per_bidder"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_positive"),
        ]

    def __str__(self):
        return f"{self.organisation} · {self.sale_id} · {self.amount}"


class LotOfferStatus(models.TextChoices):
    OPEN = "open", _("待回复")
    ACCEPTED = "accepted", _("已接受")
    DECLINED = "declined", _("已拒绝")
    WITHDRAWN = "withdrawn", _("已撤回")
    LAPSED = "lapsed", _("已失效")


class LotOffer(models.Model):
    """A buyer's quotation on a lot offered by request for quotation (询价)."""

    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="offers")
    buyer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="lot_offers")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    quantity = models.DecimalField(_("数量"), max_digits=14, decimal_places=3)
    unit_price = models.DecimalField(_("单价（元/单位）"), max_digits=14, decimal_places=2)
    message = models.TextField(_("留言"), blank=True)
    status = models.CharField(max_length=16, choices=LotOfferStatus.choices, default=LotOfferStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("报价")
        verbose_name_plural = _("报价")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0) & Q(unit_price__gt=0), name="lot_offer_positive"
            ),
        ]

    def __str__(self):
        return f"{self.buyer} · {self.unit_price}"


class AwardSource(models.TextChoices):
    AUCTION = "auction", _("竞价成交")
    BUY_NOW = "buy_now", _("一口价成交")
    TENDER = "tender", _("招标成交")
    FIXED = "fixed", _("挂牌成交")
    LOT_OFFER = "lot_offer", _("询价成交")
    WANTED_OFFER = "wanted_offer", _("求购报价成交")
    RUNNER_UP = "runner_up", _("违约后递补成交")


class Award(models.Model):
    """What a sale ends in: who buys how much at what price. The deals issue turns it into a contract."""

    sale = models.ForeignKey(Sale, null=True, blank=True, on_delete=models.PROTECT, related_name="awards")
    lot = models.ForeignKey(Lot, null=True, blank=True, on_delete=models.PROTECT, related_name="awards")
    wanted_offer = models.OneToOneField(
        WantedOffer, null=True, blank=True, on_delete=models.PROTECT, related_name="award"
    )
    lot_offer = models.OneToOneField(
        LotOffer, null=True, blank=True, on_delete=models.PROTECT, related_name="award"
    )
    winning_bid = models.OneToOneField(
        Bid, null=True, blank=True, on_delete=models.PROTECT, related_name="award"
    )
    source = models.CharField(_("来源"), max_length=16, choices=AwardSource.choices)
    seller = models.ForeignKey(
        Organisation, verbose_name=_("卖方"), on_delete=models.PROTECT, related_name="+"
    )
    buyer = models.ForeignKey(
        Organisation, verbose_name=_("买方"), on_delete=models.PROTECT, related_name="+"
    )
    category = models.ForeignKey("listings.Category", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(_("数量"), max_digits=14, decimal_places=3)
    unit = models.CharField(_("单位"), max_length=8)
    unit_price = models.DecimalField(_("单价（元/单位）"), max_digits=14, decimal_places=2)
    amount = models.DecimalField(_("金额（元）"), max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    awarded_at = models.DateTimeField(_("成交时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("成交")
        verbose_name_plural = _("成交")
        ordering = ["-awarded_at", "-id"]
        constraints = [
            # An auction or a tender ends in at most one award, whoever closes it and however often.
            models.UniqueConstraint(
                fields=["sale"],
                condition=Q(source__in=["auction", "buy_now", "tender", "lot_offer"]),
                name="award_one_per_single_sale",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0) & Q(unit_price__gt=0) & Q(amount__gt=0), name="award_positive"
            ),
        ]

    def __str__(self):
        return f"{self.get_source_display()} · {self.buyer} · {self.amount}"


def award_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    return (quantity * unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
