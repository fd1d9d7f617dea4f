"""Speed as felt (issue 7): every main page, for the role that uses it, answers on the demo market
within a fixed number of database queries. Queries are counted, never timed: a page that loops a
query per row (N+1) breaks its budget as the demo's rows outnumber it.

The server time of each page is measured too, through Django's WSGI handler as a server calls it
(without the test client's template instrumentation), the median of three, and written to
``test-results/page-times.json`` (printed with ``-s``), for the record; nothing is asserted about it.
"""

import json
import statistics
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from listings.models import Lot, LotStatus
from market.accounts.models import Organisation, User
from market.deals.models import Deal, TraceChain
from market.trading.models import Sale, SaleStatus
from pricing.index_models import IndexSeries

pytestmark = pytest.mark.django_db

# One budget for every page: the most any main page may ask of the database.
BUDGET = 30


def _client(email: str | None) -> Client:
    client = Client()
    if email:
        client.force_login(User.objects.get(email=email))
    return client


def _served_ms(url: str, client: Client) -> float:
    """Milliseconds from the request to the last byte, through the WSGI handler a server uses."""
    path, _, query = url.partition("?")
    query = quote(query, safe="=&")  # as a browser sends it
    cookies = "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())
    environ = RequestFactory()._base_environ(PATH_INFO=path, QUERY_STRING=query, HTTP_COOKIE=cookies)
    handler = WSGIHandler()
    for signal in (request_started, request_finished):  # the test's transaction stays open
        signal.disconnect(close_old_connections)
    statuses = []
    try:
        started = time.perf_counter()
        body = handler(environ, lambda status, headers: statuses.append(status))
        b"".join(body)
        elapsed = time.perf_counter() - started
        body.close()
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
    assert statuses == ["200 OK"], f"{url}: {statuses}"
    return elapsed * 1000


def _pages() -> list[tuple[str, str | None, str]]:
    """(what, who, url): the pages each role meets first, on rows the demo holds."""
    auction = (
        Sale.objects.filter(
            status=SaleStatus.ACTIVE, mode="auction", bid_count__gt=1, lot__status=LotStatus.PUBLISHED
        )
        .order_by("-bid_count")
        .first()
    )
    lot = auction.lot if auction else Lot.objects.filter(status=LotStatus.PUBLISHED).first()
    steel = Organisation.objects.get(short_name="宏达钢铁")
    deal = Deal.objects.filter(seller=steel).order_by("-pk").first()
    trace = TraceChain.objects.order_by("pk").first()
    series = IndexSeries.objects.filter(code__startswith="composite").order_by("code").first()
    national = IndexSeries.objects.filter(code__endswith="@CN").exclude(code__startswith="composite").first()
    seller, buyer = "steel@demo.market", "scrapyard@demo.market"
    pages = [
        ("home", None, "/"),
        ("lot search", None, "/lots/"),
        ("lot search, text and filters", None, "/lots/?q=废钢&hazardous=0&sort=closing"),
        ("lot page", None, f"/lots/{lot.pk}/"),
        ("lot page, a bidder", buyer, f"/lots/{lot.pk}/"),
        ("lot page, the seller", seller, f"/lots/{lot.pk}/"),
        ("wanted listings", None, "/wanted/"),
        ("index list", None, "/indices/"),
        ("composite index", None, f"/indices/{series.code}/"),
        ("national index", None, f"/indices/{national.code}/"),
        ("methodology", None, "/indices/methodology/"),
        ("open data", None, "/open-data/"),
        ("statistics explorer", buyer, "/statistics/"),
        ("organisation", None, f"/organisations/{steel.pk}/"),
        ("my lots", seller, "/my/lots/"),
        ("my deals", seller, "/deals/"),
        ("my bids", buyer, "/my/bids/"),
        ("my awards", buyer, "/my/awards/"),
        ("notifications", buyer, "/my/notifications/"),
        ("saved searches", buyer, "/my/searches/"),
        ("dashboard, city", "gov.tangshan@demo.market", "/dashboard/"),
        ("dashboard, province", "gov.hebei@demo.market", "/dashboard/"),
    ]
    if deal is not None:
        pages.append(("deal", seller, f"/deals/{deal.pk}/"))
    if trace is not None:
        pages.append(("trace", None, f"/trace/{trace.code}/"))
    return pages


def test_every_main_page_stays_within_its_query_budget_on_the_demo_market(settings):
    settings.DEMO_PRICE_HISTORY_DAYS = 64
    call_command("demo_load", stdout=open("/dev/null", "w"))  # noqa: SIM115
    clients: dict[str | None, Client] = {}
    report, over = [], []
    for what, who, url in _pages():
        client = clients.setdefault(who, _client(who))
        client.get(url)  # warm: caches, templates, the search index
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, f"{what} {url}: HTTP {response.status_code}"
        queries = len(ctx.captured_queries)
        elapsed_ms = statistics.median(_served_ms(url, client) for _ in range(3))
        report.append(
            {
                "page": what,
                "user": who or "visitor",
                "url": url,
                "queries": queries,
                "ms": round(elapsed_ms, 1),
            }
        )
        if queries > BUDGET:
            over.append(f"{what} ({url}): {queries} queries")
    out = Path("test-results")
    out.mkdir(exist_ok=True)
    (out / "page-times.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    for row in report:
        print(f"{row['page']:<32} {row['queries']:>3} queries {row['ms']:>7.1f} ms  {row['url']}")
    assert not over, f"over the budget of {BUDGET} queries: {over}"
