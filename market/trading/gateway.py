"""The bid gateway: ``POST /api/v1/lots/{id}/bids/`` sent with an API token, answered without the
REST framework's view.

Bids are the floor's busiest writes, and on a busy floor the servers' processors, not the database,
are the limit: through the API view a bid cost about 2.5 ms of Python (the REST framework's request,
parsers and renderers, the ORM's models and queries, eight round trips to PostgreSQL), several times
the database's own work. This middleware stands where the URL resolver would (every middleware above
it still shapes the response): it reads the bid from the request (``ask_of``), has it placed in two
round trips (``market.trading.bid_pipeline``) and renders the answer as the view renders it.

Anything else goes on to the API view, unchanged, with nothing written: another authentication (a
session, whose CSRF check and chosen organisation are the view's: the lot page's bids), a body the
view's serializer should judge, another content type than JSON asked for, and whatever the pipeline
leaves to the view (see its module).

Off with ``BID_GATEWAY=0``; on PostgreSQL only (the embedded SQLite takes every bid through the view).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer

from market.core import idempotency
from market.core.audit import client_ip
from market.core.drf import exception_handler
from market.trading import engine
from market.trading.bid_pipeline import Ask, bid_place_pipelined

PATH = re.compile(r"^/api/v1/lots/([0-9]{1,18})/bids/$")
# What the view's serializer takes as it stands (DecimalField: 14 digits, 2 decimals); anything else
# is the view's to judge.
AMOUNT = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,2})?$")
_RENDERER = JSONRenderer()


class BidGatewayMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and settings.BID_GATEWAY:
            found = PATH.match(request.path_info)
            if found is not None:
                response = bid_answer(request, int(found[1]))
                if response is not None:
                    return response
        return self.get_response(request)


# --- the request ------------------------------------------------------------------------------


def _amount(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    if not AMOUNT.match(text):
        return None
    return Decimal(text).quantize(engine.CENT)


def _json_accepted(accept: str) -> bool:
    """The view's content negotiation would answer JSON: no preference, any, or JSON named (a
    browser's text/html asks for the browsable API: the view's)."""
    if not accept.strip():
        return True
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return "text/html" not in kinds and bool(kinds & {"*/*", "application/*", "application/json"})


def ask_of(request, lot_id: int) -> Ask | None:
    """The bid the request asks for, when the gateway may answer it (else None: the view's)."""
    if connection.vendor != "postgresql":
        return None
    meta = request.META
    scheme, _, token = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "token" or not token or " " in token:
        return None
    if settings.SESSION_COOKIE_NAME in request.COOKIES or not _json_accepted(meta.get("HTTP_ACCEPT", "")):
        return None
    if "format" in request.GET:  # the REST framework's renderer override: the view's
        return None
    if request.content_type != "application/json":
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, RequestDataTooBig):
        return None
    if not isinstance(data, dict) or not data.keys() <= {"amount", "maximum"}:
        return None
    amount = _amount(data.get("amount"))
    maximum = None if data.get("maximum") is None else _amount(data["maximum"])
    if (
        amount is None
        or amount <= 0
        or (data.get("maximum") is not None and (maximum is None or maximum < amount))
    ):
        return None
    key = meta.get("HTTP_IDEMPOTENCY_KEY", "").strip()
    if len(key) > idempotency.MAX_KEY:
        return None
    scope = idempotency.scope_of(request.method, request.path)
    request_hash = idempotency.request_hash(request.method, request.path, data) if key else ""
    return Ask(lot_id, token, amount, maximum, key, scope, request_hash, client_ip(request))


# --- the answer ------------------------------------------------------------------------------------


def _json(data, status: int, *, replayed=False) -> HttpResponse:
    response = HttpResponse(_RENDERER.render(data), status=status, content_type="application/json")
    response["Vary"] = "Accept"
    response["Allow"] = "GET, POST, HEAD, OPTIONS"
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def bid_answer(request, lot_id: int) -> HttpResponse | None:
    """The answer to a bid the gateway takes (``ask_of``), or None: the view's (nothing written)."""
    ask = ask_of(request, lot_id)
    if ask is None:
        return None

    def refusal_answer(refusal) -> tuple[int, dict]:  # as the view renders it
        response = exception_handler(refusal, {"request": request})
        return response.status_code, response.data

    answer = bid_place_pipelined(ask, refusal_answer=refusal_answer)
    return None if answer is None else _json(answer.data, answer.status, replayed=answer.replayed)
