"""Reads about organisations, members and licences, and who may see what.

Visibility rules:
- the public sees verified organisations' public profile and their verified licences' summary;
- members see everything of their own organisations;
- operators (staff) see everything;
- a government officer sees organisations registered in the office's jurisdiction, read-only.
"""

from datetime import date

from django.db.models import Q, QuerySet

from market.accounts.models import (
    TRADING_ROLES,
    GovernmentOfficer,
    Invitation,
    Licence,
    LicenceKind,
    LicenceStatus,
    Membership,
    Organisation,
    VerificationStatus,
)
from market.core.prepared import Prepared


def government_officer_for(user) -> GovernmentOfficer | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.government_officer
    except GovernmentOfficer.DoesNotExist:
        return None


def is_government_user(user) -> bool:
    return government_officer_for(user) is not None


def memberships_of(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation", "organisation__region")


def membership_of(user, organisation: Organisation | int) -> Membership | None:
    """The user's membership of the organisation, with the organisation. An organisation that came
    from this user's membership in this request (``acting_organisation``) carries it: no second read."""
    if not getattr(user, "is_authenticated", False):
        return None
    carried = getattr(organisation, "_membership_read", None)
    if carried is not None and carried.user_id == user.pk:
        return carried
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    return Membership.objects.filter(user=user, organisation_id=org_id).select_related("organisation").first()


# Every API write reads the acting membership: compiled once (market.core.prepared).
_MEMBERSHIP_CHOSEN = Prepared(
    lambda user, organisation: (
        memberships_of(user).filter(organisation_id=organisation).order_by("created_at", "pk")[:1]
    ),
    user=int,
    organisation=int,
)
_MEMBERSHIP_FIRST = Prepared(lambda user: memberships_of(user).order_by("created_at", "pk")[:1], user=int)


def membership_acting(*, user, organisation_id=None) -> Membership | None:
    """The membership the user acts through: the chosen one if still valid, else their first."""
    if organisation_id and str(organisation_id).isdecimal() and str(organisation_id).isascii():
        chosen = _MEMBERSHIP_CHOSEN.first(user=user.pk, organisation=int(organisation_id))
        if chosen:
            return chosen
    read = getattr(user, "first_membership_read", None)  # read with the API token, this request
    if read is not None:
        return read
    return _MEMBERSHIP_FIRST.first(user=user.pk)


def _jurisdiction_filter(officer: GovernmentOfficer) -> Q:
    code = officer.office.jurisdiction.code
    prefix = code[:2] if officer.office.jurisdiction.level == "province" else code[:4]
    return Q(region__code__startswith=prefix)


def organisations_visible(user) -> QuerySet[Organisation]:
    """Organisations whose profile ``user`` may read (anonymous users included)."""
    qs = Organisation.objects.select_related("region", "region__parent", "region__parent__parent")
    if getattr(user, "is_authenticated", False):
        if user.is_operator:
            return qs
        officer = government_officer_for(user)
        if officer is not None:
            return qs.filter(_jurisdiction_filter(officer) | Q(status=VerificationStatus.VERIFIED))
        return qs.filter(Q(status=VerificationStatus.VERIFIED) | Q(memberships__user=user)).distinct()
    return qs.filter(status=VerificationStatus.VERIFIED)


def organisation_private_access(user, organisation: Organisation) -> str | None:
    """How ``user`` may see the organisation's private data: 'member', 'operator', 'government' or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_operator:
        return "operator"
    if membership_of(user, organisation) is not None:
        return "member"
    officer = government_officer_for(user)
    if officer is not None and officer.office.jurisdiction.contains(organisation.region_id):
        return "government"
    return None


def organisation_members(organisation: Organisation) -> QuerySet[Membership]:
    return organisation.memberships.select_related("user").order_by("created_at")


def organisation_invitations_open(organisation: Organisation) -> QuerySet[Invitation]:
    from django.utils import timezone

    return organisation.invitations.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )


def invitations_open_for(user) -> QuerySet[Invitation]:
    from django.utils import timezone

    return Invitation.objects.filter(
        email__iexact=user.email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("organisation")


def invitation_by_token(token: str) -> Invitation | None:
    return Invitation.objects.select_related("organisation", "invited_by").filter(token=token).first()


def licences_of(organisation: Organisation) -> QuerySet[Licence]:
    return organisation.licences.all()


def licences_public(organisation: Organisation) -> QuerySet[Licence]:
    """What a buyer or seller may know of a counterpart: verified licences only, no documents."""
    return organisation.licences.filter(status=LicenceStatus.VERIFIED)


def licence_valid_for(
    organisation: Organisation,
    *,
    kind: str = LicenceKind.HAZARDOUS_WASTE,
    hw_code: str | None = None,
    on: date,
) -> Licence | None:
    """A verified licence valid on ``on`` (and covering ``hw_code`` if given), or None."""
    qs = organisation.licences.filter(
        kind=kind, status=LicenceStatus.VERIFIED, valid_from__lte=on, valid_to__gte=on
    ).order_by("-valid_to")
    for licence in qs:
        if hw_code is None or hw_code.upper() in licence.hw_codes:
            return licence
    return None


def trading_members(*organisation_ids: int) -> QuerySet:
    """The users who act for these organisations in trading and deals (admins and traders): whom a
    bid, an award or a deal step is told about. A query of their ids (``notify_users`` inserts the
    notices from it in one statement)."""
    return Membership.objects.filter(
        organisation_id__in=organisation_ids, role__in=list(TRADING_ROLES)
    ).values_list("user_id", flat=True)


_TRADING_MEMBERS = Prepared(lambda organisation: trading_members(organisation), organisation=int)


def trading_members_sql(organisation_id: int) -> tuple[str, list]:
    """``trading_members`` of one organisation, as SQL and parameters compiled once (``Prepared``):
    sent within another statement on every contested bid."""
    return _TRADING_MEMBERS.sql(organisation=int(organisation_id))
