"""A small local fake of the Stripe API for tests (the real API is unreachable from the test machines).

It speaks the wire format stripe-python 16 uses: form-encoded POST bodies and GET query strings with
nested keys (``metadata[deal]=1``, ``allowed_payment_method_types[0]=card``), ``Authorization: Bearer``
auth, ``Idempotency-Key`` on every POST, JSON answers and Stripe's ``{"error": {...}}`` shape.

    with FakeStripe() as fake:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=2)
        pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "cny"})
        fake.intent_succeed(pi.id)

Idempotency: a POST answered with 2xx is stored under (api key, Idempotency-Key); the same key on the same
path with the same params replays the stored body (header ``Idempotent-Replayed: true``), other params or
another path answer 400 ``idempotency_error`` (``stripe.IdempotencyError``). Errors are not stored.

Retries: ``drop_next_response(prefix)`` lets the server do the work and then close the connection without
answering. stripe-python (requests client) turns that into a retryable ``APIConnectionError`` and, when the
client has ``max_network_retries`` > 0, resends the identical request (same Idempotency-Key) after sleeping
``HTTPClient._sleep_time_seconds(n)``: at least ``HTTPClient.INITIAL_DELAY`` (0.5 s), doubling with jitter.
Call ``fast_retries(monkeypatch)`` to make that sleep zero.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"  # stripe-python 16.1.0's pinned version (stripe.api_version)
_ALNUM = string.ascii_letters + string.digits


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_id(prefix: str, n: int = 24) -> str:
    return f"{prefix}_{_rand(n)}"


def parse_form(pairs) -> dict:
    """Rebuild Stripe's nested form keys: ``a[b][0]=x`` -> ``{"a": {"b": ["x"]}}`` (values stay strings)."""
    root: dict = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head, *(rest[:-1].split("][") if rest else [])]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1] or str(len(node))] = value  # "a[]=x" appends
    return _listify(root)


def _listify(node, key=""):
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, k) for k, v in node.items()}
    if out and key != "metadata" and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value: ``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<payload>">``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{ts}.".encode() + (payload.encode() if isinstance(payload, str) else bytes(payload))
    return f"t={ts},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def stripe_event(type: str, obj: dict, **extra) -> dict:
    """A webhook event dict as Stripe sends it; ``obj`` is deep-copied (a snapshot, like Stripe's)."""
    event = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": copy.deepcopy(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }
    return event | extra


def fast_retries(monkeypatch) -> None:
    """Make stripe-python's retry back-off sleep 0 s (it never sleeps less than INITIAL_DELAY=0.5 s)."""
    from stripe._http_client import HTTPClient

    monkeypatch.setattr(HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0.0)


class StripeFault(Exception):
    """An API error answered in Stripe's shape: ``{"error": {"type", "message", "code", "param", ...}}``."""

    def __init__(self, message, *, status=400, type="invalid_request_error", code=None, param=None):
        super().__init__(message)
        self.status = status
        error = {"type": type, "message": message, "code": code, "param": param}
        if code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        self.error = {k: v for k, v in error.items() if v is not None}


def _missing(kind: str, id_: str, param: str, status: int = 404) -> StripeFault:
    return StripeFault(f"No such {kind}: '{id_}'", status=status, code="resource_missing", param=param)


def _int(params: dict, name: str, default=None) -> int:
    value = params.get(name, default)
    if value is None:
        raise StripeFault(f"Missing required param: {name}.", code="parameter_missing", param=name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeFault(f"Invalid integer: {value}", code="parameter_invalid_integer", param=name) from None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict  # lower-cased names
    params: dict  # parsed form body (POST) or query string (GET), nested, values as strings
    status: int | None = None
    replayed: bool = False  # answered from the idempotency store
    dropped: bool = False  # connection closed without an answer

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


class FakeStripe:
    """In-process fake Stripe API on 127.0.0.1:<free port>. See the module docstring."""

    ROUTES = [
        ("POST", r"/v1/payment_intents", "_create_intent"),
        ("GET", r"/v1/payment_intents", "_list_intents"),
        ("GET", r"/v1/payment_intents/([^/]+)", "_get_intent"),
        ("POST", r"/v1/payment_intents/([^/]+)/cancel", "_cancel_intent"),
        ("POST", r"/v1/refunds", "_create_refund"),
        ("GET", r"/v1/refunds/([^/]+)", "_get_refund"),
    ]

    def __init__(self):
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.requests: list[RecordedRequest] = []
        self.created: Counter = Counter()  # "payment_intent" / "refund" / "charge" -> objects created
        self._idem: dict[tuple[str, str], tuple] = {}  # (api key, idempotency key) -> stored answer
        self._drops: list[list] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> FakeStripe:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeStripe is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client(self, api_key: str = "sk_test_fake", **kwargs):
        """A ``stripe.StripeClient`` pointed at this server (``max_network_retries=2`` unless given)."""
        import stripe

        kwargs.setdefault("max_network_retries", 2)
        return stripe.StripeClient(api_key, base_addresses={"api": self.url}, **kwargs)

    # -- test controls -----------------------------------------------------------------------------------
    def drop_next_response(self, path_prefix: str, count: int = 1) -> None:
        """The next ``count`` requests whose path starts with ``path_prefix`` are fully processed (objects
        created, idempotent answer stored) but the connection is closed without an answer."""
        with self._lock:
            self._drops.append([path_prefix, count])

    def intent_succeed(self, pi_id: str) -> dict:
        with self._lock:
            pi = self.intents[pi_id]
            pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
            pi["latest_charge"] = pi["latest_charge"] or new_id("ch")
            pi["payment_method"] = pi["payment_method"] or new_id("pm")
            self.created["charge"] += 1
            return pi

    def intent_fail(self, pi_id: str, code: str = "card_declined", message: str = "Your card was declined."):
        with self._lock:
            pi = self.intents[pi_id]
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": "generic_decline",
                "message": message,
            }
            pi.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
            return pi

    event = staticmethod(stripe_event)
    sign = staticmethod(stripe_signature)

    # -- HTTP dispatch (called from handler threads, one request at a time) ------------------------------
    def _serve(self, method: str, path: str, headers: dict, params: dict) -> tuple[int, bytes | None, bool]:
        with self._lock:
            rec = RecordedRequest(method, path, headers, params)
            self.requests.append(rec)
            rec.status, body, rec.replayed = self._answer(method, path, headers, params)
            for drop in self._drops:
                if drop[1] > 0 and path.startswith(drop[0]):
                    drop[1] -= 1
                    rec.dropped, body = True, None
                    break
            return rec.status, body, rec.replayed

    def _answer(self, method, path, headers, params) -> tuple[int, bytes, bool]:
        auth = headers.get("authorization", "")
        api_key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        idem = headers.get("idempotency-key") if method == "POST" else None
        try:
            if not api_key:
                raise StripeFault(
                    "You did not provide an API key. You need to provide your API key in the Authorization "
                    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                    status=401,
                )
            if not api_key.startswith(("sk_", "rk_")):
                raise StripeFault(f"Invalid API Key provided: {api_key[:8]}***", status=401)
            if idem and (api_key, idem) in self._idem:
                s_method, s_path, s_params, status, body = self._idem[(api_key, idem)]
                if (s_method, s_path, s_params) != (method, path, params):
                    what = "parameters" if (s_method, s_path) == (method, path) else "endpoint"
                    raise StripeFault(
                        f"Keys for idempotent requests can only be used with the same {what} they were first "
                        f"used with. Try using a key other than '{idem}' if you meant to execute a different "
                        "request.",
                        type="idempotency_error",
                    )
                return status, body, True
            status, obj = self._route(method, path, params)
        except StripeFault as fault:
            return fault.status, json.dumps({"error": fault.error}).encode(), False
        body = json.dumps(obj).encode()
        if idem:
            self._idem[(api_key, idem)] = (method, path, params, status, body)
        return status, body, False

    def _route(self, method, path, params) -> tuple[int, dict]:
        for r_method, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if match and r_method == method:
                return 200, getattr(self, name)(params, *match.groups())
        raise StripeFault(f"Unrecognized request URL ({method}: {path}).", status=404)

    # -- endpoints ---------------------------------------------------------------------------------------
    def _intent(self, pi_id: str, param: str = "intent", status: int = 404) -> dict:
        if pi_id not in self.intents:
            raise _missing("payment_intent", pi_id, param, status)
        return self.intents[pi_id]

    def _create_intent(self, params):
        amount = _int(params, "amount")
        if amount < 1:
            raise StripeFault("Amount must be at least 1.", code="amount_too_small", param="amount")
        if not params.get("currency"):
            raise StripeFault("Missing required param: currency.", code="parameter_missing", param="currency")
        pi_id = new_id("pi")
        allowed = params.get("allowed_payment_method_types") or params.get("payment_method_types")
        self.intents[pi_id] = pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "allowed_payment_method_types": allowed,
            "canceled_at": None,
            "cancellation_reason": None,
            "client_secret": f"{pi_id}_secret_{_rand(25)}",
            "created": int(time.time()),
            "currency": params["currency"].lower(),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "payment_method": None,
            "payment_method_types": list(allowed or ["card"]),
            "status": "requires_payment_method",
        }
        self.created["payment_intent"] += 1
        return pi

    def _get_intent(self, params, pi_id):
        return self._intent(pi_id)

    def _cancel_intent(self, params, pi_id):
        pi = self._intent(pi_id)
        if pi["status"] in ("succeeded", "canceled"):
            raise StripeFault(
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}.",
                code="payment_intent_unexpected_state",
            )
        reason = params.get("cancellation_reason")
        pi.update(status="canceled", canceled_at=int(time.time()), cancellation_reason=reason)
        return pi

    def _list_intents(self, params):
        limit = _int(params, "limit", 10)
        if not 1 <= limit <= 100:
            raise StripeFault("Invalid limit: must be between 1 and 100", param="limit")
        items = list(self.intents.values())[::-1]  # newest first, like Stripe
        if after := params.get("starting_after"):
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        has_more = len(items) > limit
        return {"object": "list", "url": "/v1/payment_intents", "has_more": has_more, "data": items[:limit]}

    def _create_refund(self, params):
        pi_id = params.get("payment_intent")
        if not pi_id:
            raise StripeFault("Missing required param: payment_intent.", param="payment_intent")
        pi = self._intent(pi_id, "payment_intent", 400)
        if pi["status"] != "succeeded":
            raise StripeFault(f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.")
        remaining = pi["amount_received"] - sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == pi_id
        )
        if remaining <= 0:
            raise StripeFault(
                f"Charge {pi['latest_charge']} has already been refunded.", code="charge_already_refunded"
            )
        amount = _int(params, "amount", remaining)
        if not 1 <= amount <= remaining:
            raise StripeFault(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
                if amount > 0
                else "Invalid positive integer",
                param="amount",
            )
        re_id = new_id("re")
        self.refunds[re_id] = refund = {
            "id": re_id,
            "object": "refund",
            "amount": amount,
            "charge": pi["latest_charge"],
            "created": int(time.time()),
            "currency": pi["currency"],
            "metadata": dict(params.get("metadata") or {}),
            "payment_intent": pi_id,
            "reason": params.get("reason"),
            "status": "succeeded",
        }
        self.created["refund"] += 1
        return refund

    def _get_refund(self, params, re_id):
        if re_id not in self.refunds:
            raise _missing("refund", re_id, "refund")
        return self.refunds[re_id]


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeStripe/1.0"

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        params = parse_form(parse_qsl(body if method == "POST" else split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, replayed = self.server.fake._serve(method, split.path, headers, params)
        if payload is None:  # injected fault: hang up without an answer
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", new_id("req", 14))
        self.send_header("Stripe-Version", headers.get("stripe-version", API_VERSION))
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.end_headers()
        self.wfile.write(payload)
