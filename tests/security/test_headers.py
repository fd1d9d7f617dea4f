"""Security headers and the Content Security Policy (issue 8, security): every main page, for the
role that uses it, on the demo market, answers with the policy of ``market.core.security`` and the
headers Django adds, and its HTML holds no inline executable script and no ``on*=`` handler, so
``script-src 'self'`` never blocks anything the market needs."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from listings.models import Lot, LotStatus
from market.accounts.models import Membership, Organisation, User
from market.deals.models import Deal, DealStatus
from pricing.index_models import IndexSeries

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# MIME types of <script> that a browser runs (empty: the default, classic JavaScript).
EXECUTABLE_SCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module", "text/ecmascript"}


class ScriptAudit(HTMLParser):
    """Collects inline scripts with code, event handler attributes, javascript: URLs and inline styles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.style_attributes: list[str] = []
        self._in_inline_script = False
        self._script_text = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> event handler")
            if name in {"href", "src", "action", "formaction"} and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}={value!r}> javascript: URL")
            if name == "style":
                self.style_attributes.append(f"<{tag} style={value!r}>")
        if tag == "style":
            self.style_attributes.append("<style> element")
        if tag == "script":
            kind = (attributes.get("type") or "").strip().lower()
            self._in_inline_script = "src" not in attributes and kind in EXECUTABLE_SCRIPT_TYPES
            self._script_text = ""

    def handle_data(self, data):
        if self._in_inline_script:
            self._script_text += data

    def handle_endtag(self, tag):
        if tag == "script":
            if self._in_inline_script and self._script_text.strip():
                self.problems.append(f"inline <script>: {self._script_text.strip()[:80]!r}")
            self._in_inline_script = False


def audit(html: str) -> ScriptAudit:
    parser = ScriptAudit()
    parser.feed(html)
    parser.close()
    return parser


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_security_headers(response, what: str) -> None:
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"{what}: no Content-Security-Policy"
    policy = directives(csp)
    assert policy["default-src"] == ["'self'"], what
    assert policy["script-src"] == ["'self'"], f"{what}: script-src {policy['script-src']}"
    assert policy["object-src"] == ["'none'"], what
    assert policy["base-uri"] == ["'self'"], what
    assert policy["frame-ancestors"] == ["'none'"], what
    assert policy["form-action"] == ["'self'"], what
    assert policy["img-src"] == ["'self'", "data:", "blob:"], what
    assert policy["connect-src"][0] == "'self'", what
    assert "ws://testserver" in policy["connect-src"] and "wss://testserver" in policy["connect-src"], what
    for name, sources in policy.items():
        assert "'unsafe-eval'" not in sources, f"{what}: {name} allows eval"
        assert "*" not in sources, f"{what}: {name} allows any host"
    # Stylesheets only from the market; inline style attributes only (see market/core/security.py).
    assert policy["style-src"] == ["'self'"], what
    # Swagger UI alone injects <style> elements (market/core/security.py, VIEW_POLICIES).
    elements = ["'self'", "'unsafe-inline'"] if "/api/docs/" in what else ["'self'"]
    assert policy["style-src-elem"] == elements, what
    assert policy["style-src-attr"] == ["'unsafe-inline'"], what
    permissions = response.headers.get("Permissions-Policy", "")
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions, f"{what}: Permissions-Policy {permissions!r}"
    assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin", what
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("Referrer-Policy") == "same-origin", what
    assert response.headers.get("X-Frame-Options") == "DENY", what


def _client(email: str | None = None) -> Client:
    client = Client()
    if email:
        client.force_login(User.objects.get(email=email))
    return client


@pytest.fixture
def demo_market(settings):
    settings.DEMO_PRICE_HISTORY_DAYS = 20
    call_command("demo_load", "--quiet-logins", stdout=open("/dev/null", "w"))  # noqa: SIM115


def _pages() -> list[tuple[str, str | None, str]]:
    lot = Lot.objects.filter(status=LotStatus.PUBLISHED).order_by("pk").first()
    steel = Organisation.objects.get(short_name="宏达钢铁")
    deal = Deal.objects.filter(seller=steel).order_by("-pk").first()
    series = IndexSeries.objects.order_by("code").first()
    seller, buyer, operator = "steel@demo.market", "scrapyard@demo.market", "operator@demo.market"
    pages = [
        ("home", None, "/"),
        ("lot search", None, "/lots/"),
        ("lot page", None, f"/lots/{lot.pk}/"),
        ("lot page, a bidder", buyer, f"/lots/{lot.pk}/"),
        ("lot page, the seller", seller, f"/lots/{lot.pk}/"),
        ("new lot form", seller, "/lots/new/"),
        ("my lots", seller, "/my/lots/"),
        ("wanted listings", None, "/wanted/"),
        ("index list", None, "/indices/"),
        ("index page", None, f"/indices/{series.code}/"),
        ("methodology", None, "/indices/methodology/"),
        ("statistics explorer", buyer, "/statistics/"),
        ("dashboard", "gov.tangshan@demo.market", "/dashboard/"),
        ("open data", None, "/open-data/"),
        ("organisation", None, f"/organisations/{steel.pk}/"),
        ("my deals", seller, "/deals/"),
        ("notifications", buyer, "/my/notifications/"),
        ("login", None, "/login/"),
        ("sign-up", None, "/signup/"),
        ("password reset", None, "/password-reset/"),
        ("not found", None, "/no-such-page/"),
        ("admin login", None, "/admin/login/"),
        ("admin index", operator, "/admin/"),
        ("admin lots", operator, "/admin/listings/lot/"),
        ("admin lot", operator, f"/admin/listings/lot/{lot.pk}/change/"),
        ("admin organisation", operator, f"/admin/accounts/organisation/{steel.pk}/change/"),
        ("API docs", None, "/api/docs/"),
    ]
    if deal is not None:
        pages.append(("deal", seller, f"/deals/{deal.pk}/"))
        pages.append(("contract print", seller, f"/deals/{deal.pk}/contract/"))
    unpaid = Deal.objects.filter(status=DealStatus.AWAITING_PAYMENT).order_by("pk").first()
    if unpaid is not None:
        payer = Membership.objects.filter(organisation=unpaid.buyer).order_by("pk").first().user.email
        pages.append(("payment page", payer, f"/deals/{unpaid.pk}/pay/"))
    return pages


def test_every_main_page_sends_the_security_headers_and_runs_no_inline_code(demo_market):
    clients: dict[str | None, Client] = {}
    problems, styled = [], []
    for what, who, url in _pages():
        client = clients.setdefault(who, _client(who))
        response = client.get(url)
        expected = 404 if what == "not found" else 200
        assert response.status_code == expected, f"{what} {url}: HTTP {response.status_code}"
        assert_security_headers(response, f"{what} ({url})")
        found = audit(response.content.decode())
        problems += [f"{what} ({url}): {problem}" for problem in found.problems]
        if not url.startswith(("/admin/", "/api/")):
            styled += [f"{what} ({url}): {style}" for style in found.style_attributes]
    assert not problems, "inline code the policy would block:\n" + "\n".join(problems)
    # The market's own pages need no inline style at all (the policy allows attributes for ECharts).
    assert not styled, "inline styles in the market's templates:\n" + "\n".join(styled)


def test_swagger_ui_start_up_code_is_a_script_file(client):
    page = client.get("/api/docs/")
    scripts = re.findall(r'<script src="([^"]+)"', page.content.decode())
    start_up = next(src for src in scripts if "script" in src.split("?", 1)[-1])
    response = client.get(start_up.replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()


def test_the_payment_page_alone_may_load_stripe(rf, settings):
    from django.http import HttpResponse
    from django.urls import resolve

    from market.core.security import SecurityHeadersMiddleware

    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_123"
    middleware = SecurityHeadersMiddleware(lambda request: HttpResponse("ok"))

    def policy_of(path):
        request = rf.get(path)
        request.resolver_match = resolve(path)
        response = middleware(request)
        return directives(response["Content-Security-Policy"]), response

    pay, response = policy_of("/deals/1/pay/")
    assert "https://js.stripe.com" in pay["script-src"] and pay["script-src"][0] == "'self'"
    assert "https://js.stripe.com" in pay["frame-src"] and "'none'" not in pay["frame-src"]
    assert "https://api.stripe.com" in pay["connect-src"]
    assert 'payment=(self "https://js.stripe.com")' in response["Permissions-Policy"]
    other, response = policy_of("/deals/1/")
    assert other["script-src"] == ["'self'"] and other["frame-src"] == ["'none'"]
    assert "payment=()" in response["Permissions-Policy"]
    settings.STRIPE_PUBLISHABLE_KEY = ""
    unconfigured, _ = policy_of("/deals/1/pay/")
    assert unconfigured["script-src"] == ["'self'"]


def test_https_pages_allow_only_secure_websockets(rf):
    from market.core.security import content_security_policy

    request = rf.get("/", secure=True)
    connect = directives(content_security_policy(request))["connect-src"]
    assert connect == ["'self'", "wss://testserver"]


def _templates() -> list[Path]:
    folders = [ROOT / "frontend" / "templates", *ROOT.glob("market/*/templates"), *ROOT.glob("*/templates")]
    return sorted({path for folder in folders for path in folder.rglob("*.html")})


def test_no_template_holds_inline_code():
    """Templates the page test does not reach (partials, e-mails, print pages, the admin's own)."""
    admin = Path(__import__("django.contrib.admin", fromlist=["x"]).__file__).parent / "templates"
    problems = []
    for path in [*_templates(), *admin.rglob("*.html")]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.S | re.I):
            attributes, body = match.groups()
            kind = re.search(r'type="([^"]*)"', attributes)
            if (
                "src=" not in attributes
                and body.strip()
                and (kind is None or kind.group(1) in EXECUTABLE_SCRIPT_TYPES)
            ):
                problems.append(f"{path}: inline <script>")
        if re.search(r"<[a-z][^>]*\son[a-z]+\s*=", text, flags=re.I):
            problems.append(f"{path}: on*= handler")
        if re.search(r"javascript:", text, flags=re.I):
            problems.append(f"{path}: javascript: URL")
    assert not problems, "\n".join(problems)
    assert settings.MIDDLEWARE.index("market.core.security.SecurityHeadersMiddleware") >= 0


def _policy(response) -> dict[str, str]:
    parts = (part.strip() for part in response["Content-Security-Policy"].split(";"))
    return dict(part.split(" ", 1) for part in parts if part)


def test_the_browsable_api_may_style_its_code_inline_but_runs_no_inline_script(client):
    """An API address opened in a browser (the operator's correction form, say) renders DRF's
    browsable page, whose Pygments colours are a <style> element: allowed there, and only there."""
    response = client.get("/api/v1/indices/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert "'unsafe-inline'" in _policy(response)["style-src-elem"]
    assert "'unsafe-inline'" not in _policy(response)["script-src"]
    assert "'unsafe-inline'" not in _policy(client.get("/lots/"))["style-src-elem"]
