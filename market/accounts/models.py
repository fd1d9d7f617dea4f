"""Who trades: users, organisations (enterprises), their members, licences and government offices."""

import uuid
from datetime import date

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from market.core.models import Region


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Operators are staff users; everyone else acts through memberships or an office."""

    email = models.EmailField(_("邮箱"), unique=True)
    full_name = models.CharField(_("姓名"), max_length=64)
    phone = models.CharField(_("手机号"), max_length=20, blank=True)
    is_staff = models.BooleanField(_("平台运营人员"), default=False)
    is_active = models.BooleanField(_("有效"), default=True)
    date_joined = models.DateTimeField(_("注册时间"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self):
        return f"{self.full_name} <{self.email}>"

    def get_full_name(self):
        return self.full_name

    def get_short_name(self):
        return self.full_name

    @property
    def is_operator(self) -> bool:
        return self.is_active and self.is_staff


class OrganisationRole(models.TextChoices):
    GENERATOR = "generator", _("产废单位")
    RECYCLER = "recycler", _("回收利用单位")
    BOTH = "both", _("产废及回收利用单位")


# The roles of an organisation that may buy (``Organisation.is_recycler``).
RECYCLER_ROLES = (OrganisationRole.RECYCLER, OrganisationRole.BOTH)


class VerificationStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    VERIFIED = "verified", _("已认证")
    REJECTED = "rejected", _("未通过")
    SUSPENDED = "suspended", _("已暂停")


class Organisation(models.Model):
    legal_name = models.CharField(_("单位名称"), max_length=128)
    short_name = models.CharField(_("简称"), max_length=32, blank=True)
    uscc = models.CharField(_("统一社会信用代码"), max_length=18, unique=True)
    region = models.ForeignKey(
        Region,
        verbose_name=_("注册地（区县）"),
        on_delete=models.PROTECT,
        related_name="organisations",
        limit_choices_to={"level": "county"},
    )
    address = models.CharField(_("详细地址"), max_length=255)
    contact_name = models.CharField(_("联系人"), max_length=64)
    contact_phone = models.CharField(_("联系电话"), max_length=32)
    contact_email = models.EmailField(_("联系邮箱"), blank=True)
    role = models.CharField(_("单位类型"), max_length=16, choices=OrganisationRole.choices)
    description = models.TextField(_("单位简介"), blank=True)
    status = models.CharField(
        _("认证状态"),
        max_length=16,
        choices=VerificationStatus.choices,
        default=VerificationStatus.PENDING,
        db_index=True,
    )
    status_reason = models.TextField(_("审核意见"), blank=True)
    status_changed_at = models.DateTimeField(_("状态变更时间"), null=True, blank=True)
    credit_score = models.PositiveSmallIntegerField(
        _("信用分"),
        default=80,
        validators=[MaxValueValidator(100)],
        help_text=_("0–100。卖方可以要求竞买人达到最低信用分。"),
    )
    blacklisted_at = models.DateTimeField(_("列入黑名单时间"), null=True, blank=True)
    blacklist_reason = models.TextField(_("黑名单原因"), blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("创建人"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("单位")
        verbose_name_plural = _("单位")
        ordering = ["legal_name"]

    def __str__(self):
        return self.legal_name

    def get_absolute_url(self) -> str:
        """Its page in the market (the admin's "view on site"). A URL name, not an import: the
        frontend stays on top of the apps."""
        return reverse("frontend:organisation", args=[self.pk])

    @property
    def display_name(self) -> str:
        return self.short_name or self.legal_name

    @property
    def is_verified(self) -> bool:
        return self.status == VerificationStatus.VERIFIED

    @property
    def is_blacklisted(self) -> bool:
        return self.blacklisted_at is not None

    @property
    def is_generator(self) -> bool:
        return self.role in (OrganisationRole.GENERATOR, OrganisationRole.BOTH)

    @property
    def is_recycler(self) -> bool:
        return self.role in RECYCLER_ROLES


class MemberRole(models.TextChoices):
    ADMIN = "admin", _("管理员")
    TRADER = "trader", _("交易员")
    VIEWER = "viewer", _("查看者")


# The members' roles that may trade (``Membership.can_trade``).
TRADING_ROLES = (MemberRole.ADMIN, MemberRole.TRADER)


class Membership(models.Model):
    """A user acting for an organisation. Admins manage the organisation and may trade; traders
    list, bid and settle; viewers only read."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("角色"), max_length=16, choices=MemberRole.choices, default=MemberRole.TRADER)
    created_at = models.DateTimeField(_("加入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("成员")
        verbose_name_plural = _("成员")
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]
        ordering = ["organisation_id", "created_at"]

    def __str__(self):
        return f"{self.user} @ {self.organisation} ({self.get_role_display()})"

    @property
    def can_manage(self) -> bool:
        return self.role == MemberRole.ADMIN

    @property
    def can_trade(self) -> bool:
        return self.role in TRADING_ROLES


def _invitation_token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


class Invitation(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("邮箱"))
    role = models.CharField(_("角色"), max_length=16, choices=MemberRole.choices, default=MemberRole.TRADER)
    token = models.CharField(max_length=64, unique=True, default=_invitation_token, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("有效期至"))
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("成员邀请")
        verbose_name_plural = _("成员邀请")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self):
        return f"{self.email} → {self.organisation}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class GovernmentOffice(models.Model):
    """A government department that reads market data for its jurisdiction (a province or a city)."""

    name = models.CharField(_("机构名称"), max_length=128)
    jurisdiction = models.ForeignKey(
        Region,
        verbose_name=_("管辖区域"),
        on_delete=models.PROTECT,
        related_name="government_offices",
        limit_choices_to={"level__in": ["province", "city"]},
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("政府机构")
        verbose_name_plural = _("政府机构")
        ordering = ["jurisdiction_id", "name"]

    def __str__(self):
        return self.name


class GovernmentOfficer(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="government_officer"
    )
    office = models.ForeignKey(GovernmentOffice, on_delete=models.CASCADE, related_name="officers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("政府用户")
        verbose_name_plural = _("政府用户")

    def __str__(self):
        return f"{self.user} @ {self.office}"


class LicenceKind(models.TextChoices):
    HAZARDOUS_WASTE = "hazardous_waste", _("危险废物经营许可证")
    RENEWABLE_RECORD = "renewable_record", _("再生资源回收经营者备案")
    ELV_DISMANTLING = "elv_dismantling", _("报废机动车回收拆解资质")
    WEEE_DISMANTLING = "weee_dismantling", _("废弃电器电子产品处理资格")


class LicenceStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    VERIFIED = "verified", _("已核验")
    REJECTED = "rejected", _("未通过")
    REVOKED = "revoked", _("已撤销")


def licence_document_path(instance, filename):
    """A generated name: the uploader's file name is never used on disk."""
    ext = getattr(instance, "_document_ext", "bin")
    return f"licences/{instance.organisation_id}/{uuid.uuid4().hex}.{ext}"


class Licence(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="licences")
    kind = models.CharField(_("资质类型"), max_length=32, choices=LicenceKind.choices)
    number = models.CharField(_("证书编号"), max_length=64)
    issuer = models.CharField(_("发证机关"), max_length=128)
    valid_from = models.DateField(_("有效期起"))
    valid_to = models.DateField(_("有效期至"))
    hw_codes = models.JSONField(_("经营危险废物类别"), default=list, blank=True)
    annual_capacity_t = models.DecimalField(
        _("年经营规模（吨）"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    document = models.FileField(_("证书扫描件"), upload_to=licence_document_path)
    document_name = models.CharField(_("原文件名"), max_length=255, blank=True)
    document_type = models.CharField(max_length=64, blank=True)
    document_size = models.PositiveIntegerField(default=0)
    document_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        _("核验状态"),
        max_length=16,
        choices=LicenceStatus.choices,
        default=LicenceStatus.PENDING,
        db_index=True,
    )
    status_reason = models.TextField(_("核验意见"), blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("资质证书")
        verbose_name_plural = _("资质证书")
        ordering = ["organisation_id", "kind", "-valid_to"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "number", "issuer"], name="licence_number_unique"),
            models.CheckConstraint(
                condition=Q(valid_to__gte=models.F("valid_from")), name="licence_dates_ordered"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.number}"

    def is_valid_on(self, day: date | None = None) -> bool:
        """Counts only when verified and ``day`` lies inside its validity."""
        day = day or timezone.localdate()
        return self.status == LicenceStatus.VERIFIED and self.valid_from <= day <= self.valid_to

    def covers(self, hw_code: str, day: date | None = None) -> bool:
        return (
            self.kind == LicenceKind.HAZARDOUS_WASTE
            and hw_code.upper() in self.hw_codes
            and self.is_valid_on(day)
        )

    @property
    def is_expired(self) -> bool:
        return self.valid_to < timezone.localdate()
