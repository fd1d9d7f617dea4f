"""Security headers on every response: a Content Security Policy and a Permissions-Policy.

Django's ``SecurityMiddleware`` already sends ``X-Content-Type-Options: nosniff``, the
``Referrer-Policy`` and ``Cross-Origin-Opener-Policy: same-origin`` (``SECURE_*`` settings), and
``XFrameOptionsMiddleware`` sends ``X-Frame-Options: DENY``; this middleware adds what Django 5.2
lacks. Every script of the market is a static file (``frontend/static/frontend/build/app.js``, ECharts'
``echarts.min.js``, the admin's own files): no inline ``<script>`` with code, no ``on*=`` handler
attribute and no ``eval`` anywhere, so ``script-src`` is ``'self'`` alone (``tests/security`` checks
every main page). ``<script type="application/json">`` data blocks (``json_script``) are data, never run.

Styles: the templates carry no ``style`` attribute and no ``<style>`` element, so stylesheets
(``style-src-elem``) are ``'self'`` only. Inline style *attributes* (``style-src-attr``) are allowed,
because libraries build HTML strings with them that the policy cannot tell apart: ECharts' tooltips
(the coloured series markers, the rows' layout) and the admin's select2 widgets. A style attribute
can neither run code nor select other elements, and it only reaches a page through HTML that Django's
escaping already refuses, so the residual risk is small; allowing it keeps the charts readable.

The payment page adds Stripe.js's hosts (script, frames, API) when Stripe is configured; no other
page loads anything from another origin. The API docs (Swagger UI) may add <style> elements: its
code injects them (``VIEW_POLICIES``); its start-up script is a file (``SpectacularSwaggerSplitView``).
"""

from django.conf import settings

# Features the market never uses: denied to the page and every frame in it.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)

BASE_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-elem": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],  # ECharts tooltips and admin widgets, see the module doc
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-src": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}

# Stripe.js on the payment page (https://docs.stripe.com/security/guide#content-security-policy).
STRIPE_POLICY = {
    "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
}
STRIPE_PERMISSIONS = 'payment=(self "https://js.stripe.com")'
STRIPE_VIEWS = {"frontend:deal_pay"}
# Pages of third-party code that needs more, by URL name: Swagger UI (the API docs, served by
# drf-spectacular from its sidecar package) injects <style> elements when it renders.
VIEW_POLICIES = {"api-docs": {"style-src-elem": ["'unsafe-inline'"]}}
# DRF's browsable API (an API address opened in a browser) puts Pygments' colours in a <style>
# element; its scripts are files.
BROWSABLE_API_POLICY = {"style-src-elem": ["'unsafe-inline'"]}


def content_security_policy(request, extra: dict[str, list[str]] | None = None) -> str:
    policy = {name: list(sources) for name, sources in BASE_POLICY.items()}
    host = _host(request)
    if host:
        # Channels' websockets (live bids, ticks, notifications) on the same host. CSP Level 3 lets
        # 'self' cover them, older browsers need the schemes named; plain ws only on plain http.
        policy["connect-src"] += (
            [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]
        )
    for name, sources in (extra or {}).items():
        current = [s for s in policy.get(name, []) if s != "'none'"]
        policy[name] = current + [s for s in sources if s not in current]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


def _host(request) -> str:
    try:
        return request.get_host()  # validated against ALLOWED_HOSTS: no spaces or semicolons
    except Exception:  # a refused Host header (DisallowedHost) still gets a policy
        return ""


def _view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match else ""


def _uses_stripe(request) -> bool:
    return bool(settings.STRIPE_PUBLISHABLE_KEY and _view_name(request) in STRIPE_VIEWS)


# Responses a browser renders as a document, where a policy governs what runs. Files (the PDF and
# image downloads, CSV and Excel exports), JSON and scripts get none: a top-level PDF is shown by the
# browser's own viewer, which a page policy (object-src 'none') may refuse to start.
DOCUMENT_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml")


def _browsable_api(response) -> bool:
    from rest_framework.renderers import BrowsableAPIRenderer

    return isinstance(getattr(response, "accepted_renderer", None), BrowsableAPIRenderer)


def _is_document(response) -> bool:
    content_type = (response.get("Content-Type") or "text/html").split(";", 1)[0].strip().lower()
    return content_type in DOCUMENT_TYPES


class SecurityHeadersMiddleware:
    """Sets Content-Security-Policy (on documents) and Permissions-Policy unless the response set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        stripe = _uses_stripe(request)
        if "Content-Security-Policy" not in response and _is_document(response):
            extra = STRIPE_POLICY if stripe else VIEW_POLICIES.get(_view_name(request))
            if extra is None and _browsable_api(response):
                extra = BROWSABLE_API_POLICY
            response["Content-Security-Policy"] = content_security_policy(request, extra)
        if "Permissions-Policy" not in response:
            policy = PERMISSIONS_POLICY
            if stripe:
                policy = policy.replace("payment=()", STRIPE_PERMISSIONS)
            response["Permissions-Policy"] = policy
        if stripe and "Cross-Origin-Opener-Policy" not in response:
            # Some of Stripe's payment methods finish in a pop-up that must reach back to the page.
            response["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
        return response
