"""API tokens, sign-up, lock-out after repeated failed logins and rate limits."""

import pytest
from django.core.cache import cache

from market.accounts.models import User
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_token_for_good_credentials_and_it_authenticates(api):
    user = make_user(email="buyer@smelter.cn")
    response = api.post("/api/v1/auth/token/", {"email": "BUYER@smelter.cn", "password": PASSWORD})
    assert response.status_code == 200, response.json()
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").json()["user"]["email"] == user.email
    assert api.delete("/api/v1/auth/token/").status_code == 204
    assert api.get("/api/v1/me/").status_code == 401


def test_wrong_password_is_a_clear_error(api):
    make_user(email="a@b.cn")
    response = api.post("/api/v1/auth/token/", {"email": "a@b.cn", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"


def test_lock_out_after_repeated_failed_logins(api, settings):
    make_user(email="target@mill.cn")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert (
            api.post("/api/v1/auth/token/", {"email": "target@mill.cn", "password": "guess"}).status_code
            == 400
        )
    response = api.post("/api/v1/auth/token/", {"email": "target@mill.cn", "password": "guess"})
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    # Even the right password is refused while locked out ...
    response = api.post("/api/v1/auth/token/", {"email": "target@mill.cn", "password": PASSWORD})
    assert response.status_code == 429
    # ... and the page login is locked too.
    from django.test import Client

    page = Client().post("/login/", {"username": "target@mill.cn", "password": PASSWORD})
    assert page.status_code == 429


def test_lock_out_is_per_account_and_address(api, settings):
    make_user(email="one@mill.cn")
    make_user(email="two@mill.cn")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api.post("/api/v1/auth/token/", {"email": "one@mill.cn", "password": "guess"})
    assert api.post("/api/v1/auth/token/", {"email": "two@mill.cn", "password": PASSWORD}).status_code == 200


def test_signup_and_duplicate_email(api):
    data = {"email": "new@yard.cn", "full_name": "王经理", "password": "Recycle-2026-yard"}
    assert api.post("/api/v1/auth/signup/", data).status_code == 201
    assert User.objects.filter(email="new@yard.cn").exists()
    response = api.post("/api/v1/auth/signup/", {**data, "email": "NEW@yard.cn"})
    assert response.status_code == 400
    assert response.json()["fields"]["email"][0]["code"] == "email_taken"


def test_weak_password_is_refused_with_reasons(api):
    response = api.post(
        "/api/v1/auth/signup/", {"email": "w@yard.cn", "full_name": "x", "password": "12345678"}
    )
    assert response.status_code == 400
    codes = {e["code"] for e in response.json()["fields"]["password"]}
    assert "password_entirely_numeric" in codes


def test_signup_is_rate_limited(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "signup": "3/hour"},
    }
    from rest_framework.throttling import ScopedRateThrottle

    ScopedRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    try:
        cache.clear()
        codes = [
            api.post(
                "/api/v1/auth/signup/",
                {"email": f"s{i}@yard.cn", "full_name": "x", "password": "Recycle-2026-yard"},
            ).status_code
            for i in range(5)
        ]
        assert codes[:3] == [201, 201, 201]
        assert codes[3] == 429
        last = api.post(
            "/api/v1/auth/signup/", {"email": "z@yard.cn", "full_name": "x", "password": "Recycle-2026-yard"}
        )
        assert last.json()["code"] == "throttled"
        assert last.json()["retry_after"] > 0
    finally:
        from rest_framework.settings import api_settings

        ScopedRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_a_government_officers_token_carries_the_office(api):
    """The token is read with whether its user is an officer and its office: every write checks
    that (officers only read), so it costs no query of its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from market.accounts.models import GovernmentOffice, GovernmentOfficer

    officer = make_user(email="officer@tangshan.gov.cn")
    office = GovernmentOffice.objects.create(name="唐山市商务局", jurisdiction_id="130200")
    GovernmentOfficer.objects.create(user=officer, office=office)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=officer).key}")
    with CaptureQueriesContext(connection) as ctx:
        me = api.get("/api/v1/me/").json()
    assert me["government_office"]["name"] == "唐山市商务局"
    tables = [q["sql"].split(" FROM ")[1].split()[0] for q in ctx.captured_queries if " FROM " in q["sql"]]
    assert '"accounts_governmentofficer"' not in tables and '"accounts_governmentoffice"' not in tables


def test_a_members_token_is_read_with_their_first_membership_and_others_still_authenticate(api):
    """For a member, the token's statement also reads the membership they act through by default
    (their first), which every API write acting for "my organisation" needs next; a user with no
    membership (an operator) and a bad token are answered as before."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from market.accounts.api import acting_organisation
    from market.accounts.authentication import TokenAuthentication
    from tests.factories import make_member, make_organisation

    member = make_user(email="trader@smelter.cn")
    first, second = make_organisation(name="甲冶炼有限公司"), make_organisation(name="乙冶炼有限公司")
    make_member(first, user=member)
    make_member(second, user=member)
    key = Token.objects.create(user=member).key

    class Request:  # what acting_organisation reads of a DRF request
        session = {}

    request = Request()
    with CaptureQueriesContext(connection) as ctx:
        request.user, _token = TokenAuthentication().authenticate_credentials(key)
        organisation = acting_organisation(request)
    assert organisation.pk == first.pk and request.user.pk == member.pk
    assert len(ctx.captured_queries) == 1  # token, user and membership in one statement

    operator = make_user(email="ops@market.cn", is_staff=True)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    assert api.get("/api/v1/me/").json()["user"]["email"] == "ops@market.cn"
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert api.get("/api/v1/me/").status_code == 401
    member.is_active = False
    member.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").status_code == 401
