"""The demo market loads with valid enterprises and can be loaded twice without change."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.http import HttpRequest

from frontend.demo import DEMO_PASSWORD, ORGANISATIONS
from listings.models import Lot
from market.accounts.models import (
    GovernmentOfficer,
    Licence,
    Membership,
    Organisation,
    User,
    VerificationStatus,
)
from market.accounts.selectors import licence_valid_for
from market.accounts.uscc import uscc_validate
from market.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def counts():
    return tuple(
        m.objects.count() for m in (User, Organisation, Membership, Licence, GovernmentOfficer, AuditEntry)
    )


def test_demo_load_is_realistic_and_idempotent(client):
    out = StringIO()
    call_command("demo_load", stdout=out)
    assert "steel@demo.market" in out.getvalue() and DEMO_PASSWORD in out.getvalue()
    first = counts()
    call_command("demo_load", stdout=StringIO())
    assert counts() == first

    orgs = Organisation.objects.all()
    assert orgs.count() >= len(ORGANISATIONS)
    assert len({o.region.province_code for o in orgs}) >= 8  # several provinces
    for org in orgs:
        assert uscc_validate(org.uscc) == org.uscc
    assert orgs.filter(status=VerificationStatus.PENDING).exists()  # something for the operator to verify
    lead = Organisation.objects.get(short_name="金利铅业")
    assert licence_valid_for(lead, hw_code="HW31", on=lead.created_at.date()) is not None

    # A few hundred published lots across the catalogue and the provinces, found by search.
    lots = Lot.objects.filter(status="published")
    assert lots.count() >= 300
    assert len({lot.region_id[:2] for lot in lots}) >= 10
    assert len({lot.category_id for lot in lots}) >= 30
    from listings.search import LotQuery, get_backend

    fly_ash = get_backend().search(LotQuery.from_params({"q": "粉煤灰"}))
    assert fly_ash.total > 0
    assert all(lot.category_id.startswith("bulk.fly_ash") for lot in Lot.objects.filter(pk__in=fly_ash.ids))

    # The printed logins work.
    for email in ("steel@demo.market", "gov.tangshan@demo.market", "lead@demo.market"):
        assert client.login(request=HttpRequest(), username=email, password=DEMO_PASSWORD), email
    assert User.objects.get(email="operator@demo.market").is_operator
