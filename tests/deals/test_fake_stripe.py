"""Self-test of tests/fake_stripe.py against the real stripe-python 16 client."""

import json
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl

import pytest
import stripe

from tests.fake_stripe import FakeStripe, fast_retries, parse_form, stripe_signature

SECRET = "whsec_test_secret"


@pytest.fixture
def fake(monkeypatch):
    fast_retries(monkeypatch)
    with FakeStripe() as server:
        yield server


@pytest.fixture
def client(fake):
    return stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=2)


def create(client, key=None, **params):
    params = {
        "amount": 1000,
        "currency": "cny",
        "allowed_payment_method_types": ["card"],
        "metadata": {"deal": "1"},
    } | params
    return client.v1.payment_intents.create(params=params, options={"idempotency_key": key} if key else None)


def test_parse_form_nested_keys():
    pairs = parse_qsl("amount=5&metadata[deal]=1&metadata[0]=x&types[0]=card&types[1]=alipay&a[b][c]=d")
    assert parse_form(pairs) == {
        "amount": "5",
        "metadata": {"deal": "1", "0": "x"},
        "types": ["card", "alipay"],
        "a": {"b": {"c": "d"}},
    }


def test_create_intent_wire_format_and_object(fake, client):
    pi = create(client, "k1")
    assert isinstance(pi, stripe.PaymentIntent)
    assert pi.object == "payment_intent"
    assert pi.id.startswith("pi_")
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    assert pi.status == "requires_payment_method"
    assert (pi.amount, pi.amount_received, pi.currency) == (1000, 0, "cny")
    assert pi.metadata["deal"] == "1"
    assert pi.allowed_payment_method_types == ["card"]
    assert pi.latest_charge is None
    assert isinstance(pi.created, int)

    (req,) = fake.requests
    assert (req.method, req.path, req.status) == ("POST", "/v1/payment_intents", 200)
    assert req.headers["authorization"] == "Bearer sk_test_x"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.idempotency_key == "k1"
    assert req.params == {
        "amount": "1000",
        "currency": "cny",
        "allowed_payment_method_types": ["card"],
        "metadata": {"deal": "1"},
    }
    assert fake.intents[pi.id]["amount"] == 1000


def test_post_without_explicit_key_gets_a_generated_one(fake, client):
    create(client)
    assert fake.requests[0].idempotency_key


def test_same_idempotency_key_replays_the_same_object(fake, client):
    first = create(client, "k1")
    second = create(client, "k1")
    assert second.id == first.id
    assert fake.created["payment_intent"] == 1
    assert len(fake.intents) == 1
    assert [r.replayed for r in fake.requests] == [False, True]


def test_same_key_with_other_params_is_an_idempotency_error(fake, client):
    create(client, "k1")
    with pytest.raises(stripe.IdempotencyError) as exc:
        create(client, "k1", amount=2000)
    assert exc.value.http_status == 400
    assert exc.value.json_body["error"]["type"] == "idempotency_error"
    assert len(fake.intents) == 1


def test_dropped_response_is_retried_with_the_same_key(fake, client):
    fake.drop_next_response("/v1/payment_intents")
    started = time.monotonic()
    pi = create(client, "k2")
    assert time.monotonic() - started < 0.4  # fast_retries removed the 0.5 s back-off
    assert pi.id in fake.intents
    assert fake.created["payment_intent"] == 1
    assert [(r.idempotency_key, r.dropped, r.replayed) for r in fake.requests] == [
        ("k2", True, False),
        ("k2", False, True),
    ]


def test_dropped_response_without_retries_is_a_connection_error_but_the_work_is_done(fake):
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=0)
    fake.drop_next_response("/v1/payment_intents")
    with pytest.raises(stripe.APIConnectionError):
        create(client, "k3")
    assert fake.created["payment_intent"] == 1
    assert create(client, "k3").id in fake.intents  # the caller's own retry recovers the same object
    assert fake.created["payment_intent"] == 1


def test_succeed_fail_and_retrieve(fake, client):
    pi = create(client)
    fake.intent_fail(pi.id)
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "card_declined"

    fake.intent_succeed(pi.id)
    got = client.v1.payment_intents.retrieve(pi.id)
    assert isinstance(got, stripe.PaymentIntent)
    assert (got.status, got.amount_received) == ("succeeded", 1000)
    assert got.latest_charge.startswith("ch_")
    assert got.last_payment_error is None
    assert fake.requests[-1].method == "GET"


def test_cancel(fake, client):
    pi = create(client)
    canceled = client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.cancel(pi.id)


def test_full_refund(fake, client):
    pi = create(client)
    fake.intent_succeed(pi.id)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id}, options={"idempotency_key": "r1"})
    assert isinstance(refund, stripe.Refund)
    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount, refund.payment_intent) == ("succeeded", 1000, pi.id)
    assert client.v1.refunds.retrieve(refund.id).amount == 1000
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1})
    assert exc.value.code == "charge_already_refunded"


def test_partial_refunds_and_over_refund(fake, client):
    pi = create(client)
    fake.intent_succeed(pi.id)
    assert client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300}).amount == 300
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 701})
    assert (exc.value.http_status, exc.value.param) == (400, "amount")
    assert client.v1.refunds.create(params={"payment_intent": pi.id}).amount == 700
    assert fake.created["refund"] == 2
    assert sum(r["amount"] for r in fake.refunds.values()) == 1000


def test_refund_of_unpaid_intent_is_refused(client):
    pi = create(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": pi.id})


def test_unknown_ids_are_404(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.retrieve("pi_missing")
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.retrieve("re_missing")
    assert exc.value.http_status == 404


def test_list_intents(fake, client):
    ids = [create(client).id for _ in range(3)]
    page = client.v1.payment_intents.list(params={"limit": 2})
    assert [pi.id for pi in page.data] == ids[::-1][:2]
    assert page.has_more is True
    assert [pi.id for pi in page.auto_paging_iter()] == ids[::-1]
    assert fake.requests[-1].params == {"limit": "2", "starting_after": ids[1]}


def test_missing_api_key_is_401_in_stripe_shape(fake):
    request = urllib.request.Request(f"{fake.url}/v1/payment_intents", data=b"amount=1&currency=cny")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=5)
    assert exc.value.code == 401
    error = json.loads(exc.value.read())["error"]
    assert error["type"] == "invalid_request_error"
    assert "API key" in error["message"]
    assert fake.intents == {}


def test_webhook_signature_scheme(fake):
    obj = fake.intent_succeed(create(fake.client()).id)
    event = fake.event("payment_intent.succeeded", obj)
    assert event["id"].startswith("evt_")
    assert (event["object"], event["livemode"], event["pending_webhooks"]) == ("event", False, 1)
    assert event["request"]["id"] is None
    assert event["api_version"] == stripe.api_version
    payload = json.dumps(event).encode()

    header = stripe_signature(payload, SECRET)
    assert header.startswith("t=") and ",v1=" in header
    constructed = stripe.Webhook.construct_event(payload, header, SECRET)
    assert constructed.type == "payment_intent.succeeded"
    assert constructed.data.object.id == obj["id"]
    assert constructed.data.object.status == "succeeded"
    assert fake.sign(payload, SECRET, 1_700_000_000).startswith("t=1700000000,v1=")

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace(b"succeeded", b"failed"), header, SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
    old = stripe_signature(payload, SECRET, int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, old, SECRET)


def test_stop_frees_the_server():
    fake = FakeStripe().start()
    url = fake.url
    fake.stop()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=1)
