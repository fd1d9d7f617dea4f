"""A read replica for the dashboards and the open data (issue 8, scale-out).

The test settings give a second alias, ``replica``, on the same test database (``TEST: MIRROR``,
Django's documented way to test a replica); ``DATABASE_REPLICA_ALIAS`` switches the routing on, as
``DATABASE_REPLICA_URL`` does in production. The pages run in transactional tests: the replica is a
connection of its own, so it sees only committed rows, as a real replica does.
"""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from market.accounts.models import GovernmentOffice, GovernmentOfficer
from market.core.db_router import ReplicaRouter, reading_replica, replica_alias
from market.core.models import AuditEntry, Region
from pricing.models import TradeFact, VolumeRollup
from pricing.periods import month_add
from tests.factories import make_user
from tests.pricing.conftest import TANGSHAN_GUYE, record_on

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
TANGSHAN = "130200"

replica_db = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "replica"]
)


@pytest.fixture
def replica_on(settings):
    settings.DATABASE_REPLICA_ALIAS = "replica"
    assert replica_alias() == "replica"


# --- the router alone ------------------------------------------------------------------------------


def test_reads_of_read_models_move_only_inside_replica_reads_and_only_when_configured(settings):
    router = ReplicaRouter()
    settings.DATABASE_REPLICA_ALIAS = ""
    with reading_replica():
        assert replica_alias() == "default"
        assert router.db_for_read(VolumeRollup) is None  # no replica: the primary
    settings.DATABASE_REPLICA_ALIAS = "replica"
    assert router.db_for_read(VolumeRollup) is None  # outside the dashboards' views
    with reading_replica():
        assert router.db_for_read(VolumeRollup) == "replica"
        assert router.db_for_read(TradeFact) == "replica"
        assert router.db_for_read(Region) == "replica"  # reference data the figures are labelled with
        assert router.db_for_read(GovernmentOffice) is None  # who may see what: the primary
        assert router.db_for_read(AuditEntry) is None
        assert router.db_for_write(VolumeRollup) == "default"
        assert router.db_for_write(Region) == "default"
    assert router.allow_migrate("replica", "pricing") is False
    assert router.allow_migrate("default", "pricing") is None
    settings.DATABASE_REPLICA_ALIAS = "nowhere"  # named but not configured: the primary
    assert replica_alias() == "default"


def _settings_in_subprocess(**env) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({'databases': s.DATABASES, 'alias': s.DATABASE_REPLICA_ALIAS,"
        " 'routers': s.DATABASE_ROUTERS}, default=str))"
    )
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_REPLICA_URL"}}
    base.update(
        DJANGO_SETTINGS_MODULE="market.settings",
        DEBUG="1",
        MARKET_VAR_DIR=str(ROOT / "var" / "test"),
        DATABASE_URL="postgres://market@primary.db:5432/market",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_replica_url_is_parsed_like_database_url():
    on = _settings_in_subprocess(DATABASE_REPLICA_URL="postgres://reader:pw@replica.db:5433/market")
    replica = on["databases"]["replica"]
    assert on["alias"] == "replica"
    assert replica["ENGINE"] == "market.core.postgresql"  # Django's, with a cheaper health check
    assert (replica["HOST"], replica["PORT"], replica["USER"], replica["NAME"]) == (
        "replica.db",
        5433,
        "reader",
        "market",
    )
    assert replica["CONN_MAX_AGE"] == on["databases"]["default"]["CONN_MAX_AGE"]
    assert on["routers"] == ["market.core.db_router.ReplicaRouter"]
    off = _settings_in_subprocess(DATABASE_REPLICA_URL="")
    assert set(off["databases"]) == {"default"} and off["alias"] == ""


# --- the pages and the API against the replica ------------------------------------------------------


def _officer(jurisdiction: str):
    user = make_user()
    office = GovernmentOffice.objects.create(name="唐山市商务局", jurisdiction_id=jurisdiction)
    GovernmentOfficer.objects.create(user=user, office=office)
    return user


def _pricing_sql(queries) -> list[str]:
    return [q["sql"] for q in queries if '"pricing_' in q["sql"]]


def _get(client, url, params=None):
    """GET ``url`` with queries captured on both connections: (response, default's, replica's)."""
    cache.clear()  # the open data are cached: every call must read
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        response = client.get(url, params or {})
    return response, primary.captured_queries, replica.captured_queries


@replica_db
def test_dashboards_and_open_data_read_the_replica_and_writes_go_to_the_primary(client, replica_on):
    last_month = month_add(timezone.localdate(), -1).replace(day=10)
    record_on(last_month, quantity_t=Decimal("10.000"), unit_price=Decimal("2500.00"))
    record_on(
        last_month, quantity_t=Decimal("10.000"), unit_price=Decimal("2000.00"), county_code=TANGSHAN_GUYE
    )
    officer = _officer(TANGSHAN)
    client.force_login(officer)

    # The government dashboard: every read of the rollups and indices on the replica, and the
    # figures there (the replica sees the committed trades).
    response, primary, replica = _get(client, "/dashboard/")
    assert response.status_code == 200
    assert response.context["board"].recent_totals == (2, Decimal("20.000"), Decimal("45000.00"))
    assert _pricing_sql(replica), "the dashboard read no rollup from the replica"
    assert _pricing_sql(primary) == []
    # who is looking stays on the primary (session, user, office): never lost to replication lag
    assert any('"accounts_governmentofficer"' in q["sql"] for q in primary)
    assert not any('"accounts_' in q["sql"] or '"django_session"' in q["sql"] for q in replica)

    for url, params in (
        ("/dashboard/export.csv", {}),
        ("/statistics/", {"region": TANGSHAN}),
        ("/open-data/", {"year": last_month.year}),
        ("/open-data/volume.csv", {"year": last_month.year}),
        ("/api/v1/statistics/volume/", {"grain": "month", "region": TANGSHAN}),
        ("/api/v1/open/volume/", {"year": last_month.year}),
        ("/api/v1/open/indices/", {}),
    ):
        response, primary, replica = _get(client, url, params)
        assert response.status_code == 200, (url, response.content[:500])
        assert _pricing_sql(replica), f"{url} read no rollup or index from the replica"
        assert _pricing_sql(primary) == [], url

    # Pages that are not the dashboards' keep reading the primary.
    response, primary, replica = _get(client, "/indices/")
    assert response.status_code == 200
    assert replica == [] and _pricing_sql(primary)

    # Writes go to the primary, even inside the dashboards' context and for a row read from the replica.
    with reading_replica():
        fact = TradeFact.objects.filter(voided_at__isnull=True).first()
        assert fact._state.db == "replica"
        with (
            CaptureQueriesContext(connections["default"]) as primary_w,
            CaptureQueriesContext(connections["replica"]) as replica_w,
        ):
            fact.save(update_fields=["unit_price"])
            TradeFact.objects.filter(pk=fact.pk).update(unit_price=fact.unit_price)
    assert fact._state.db == "default"
    assert [q for q in replica_w.captured_queries if q["sql"].startswith("UPDATE")] == []
    assert len([q for q in primary_w.captured_queries if q["sql"].startswith("UPDATE")]) == 2


@replica_db
def test_without_a_replica_everything_stays_on_the_primary(client, settings):
    settings.DATABASE_REPLICA_ALIAS = ""
    last_month = month_add(timezone.localdate(), -1).replace(day=10)
    record_on(last_month, quantity_t=Decimal("10.000"), unit_price=Decimal("2500.00"))
    client.force_login(_officer(TANGSHAN))
    for url in ("/dashboard/", "/open-data/", "/api/v1/open/volume/"):
        response, primary, replica = _get(client, url)
        assert response.status_code == 200, url
        assert replica == [] and _pricing_sql(primary), url
