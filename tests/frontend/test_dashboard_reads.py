"""The government dashboard's price indices read only what the page shows (issue 7, speed as felt):
the province's own series of the chosen category's branch and the national composites, never the
series of every province nor the values' audit lists. What the page shows is unchanged (the
dashboard tests in test_statistics_pages.py)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.frontend import test_statistics_pages
from tests.frontend.test_statistics_pages import HEBEI, TANGSHAN, _series, officer

pytestmark = pytest.mark.django_db

trades = test_statistics_pages.trades  # the statistics pages' fixture: trades in 唐山 and around


@pytest.fixture
def series(trades):
    _series("composite@CN", kind="composite")
    _series("composite.ferrous@P:13", kind="composite", scope="province", province=HEBEI)
    _series("ferrous@CN", category="ferrous")
    _series("ferrous@P:13", scope="province", province=HEBEI, category="ferrous")
    _series("ferrous.heavy@P:13", scope="province", province=HEBEI, category="ferrous.heavy")
    _series("paper@P:13", scope="province", province=HEBEI, category="paper")
    _series("ferrous@P:32", scope="province", province="320000", category="ferrous")


def _index_value_reads(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "pricing_indexvalue".')]


def test_the_dashboard_reads_only_the_series_it_shows(client, series):
    client.force_login(officer(TANGSHAN))
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/dashboard/")
    codes = [row.series.code for row in response.context["board"].indices]
    assert codes == [
        "composite.ferrous@P:13",
        "composite@CN",
        "ferrous.heavy@P:13",
        "ferrous@P:13",
        "paper@P:13",
    ]
    reads = _index_value_reads(ctx)
    assert len(reads) == 1, reads  # the last and previous values, in one query
    assert '"pricing_indexvalue"."used"' not in reads[0] and '"pricing_indexvalue"."params"' not in reads[0]
    ids = re.search(r"IN \(([^)]*)\)", reads[0])[1].split(",")
    assert len(ids) == 2 * len(codes)  # the shown series' values, no other
    series_reads = [
        q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "pricing_indexseries".')
    ]
    assert len(series_reads) == 1 and "'130000'" in series_reads[0]  # the province, filtered in SQL


def test_a_category_shows_its_branch_of_the_provinces_series(client, series):
    client.force_login(officer(TANGSHAN))
    response = client.get("/dashboard/", {"category": "ferrous"})
    codes = [row.series.code for row in response.context["board"].indices]
    assert codes == ["composite@CN", "ferrous.heavy@P:13", "ferrous@P:13"]
    response = client.get("/dashboard/", {"category": "ferrous.heavy"})
    assert [row.series.code for row in response.context["board"].indices] == [
        "composite@CN",
        "ferrous.heavy@P:13",
    ]
    response = client.get("/dashboard/", {"category": "paper"})
    assert [row.series.code for row in response.context["board"].indices] == ["composite@CN", "paper@P:13"]
