"""Trade facts: one row per settled trade, the only input of the price indices and statistics.

A fact is written once (``pricing.services.trade_record``) and never edited; a reversed deal marks
its fact voided (``trade_void``) and the row stays, so every published value can still list the
trades it was computed from (METHODOLOGY.md section 8).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TradeSource(models.TextChoices):
    DEAL = "deal", _("平台成交")
    IMPORT = "import", _("历史导入")


class TradeFact(models.Model):
    """A settled trade: who sold what to whom, where, how much, at what price and when."""

    trade_id = models.CharField(
        _("成交编号"),
        max_length=64,
        unique=True,
        help_text=_("平台成交为“deal:<编号>”，历史导入为原系统的编号。"),
    )
    source = models.CharField(_("来源"), max_length=8, choices=TradeSource.choices, default=TradeSource.DEAL)
    awarded_at = models.DateTimeField(_("成交时间"), db_index=True)
    settled_at = models.DateTimeField(_("结算时间"), db_index=True)
    category = models.ForeignKey(
        "listings.Category", verbose_name=_("品类"), on_delete=models.PROTECT, related_name="+"
    )
    region = models.ForeignKey(
        "core.Region",
        verbose_name=_("所在区县"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("标的所在地的区县级行政区划。"),
    )
    seller_uscc = models.CharField(_("卖方统一社会信用代码"), max_length=18)
    buyer_uscc = models.CharField(_("买方统一社会信用代码"), max_length=18)
    quantity_t = models.DecimalField(_("数量（吨）"), max_digits=16, decimal_places=3)
    unit_price = models.DecimalField(_("单价（元/吨）"), max_digits=14, decimal_places=2)
    amount = models.DecimalField(_("金额（元）"), max_digits=18, decimal_places=2)
    currency = models.CharField(_("币种"), max_length=3, default="CNY")
    voided_at = models.DateTimeField(_("作废时间"), null=True, blank=True)
    void_reason = models.TextField(_("作废原因"), blank=True)
    created_at = models.DateTimeField(_("记录时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("成交事实")
        verbose_name_plural = _("成交事实")
        ordering = ["-settled_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity_t__gt=0), name="tradefact_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="tradefact_unit_price_positive"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="tradefact_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["category", "settled_at"], name="tradefact_category_settled"),
            models.Index(fields=["region", "settled_at"], name="tradefact_region_settled"),
        ]

    def __str__(self):
        return f"{self.trade_id} · {self.category_id} · {self.quantity_t} t × {self.unit_price}"

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None
