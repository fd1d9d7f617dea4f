"""Catalogue of waste and renewable resources, lots, their media, wanted listings and saved searches.

``Lot`` carries the denormalised market state (trade mode, current price, closes at, bid count,
sequence) that ``market.trading`` writes through ``listings.services``; search indexes only this app.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from market.accounts.models import Organisation
from market.core.models import Region


class Unit(models.TextChoices):
    TONNE = "t", _("吨")
    KILOGRAM = "kg", _("千克")
    PIECE = "piece", _("件")
    VEHICLE = "vehicle", _("辆")
    CUBIC_METRE = "m3", _("立方米")


class Category(models.Model):
    """A node of the catalogue tree. Codes are stable dotted paths (``ferrous.heavy``), so a
    category's descendants are the codes starting with ``<code>.``."""

    code = models.CharField(_("代码"), max_length=64, primary_key=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级类别"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    name = models.CharField(_("名称"), max_length=64)
    name_en = models.CharField(_("英文名称"), max_length=96)
    aliases = models.CharField(
        _("俗称"),
        max_length=200,
        blank=True,
        help_text=_("行业俗称，空格分隔，搜索时等同于名称，例如“重废”。"),
    )
    depth = models.PositiveSmallIntegerField(default=0)
    sort_order = models.PositiveSmallIntegerField(default=0)
    unit = models.CharField(_("计量单位"), max_length=8, choices=Unit.choices, default=Unit.TONNE)
    tonnes_per_unit = models.DecimalField(
        _("每单位折合吨数"),
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_("为空表示该单位不能折算为吨（不计入价格指数）。"),
    )
    hazardous = models.BooleanField(_("危险废物"), default=False)
    hw_code = models.CharField(_("危险废物类别"), max_length=4, blank=True)
    spec_schema = models.JSONField(_("规格字段"), default=list, blank=True)
    min_lot_tonnes = models.DecimalField(
        _("计入指数的最小批量（吨）"), max_digits=12, decimal_places=3, default=0
    )
    description = models.TextField(_("说明"), blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("品类")
        verbose_name_plural = _("品类")
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"

    def save(self, *args, **kwargs):
        self.depth = self.code.count(".")
        super().save(*args, **kwargs)

    def descendant_filter(self, field: str = "code") -> Q:
        return Q(**{field: self.code}) | Q(**{f"{field}__startswith": f"{self.code}."})

    @property
    def is_leaf(self) -> bool:
        return not self.children.exists()


class LotStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SUBMITTED = "submitted", _("待审核")
    PUBLISHED = "published", _("已挂牌")
    CLOSED = "closed", _("已结束")
    WITHDRAWN = "withdrawn", _("已撤回")
    EXPIRED = "expired", _("已过期")


class TradeMode(models.TextChoices):
    AUCTION = "auction", _("竞价")
    TENDER = "tender", _("招标")
    FIXED = "fixed", _("一口价")
    QUOTATION = "quotation", _("询价")


class Packaging(models.TextChoices):
    BULK = "bulk", _("散装")
    BALES = "bales", _("打包")
    BAGS = "bags", _("吨袋")
    DRUMS = "drums", _("桶装")
    PALLETS = "pallets", _("托盘")
    CONTAINER = "container", _("集装箱")
    OTHER = "other", _("其他")


class Lot(models.Model):
    seller = models.ForeignKey(
        Organisation, verbose_name=_("卖方"), on_delete=models.PROTECT, related_name="lots"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    category = models.ForeignKey(
        Category, verbose_name=_("品类"), on_delete=models.PROTECT, related_name="lots"
    )
    title = models.CharField(_("标题"), max_length=120)
    description = models.TextField(_("描述"), blank=True)
    quantity = models.DecimalField(_("数量"), max_digits=14, decimal_places=3)
    unit = models.CharField(_("单位"), max_length=8, choices=Unit.choices)
    specs = models.JSONField(_("规格"), default=dict, blank=True)
    region = models.ForeignKey(
        Region, verbose_name=_("所在区县"), on_delete=models.PROTECT, related_name="lots"
    )
    address = models.CharField(_("提货地址"), max_length=255)
    available_from = models.DateField(_("可提货日期"))
    pickup_by = models.DateField(_("最迟提货日期"))
    packaging = models.CharField(
        _("包装方式"), max_length=16, choices=Packaging.choices, default=Packaging.BULK
    )
    hazardous = models.BooleanField(_("危险废物"), default=False)
    status = models.CharField(
        _("状态"), max_length=16, choices=LotStatus.choices, default=LotStatus.DRAFT, db_index=True
    )
    status_reason = models.TextField(_("审核意见"), blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(_("挂牌时间"), null=True, blank=True, db_index=True)
    # Market state, written by trading through listings.services.
    trade_mode = models.CharField(_("交易方式"), max_length=16, choices=TradeMode.choices, blank=True)
    currency = models.CharField(max_length=3, default="CNY")
    current_price = models.DecimalField(
        _("当前价格（元/单位）"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    closes_at = models.DateTimeField(_("截止时间"), null=True, blank=True, db_index=True)
    bid_count = models.PositiveIntegerField(_("出价次数"), default=0)
    sequence = models.PositiveBigIntegerField(default=0)
    # Space-separated search tokens (Chinese segmented), written by listings.search on indexing. On
    # PostgreSQL a trigger keeps the column search_vector (not in the model) equal to their tsvector.
    search_tokens = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("挂牌标的")
        verbose_name_plural = _("挂牌标的")
        ordering = ["-published_at", "-id"]
        indexes = [
            # Category filters, and the facet counts of a search as an index-only scan.
            models.Index(
                fields=["status", "category", "region", "trade_mode"], name="listings_lot_facets_idx"
            ),
            models.Index(fields=["status", "-published_at", "-id"]),
            models.Index(fields=["status", "current_price"], name="listings_lot_price_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="lot_quantity_positive"),
            models.CheckConstraint(
                condition=Q(pickup_by__gte=models.F("available_from")), name="lot_dates_ordered"
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        """Its page in the market (the admin's "view on site"). A URL name, not an import: the
        frontend stays on top of the apps."""
        return reverse("frontend:lot", args=[self.pk])

    @property
    def quantity_tonnes(self):
        factor = self.category.tonnes_per_unit
        return None if factor is None else self.quantity * factor


class MediaKind(models.TextChoices):
    PHOTO = "photo", _("照片")
    DOCUMENT = "document", _("文件")


def lot_media_path(instance, filename):
    return f"lots/{instance.lot_id}/{uuid.uuid4().hex}.{getattr(instance, '_ext', 'bin')}"


class LotMedia(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=16, choices=MediaKind.choices)
    file = models.FileField(upload_to=lot_media_path)
    thumbnail = models.FileField(upload_to=lot_media_path, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("标的图片与文件")
        verbose_name_plural = _("标的图片与文件")
        ordering = ["lot_id", "kind", "position", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.original_name} (#{self.lot_id})"


class WantedStatus(models.TextChoices):
    OPEN = "open", _("征集中")
    CLOSED = "closed", _("已结束")
    WITHDRAWN = "withdrawn", _("已撤回")


class WantedListing(models.Model):
    """A recycler's request for quotation: what it wants, how much, from where, at what price."""

    buyer = models.ForeignKey(
        Organisation, verbose_name=_("求购方"), on_delete=models.PROTECT, related_name="wanted"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    category = models.ForeignKey(
        Category, verbose_name=_("品类"), on_delete=models.PROTECT, related_name="wanted"
    )
    title = models.CharField(_("标题"), max_length=120)
    description = models.TextField(_("说明"), blank=True)
    quantity = models.DecimalField(_("数量"), max_digits=14, decimal_places=3)
    unit = models.CharField(_("单位"), max_length=8, choices=Unit.choices)
    region = models.ForeignKey(
        Region,
        verbose_name=_("货源地区"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wanted",
    )
    price_min = models.DecimalField(
        _("最低价（元/单位）"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    price_max = models.DecimalField(
        _("最高价（元/单位）"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    deadline = models.DateTimeField(_("报价截止"))
    status = models.CharField(
        _("状态"), max_length=16, choices=WantedStatus.choices, default=WantedStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("求购信息")
        verbose_name_plural = _("求购信息")
        ordering = ["deadline", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="wanted_quantity_positive"),
            models.CheckConstraint(
                condition=Q(price_min__isnull=True)
                | Q(price_max__isnull=True)
                | Q(price_max__gte=models.F("price_min")),
                name="wanted_price_range_ordered",
            ),
        ]

    def __str__(self):
        return self.title


class OfferStatus(models.TextChoices):
    OPEN = "open", _("待回复")
    ACCEPTED = "accepted", _("已接受")
    DECLINED = "declined", _("已拒绝")
    WITHDRAWN = "withdrawn", _("已撤回")


class WantedOffer(models.Model):
    """A seller's answer to a wanted listing. Accepting it becomes an award (trading)."""

    wanted = models.ForeignKey(WantedListing, on_delete=models.CASCADE, related_name="offers")
    seller = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="wanted_offers")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    lot = models.ForeignKey(
        Lot, null=True, blank=True, on_delete=models.SET_NULL, related_name="wanted_offers"
    )
    quantity = models.DecimalField(_("数量"), max_digits=14, decimal_places=3)
    unit_price = models.DecimalField(_("单价（元/单位）"), max_digits=14, decimal_places=2)
    message = models.TextField(_("留言"), blank=True)
    status = models.CharField(max_length=16, choices=OfferStatus.choices, default=OfferStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("报价")
        verbose_name_plural = _("报价")
        ordering = ["wanted_id", "created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0) & Q(unit_price__gt=0), name="offer_positive"),
            models.UniqueConstraint(
                fields=["wanted", "seller"], condition=Q(status="open"), name="offer_one_open_per_seller"
            ),
        ]

    def __str__(self):
        return f"{self.seller} → {self.wanted}: {self.unit_price}"


class SavedSearch(models.Model):
    """A query a recycler keeps; new lots that match it are announced once each."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="saved_searches")
    name = models.CharField(_("名称"), max_length=64)
    query = models.JSONField(_("条件"), default=dict)
    alerts = models.BooleanField(_("新货提醒"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("保存的搜索")
        verbose_name_plural = _("保存的搜索")
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class SavedSearchHit(models.Model):
    """One alert sent: the unique pair makes a second alert for the same lot impossible."""

    saved_search = models.ForeignKey(SavedSearch, on_delete=models.CASCADE, related_name="hits")
    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["saved_search", "lot"], name="saved_search_hit_once")]

    def __str__(self):
        return f"{self.saved_search} → lot #{self.lot_id}"
