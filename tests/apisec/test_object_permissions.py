"""Object-level permissions, generated from the OpenAPI schema.

Every operation of the published schema whose path takes a parameter (``{id}``, ``{code}``, ...)
becomes one case per object of B's it can name: A, a trader of another organisation with a valid
API token and a valid request body, must be answered 403 or 404 with the usual error body (a
``code`` and a ``message``), and nothing stored may change. An operation that names no object of
B's must be in ``PUBLIC`` with the reason it is public, so a new endpoint cannot be forgotten:
the coverage test fails until it is given a target here or a reason there.

Then: every list A may read is swept for B's private objects and secrets, and sealed tender bids
never show to anyone but their bidder (A is the seller of one tender B bid on, and a rival bidder
on another)."""

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from market.core.models import Notification
from tests.apisec.world import B_SECRETS, SEALED_ON_A_LOT, SEALED_ON_C_LOT, World
from tests.deals.conftest import png_upload

API = "/api/v1"
METHODS = ("get", "put", "patch", "delete", "post")
SECRETS = (SEALED_ON_A_LOT, SEALED_ON_C_LOT, *B_SECRETS)


def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def parameterised_operations(schema: dict) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation whose path has a parameter, in schema order."""
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if "{" in path
        for method in item
        if method in METHODS
    ]


# --- what A may reach of B's, by design -----------------------------------------------------


@dataclass(frozen=True)
class Public:
    reason: str
    params: object = None  # world -> path parameters, to request it anyway and check what is shown


PUBLIC: dict[tuple[str, str], Public] = {
    ("GET", f"{API}/categories/{{code}}/"): Public("the catalogue is reference data, the same for all"),
    ("GET", f"{API}/regions/{{code}}/"): Public("GB/T 2260 divisions are reference data"),
    ("GET", f"{API}/indices/{{code}}/"): Public("price indices are published to everyone"),
    ("GET", f"{API}/indices/{{code}}/values/"): Public("published index values are open data"),
    ("GET", f"{API}/indices/{{code}}/values/{{day}}/audit/"): Public(
        "the calculation audit of a published value is public by the methodology"
    ),
    ("GET", f"{API}/trace/{{code}}/"): Public(
        "a trace chain is read by whoever scans the code on the goods; it carries no prices"
    ),
    ("GET", f"{API}/organisations/{{id}}/"): Public(
        "a verified organisation's public profile (name, USCC, region, licences); the private "
        "fields are checked absent below",
        params=lambda w: {"id": w.b.org.pk},
    ),
    ("GET", f"{API}/wanted/{{id}}/"): Public(
        "an open wanted listing is an advertisement to every seller", params=lambda w: {"id": w.b_wanted.pk}
    ),
    ("GET", f"{API}/wanted/{{id}}/offers/"): Public(
        "a seller sees its own offers on a listing only; checked below that C's offer to B is not shown",
        params=lambda w: {"id": w.b_wanted.pk},
    ),
    ("POST", f"{API}/wanted/{{id}}/offers/"): Public(
        "answering someone else's wanted listing with an offer is what the listing is for"
    ),
}

# Fields only members of an organisation see on its profile.
PRIVATE_PROFILE_FIELDS = {
    "address",
    "contact_name",
    "contact_phone",
    "contact_email",
    "status_reason",
    "my_role",
}


# --- B's objects every operation can name -------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    params: object  # world -> path parameters
    methods: tuple[str, ...] = ()  # empty: every method of the path


def T(label, params, *methods):
    return Target(label, params, tuple(methods))


WRITES = ("PUT", "PATCH", "DELETE", "POST")
_b_org = T("B's organisation", lambda w: {"id": w.b.org.pk})
_draft = T("B's draft lot", lambda w: {"id": w.b_draft_lot.pk})
# A published lot is public to read and to bid on or buy; every other write is the seller's own.
_published = T("B's published lot", lambda w: {"id": w.b_published_lot.pk}, "PATCH", "DELETE", "PUT")
_published_post = T("B's published lot", lambda w: {"id": w.b_published_lot.pk}, "POST")
_deal = T("B's deal with C", lambda w: {"id": w.b_deal.pk})
_a_deal_b_payment = T("A's deal, B's payment", lambda w: {"id": w.a_deal.pk, "payment_id": w.b_payment.pk})
_b_payment = T("B's payment on B's deal", lambda w: {"id": w.b_deal.pk, "payment_id": w.b_payment.pk})

TARGETS: dict[str, list[Target]] = {
    # accounts
    f"{API}/organisations/{{id}}/": [T("B's organisation", lambda w: {"id": w.b.org.pk}, "PATCH")],
    f"{API}/organisations/{{id}}/decisions/": [_b_org],
    f"{API}/organisations/{{id}}/members/": [_b_org],
    f"{API}/organisations/{{id}}/members/{{member_id}}/": [
        T("B's trader", lambda w: {"id": w.b.org.pk, "member_id": w.b_membership.pk}),
        T("A's organisation, B's trader", lambda w: {"id": w.a.org.pk, "member_id": w.b_membership.pk}),
    ],
    f"{API}/organisations/{{id}}/invitations/": [_b_org],
    f"{API}/organisations/{{id}}/invitations/{{invitation_id}}/": [
        T("B's invitation", lambda w: {"id": w.b.org.pk, "invitation_id": w.b_invitation.pk}),
        T(
            "A's organisation, B's invitation",
            lambda w: {"id": w.a.org.pk, "invitation_id": w.b_invitation.pk},
        ),
    ],
    f"{API}/invitations/{{token}}/accept/": [
        T("B's invitation to someone else", lambda w: {"token": w.b_invitation.token})
    ],
    f"{API}/organisations/{{id}}/licences/": [_b_org],
    f"{API}/organisations/{{id}}/licences/{{licence_id}}/": [
        T("B's licence", lambda w: {"id": w.b.org.pk, "licence_id": w.b_licence.pk}),
        T("A's organisation, B's licence", lambda w: {"id": w.a.org.pk, "licence_id": w.b_licence.pk}),
    ],
    f"{API}/organisations/{{id}}/licences/{{licence_id}}/document/": [
        T("B's licence scan", lambda w: {"id": w.b.org.pk, "licence_id": w.b_licence.pk}),
        T("A's organisation, B's licence scan", lambda w: {"id": w.a.org.pk, "licence_id": w.b_licence.pk}),
    ],
    f"{API}/organisations/{{id}}/licences/{{licence_id}}/decisions/": [
        T("B's licence", lambda w: {"id": w.b.org.pk, "licence_id": w.b_licence.pk})
    ],
    # listings
    f"{API}/lots/{{id}}/": [_draft, _published],
    **{
        f"{API}/lots/{{id}}/{action}/": [_draft, _published_post]
        for action in ("submit", "publish", "return", "withdraw", "relist", "sale")
    },
    f"{API}/lots/{{id}}/state/": [_draft],
    f"{API}/lots/{{id}}/bids/": [_draft],
    f"{API}/lots/{{id}}/buy/": [_draft],
    f"{API}/lots/{{id}}/media/": [_draft, _published_post],
    f"{API}/lots/{{id}}/media/{{media_id}}/": [
        T("B's draft photo", lambda w: {"id": w.b_draft_lot.pk, "media_id": w.b_draft_media.pk}),
        T("B's published photo", lambda w: {"id": w.b_published_lot.pk, "media_id": w.b_published_media.pk}),
        T("A's lot, B's photo", lambda w: {"id": w.a_draft_lot.pk, "media_id": w.b_published_media.pk}),
    ],
    f"{API}/lots/{{id}}/media/{{media_id}}/file/": [
        T("B's draft photo", lambda w: {"id": w.b_draft_lot.pk, "media_id": w.b_draft_media.pk}),
        T("A's lot, B's draft photo", lambda w: {"id": w.a_draft_lot.pk, "media_id": w.b_draft_media.pk}),
    ],
    f"{API}/wanted/{{id}}/withdraw/": [T("B's wanted listing", lambda w: {"id": w.b_wanted.pk})],
    f"{API}/wanted/{{id}}/offers/{{offer_id}}/accept/": [
        T("C's offer to B", lambda w: {"id": w.b_wanted.pk, "offer_id": w.b_wanted_offer.pk})
    ],
    f"{API}/saved-searches/{{id}}/": [T("B's saved search", lambda w: {"id": w.b_saved_search.pk})],
    # trading
    f"{API}/offers/{{id}}/accept/": [T("C's quotation on B's lot", lambda w: {"id": w.b_lot_offer.pk})],
    f"{API}/deposits/{{id}}/confirm/": [T("B's deposit", lambda w: {"id": w.b_deposit.pk})],
    # deals
    **{
        f"{API}/deals/{{id}}/{tail}": [_deal]
        for tail in (
            "",
            "confirm/",
            "dispute/",
            "dispute/resolve/",
            "reverse/",
            "manifest/",
            "payments/",
            "pickups/",
            "weighings/",
            "ratings/",
        )
    },  # fmt: skip
    f"{API}/deals/{{id}}/payments/{{payment_id}}/slip/": [_b_payment, _a_deal_b_payment],
    f"{API}/deals/{{id}}/payments/{{payment_id}}/confirm/": [_b_payment, _a_deal_b_payment],
    # pricing: an operator's act, never a trader's
    f"{API}/indices/corrections/{{day}}/": [
        T(
            "an operator-only correction",
            lambda w: {"day": (timezone.localdate() - timedelta(days=1)).isoformat()},
        )
    ],
}


# --- a valid body for every write, so that a refusal is never just a validation error --------


def _future(hours=2):
    return (timezone.now() + timedelta(hours=hours)).isoformat()


def _multipart(**fields):
    return lambda w: (fields | {"file": png_upload("a.png")}, "multipart")


BODIES = {
    ("PATCH", f"{API}/organisations/{{id}}/"): {"contact_name": "甲方冒充", "contact_phone": "13800000000"},
    ("POST", f"{API}/organisations/{{id}}/decisions/"): {"decision": "suspend", "reason": "甲方越权"},
    ("POST", f"{API}/organisations/{{id}}/members/"): {"email": "intruder@market.test", "role": "admin"},
    ("PATCH", f"{API}/organisations/{{id}}/members/{{member_id}}/"): {"role": "viewer"},
    ("POST", f"{API}/organisations/{{id}}/licences/"): lambda w: (
        {
            "kind": "hazardous_waste",
            "number": "HW-A-INTRUDER",
            "issuer": "某厅",
            "valid_from": timezone.localdate().isoformat(),
            "valid_to": (timezone.localdate() + timedelta(days=100)).isoformat(),
            "hw_codes": "HW31",
            "document": png_upload("licence.png"),
        },
        "multipart",
    ),  # fmt: skip
    ("POST", f"{API}/organisations/{{id}}/licences/{{licence_id}}/decisions/"): {"decision": "verify"},
    ("POST", f"{API}/invitations/{{token}}/accept/"): None,
    ("PATCH", f"{API}/lots/{{id}}/"): {"title": "甲方改了乙方的标题", "quantity": "1"},
    ("POST", f"{API}/lots/{{id}}/submit/"): None,
    ("POST", f"{API}/lots/{{id}}/publish/"): None,
    ("POST", f"{API}/lots/{{id}}/relist/"): None,
    ("POST", f"{API}/lots/{{id}}/return/"): {"reason": "甲方越权"},
    ("POST", f"{API}/lots/{{id}}/withdraw/"): {"reason": "甲方越权"},
    ("POST", f"{API}/lots/{{id}}/sale/"): lambda w: (
        {"mode": "auction", "ends_at": _future(), "start_price": "1", "increment_amount": "1"},
        "json",
    ),
    ("POST", f"{API}/lots/{{id}}/bids/"): {"amount": "2500.00"},
    ("POST", f"{API}/lots/{{id}}/buy/"): {"quantity": "1"},
    ("POST", f"{API}/lots/{{id}}/media/"): _multipart(kind="photo"),
    ("POST", f"{API}/wanted/{{id}}/withdraw/"): None,
    ("POST", f"{API}/wanted/{{id}}/offers/{{offer_id}}/accept/"): None,
    ("POST", f"{API}/offers/{{id}}/accept/"): None,
    ("POST", f"{API}/deposits/{{id}}/confirm/"): {"reference": "A-FAKE-REF"},
    ("POST", f"{API}/deals/{{id}}/confirm/"): None,
    ("POST", f"{API}/deals/{{id}}/dispute/"): {"reason": "甲方越权"},
    ("POST", f"{API}/deals/{{id}}/dispute/resolve/"): {"decision": "cancel", "reason": "甲方越权"},
    ("POST", f"{API}/deals/{{id}}/reverse/"): {"reason": "甲方越权"},
    ("POST", f"{API}/deals/{{id}}/manifest/"): lambda w: (
        {
            "transporter_name": "甲方车队",
            "transporter_licence": "YS-1",
            "vehicle_plate": "苏E12345",
            "shipped_on": timezone.localdate().isoformat(),
        },
        "json",
    ),  # fmt: skip
    ("POST", f"{API}/deals/{{id}}/payments/"): {"method": "bank_transfer"},
    ("POST", f"{API}/deals/{{id}}/payments/{{payment_id}}/slip/"): lambda w: (
        {"reference": "A-SLIP", "slip": png_upload("slip.png")},
        "multipart",
    ),
    ("POST", f"{API}/deals/{{id}}/payments/{{payment_id}}/confirm/"): None,
    ("POST", f"{API}/deals/{{id}}/pickups/"): lambda w: (
        {
            "date": timezone.localdate().isoformat(),
            "vehicle_plate": "苏E12345",
            "driver_name": "王五",
            "driver_phone": "13900000000",
        },
        "json",
    ),  # fmt: skip
    ("POST", f"{API}/deals/{{id}}/weighings/"): {
        "ticket_no": "A-T1",
        "gross_t": "520.000",
        "tare_t": "20.000",
    },
    ("POST", f"{API}/deals/{{id}}/ratings/"): {"score": 1, "comment": "甲方越权"},
    ("POST", f"{API}/indices/corrections/{{day}}/"): {"reason": "甲方越权"},
}


def _body(world, method, path):
    spec = BODIES.get((method, path))
    if callable(spec):
        return spec(world)
    return spec, "json"


# --- the generated cases ------------------------------------------------------------------


def _cases():
    schema = _schema()
    cases = []
    for method, path in parameterised_operations(schema):
        targets = [t for t in TARGETS.get(path, []) if not t.methods or method in t.methods]
        public = PUBLIC.get((method, path))
        if public is not None:
            continue  # checked by test_public_operations_show_nothing_private
        if not targets:
            cases.append(pytest.param(method, path, None, id=f"{method} {path} [NOT COVERED]"))
        for target in targets:
            cases.append(pytest.param(method, path, target, id=f"{method} {path} [{target.label}]"))
    return cases


CASES = _cases()


def _fill(path, params) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, f"a parameter of {path} has no value"
    return path


def _stored_state(world: World) -> dict:
    """Row counts of every table of the project's apps, and B's objects field by field."""
    counts = {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model.__module__.startswith(("market.", "listings.", "pricing."))
    }
    return {"counts": counts, "b": world.b_rows()}


def _send(client, method, url, body, fmt):
    call = getattr(client, method.lower())
    if body is None:
        return call(url)
    return call(url, body, format=fmt)


def _assert_no_secret(response, where):
    text = response.content.decode("utf-8", "replace") if not getattr(response, "streaming", False) else ""
    for secret in SECRETS:
        assert secret not in text, f"{where}: A's answer shows {secret!r}"


def _assert_refused(response, where):
    assert response.status_code in (403, 404), (
        f"{where}: A got {response.status_code} {response.content[:300]!r}"
    )
    body = response.json()
    assert body.get("code") and body.get("message"), (
        f"{where}: a refusal without a code and a message: {body}"
    )


def test_the_schema_yields_cases_for_every_kind_of_private_object():
    paths = {path for _m, path in parameterised_operations(_schema())}
    assert len(CASES) >= 60, len(CASES)
    for fragment in (
        "/lots/{id}/",
        "/deals/{id}/",
        "/deposits/",
        "/saved-searches/",
        "/licences/",
        "/media/",
    ):
        assert any(fragment in p for p in paths), fragment


def test_every_parameterised_operation_is_covered_or_public():
    """A new endpoint with a path parameter fails here until it names a B-owned object in
    TARGETS (and, for a write, a body in BODIES) or is listed in PUBLIC with its reason."""
    schema = _schema()
    missing, bodiless, stale = [], [], []
    for method, path in parameterised_operations(schema):
        targets = [t for t in TARGETS.get(path, []) if not t.methods or method in t.methods]
        if (method, path) not in PUBLIC and not targets:
            missing.append(f"{method} {path}")
        op = schema["paths"][path][method.lower()]
        if targets and "requestBody" in op and (method, path) not in BODIES:
            bodiless.append(f"{method} {path}")
    known = {path for _m, path in parameterised_operations(schema)}
    stale = [p for p in TARGETS if p not in known] + [f"{m} {p}" for m, p in PUBLIC if p not in known]
    assert not missing, f"operations naming no B-owned object and not declared public: {missing}"
    assert not bodiless, f"writes without a valid body in BODIES: {bodiless}"
    assert not stale, f"entries for paths the schema no longer has: {stale}"


@pytest.mark.parametrize(("method", "path", "target"), CASES)
def test_a_cannot_reach_b_objects(world, method, path, target):
    assert target is not None, f"{method} {path} names no B-owned object: add it to TARGETS or PUBLIC"
    url = _fill(path, target.params(world))
    body, fmt = _body(world, method, path)
    before = _stored_state(world)
    response = _send(world.a.client, method, url, body, fmt)
    where = f"{method} {url} ({target.label})"
    _assert_refused(response, where)
    _assert_no_secret(response, where)
    after = _stored_state(world)
    assert after["b"] == before["b"], f"{where}: B's objects changed"
    changed = {k: (before["counts"][k], v) for k, v in after["counts"].items() if before["counts"][k] != v}
    assert not changed, f"{where}: rows were written: {changed}"


def test_public_operations_show_nothing_private(world):
    """The operations of PUBLIC that can name B's objects show only their public face."""
    org = world.a.client.get(f"{API}/organisations/{world.b.org.pk}/")
    assert org.status_code == 200 and not PRIVATE_PROFILE_FIELDS & set(org.json())
    offers = world.a.client.get(f"{API}/wanted/{world.b_wanted.pk}/offers/")
    assert offers.status_code == 200 and offers.json() == []
    for (method, path), public in PUBLIC.items():
        if method == "GET" and public.params is not None:
            response = world.a.client.get(_fill(path, public.params(world)))
            assert response.status_code == 200, path
            _assert_no_secret(response, path)


def _collection_gets(schema) -> list[str]:
    return [path for path, item in schema["paths"].items() if "{" not in path and "get" in item]


def test_no_list_a_reads_holds_b_private_objects_or_sealed_bids(world):
    schema = _schema()
    answers = {}
    for path in _collection_gets(schema):
        response = world.a.client.get(path)
        assert response.status_code < 500, path
        _assert_no_secret(response, f"GET {path}")
        answers[path] = response
    # the lots B's sealed bids are on, as their seller (A's tender) and as a rival bidder (C's)
    for lot in (world.a_tender_lot, world.c_tender_lot):
        for tail in ("", "state/", "bids/"):
            response = world.a.client.get(f"{API}/lots/{lot.pk}/{tail}")
            assert response.status_code == 200, (lot, tail)
            _assert_no_secret(response, f"GET lot {lot.pk} {tail}")

    def ids(path):
        data = answers[path].json()
        rows = data["results"] if isinstance(data, dict) and "results" in data else data
        return {row["id"] for row in rows}

    assert world.b_deal.pk not in ids(f"{API}/deals/")
    assert world.b_deposit.pk not in ids(f"{API}/deposits/")
    assert world.b_lot_offer.pk not in ids(f"{API}/offers/")
    assert world.b_saved_search.pk not in ids(f"{API}/saved-searches/")
    assert world.b_notification.pk not in ids(f"{API}/notifications/")
    assert world.b_deal.award_id not in ids(f"{API}/awards/")
    assert world.b_draft_lot.pk not in ids(f"{API}/lots/")
    # A's own tender bid is shown to A, and only as A's
    mine = world.a.client.get(f"{API}/lots/{world.c_tender_lot.pk}/bids/").json()["results"]
    assert [(row["amount"], row["mine"]) for row in mine] == [("1750.00", True)]


def test_marking_b_notification_read_changes_nothing(world):
    response = world.a.client.post(
        f"{API}/notifications/read/", {"ids": [world.b_notification.pk]}, format="json"
    )
    assert response.status_code == 200 and response.json()["marked"] == 0
    assert Notification.objects.get(pk=world.b_notification.pk).read_at is None


def test_every_refusal_here_speaks_the_error_format(world):
    """A 404 for a file or a draft is the same JSON error as any other refusal."""
    response = world.a.client.get(
        f"{API}/organisations/{world.b.org.pk}/licences/{world.b_licence.pk}/document/"
    )
    assert response.status_code in (403, 404)
    assert set(json.loads(response.content)) >= {"code", "message"}
