"""Kernel models: administrative divisions (GB/T 2260), economic zones and the audit log."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RegionLevel(models.TextChoices):
    PROVINCE = "province", _("省级")
    CITY = "city", _("地级")
    COUNTY = "county", _("县级")


# GB/T 2260 names for city-level entries that stand for no prefecture.
PLACEHOLDER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
# 北京, 天津, 上海, 重庆: their districts sit under city-level entries named after the municipality.
MUNICIPALITY_PREFIXES = frozenset({"11", "12", "31", "50"})


class Region(models.Model):
    """One administrative division, keyed by its six-digit GB/T 2260 code."""

    code = models.CharField(_("行政区划代码"), max_length=6, primary_key=True)
    name = models.CharField(_("名称"), max_length=64)
    level = models.CharField(_("级别"), max_length=8, choices=RegionLevel.choices, db_index=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    # WGS-84 degrees of the division's centroid (see migration 0004_region_centroids); null if unknown.
    latitude = models.FloatField(_("纬度"), null=True, blank=True)
    longitude = models.FloatField(_("经度"), null=True, blank=True)

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"

    @property
    def city_code(self) -> str:
        return self.code[:4] + "00"

    @property
    def point(self) -> tuple[float, float] | None:
        """(latitude, longitude) of the centroid, or None when the region has none."""
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)

    def ancestors(self) -> list["Region"]:
        """From the province down to this region's parent."""
        chain, node = [], self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))

    @property
    def is_placeholder(self) -> bool:
        """A city-level entry that is no prefecture: a municipality's 市辖区 (110100, 500200 …) or a
        province's 省直辖县级行政区划 (419000, 659000 …). Full names leave it out."""
        if self.level != RegionLevel.CITY:
            return False
        return (
            self.code[:2] in MUNICIPALITY_PREFIXES or self.code[2:4] == "90" or self.name in PLACEHOLDER_NAMES
        )

    @property
    def full_name(self) -> str:
        """The name people write on an address: 河北省唐山市路北区, 北京市朝阳区, 河南省济源市."""
        parts: list[str] = []
        for region in self.ancestors():
            if not region.is_placeholder:
                parts.append(region.name)
        if self.is_placeholder and parts and self.name.startswith(parts[-1]):
            parts.pop()  # 北京市 (110100) under 北京市 reads 北京市, 500200 reads 重庆市辖县
        parts.append(self.name)
        return "".join(parts)

    def contains(self, other: "Region | str") -> bool:
        """True when ``other`` (a region or a code) is this region or lies inside it.

        GB/T 2260 codes are hierarchical: two digits of province, two of city, two of county.
        """
        code = other if isinstance(other, str) else other.code
        if self.level == RegionLevel.PROVINCE:
            return code[:2] == self.code[:2]
        if self.level == RegionLevel.CITY:
            return code[:4] == self.code[:4]
        return code == self.code


class RegionDataset(models.Model):
    """Where the loaded division list came from, and as of when."""

    source = models.CharField(_("来源"), max_length=255)
    snapshot_date = models.DateField(_("快照日期"))
    provinces = models.PositiveIntegerField(default=0)
    cities = models.PositiveIntegerField(default=0)
    counties = models.PositiveIntegerField(default=0)
    loaded_at = models.DateTimeField(_("导入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("行政区划数据版本")
        verbose_name_plural = _("行政区划数据版本")
        get_latest_by = "loaded_at"

    def __str__(self):
        return f"{self.source} @ {self.snapshot_date}"


class EconomicZone(models.Model):
    """A named group of provinces, e.g. 京津冀 or 长三角, used for index series and statistics."""

    code = models.SlugField(_("代码"), max_length=32, primary_key=True)
    name = models.CharField(_("名称"), max_length=64)
    name_en = models.CharField(_("英文名称"), max_length=64)
    provinces = models.ManyToManyField(
        Region, verbose_name=_("省份"), related_name="economic_zones", limit_choices_to={"level": "province"}
    )
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("经济区")
        verbose_name_plural = _("经济区")
        ordering = ["sort_order", "code"]

    def __str__(self):
        return self.name


class AuditEntry(models.Model):
    """One privileged or state-changing action: who, when, from where, what and why.

    Rows are append-only: updating or deleting one raises an error, and the admin shows them read-only.
    """

    at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作人"), null=True, blank=True, on_delete=models.PROTECT
    )
    actor_label = models.CharField(_("操作人标识"), max_length=255, blank=True)
    ip = models.GenericIPAddressField(_("来源地址"), null=True, blank=True)
    action = models.CharField(_("操作"), max_length=64, db_index=True)
    target_type = models.CharField(_("对象类型"), max_length=64, db_index=True)
    target_id = models.CharField(_("对象编号"), max_length=64, db_index=True)
    from_state = models.CharField(_("原状态"), max_length=32, blank=True)
    to_state = models.CharField(_("新状态"), max_length=32, blank=True)
    reason = models.TextField(_("原因"), blank=True)
    data = models.JSONField(_("详情"), default=dict, blank=True)

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "-at"])]

    def __str__(self):
        return (
            f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_type}#{self.target_id}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit entries are append-only")


class Notification(models.Model):
    """A message to one user: shown live, kept for the bell's unread count and the list."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(_("标题"), max_length=255)
    body = models.TextField(_("内容"), blank=True)
    url = models.CharField(_("链接"), max_length=500, blank=True)
    kind = models.CharField(_("类型"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)
    email_pending = models.BooleanField(_("待发邮件"), default=False, db_default=False)
    """The notice is still to be e-mailed: the outbox that ``market.core.tasks.notifications_email``
    sends from (set in the notice's own transaction, cleared once sent)."""
    email_leased_until = models.DateTimeField(_("邮件发送租约"), null=True, blank=True)
    """A sweep has claimed the notice's e-mail until then (a crashed sweep's claim lapses)."""

    class Meta:
        verbose_name = _("站内通知")
        verbose_name_plural = _("站内通知")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(
                fields=["user"], condition=models.Q(read_at__isnull=True), name="notification_unread"
            ),
            models.Index(
                fields=["id"], condition=models.Q(email_pending=True), name="notification_email_pending"
            ),
        ]

    def __str__(self):
        return self.title


class IdempotencyKey(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key`` header, replayed to retries.

    The row is inserted in the same transaction as the work it guards, under a unique constraint,
    so a concurrent retry waits for the first request to commit and then reads its answer.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once")]

    def __str__(self):
        return f"{self.user_id}:{self.key}"
