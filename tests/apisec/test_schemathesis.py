"""Schemathesis over the whole API, in process through the WSGI application, signed in as a trader
(A of tests/apisec/world.py, API token): no answer is a 5xx and every documented answer matches
the published schema.

Each operation gets ``MAX_EXAMPLES`` generated requests (positive and negative data, derandomised,
no shrinking: the run takes the same time every time). Path parameters are random most of the
time, which proves the 404s; every other example names a real object (A's own lot, deal,
organisation, a real category, region, index ...), so the answers with bodies are checked too.
Every operation of the schema runs: nothing calls outside the process (Stripe is not configured,
so online payment is refused with its usual message; e-mail goes to the in-memory outbox).

``APISEC_EXAMPLES=50`` runs it harder."""

import os
import zlib

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.apisec.world import World

MAX_EXAMPLES = int(os.environ.get("APISEC_EXAMPLES", "10"))

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
# The coverage phase (boundary and wrong-type values of every parameter) runs too, without its
# requests in undeclared methods (a 405 each, the same for every view).
schema.config.phases.coverage.unexpected_methods = set()


class _InTestTransaction:
    """Django's WSGI handler as the test client runs it: the request's start and end do not close
    the database connection, which holds the test's transaction (django.test.client does this).
    Each request runs in a savepoint rolled back when it is refused, as a refused request's
    statements are in production (autocommit): a statement the database refused (a NUL byte, say)
    then spoils neither the test's transaction nor the next request."""

    def __init__(self):
        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            with transaction.atomic():
                response = self.handler(environ, start_response)
                # consume it here, while the signals are off (a file response streams)
                body = b"".join(response)
                response.close()
                if response.status_code >= 400:
                    transaction.set_rollback(True)
            return [body]
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


schema.app = _InTestTransaction()


def real_parameters(world: World, path: str) -> dict:
    """Values naming objects that exist (A's own where the object is private)."""
    deal = world.a_deal
    values = {
        "id": world.a_draft_lot.pk,
        "media_id": 0,
        "code": "ferrous.heavy",
        "day": "2026-01-05",
        "token": "0" * 64,
    }
    if path.startswith("/api/v1/deals/"):
        values["id"] = deal.pk
        values["payment_id"] = deal.payments.values_list("pk", flat=True).first() or 0
    elif path.startswith("/api/v1/organisations/"):
        values["id"] = world.a.org.pk
        values["member_id"] = world.a.org.memberships.values_list("pk", flat=True).first()
        values["invitation_id"] = 0
        values["licence_id"] = 0
    elif path.startswith("/api/v1/lots/{id}/state/") or path.startswith("/api/v1/lots/{id}/bids/"):
        values["id"] = world.c_tender_lot.pk
    elif path.startswith("/api/v1/wanted/"):
        values["id"] = world.b_wanted.pk
        values["offer_id"] = world.b_wanted_offer.pk
    elif path.startswith("/api/v1/regions/"):
        values["code"] = "130203"
    elif path.startswith("/api/v1/trace/"):
        values["code"] = deal.trace_chain.code if deal.trace_chain_id else "x"
    elif path.startswith("/api/v1/indices/"):
        from pricing.index_models import IndexSeries

        values["code"] = IndexSeries.objects.values_list("code", flat=True).first() or "x"
    return values


@pytest.fixture
def fuzz_world(world) -> World:
    return world


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api(case, fuzz_world):
    if case.path_parameters and zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 2 == 0:
        real = real_parameters(fuzz_world, case.path)
        case.path_parameters = {name: real.get(name, value) for name, value in case.path_parameters.items()}
    case.call_and_validate(
        headers={"Authorization": f"Token {fuzz_world.a.token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
