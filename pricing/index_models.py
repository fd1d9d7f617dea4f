"""Price index tables (imported by ``pricing.models``): series, their daily values with the status
letter and the audit list, composites' weights and contributions, corrections and the
as-first-published series. Computed by ``pricing.indices`` with ``pricing.methodology``."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SeriesKind(models.TextChoices):
    ELEMENTARY = "elementary", _("单品指数")
    COMPOSITE = "composite", _("综合指数")


class SeriesScope(models.TextChoices):
    NATIONAL = "national", _("全国")
    ZONE = "zone", _("经济区")
    PROVINCE = "province", _("省份")


class IndexSeries(models.Model):
    """One index: a category node at a region level, or a composite of other series."""

    code = models.CharField(_("指数代码"), max_length=96, unique=True)
    kind = models.CharField(_("类型"), max_length=16, choices=SeriesKind.choices)
    name = models.CharField(_("名称"), max_length=128)
    name_en = models.CharField(_("英文名称"), max_length=160)
    category = models.ForeignKey(
        "listings.Category", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope = models.CharField(
        _("区域层级"), max_length=16, choices=SeriesScope.choices, default=SeriesScope.NATIONAL
    )
    zone = models.ForeignKey(
        "core.EconomicZone", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    province = models.ForeignKey(
        "core.Region", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    base_start = models.DateField(_("基期开始"), null=True, blank=True)
    base_end = models.DateField(_("基期结束"), null=True, blank=True)
    base_price = models.DecimalField(
        _("基期价格（元/吨）"), max_digits=20, decimal_places=6, null=True, blank=True
    )
    sort_order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("价格指数")
        verbose_name_plural = _("价格指数")
        ordering = ["sort_order", "code"]
        indexes = [models.Index(fields=["category", "scope"])]

    def __str__(self):
        return self.name

    @property
    def region_prefix(self) -> str:
        return self.province_id[:2] if self.province_id else ""


class IndexParams(models.Model):
    """A set of the methodology's parameters (``Params.as_audit()``), stored once and referred to by
    the values computed with it (the rebuild of history writes millions of values with one set)."""

    digest = models.CharField(max_length=64, unique=True)  # SHA-256 of the canonical JSON
    params = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("指数参数")
        verbose_name_plural = _("指数参数")

    def __str__(self):
        return self.digest[:12]


class IndexValue(models.Model):
    """The official close of a series on a business day (METHODOLOGY sections 4-6 and 8)."""

    # Neither a database constraint nor an index of its own: the unique (series, day) index serves
    # every lookup by series, and PostgreSQL checks a foreign key row by row at commit (6 us a value,
    # a third of what writing a rebuild's millions of values costs). Deleting a series through the
    # ORM still deletes its values; values are derived data, rebuilt from the trade facts.
    series = models.ForeignKey(
        IndexSeries, on_delete=models.CASCADE, related_name="values", db_index=False, db_constraint=False
    )
    day = models.DateField(_("日期"))
    status = models.CharField(_("状态"), max_length=1)  # T, E, C, S
    price = models.DecimalField(_("价格（元/吨）"), max_digits=20, decimal_places=6)
    level = models.DecimalField(_("指数"), max_digits=14, decimal_places=2, null=True, blank=True)
    n = models.PositiveIntegerField(_("成交笔数"), default=0)
    tonnes = models.DecimalField(_("成交量（吨）"), max_digits=18, decimal_places=3, default=0)
    amount = models.DecimalField(_("成交额（元）"), max_digits=20, decimal_places=2, default=0)
    day_amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    min_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    excluded = models.PositiveIntegerField(_("剔除笔数"), default=0)
    days_carried = models.PositiveIntegerField(default=0)
    carried_from = models.DateField(null=True, blank=True)
    # The audit list: trade ids used, and {trade id: [reason code, detail]} for those examined and not used.
    used = models.JSONField(default=list)
    unused = models.JSONField(default=dict)
    review = models.JSONField(default=list)
    # True when the three lists above are not stored but derived when asked for, from the facts as
    # they were at publication (``indices.value_audit_lists``): the set-wise rebuild of history.
    audit_derived = models.BooleanField(default=False)
    contributions = models.JSONField(
        default=dict
    )  # composites: {series code: {weight, relative, contribution}}
    params = models.JSONField(default=dict)
    # Or, for values of the rebuild (``params`` empty), the set they were computed with: its entries
    # for this series' category are this value's parameters (``indices.value_params``). No database
    # constraint nor index: one set for millions of rows, never deleted (PROTECT, checked by the ORM).
    params_set = models.ForeignKey(
        IndexParams,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    methodology_version = models.CharField(max_length=16)
    first_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    first_level = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    first_status = models.CharField(max_length=1, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    corrected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("指数值")
        verbose_name_plural = _("指数值")
        ordering = ["series_id", "day"]
        constraints = [models.UniqueConstraint(fields=["series", "day"], name="index_value_once_per_day")]

    def __str__(self):
        return f"{self.series_id} {self.day} {self.status} {self.level}"


class IndexCorrection(models.Model):
    """A published value corrected (an input or calculation error, a trade voided later)."""

    # No database constraint: with one, deleting a span's values (``indices_rebuild``) checked every
    # deleted value against the notices at commit, 38 s for 4.2 million values. The ORM deletes a
    # value's notices with it, and the rebuild deletes the span's notices before its values.
    value = models.ForeignKey(
        IndexValue, on_delete=models.CASCADE, related_name="corrections", db_constraint=False
    )
    old_price = models.DecimalField(max_digits=20, decimal_places=6)
    new_price = models.DecimalField(max_digits=20, decimal_places=6)
    old_level = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    new_level = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    reason = models.TextField(_("更正原因"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("更正时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("指数更正公告")
        verbose_name_plural = _("指数更正公告")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.value} {self.old_level} → {self.new_level}"


class CompositeComponent(models.Model):
    """A component of a composite in one chain year: its weight s_k and its link-day price P(k,L)."""

    composite = models.ForeignKey(IndexSeries, on_delete=models.CASCADE, related_name="components")
    component = models.ForeignKey(IndexSeries, on_delete=models.CASCADE, related_name="+")
    year = models.PositiveSmallIntegerField()
    weight = models.DecimalField(max_digits=20, decimal_places=18)
    link_price = models.DecimalField(max_digits=20, decimal_places=6)
    link_value = models.DecimalField(max_digits=20, decimal_places=6)  # C(L)

    class Meta:
        verbose_name = _("综合指数成分")
        verbose_name_plural = _("综合指数成分")
        constraints = [
            models.UniqueConstraint(
                fields=["composite", "component", "year"], name="composite_component_once"
            )
        ]

    def __str__(self):
        return f"{self.composite_id}/{self.component_id} {self.year}"
