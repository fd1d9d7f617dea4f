"""CSRF on every form (issue 8, security): a signed-in user's POST without the CSRF token is refused
with 403 by every view of the frontend that accepts POST, and by every other frontend route too (no
view is exempt). The list of form views is written out below; a test derives the views that accept
POST from ``frontend/urls.py`` and fails when one is missing from the list, so a new form cannot be
forgotten. A control posts with the token and is let through the CSRF check."""

import inspect
import re
from pathlib import Path

import pytest
from django.http import HttpResponseForbidden
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from frontend import urls as frontend_urls
from tests.factories import make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
MARKER = "X-Test-Csrf-Refused"

# Every frontend view that takes a POST (a form, an htmx action or an upload), by URL name.
POST_VIEWS = {
    # accounts and organisations
    "signup", "login", "logout", "password_reset", "password_reset_confirm",
    "organisation_register", "organisation_edit", "member_invite", "invitation_revoke",
    "member_role_change", "member_remove", "licence_add", "invitation_accept", "acting_switch",
    # listings
    "lot_create", "lot_edit", "lot_submit", "lot_withdraw", "lot_media_add", "lot_media_remove",
    "wanted_create", "offer_create", "wanted_withdraw", "saved_search_create", "saved_search_delete",
    # trading
    "lot_sale", "lot_bid", "lot_buy", "lot_deposit", "lot_offer_create", "lot_offer_accept",
    "notifications_read",
    # deals
    "deal_pay", "deal_slip", "deal_payment_confirm", "deal_pickup", "deal_weigh", "deal_confirm",
    "deal_dispute", "deal_resolve", "deal_manifest", "deal_manifest_confirm", "deal_rate", "deal_runner_up",
    # price indices (operators)
    "index_correct",
}  # fmt: skip
# POST forms outside frontend/urls.py that every page or the admin shows.
OTHER_POST_URLS = ["/i18n/setlang/", "/admin/login/"]


def csrf_refused(request, reason=""):
    """Stands in for CSRF_FAILURE_VIEW: marks the 403 as the CSRF check's own."""
    response = HttpResponseForbidden(reason)
    response[MARKER] = reason or "refused"
    return response


def _patterns(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry


def accepts_post(callback) -> bool:
    """Whether a view handles POST: a class-based view with ``post``, or a function view decorated
    with require_POST or reading request.POST / request.FILES / request.method."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return hasattr(view_class, "post") and "post" in view_class.http_method_names
    source = inspect.getsource(inspect.unwrap(callback))
    return bool(re.search(r"require_POST|require_http_methods|request\.(POST|FILES|method)", source))


def frontend_patterns() -> list[URLPattern]:
    return [p for p in _patterns(frontend_urls.urlpatterns) if p.name]


def url_for(pattern: URLPattern) -> str:
    kwargs = {}
    for name, converter in pattern.pattern.converters.items():
        kwargs[name] = 1 if type(converter).__name__ == "IntConverter" else "x1"
    return reverse(f"frontend:{pattern.name}", kwargs=kwargs)


@pytest.fixture
def signed_in():
    """A trader of a verified organisation, signed in, with the CSRF check enforced."""
    org = make_organisation()
    user = make_user()
    make_member(org, user=user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user


def test_the_list_covers_every_frontend_view_that_accepts_post():
    found = {p.name for p in frontend_patterns() if accepts_post(p.callback)}
    assert found - POST_VIEWS == set(), f"views that accept POST but are not listed: {found - POST_VIEWS}"
    assert POST_VIEWS - found == set(), f"listed views that take no POST (any more): {POST_VIEWS - found}"
    for pattern in frontend_patterns():
        assert not getattr(pattern.callback, "csrf_exempt", False), f"{pattern.name} is csrf_exempt"


def test_every_form_post_without_a_token_is_refused(signed_in, settings):
    settings.CSRF_FAILURE_VIEW = "tests.security.test_csrf.csrf_refused"
    client, _ = signed_in
    by_name = {p.name: p for p in frontend_patterns()}
    urls = [url_for(by_name[name]) for name in sorted(POST_VIEWS)] + OTHER_POST_URLS
    passed = []
    for url in urls:
        for data in ({"x": "1"}, {"x": "1", "csrfmiddlewaretoken": "forged" * 8}):
            response = client.post(url, data)
            if response.status_code != 403 or MARKER not in response:
                passed.append(f"POST {url} {data}: HTTP {response.status_code}")
        # an htmx request sends the token as a header: a wrong one is refused as well
        response = client.post(url, {}, HTTP_X_CSRFTOKEN="forged" * 8, HTTP_HX_REQUEST="true")
        if response.status_code != 403 or MARKER not in response:
            passed.append(f"htmx POST {url}: HTTP {response.status_code}")
    assert not passed, "accepted without a valid CSRF token:\n" + "\n".join(passed)


def test_no_frontend_route_is_exempt_from_the_csrf_check(signed_in, settings):
    """Every route, GET-only ones included: the middleware refuses the POST before any view runs."""
    settings.CSRF_FAILURE_VIEW = "tests.security.test_csrf.csrf_refused"
    client, _ = signed_in
    passed = []
    for pattern in frontend_patterns():
        url = url_for(pattern)
        response = client.post(url, {"x": "1"})
        if response.status_code != 403 or MARKER not in response:
            passed.append(f"{pattern.name} POST {url}: HTTP {response.status_code}")
    assert not passed, "\n".join(passed)


def test_with_the_token_the_same_posts_pass_the_csrf_check(signed_in, settings):
    """The control: the refusals above come from the missing token, not from the request."""
    settings.CSRF_FAILURE_VIEW = "tests.security.test_csrf.csrf_refused"
    client, user = signed_in
    client.get(reverse("frontend:lot_create"))
    token = client.cookies["csrftoken"].value
    by_name = {p.name: p for p in frontend_patterns()}
    refused = []
    for name in sorted(POST_VIEWS - {"logout"}):
        url = url_for(by_name[name])
        response = client.post(url, {"csrfmiddlewaretoken": token})
        if MARKER in response:
            refused.append(f"{name} POST {url}: {response[MARKER]}")
        client.force_login(user)  # a view may have signed the user out or switched organisation
    assert not refused, "refused although the token was sent:\n" + "\n".join(refused)


def test_the_real_refusal_page_is_a_403(signed_in):
    client, _ = signed_in
    response = client.post(reverse("frontend:lot_create"), {"title": "x"})
    assert response.status_code == 403
    assert "页面已过期" in response.content.decode()  # templates/403_csrf.html


def test_every_post_form_in_the_templates_carries_the_token():
    templates = [
        *(ROOT / "frontend" / "templates").rglob("*.html"),
        *ROOT.glob("*/templates/**/*.html"),
        *ROOT.glob("market/*/templates/**/*.html"),
    ]
    missing = []
    for path in sorted(set(templates)):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, flags=re.S | re.I):
            if re.search(
                r'method="post"', match.group(0)[:300], re.I
            ) and "{% csrf_token %}" not in match.group(1):
                missing.append(f"{path.relative_to(ROOT)}: {match.group(0)[:80]!r}")
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)
    assert get_resolver()  # the URLconf loads
