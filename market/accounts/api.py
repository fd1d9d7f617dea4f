"""REST API of accounts: tokens, sign-up, organisations, members, invitations, licences.

Views are thin: serializers shape input, services decide and write, selectors decide visibility.
A resource the caller may not even see answers 404; one they may see but not touch answers 403.
"""

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import PermissionDenied as APIPermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from market.accounts import services
from market.accounts.lockout import lockout_message
from market.accounts.models import (
    Invitation,
    Licence,
    LicenceKind,
    MemberRole,
    Membership,
    Organisation,
    OrganisationRole,
)
from market.accounts.selectors import (
    government_officer_for,
    invitations_open_for,
    licences_of,
    licences_public,
    membership_acting,
    membership_of,
    memberships_of,
    organisation_invitations_open,
    organisation_members,
    organisation_private_access,
    organisations_visible,
)
from market.core.audit import client_ip
from market.core.drf import DomainError
from market.core.uploads import stored_open

# --- serializers ----------------------------------------------------------------------------


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    full_name = serializers.CharField(read_only=True)
    is_operator = serializers.BooleanField(read_only=True)


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField()
    full_name = serializers.CharField(max_length=64)
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(style={"input_type": "password"})


class LicenceSummarySerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Licence
        fields = [
            "id",
            "kind",
            "kind_label",
            "number",
            "issuer",
            "valid_from",
            "valid_to",
            "hw_codes",
            "annual_capacity_t",
        ]


class OrganisationPublicSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region_id", read_only=True)
    region_name = serializers.CharField(source="region.full_name", read_only=True)
    role_label = serializers.CharField(source="get_role_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    licences = serializers.SerializerMethodField()

    class Meta:
        model = Organisation
        fields = [
            "id",
            "legal_name",
            "short_name",
            "uscc",
            "region",
            "region_name",
            "role",
            "role_label",
            "status",
            "status_label",
            "licences",
        ]

    def get_licences(self, org) -> list[dict]:
        return LicenceSummarySerializer(licences_public(org), many=True).data


class OrganisationPrivateSerializer(OrganisationPublicSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta(OrganisationPublicSerializer.Meta):
        fields = [
            *OrganisationPublicSerializer.Meta.fields,
            "address",
            "contact_name",
            "contact_phone",
            "contact_email",
            "description",
            "status_reason",
            "status_changed_at",
            "created_at",
            "my_role",
        ]

    def get_my_role(self, org) -> str | None:
        membership = membership_of(self.context["request"].user, org)
        return membership.role if membership else None


class OrganisationWriteSerializer(serializers.Serializer):
    legal_name = serializers.CharField(max_length=128)
    short_name = serializers.CharField(max_length=32, required=False, allow_blank=True)
    uscc = serializers.CharField(max_length=32)
    region = serializers.CharField(max_length=6, help_text="County-level GB/T 2260 code")
    address = serializers.CharField(max_length=255)
    contact_name = serializers.CharField(max_length=64)
    contact_phone = serializers.CharField(max_length=32)
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=OrganisationRole.choices)
    description = serializers.CharField(required=False, allow_blank=True)


class OrganisationUpdateSerializer(OrganisationWriteSerializer):
    uscc = None

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class DecisionSerializer(serializers.Serializer):
    decision = serializers.CharField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)
    role_label = serializers.CharField(source="get_role_display", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "role_label", "created_at"]


class InvitationSerializer(serializers.ModelSerializer):
    organisation = serializers.IntegerField(source="organisation_id", read_only=True)
    organisation_name = serializers.CharField(source="organisation.legal_name", read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "organisation", "organisation_name", "email", "role", "created_at", "expires_at"]


class InviteSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=MemberRole.choices)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=MemberRole.choices)


class LicenceSerializer(LicenceSummarySerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    document_url = serializers.SerializerMethodField()

    class Meta(LicenceSummarySerializer.Meta):
        fields = [
            *LicenceSummarySerializer.Meta.fields,
            "status",
            "status_label",
            "status_reason",
            "document_name",
            "document_type",
            "document_size",
            "document_url",
            "created_at",
        ]

    def get_document_url(self, licence) -> str:
        return self.context["request"].build_absolute_uri(
            f"/api/v1/organisations/{licence.organisation_id}/licences/{licence.pk}/document/"
        )


class LicenceWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=LicenceKind.choices)
    number = serializers.CharField(max_length=64)
    issuer = serializers.CharField(max_length=128)
    valid_from = serializers.DateField()
    valid_to = serializers.DateField()
    hw_codes = serializers.CharField(
        required=False, allow_blank=True, help_text="Comma-separated HW classes, e.g. HW08,HW49"
    )
    annual_capacity_t = serializers.DecimalField(max_digits=14, decimal_places=3, required=False, min_value=0)
    document = serializers.FileField(help_text="PDF, JPEG or PNG scan, checked by content")


# --- helpers --------------------------------------------------------------------------------


def _visible_organisation(request, pk) -> Organisation:
    return get_object_or_404(organisations_visible(request.user), pk=pk)


def _private_organisation(request, pk) -> tuple[Organisation, str]:
    org = _visible_organisation(request, pk)
    access = organisation_private_access(request.user, org)
    if access is None:
        raise APIPermissionDenied(_("只有本单位成员、平台运营人员或辖区政府用户可以查看此内容。"))
    return org, access


# --- auth -----------------------------------------------------------------------------------


class TokenView(APIView):
    """Exchange email and password for an API token (``Authorization: Token <key>``)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer(
                "TokenResponse", {"token": serializers.CharField(), "user": UserSerializer()}
            ),
            400: OpenApiResponse(description="invalid_credentials"),
            429: OpenApiResponse(description="locked_out or throttled"),
        },
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credentials = {"username": data.validated_data["email"]}
        django_request = request._request
        if AxesProxyHandler.is_locked(django_request, credentials):
            return Response({"code": "locked_out", "message": lockout_message(), "fields": {}}, status=429)
        user = authenticate(
            django_request, username=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None:
            if AxesProxyHandler.is_locked(django_request, credentials):
                return Response(
                    {"code": "locked_out", "message": lockout_message(), "fields": {}}, status=429
                )
            raise DomainError(_("邮箱或密码不正确。"), code="invalid_credentials")
        token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "user": UserSerializer(user).data})

    @extend_schema(responses={204: None})
    def delete(self, request):
        """Revoke the caller's token."""
        if request.user.is_authenticated:
            Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_authenticators(self):
        # DELETE needs the token to know whose token to revoke.
        from rest_framework.authentication import SessionAuthentication

        from market.accounts.authentication import TokenAuthentication

        if self.request is not None and self.request.method == "DELETE":
            return [TokenAuthentication(), SessionAuthentication()]
        return []


class SignupView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "signup"

    @extend_schema(request=SignupSerializer, responses={201: UserSerializer})
    def post(self, request):
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_signup(**data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "user": UserSerializer(),
                "memberships": inline_serializer(
                    "MeMembership",
                    {
                        "organisation": serializers.IntegerField(),
                        "role": serializers.ChoiceField(choices=MemberRole.choices),
                        "role_label": serializers.CharField(),
                    },
                    many=True,
                ),
                "organisations": OrganisationPrivateSerializer(many=True),
                "government_office": serializers.DictField(allow_null=True),
                "invitations": InvitationSerializer(many=True),
            },
        )
    )
    def get(self, request):
        memberships = list(memberships_of(request.user))
        officer = government_officer_for(request.user)
        return Response(
            {
                "user": UserSerializer(request.user).data,
                "memberships": [
                    {"organisation": m.organisation_id, "role": m.role, "role_label": m.get_role_display()}
                    for m in memberships
                ],
                "organisations": OrganisationPrivateSerializer(
                    [m.organisation for m in memberships], many=True, context={"request": request}
                ).data,
                "government_office": (
                    {
                        "id": officer.office_id,
                        "name": officer.office.name,
                        "jurisdiction": officer.office.jurisdiction_id,
                        "jurisdiction_name": officer.office.jurisdiction.full_name,
                    }
                    if officer
                    else None
                ),
                "invitations": InvitationSerializer(invitations_open_for(request.user), many=True).data,
            }
        )


# --- organisations --------------------------------------------------------------------------


class OrganisationListView(generics.ListAPIView):
    """Organisations the caller may see; ``POST`` registers a new one (the caller becomes admin)."""

    serializer_class = OrganisationPublicSerializer

    def get_queryset(self):
        qs = organisations_visible(self.request.user).prefetch_related("licences")
        mine = self.request.query_params.get("mine")
        if mine in ("1", "true"):
            qs = (
                qs.filter(memberships__user=self.request.user)
                if self.request.user.is_authenticated
                else qs.none()
            )
        return qs.order_by("legal_name", "pk")

    @extend_schema(request=OrganisationWriteSerializer, responses={201: OrganisationPrivateSerializer})
    def post(self, request):
        data = OrganisationWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["region_code"] = values.pop("region")
        org = services.organisation_register(actor=request.user, ip=client_ip(request), **values)
        return Response(
            OrganisationPrivateSerializer(org, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class OrganisationDetailView(APIView):
    @extend_schema(responses=OrganisationPrivateSerializer)
    def get(self, request, pk):
        org = _visible_organisation(request, pk)
        if organisation_private_access(request.user, org):
            return Response(OrganisationPrivateSerializer(org, context={"request": request}).data)
        return Response(OrganisationPublicSerializer(org, context={"request": request}).data)

    @extend_schema(request=OrganisationUpdateSerializer, responses=OrganisationPrivateSerializer)
    def patch(self, request, pk):
        org = _visible_organisation(request, pk)
        data = OrganisationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "region" in changes:
            changes["region_code"] = changes.pop("region")
        if "uscc" in request.data:
            raise DomainError(_("统一社会信用代码注册后不能修改。"), code="read_only")
        org = services.organisation_update(
            actor=request.user, organisation=org, ip=client_ip(request), **changes
        )
        return Response(OrganisationPrivateSerializer(org, context={"request": request}).data)


class OrganisationDecisionView(APIView):
    """Operators: ``verify``, ``reject`` (reason required), ``suspend`` (reason required), ``reinstate``."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=DecisionSerializer, responses=OrganisationPrivateSerializer)
    def post(self, request, pk):
        org = _visible_organisation(request, pk)
        data = DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organisation_decide(
            actor=request.user, organisation=org, ip=client_ip(request), **data.validated_data
        )
        return Response(OrganisationPrivateSerializer(org, context={"request": request}).data)


# --- members and invitations ----------------------------------------------------------------


class MemberListView(APIView):
    """Members of the organisation; ``POST`` (admins) invites someone by email."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request, pk):
        org, _access = _private_organisation(request, pk)
        return Response(MembershipSerializer(organisation_members(org), many=True).data)

    @extend_schema(request=InviteSerializer, responses={201: InvitationSerializer})
    def post(self, request, pk):
        org, _access = _private_organisation(request, pk)
        services.admin_require(request.user, org)
        data = InviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.member_invite(
            actor=request.user, organisation=org, ip=client_ip(request), **data.validated_data
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def _membership(self, request, pk, member_id) -> Membership:
        org, _access = _private_organisation(request, pk)
        return get_object_or_404(organisation_members(org), pk=member_id)

    @extend_schema(request=RoleSerializer, responses=MembershipSerializer)
    def patch(self, request, pk, member_id):
        membership = self._membership(request, pk, member_id)
        data = RoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_role_change(
            actor=request.user, membership=membership, role=data.validated_data["role"], ip=client_ip(request)
        )
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk, member_id):
        membership = self._membership(request, pk, member_id)
        services.member_remove(actor=request.user, membership=membership, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=InvitationSerializer(many=True))
    def get(self, request, pk):
        org, _access = _private_organisation(request, pk)
        return Response(InvitationSerializer(organisation_invitations_open(org), many=True).data)


class InvitationDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request, pk, invitation_id):
        org, _access = _private_organisation(request, pk)
        invitation = get_object_or_404(org.invitations, pk=invitation_id)
        services.invitation_revoke(actor=request.user, invitation=invitation, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={201: MembershipSerializer})
    def post(self, request, token):
        membership = services.invitation_accept(actor=request.user, token=token, ip=client_ip(request))
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


# --- licences -------------------------------------------------------------------------------


class LicenceListView(APIView):
    """Licences of the organisation; ``POST`` (multipart) uploads one for operator verification."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(responses=LicenceSerializer(many=True))
    def get(self, request, pk):
        org, _access = _private_organisation(request, pk)
        return Response(LicenceSerializer(licences_of(org), many=True, context={"request": request}).data)

    @extend_schema(
        request={"multipart/form-data": LicenceWriteSerializer}, responses={201: LicenceSerializer}
    )
    def post(self, request, pk):
        org, _access = _private_organisation(request, pk)
        services.member_require(request.user, org, trade=True)  # a viewer gets 403, not field errors
        data = LicenceWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        licence = services.licence_add(actor=request.user, organisation=org, ip=client_ip(request), **values)
        return Response(
            LicenceSerializer(licence, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class LicenceDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=LicenceSerializer)
    def get(self, request, pk, licence_id):
        org, _access = _private_organisation(request, pk)
        licence = get_object_or_404(licences_of(org), pk=licence_id)
        return Response(LicenceSerializer(licence, context={"request": request}).data)


class LicenceDocumentView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The scan")})
    def get(self, request, pk, licence_id):
        org, _access = _private_organisation(request, pk)
        licence = get_object_or_404(licences_of(org), pk=licence_id)
        if not licence.document:
            raise Http404
        ext = licence.document.name.rsplit(".", 1)[-1]
        return FileResponse(
            stored_open(licence.document),
            as_attachment=True,
            filename=f"licence-{licence.pk}.{ext}",
            content_type=licence.document_type or "application/octet-stream",
        )


class LicenceDecisionView(APIView):
    """Operators: ``verify``, ``reject`` or ``revoke`` (reason required for the last two)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=DecisionSerializer, responses=LicenceSerializer)
    def post(self, request, pk, licence_id):
        org = _visible_organisation(request, pk)
        licence = get_object_or_404(licences_of(org), pk=licence_id)
        data = DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        licence = services.licence_decide(
            actor=request.user, licence=licence, ip=client_ip(request), **data.validated_data
        )
        return Response(LicenceSerializer(licence, context={"request": request}).data)


# --- helpers for every app's api.py ---------------------------------------------------------


def acting_organisation(request, organisation_id=None) -> Organisation:
    """The organisation the caller acts for: the one named, or their only/chosen one."""
    if organisation_id:
        membership = membership_of(request.user, int(organisation_id))
        if membership is None:
            raise DomainError(_("您不是该单位的成员。"), code="not_member", status_code=403)
        return _carrying(membership)
    from market.accounts.middleware import SESSION_KEY

    membership = membership_acting(user=request.user, organisation_id=request.session.get(SESSION_KEY))
    if membership is None:
        raise DomainError(_("请先登记或加入一个单位。"), code="no_organisation", status_code=403)
    return _carrying(membership)


def _carrying(membership) -> Organisation:
    """The membership's organisation, carrying the membership just read (services that check it
    again in this request need not read it twice)."""
    organisation = membership.organisation
    organisation._membership_read = membership
    return organisation
