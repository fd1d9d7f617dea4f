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
from market.deals.models import Deal, LedgerEntry, ManifestStatus, Rating, TraceEntry
from market.deals.selectors import trace_verify
from pricing.index_models import IndexValue, SeriesKind
from pricing.models import TradeFact

pytestmark = pytest.mark.django_db


def counts():
    return tuple(
        m.objects.count()
        for m in (
            User, Organisation, Membership, Licence, GovernmentOfficer, AuditEntry, Deal, LedgerEntry, TraceEntry,
            TradeFact, IndexValue,
        )
    )  # fmt: skip


def test_demo_load_is_realistic_and_idempotent(client, settings):
    settings.DEMO_PRICE_HISTORY_DAYS = 64  # two months of price history here (two years in `make run`)
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

    # Contracts in every state, made through the services: ledger, trace and ratings are real.
    statuses = set(Deal.objects.values_list("status", flat=True))
    assert {
        "awaiting_payment", "paid", "pickup_scheduled", "weighed", "disputed", "settled", "completed", "defaulted",
    } <= statuses  # fmt: skip
    hazardous = Deal.objects.get(hazardous=True, status="completed")
    assert hazardous.manifest.status == ManifestStatus.COMPLETED
    assert Rating.objects.filter(deal__status="completed").count() >= 4
    assert LedgerEntry.objects.filter(kind="payout").count() >= 3
    for deal in Deal.objects.select_related("trace_chain"):
        assert trace_verify(deal.trace_chain).ok, deal.number
    steel = User.objects.get(email="steel.trader@demo.market")
    client.force_login(steel)
    page = client.get("/deals/").content.decode()
    assert "履约演示" in page and "已完成" in page and "可以将标的转给下一位竞买人" in page
    defaulted = Deal.objects.get(status="defaulted")
    assert client.get(f"/deals/{defaulted.pk}/").status_code == 200
    client.logout()
    assert client.get(f"/trace/{hazardous.trace_chain.code}/").status_code == 200

    # Price history: trades of several categories and provinces, the indices built over them, the
    # main series mostly transaction-based, the thin ones window or carried values, composites with
    # their contributions; the index pages show them.
    history = TradeFact.objects.filter(trade_id__startswith="demo-hist-")
    assert history.count() >= 600
    assert len({f.region_id[:2] for f in history}) >= 6 and len({f.category_id for f in history}) >= 8
    heavy = IndexValue.objects.filter(series__code="ferrous.heavy@CN")
    assert heavy.filter(status="T").count() >= heavy.count() * 0.8
    statuses = set(
        IndexValue.objects.filter(series__kind=SeriesKind.ELEMENTARY).values_list("status", flat=True)
    )
    assert "T" in statuses and statuses & {"E", "C", "S"}
    composite = IndexValue.objects.filter(series__code="composite.market", level__isnull=False).last()
    assert composite is not None and len(composite.contributions) >= 3
    assert "composite.market" in client.get("/").content.decode()
    assert client.get("/indices/composite.market/").status_code == 200
