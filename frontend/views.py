"""Page views. Thin: reads go through ``market.accounts.selectors``, writes through
``market.accounts.services``.

Error handling for every page:
- a service's ``PermissionDenied`` is not caught: Django renders ``403.html`` with its message;
- a service's ``ValidationError`` is copied onto the form (``form_errors_apply``) and the page is
  shown again with status 400, each message next to its field;
- being rate-limited shows ``frontend/rate_limited.html`` with status 429.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from frontend.forms import (
    InviteForm,
    LicenceForm,
    LoginForm,
    MemberRoleForm,
    OrganisationEditForm,
    OrganisationForm,
    SignupForm,
    form_errors_apply,
)
from market.accounts import selectors, services
from market.accounts.middleware import SESSION_KEY
from market.accounts.models import LicenceKind, MemberRole, Organisation
from market.core.audit import audit_trail, client_ip
from market.core.uploads import stored_open
from market.deals.selectors import rating_summary

AUDIT_TRAIL_ROWS = 50


# --- helpers --------------------------------------------------------------------------------


def _rate(name: str):
    """The limit named ``name`` in ``settings.RATE_LIMITS``, read per request (tests may override it)."""
    return lambda group, request: settings.RATE_LIMITS[name]


def _rate_limited(request):
    return render(request, "frontend/rate_limited.html", status=429)


def _next_url(request) -> str:
    """A ``next`` parameter pointing inside this site, or ''."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# The services decide; pages call their permission checks before validating a form, so that a
# refused person sees 403 rather than form errors.
market_user_require = services.market_user_require
admin_require = services.admin_require


def trader_require(user, organisation):
    return services.member_require(user, organisation, trade=True)


def _organisation_visible(request, pk) -> Organisation:
    return get_object_or_404(selectors.organisations_visible(request.user), pk=pk)


def _organisation_url(organisation, anchor: str = "") -> str:
    url = reverse("frontend:organisation", args=[organisation.pk])
    return f"{url}#{anchor}" if anchor else url


# --- home -----------------------------------------------------------------------------------


def home(request):
    from frontend.views_indices import SOCKET, ticker_rows

    context = {"ticker": ticker_rows(), "ticker_socket": SOCKET}
    user = request.user
    if user.is_authenticated:
        context["memberships"] = list(selectors.memberships_of(user).order_by("created_at"))
        context["invitations"] = list(selectors.invitations_open_for(user))
        context["government_officer"] = selectors.government_officer_for(user)
    return render(request, "frontend/home.html", context)


# --- sign-up, login, logout, password reset -------------------------------------------------


@ratelimit(key="ip", rate=_rate("signup"), method="POST", block=False)
def signup(request):
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return redirect(next_url or "frontend:home")
    status = 200
    if request.method == "POST":
        if getattr(request, "limited", False):
            return _rate_limited(request)
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = services.user_signup(
                    email=data["email"],
                    password=data["password1"],
                    full_name=data["full_name"],
                    phone=data["phone"],
                )
            except ValidationError as exc:
                form_errors_apply(form, exc, {"password": "password1"})
            else:
                auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(
                    request, _("注册成功，欢迎使用！下一步：登记您的单位，或接受单位管理员发来的邀请。")
                )
                return redirect(next_url or "frontend:home")
        status = 400
    else:
        form = SignupForm()
    return render(request, "frontend/signup.html", {"form": form, "next": next_url}, status=status)


@method_decorator(ratelimit(key="ip", rate=_rate("login"), method="POST", block=False), name="post")
class LoginView(auth_views.LoginView):
    """Django's login; the username is the email. django-axes locks out after repeated failures."""

    template_name = "frontend/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if getattr(request, "limited", False):
            return _rate_limited(request)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


class LogoutView(auth_views.LogoutView):
    """POST only (Django refuses GET)."""


@method_decorator(ratelimit(key="ip", rate=_rate("login"), method="POST", block=False), name="post")
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "frontend/password_reset_form.html"
    email_template_name = "frontend/email/password_reset.txt"
    subject_template_name = "frontend/email/password_reset_subject.txt"
    success_url = reverse_lazy("frontend:password_reset_done")

    def post(self, request, *args, **kwargs):
        if getattr(request, "limited", False):
            return _rate_limited(request)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["market_name"] = settings.MARKET_NAME
        return context

    def form_valid(self, form):
        self.extra_email_context = {"market_name": str(settings.MARKET_NAME)}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "frontend/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "frontend/password_reset_confirm.html"
    success_url = reverse_lazy("frontend:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "frontend/password_reset_complete.html"


# --- organisations --------------------------------------------------------------------------


@login_required
def organisation_list(request):
    context = {
        "memberships": list(selectors.memberships_of(request.user).order_by("created_at")),
        "government_officer": selectors.government_officer_for(request.user),
        "invitations": list(selectors.invitations_open_for(request.user)),
    }
    return render(request, "frontend/organisation_list.html", context)


@login_required
def organisation_register(request):
    market_user_require(request.user)
    status = 200
    if request.method == "POST":
        form = OrganisationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                organisation = services.organisation_register(
                    actor=request.user,
                    legal_name=data["legal_name"],
                    short_name=data["short_name"],
                    uscc=data["uscc"],
                    region_code=data["region"],
                    address=data["address"],
                    contact_name=data["contact_name"],
                    contact_phone=data["contact_phone"],
                    contact_email=data["contact_email"],
                    role=data["role"],
                    description=data["description"],
                    ip=client_ip(request),
                )
            except ValidationError as exc:
                form_errors_apply(form, exc)
            else:
                request.session[SESSION_KEY] = organisation.pk
                messages.success(
                    request,
                    _(
                        "单位已登记，正在等待平台审核。审核通过后即可挂牌和出价；您可以先上传资质证书、邀请同事。"
                    ),
                )
                return redirect(_organisation_url(organisation))
        status = 400
    else:
        form = OrganisationForm()
    return render(request, "frontend/organisation_form.html", {"form": form, "creating": True}, status=status)


def _organisation_page(request, organisation, *, invite_form=None, licence_form=None, status=200):
    user = request.user
    access = selectors.organisation_private_access(user, organisation)
    membership = selectors.membership_of(user, organisation) if access == "member" else None
    can_manage = bool(membership and membership.can_manage)
    can_trade = bool(membership and membership.can_trade)
    context = {
        "organisation": organisation,
        "access": access,
        "membership": membership,
        "can_manage": can_manage,
        "can_trade": can_trade,
        "public_licences": list(selectors.licences_public(organisation)),
        "licence_kinds": LicenceKind,
        "ratings": rating_summary(organisation.pk),
    }
    if access is not None:
        context["members"] = list(selectors.organisation_members(organisation))
        context["licences"] = list(selectors.licences_of(organisation))
        context["role_choices"] = MemberRole.choices
        if can_manage or access == "operator":
            context["invitations"] = list(selectors.organisation_invitations_open(organisation))
            context["audit_entries"] = list(audit_trail(organisation)[:AUDIT_TRAIL_ROWS])
        if can_manage:
            context["invite_form"] = invite_form or InviteForm()
        if can_trade:
            context["licence_form"] = licence_form or LicenceForm()
    return render(request, "frontend/organisation_detail.html", context, status=status)


def organisation(request, pk):
    return _organisation_page(request, _organisation_visible(request, pk))


@login_required
def organisation_edit(request, pk):
    organisation = _organisation_visible(request, pk)
    admin_require(request.user, organisation)
    fields = [name for name in OrganisationEditForm.base_fields if name != "uscc"]
    status = 200
    if request.method == "POST":
        form = OrganisationEditForm(request.POST)
        if form.is_valid():
            changes = {name: form.cleaned_data[name] for name in fields}
            changes["region_code"] = changes.pop("region")
            before = organisation.status
            try:
                services.organisation_update(
                    actor=request.user, organisation=organisation, ip=client_ip(request), **changes
                )
            except ValidationError as exc:
                form_errors_apply(form, exc, {"region_code": "region"})
                organisation.refresh_from_db()
            else:
                if organisation.status != before:
                    messages.warning(
                        request, _("单位信息已保存。由于名称或注册地发生变化，需要平台重新审核。")
                    )
                else:
                    messages.success(request, _("单位信息已保存。"))
                return redirect(_organisation_url(organisation))
        status = 400
    else:
        initial = {name: getattr(organisation, name) for name in fields if name != "region"}
        initial["region"] = organisation.region_id
        form = OrganisationEditForm(initial=initial)
    return render(
        request,
        "frontend/organisation_form.html",
        {"form": form, "creating": False, "organisation": organisation},
        status=status,
    )


@login_required
@require_POST
def member_invite(request, pk):
    organisation = _organisation_visible(request, pk)
    admin_require(request.user, organisation)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.member_invite(
                actor=request.user,
                organisation=organisation,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            messages.success(
                request,
                _("已向 %(email)s 发出邀请，链接 %(days)d 天内有效。")
                % {
                    "email": invitation.email,
                    "days": settings.INVITATION_VALID_DAYS,
                },
            )
            return redirect(_organisation_url(organisation, "members"))
    return _organisation_page(request, organisation, invite_form=form, status=400)


@login_required
@require_POST
def invitation_revoke(request, pk, invitation_id):
    organisation = _organisation_visible(request, pk)
    invitation = get_object_or_404(selectors.organisation_invitations_open(organisation), pk=invitation_id)
    services.invitation_revoke(actor=request.user, invitation=invitation, ip=client_ip(request))
    messages.success(request, _("已撤销对 %(email)s 的邀请。") % {"email": invitation.email})
    return redirect(_organisation_url(organisation, "members"))


@login_required
@require_POST
def member_role_change(request, pk, membership_id):
    organisation = _organisation_visible(request, pk)
    admin_require(request.user, organisation)
    membership = get_object_or_404(selectors.organisation_members(organisation), pk=membership_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("角色无效。"))
        return redirect(_organisation_url(organisation, "members"))
    try:
        services.member_role_change(
            actor=request.user, membership=membership, role=form.cleaned_data["role"], ip=client_ip(request)
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            _("已将 %(name)s 的角色改为“%(role)s”。")
            % {
                "name": membership.user.full_name,
                "role": MemberRole(form.cleaned_data["role"]).label,
            },
        )
    return redirect(_organisation_url(organisation, "members"))


@login_required
@require_POST
def member_remove(request, pk, membership_id):
    organisation = _organisation_visible(request, pk)
    membership = get_object_or_404(selectors.organisation_members(organisation), pk=membership_id)
    leaving = membership.user_id == request.user.pk
    try:
        services.member_remove(actor=request.user, membership=membership, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect(_organisation_url(organisation, "members"))
    if leaving:
        if request.session.get(SESSION_KEY) == organisation.pk:
            del request.session[SESSION_KEY]
        messages.success(request, _("您已退出“%(name)s”。") % {"name": organisation.display_name})
        return redirect("frontend:organisation_list")
    messages.success(request, _("已将 %(name)s 移出本单位。") % {"name": membership.user.full_name})
    return redirect(_organisation_url(organisation, "members"))


@login_required
@require_POST
def licence_add(request, pk):
    organisation = _organisation_visible(request, pk)
    trader_require(request.user, organisation)
    form = LicenceForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.licence_add(
                actor=request.user,
                organisation=organisation,
                kind=data["kind"],
                number=data["number"],
                issuer=data["issuer"],
                valid_from=data["valid_from"],
                valid_to=data["valid_to"],
                document=data["document"],
                hw_codes=data["hw_codes"],
                annual_capacity_t=data["annual_capacity_t"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            messages.success(request, _("资质证书已上传，等待平台核验。"))
            return redirect(_organisation_url(organisation, "licences"))
    return _organisation_page(request, organisation, licence_form=form, status=400)


def licence_document(request, pk, licence_id):
    """The scanned licence, only for those with private access to the organisation; 404 for others
    (so the document's existence is not revealed)."""
    organisation = get_object_or_404(Organisation, pk=pk)
    if selectors.organisation_private_access(request.user, organisation) is None:
        raise Http404
    licence = get_object_or_404(selectors.licences_of(organisation), pk=licence_id)
    if not licence.document:
        raise Http404
    handle = stored_open(licence.document)
    extension = licence.document.name.rsplit(".", 1)[-1] if "." in licence.document.name else "bin"
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=licence.document_name or f"licence-{licence.pk}.{extension}",
        content_type=licence.document_type or "application/octet-stream",
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- invitations and the acting organisation ------------------------------------------------


@login_required
def invitation_accept(request, token):
    invitation = selectors.invitation_by_token(token)
    if invitation is None:
        raise Http404
    status = 200
    if request.method == "POST":
        try:
            membership = services.invitation_accept(actor=request.user, token=token, ip=client_ip(request))
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
            status = 400
        else:
            request.session[SESSION_KEY] = membership.organisation_id
            messages.success(
                request,
                _("您已加入“%(name)s”，角色：%(role)s。")
                % {
                    "name": membership.organisation.display_name,
                    "role": membership.get_role_display(),
                },
            )
            return redirect(_organisation_url(membership.organisation))
    context = {
        "invitation": invitation,
        "email_matches": invitation.email.lower() == request.user.email.lower(),
    }
    return render(request, "frontend/invitation_accept.html", context, status=status)


@login_required
@require_POST
def acting_switch(request):
    value = request.POST.get("organisation", "")
    membership = selectors.membership_of(request.user, int(value)) if value.isdigit() else None
    if membership is None:
        raise PermissionDenied(_("您不是该单位的成员。"))
    request.session[SESSION_KEY] = membership.organisation_id
    messages.success(request, _("当前代表单位：%(name)s") % {"name": membership.organisation.display_name})
    return redirect(_next_url(request) or "frontend:home")
