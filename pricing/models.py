"""Trade facts: one row per settled trade, the only input of the price indices and statistics.

A fact is written once (``pricing.services.trade_record``) and never edited; a reversed deal marks
its fact voided (``trade_void``) and the row stays, so every published value can still list the
trades it was computed from (METHODOLOGY.md section 8).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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
            # Covering: the days of a city or county, which the rollups keep by month only, are
            # summed from this index alone (``pricing.selectors``).
            models.Index(
                fields=["region", "settled_at"],
                include=["category", "quantity_t", "amount", "voided_at"],
                name="tradefact_region_cover",
            ),
        ]

    def __str__(self):
        return f"{self.trade_id} · {self.category_id} · {self.quantity_t} t × {self.unit_price}"

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None


# --- Statistics rollups ---------------------------------------------------------------------------
#
# Dashboards and open data read these tables, never the facts (ARCHITECTURE.md, "Observe"). They are
# kept up to date on every recorded or voided fact by ``pricing.rollups.rollups_fact_apply`` (run
# by the statistics worker on the message sent after commit by ``services._after_trade_change``)
# and can be rebuilt from the facts at any time by ``manage.py stats_rebuild``.


class RollupGrain(models.TextChoices):
    """The periods kept as rows of their own; weeks come from days, quarters and years from months.
    Day rows are kept for the provinces and the nation only."""

    DAY = "day", pgettext_lazy("statistics", "日")
    MONTH = "month", pgettext_lazy("statistics", "月")


class RollupLevel(models.TextChoices):
    """What a rollup row's region key stands for."""

    NATIONAL = "national", _("全国")
    PROVINCE = "province", _("省级")
    CITY = "city", _("地级")
    COUNTY = "county", _("县级")


class VolumeRollup(models.Model):
    """Settled, unvoided trades summed over one period, one catalogue node and one region.

    A trade counts in every ancestor of its category (``ferrous.heavy`` and ``ferrous``) and, per
    month, in its county, city, province and the nation; per day, in its province and the nation
    only (a county or city has too few trades a day for a day row to sum anything: its days are
    read from the facts' covering index, ``pricing.selectors``). An economic zone is a union of whole provinces, so its
    figures are the sum of its provinces' rows, read at query time: no zone rows to keep, and a zone
    edited in the admin needs no rebuild. ``category`` and ``region`` are plain keys rather than
    foreign keys so that writing a fact's rows is one statement: ``region`` is ``"CN"`` or a six-digit
    GB/T 2260 code. ``period`` is the first day of the day or month, in Asia/Shanghai time, of the
    trade's settlement.
    """

    grain = models.CharField(pgettext_lazy("statistics", "粒度"), max_length=5, choices=RollupGrain.choices)
    period = models.DateField(pgettext_lazy("statistics", "期间"))
    category = models.CharField(_("品类"), max_length=64)
    depth = models.PositiveSmallIntegerField(pgettext_lazy("statistics", "品类层级"))
    region = models.CharField(pgettext_lazy("statistics", "区域"), max_length=40)
    level = models.CharField(
        pgettext_lazy("statistics", "区域层级"), max_length=8, choices=RollupLevel.choices
    )
    trades = models.BigIntegerField(pgettext_lazy("statistics", "成交笔数"), default=0)
    tonnes = models.DecimalField(
        pgettext_lazy("statistics", "成交量（吨）"), max_digits=20, decimal_places=3, default=0
    )
    value = models.DecimalField(
        pgettext_lazy("statistics", "成交额（元）"), max_digits=22, decimal_places=2, default=0
    )

    class Meta:
        verbose_name = _("成交统计汇总")
        verbose_name_plural = _("成交统计汇总")
        constraints = [
            # The depth (a function of the category) before the category, so that "the top-level
            # categories of one region over a range of periods" is one short range of this index.
            models.UniqueConstraint(
                fields=["grain", "region", "depth", "category", "period"], name="volumerollup_cell_once"
            ),
        ]
        indexes = [
            # "top regions of a level in a period": provinces by value in a year, and so on.
            models.Index(fields=["grain", "level", "depth", "period"], name="volumerollup_level_period"),
            # a rebuild replaces whole months
            models.Index(fields=["period", "grain"], name="volumerollup_period"),
        ]

    def __str__(self):
        return f"{self.grain} {self.period} {self.category} {self.region}: {self.trades}"


class DisclosureSide(models.TextChoices):
    SELLER = "s", _("卖方")
    BUYER = "b", _("买方")


class DisclosureContribution(models.Model):
    """One organisation's part of one cell of the open data (province or nation × top-level category
    or all categories × month), on one side of the trades.

    Distinct sellers and buyers are not additive, so they cannot be kept as counters: a void would
    not know whether the organisation still trades in the cell. Keeping each organisation's trades
    and tonnes per cell makes both exact under increments and voids (an organisation counts while
    its ``trades`` is above zero) and also gives the largest single share for the dominance rule.
    ``category`` is ``"*"`` for all categories and ``region`` ``"CN"`` for the nation (the margins of
    the published tables).
    """

    month = models.DateField(pgettext_lazy("statistics", "月份"))
    region = models.CharField(pgettext_lazy("statistics", "区域"), max_length=6)
    category = models.CharField(_("品类"), max_length=64)
    side = models.CharField(
        pgettext_lazy("statistics", "买卖方"), max_length=1, choices=DisclosureSide.choices
    )
    uscc = models.CharField(_("统一社会信用代码"), max_length=18)
    trades = models.IntegerField(pgettext_lazy("statistics", "成交笔数"), default=0)
    tonnes = models.DecimalField(
        pgettext_lazy("statistics", "成交量（吨）"), max_digits=20, decimal_places=3, default=0
    )

    class Meta:
        verbose_name = _("公开数据贡献")
        verbose_name_plural = _("公开数据贡献")
        constraints = [
            models.UniqueConstraint(
                fields=["month", "region", "category", "side", "uscc"], name="disclosure_contribution_once"
            ),
        ]

    def __str__(self):
        return f"{self.month} {self.region} {self.category} {self.side} {self.uscc}: {self.trades}"


class TradeFactRollupMark(models.Model):
    """Whether a fact's figures are in the rollups, so that applying it twice never counts twice.

    ``counted`` says whether the rollups hold the fact now; it follows the fact (counted while not
    voided) each time ``rollups_fact_apply`` runs. ``pending`` is set in the transaction that
    records or voids the fact and cleared when the rollups have caught up, so the periodic sweep
    finds a change whose message was lost (a crashed process, a broker down) through a small
    partial index.
    """

    fact = models.OneToOneField(
        TradeFact, primary_key=True, on_delete=models.CASCADE, related_name="rollup_mark"
    )
    counted = models.BooleanField(default=False)
    pending = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("成交统计标记")
        verbose_name_plural = _("成交统计标记")
        indexes = [
            models.Index(fields=["fact"], condition=Q(pending=True), name="rollupmark_pending"),
        ]

    def __str__(self):
        return f"{self.fact_id}: {'counted' if self.counted else 'not counted'}"


class FillStatus(models.TextChoices):
    RUNNING = "running", pgettext_lazy("statistics", "进行中")
    DONE = "done", pgettext_lazy("statistics", "已完成")


class RollupFillState(models.Model):
    """How far a rebuild of the rollups got (after Zulip's ``analytics.FillState``).

    The rebuild works month by month; each month is rebuilt and ``done_through`` moved to it in one
    transaction, so after a crash the row says exactly which months are done and a rerun of the same
    range continues with the next one.
    """

    name = models.CharField(max_length=40, primary_key=True)
    status = models.CharField(max_length=8, choices=FillStatus.choices)
    range_from = models.DateField(pgettext_lazy("statistics", "起始月份"))
    range_to = models.DateField(pgettext_lazy("statistics", "截止月份"))
    done_through = models.DateField(pgettext_lazy("statistics", "已完成至"), null=True, blank=True)
    started_at = models.DateTimeField(pgettext_lazy("statistics", "开始时间"))
    updated_at = models.DateTimeField(pgettext_lazy("statistics", "更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("统计重建进度")
        verbose_name_plural = _("统计重建进度")

    def __str__(self):
        return f"{self.name}: {self.status} {self.range_from}..{self.range_to} done {self.done_through}"


from pricing.index_models import (  # noqa: E402,F401  (the index tables live in their own module)
    CompositeComponent,
    IndexCorrection,
    IndexSeries,
    IndexValue,
)
