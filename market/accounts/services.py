"""Writes about users, organisations, members, invitations, licences and government offices.

Every function takes keyword arguments, checks the actor's right to act, and raises
``PermissionDenied`` (403) or ``ValidationError`` (400 with a field and a code) with a message a
person can act on. State changes go through the explicit tables below and are audited.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from market.accounts.models import (
    GovernmentOffice,
    GovernmentOfficer,
    Invitation,
    Licence,
    LicenceKind,
    LicenceStatus,
    MemberRole,
    Membership,
    Organisation,
    VerificationStatus,
)
from market.accounts.selectors import government_officer_for, membership_of
from market.accounts.uscc import USCCError, uscc_validate
from market.core.audit import audit_record
from market.core.hazardous import hw_normalise
from market.core.models import Region, RegionLevel
from market.core.notify import notify_users
from market.core.regions import region_county_require
from market.core.state import transition
from market.core.uploads import upload_check

User = get_user_model()

ORGANISATION_TRANSITIONS = {
    VerificationStatus.PENDING: {VerificationStatus.VERIFIED, VerificationStatus.REJECTED},
    VerificationStatus.REJECTED: {VerificationStatus.PENDING},
    VerificationStatus.VERIFIED: {VerificationStatus.SUSPENDED, VerificationStatus.PENDING},
    VerificationStatus.SUSPENDED: {VerificationStatus.VERIFIED},
}

LICENCE_TRANSITIONS = {
    LicenceStatus.PENDING: {LicenceStatus.VERIFIED, LicenceStatus.REJECTED},
    LicenceStatus.VERIFIED: {LicenceStatus.REVOKED},
    LicenceStatus.REJECTED: set(),
    LicenceStatus.REVOKED: set(),
}

ORGANISATION_EDITABLE = (
    "legal_name",
    "short_name",
    "address",
    "contact_name",
    "contact_phone",
    "contact_email",
    "description",
    "role",
    "region",
)
# Changing who the organisation legally is needs verification again.
ORGANISATION_IDENTITY = ("legal_name", "region")


# --- permission helpers ---------------------------------------------------------------------


def _require_operator(actor) -> None:
    if not getattr(actor, "is_operator", False):
        raise PermissionDenied(_("只有平台运营人员可以执行此操作。"))


def market_user_require(actor) -> None:
    if government_officer_for(actor) is not None:
        raise PermissionDenied(_("政府用户只能查看数据，不能在市场中办理业务。"))


def admin_require(actor, organisation: Organisation) -> Membership:
    market_user_require(actor)
    membership = membership_of(actor, organisation)
    if membership is None or not membership.can_manage:
        raise PermissionDenied(_("只有本单位的管理员可以执行此操作。"))
    return membership


def member_require(actor, organisation: Organisation, *, trade: bool = False) -> Membership:
    market_user_require(actor)
    membership = membership_of(actor, organisation)
    if membership is None:
        raise PermissionDenied(_("您不是该单位的成员。"))
    if trade and not membership.can_trade:
        raise PermissionDenied(_("查看者不能办理业务，请联系本单位管理员调整角色。"))
    return membership


def _member_user_ids(organisation: Organisation) -> list[int]:
    return list(organisation.memberships.values_list("user_id", flat=True))


# --- users ----------------------------------------------------------------------------------


def user_signup(*, email: str, password: str, full_name: str, phone: str = "") -> User:
    email = User.objects.normalize_email(email or "").strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            {"email": ValidationError(_("该邮箱已注册，请直接登录或找回密码。"), code="email_taken")}
        )
    user = User(email=email, full_name=(full_name or "").strip(), phone=(phone or "").strip())
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"email": ValidationError(_("该邮箱已注册，请直接登录或找回密码。"), code="email_taken")}
        ) from exc
    return user


# --- organisations --------------------------------------------------------------------------


def _county(region_code) -> Region:
    return region_county_require(region_code)


def _uscc(value) -> str:
    try:
        return uscc_validate(value)
    except USCCError as exc:
        raise ValidationError({"uscc": ValidationError(exc.message, code=exc.code)}) from exc


def organisation_register(
    *,
    actor,
    legal_name: str,
    uscc: str,
    region_code: str,
    address: str,
    contact_name: str,
    contact_phone: str,
    role: str,
    contact_email: str = "",
    short_name: str = "",
    description: str = "",
    ip: str | None = None,
) -> Organisation:
    """Register an enterprise; the actor becomes its first admin and it waits for verification."""
    market_user_require(actor)
    code = _uscc(uscc)
    region = _county(region_code)
    if Organisation.objects.filter(uscc=code).exists():
        raise ValidationError(
            {
                "uscc": ValidationError(
                    _("该统一社会信用代码已注册。如您属于该单位，请联系其管理员邀请您加入。"),
                    code="uscc_taken",
                )
            }
        )
    org = Organisation(
        legal_name=(legal_name or "").strip(),
        short_name=(short_name or "").strip(),
        uscc=code,
        region=region,
        address=(address or "").strip(),
        contact_name=(contact_name or "").strip(),
        contact_phone=(contact_phone or "").strip(),
        contact_email=(contact_email or "").strip(),
        role=role,
        description=description or "",
        created_by=actor,
    )
    org.full_clean(exclude=["created_by"])
    try:
        with transaction.atomic():
            org.save()
            Membership.objects.create(user=actor, organisation=org, role=MemberRole.ADMIN)
            audit_record(actor=actor, action="organisation.register", target=org, to_state=org.status, ip=ip)
    except IntegrityError as exc:
        raise ValidationError(
            {"uscc": ValidationError(_("该统一社会信用代码已注册。"), code="uscc_taken")}
        ) from exc
    operators = User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True)
    notify_users(
        operators,
        title=_("新单位待审核：%(name)s") % {"name": org.legal_name},
        url=reverse("admin:accounts_organisation_change", args=[org.pk]),
    )
    return org


def organisation_update(
    *, actor, organisation: Organisation, ip: str | None = None, **changes
) -> Organisation:
    """An admin edits the profile. Changing the name or county of a verified (or rejected)
    organisation sends it back to verification."""
    admin_require(actor, organisation)
    unknown = set(changes) - set(ORGANISATION_EDITABLE) - {"region_code"}
    if unknown:
        raise ValidationError(
            {name: ValidationError(_("该字段不能修改。"), code="read_only") for name in unknown}
        )
    if "region_code" in changes:
        changes["region"] = _county(changes.pop("region_code"))
    before = {name: getattr(organisation, name) for name in changes}
    for name, value in changes.items():
        setattr(organisation, name, value.strip() if isinstance(value, str) else value)
    organisation.full_clean(exclude=["created_by"])
    changed = [name for name in changes if getattr(organisation, name) != before[name]]
    if not changed:
        return organisation
    with transaction.atomic():
        organisation.save(update_fields=changed)
        audit_record(
            actor=actor,
            action="organisation.update",
            target=organisation,
            ip=ip,
            data={"fields": changed},
        )
        if organisation.status == VerificationStatus.REJECTED or (
            organisation.status == VerificationStatus.VERIFIED and set(changed) & set(ORGANISATION_IDENTITY)
        ):
            _organisation_move(
                organisation,
                VerificationStatus.PENDING,
                actor=actor,
                reason=_("单位信息已修改，重新提交审核"),
                ip=ip,
            )
    return organisation


def _organisation_move(organisation, to, *, actor, reason="", ip=None, action="organisation.status"):
    organisation.status_reason = (
        reason if to in (VerificationStatus.REJECTED, VerificationStatus.SUSPENDED) else ""
    )
    organisation.status_changed_at = timezone.now()
    return transition(
        organisation,
        field="status",
        to=to,
        table=ORGANISATION_TRANSITIONS,
        actor=actor,
        action=action,
        reason=reason,
        ip=ip,
        extra_fields=["status_reason", "status_changed_at"],
    )


def organisation_decide(
    *, actor, organisation: Organisation, decision: str, reason: str = "", ip=None
) -> Organisation:
    """An operator verifies, rejects, suspends or reinstates an organisation. A rejection or
    suspension needs a reason, which the organisation's members are shown."""
    _require_operator(actor)
    targets = {
        "verify": VerificationStatus.VERIFIED,
        "reject": VerificationStatus.REJECTED,
        "suspend": VerificationStatus.SUSPENDED,
        "reinstate": VerificationStatus.VERIFIED,
    }
    if decision not in targets:
        raise ValidationError({"decision": ValidationError(_("未知的审核操作。"), code="invalid_choice")})
    reason = (reason or "").strip()
    if decision in ("reject", "suspend") and not reason:
        raise ValidationError(
            {"reason": ValidationError(_("请填写原因，单位将看到此说明。"), code="required")}
        )
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        _organisation_move(
            organisation,
            targets[decision],
            actor=actor,
            reason=reason,
            ip=ip,
            action=f"organisation.{decision}",
        )
    messages = {
        "verify": _("您的单位“%(name)s”已通过认证，可以开始交易。"),
        "reject": _("您的单位“%(name)s”未通过认证：%(reason)s"),
        "suspend": _("您的单位“%(name)s”已被暂停交易：%(reason)s"),
        "reinstate": _("您的单位“%(name)s”已恢复交易。"),
    }
    notify_users(
        _member_user_ids(organisation),
        title=messages[decision] % {"name": organisation.legal_name, "reason": reason},
        url=reverse("frontend:organisation", args=[organisation.pk]),
    )
    return organisation


def organisation_blacklist(*, actor, organisation: Organisation, blacklist: bool, reason: str = "", ip=None):
    """An operator puts an organisation on the trading blacklist (it may no longer bid or buy) or
    takes it off. Both need a reason, recorded in the audit log with who, when and from where."""
    _require_operator(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("请填写原因。"), code="required")})
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if blacklist == organisation.is_blacklisted:
            raise ValidationError(
                _("该单位已在黑名单中。") if blacklist else _("该单位不在黑名单中。"), code="no_change"
            )
        organisation.blacklisted_at = timezone.now() if blacklist else None
        organisation.blacklist_reason = reason if blacklist else ""
        organisation.save(update_fields=["blacklisted_at", "blacklist_reason"])
        audit_record(
            actor=actor,
            action="organisation.blacklist" if blacklist else "organisation.unblacklist",
            target=organisation,
            reason=reason,
            ip=ip,
        )
    notify_users(
        _member_user_ids(organisation),
        title=(_("您的单位已被列入交易黑名单：%(reason)s") if blacklist else _("您的单位已移出交易黑名单。"))
        % {"reason": reason},
        url=reverse("frontend:organisation", args=[organisation.pk]),
    )
    return organisation


# --- members and invitations ----------------------------------------------------------------


def member_invite(*, actor, organisation: Organisation, email: str, role: str, ip=None) -> Invitation:
    admin_require(actor, organisation)
    email = User.objects.normalize_email(email or "").strip().lower()
    if role not in MemberRole.values:
        raise ValidationError({"role": ValidationError(_("角色无效。"), code="invalid_choice")})
    if organisation.memberships.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": ValidationError(_("此人已是本单位成员。"), code="already_member")})
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None and government_officer_for(existing) is not None:
        raise ValidationError({"email": ValidationError(_("政府用户不能加入企业。"), code="government_user")})
    now = timezone.now()
    with transaction.atomic():
        # A new invitation replaces an open or expired one for the same address.
        organisation.invitations.filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            organisation=organisation,
            email=email,
            role=role,
            invited_by=actor,
            expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
        )
        audit_record(
            actor=actor,
            action="member.invite",
            target=organisation,
            ip=ip,
            data={"email": email, "role": role},
        )
    transaction.on_commit(lambda: _invitation_email(invitation.pk), robust=True)
    return invitation


def _invitation_email(invitation_id: int) -> None:
    from market.accounts.tasks import invitation_email_send

    invitation_email_send.delay(invitation_id=invitation_id)


def invitation_accept(*, actor, token: str, ip=None) -> Membership:
    market_user_require(actor)
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().filter(token=token).select_related("organisation").first()
        )
        if invitation is None or not invitation.is_open:
            raise ValidationError(
                _("邀请链接无效或已过期，请联系单位管理员重新邀请。"), code="invitation_invalid"
            )
        if invitation.email.lower() != actor.email.lower():
            raise PermissionDenied(
                _("此邀请发给了 %(email)s，请使用该邮箱登录后接受。") % {"email": invitation.email}
            )
        membership, _created = Membership.objects.get_or_create(
            user=actor, organisation=invitation.organisation, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = actor
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            actor=actor,
            action="member.join",
            target=invitation.organisation,
            ip=ip,
            data={"role": membership.role},
        )
    return membership


def invitation_revoke(*, actor, invitation: Invitation, ip=None) -> Invitation:
    admin_require(actor, invitation.organisation)
    if invitation.accepted_at or invitation.revoked_at:
        return invitation
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="member.invite_revoke",
        target=invitation.organisation,
        ip=ip,
        data={"email": invitation.email},
    )
    return invitation


def _other_admins(membership: Membership) -> bool:
    return (
        Membership.objects.select_for_update()
        .filter(organisation_id=membership.organisation_id, role=MemberRole.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


def member_role_change(*, actor, membership: Membership, role: str, ip=None) -> Membership:
    admin_require(actor, membership.organisation)
    if role not in MemberRole.values:
        raise ValidationError({"role": ValidationError(_("角色无效。"), code="invalid_choice")})
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().select_related("organisation").get(pk=membership.pk)
        )
        if membership.role == MemberRole.ADMIN and role != MemberRole.ADMIN and not _other_admins(membership):
            raise ValidationError({"role": ValidationError(_("单位至少需要一名管理员。"), code="last_admin")})
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="member.role",
            target=membership.organisation,
            from_state=before,
            to_state=role,
            ip=ip,
            data={"user": membership.user.email},
        )
    return membership


def member_remove(*, actor, membership: Membership, ip=None) -> None:
    """An admin removes a member, or a member leaves. The last admin cannot go."""
    if membership.user_id != actor.pk:
        admin_require(actor, membership.organisation)
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update()
            .select_related("organisation", "user")
            .get(pk=membership.pk)
        )
        if membership.role == MemberRole.ADMIN and not _other_admins(membership):
            raise ValidationError(_("单位至少需要一名管理员，请先指定其他管理员。"), code="last_admin")
        audit_record(
            actor=actor,
            action="member.remove",
            target=membership.organisation,
            ip=ip,
            data={"user": membership.user.email},
        )
        membership.delete()


# --- licences -------------------------------------------------------------------------------


def licence_add(
    *,
    actor,
    organisation: Organisation,
    kind: str,
    number: str,
    issuer: str,
    valid_from,
    valid_to,
    document,
    hw_codes=(),
    annual_capacity_t=None,
    ip=None,
) -> Licence:
    """A member (admin or trader) uploads a licence; it counts once an operator verifies it."""
    member_require(actor, organisation, trade=True)
    errors = {}
    if kind not in LicenceKind.values:
        errors["kind"] = ValidationError(_("资质类型无效。"), code="invalid_choice")
    try:
        codes = hw_normalise(hw_codes or [])
    except ValueError as exc:
        errors["hw_codes"] = ValidationError(
            _("未知的危险废物类别：%(codes)s") % {"codes": exc}, code="hw_unknown"
        )
        codes = []
    if kind == LicenceKind.HAZARDOUS_WASTE:
        if not codes and "hw_codes" not in errors:
            errors["hw_codes"] = ValidationError(
                _("危险废物经营许可证须注明经营的危险废物类别（如 HW08）。"), code="required"
            )
        if annual_capacity_t is None:
            errors["annual_capacity_t"] = ValidationError(
                _("请填写核准的年经营规模（吨）。"), code="required"
            )
    if valid_from and valid_to and valid_to < valid_from:
        errors["valid_to"] = ValidationError(_("有效期至不能早于有效期起。"), code="dates_order")
    if valid_to and valid_to < timezone.localdate():
        errors["valid_to"] = ValidationError(_("该证书已过期，请上传有效的证书。"), code="expired")
    if document is None:
        errors["document"] = ValidationError(_("请上传证书扫描件。"), code="required")
    else:
        try:
            checked = upload_check(document, max_bytes=settings.LICENCE_DOCUMENT_MAX_BYTES)
        except ValidationError as exc:
            errors["document"] = exc
    if errors:
        raise ValidationError(errors)
    licence = Licence(
        organisation=organisation,
        kind=kind,
        number=(number or "").strip(),
        issuer=(issuer or "").strip(),
        valid_from=valid_from,
        valid_to=valid_to,
        hw_codes=codes if kind == LicenceKind.HAZARDOUS_WASTE else [],
        annual_capacity_t=annual_capacity_t,
        document_name=checked.original_name,
        document_type=checked.content_type,
        document_size=checked.size,
        document_sha256=checked.sha256,
        uploaded_by=actor,
    )
    licence._document_ext = checked.extension
    licence.full_clean(exclude=["document", "uploaded_by"])
    try:
        with transaction.atomic():
            licence.document.save("upload", document, save=False)
            licence.save()
            audit_record(actor=actor, action="licence.add", target=licence, to_state=licence.status, ip=ip)
    except IntegrityError as exc:
        licence.document.delete(save=False)
        raise ValidationError(
            {"number": ValidationError(_("该证书编号已登记。"), code="licence_taken")}
        ) from exc
    return licence


def licence_decide(*, actor, licence: Licence, decision: str, reason: str = "", ip=None) -> Licence:
    _require_operator(actor)
    targets = {
        "verify": LicenceStatus.VERIFIED,
        "reject": LicenceStatus.REJECTED,
        "revoke": LicenceStatus.REVOKED,
    }
    if decision not in targets:
        raise ValidationError({"decision": ValidationError(_("未知的审核操作。"), code="invalid_choice")})
    reason = (reason or "").strip()
    if decision in ("reject", "revoke") and not reason:
        raise ValidationError(
            {"reason": ValidationError(_("请填写原因，单位将看到此说明。"), code="required")}
        )
    with transaction.atomic():
        licence = Licence.objects.select_for_update().select_related("organisation").get(pk=licence.pk)
        licence.status_reason = reason
        licence.status_changed_at = timezone.now()
        transition(
            licence,
            field="status",
            to=targets[decision],
            table=LICENCE_TRANSITIONS,
            actor=actor,
            action=f"licence.{decision}",
            reason=reason,
            ip=ip,
            extra_fields=["status_reason", "status_changed_at"],
        )
    titles = {
        "verify": _("资质“%(licence)s”已核验通过。"),
        "reject": _("资质“%(licence)s”未通过核验：%(reason)s"),
        "revoke": _("资质“%(licence)s”已被撤销：%(reason)s"),
    }
    notify_users(
        _member_user_ids(licence.organisation),
        title=titles[decision] % {"licence": str(licence), "reason": reason},
        url=reverse("frontend:organisation", args=[licence.organisation_id]),
    )
    return licence


# --- government offices ---------------------------------------------------------------------


def government_office_create(*, actor, name: str, jurisdiction_code: str, ip=None) -> GovernmentOffice:
    _require_operator(actor)
    region = Region.objects.filter(pk=jurisdiction_code).first()
    if region is None or region.level not in (RegionLevel.PROVINCE, RegionLevel.CITY):
        raise ValidationError(
            {"jurisdiction": ValidationError(_("管辖区域须为省级或地级行政区。"), code="region_level")}
        )
    office = GovernmentOffice.objects.create(name=name.strip(), jurisdiction=region)
    audit_record(actor=actor, action="government.office_create", target=office, ip=ip)
    return office


def government_officer_add(*, actor, office: GovernmentOffice, user, ip=None) -> GovernmentOfficer:
    """Operators appoint government users; such a user belongs to no enterprise."""
    _require_operator(actor)
    if user.memberships.exists():
        raise ValidationError(
            {"user": ValidationError(_("该用户已是企业成员，不能同时作为政府用户。"), code="is_member")}
        )
    officer, _created = GovernmentOfficer.objects.update_or_create(user=user, defaults={"office": office})
    audit_record(
        actor=actor, action="government.officer_add", target=office, ip=ip, data={"user": user.email}
    )
    return officer
