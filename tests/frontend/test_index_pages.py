"""The price index pages: the list (composites first, filters, status legend, live strip, empty
state), an index's page (chart data, values, contributions of a composite, correction notices),
the audit list of a value (anonymised for visitors, named for operators, reasons in plain words),
the methodology with the parameters in force (in Chinese and English), the home page's ticker and
the navigation link. Each page is public and reads a bounded number of queries."""

import json
import random
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from pricing import indices
from pricing.index_models import IndexCorrection, IndexSeries, IndexValue
from pricing.services import trade_record, trade_void
from tests.factories import COUNTY_SUZHOU, COUNTY_TANGSHAN, make_organisation
from tests.test_i18n import _compiled_english_catalogue  # noqa: F401 - the English page below

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
HEAVY = "ferrous.heavy@CN"


def html(response) -> str:
    return response.content.decode()


def business_days(start: date, end: date):
    d = start
    while d <= end:
        if d.weekday() < 5:
            yield d
        d += timedelta(days=1)


class Market:
    """Four sellers in 唐山 and four buyers in 苏州, registered organisations, trading heavy and
    medium scrap through ``trade_record``."""

    def __init__(self):
        self.sellers = [make_organisation(name=f"唐山废钢回收{i}号有限公司") for i in range(4)]
        self.buyers = [
            make_organisation(region=COUNTY_SUZHOU, role="recycler", name=f"苏州钢铁{i}号有限公司")
            for i in range(4)
        ]

    def record(self, day, price, q="100", *, category="ferrous.heavy", seller=0, buyer=0, hour=10):
        moment = datetime.combine(day, time(hour), tzinfo=SH)
        return trade_record(
            trade_id=f"t:{category}:{day}:{price}:{seller}:{buyer}:{hour}", awarded_at=moment, settled_at=moment,
            category_code=category, county_code=COUNTY_TANGSHAN, seller_uscc=self.sellers[seller].uscc,
            buyer_uscc=self.buyers[buyer].uscc, quantity_t=Decimal(q), unit_price=Decimal(str(price)),
        )  # fmt: skip

    def liquid_day(self, day, price, **kw):
        for i, delta in enumerate((-10, 0, 10)):
            self.record(day, price + delta, seller=i, buyer=(i + 1) % 3, hour=9 + i, **kw)


@pytest.fixture
def market(db) -> Market:
    return Market()


@pytest.fixture
def history(market) -> Market:
    """March 2026 liquid every business day for heavy scrap (2,000 → 2,120 yuan/t) and most days
    for medium scrap, then the first days of April: every series has its base, the ferrous
    composite has two components."""
    rng = random.Random(7)
    for i, d in enumerate(business_days(date(2026, 3, 2), date(2026, 4, 3))):
        market.liquid_day(d, 2000 + 5 * i)
        if rng.random() < 0.8 or d.day <= 6:
            market.liquid_day(d, 1800 + 3 * i, category="ferrous.medium")
    call_command("indices_rebuild", "--from", "2026-03-02", "--to", "2026-04-03", "--no-progress")
    return market


def value(code, day) -> IndexValue:
    return IndexValue.objects.get(series__code=code, day=day)


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_composites_first_then_national_series_with_status_and_change(
    client, history, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = client.get("/indices/")
    assert response.status_code == 200
    page = html(response)
    composite = page.index("废钢铁综合价格指数")
    heavy = page.index("重型废钢价格指数（全国）")
    assert composite < heavy
    last = value(HEAVY, date(2026, 4, 3))
    before = value(HEAVY, date(2026, 4, 2))
    change = (last.level / before.level - 1) * 100
    assert f"{last.level:,.2f}" in page  # the level, grouped
    assert f"+{change:.2f}%" in page and "is-up" in page  # signed, red the Chinese way
    assert "¥2,1" in page  # the price in yuan per tonne
    assert "status-T" in page and "成交价 — 当日成交" in page  # the letter and its tooltip
    for letter, label in (("T", "成交价"), ("E", "窗口价"), ("C", "沿用前值"), ("S", "停滞")):
        assert f"status-{letter}" in page and label in page  # the legend
    assert "2026-04-03" in page
    assert 'data-socket="/ws/indices/"' in page and "盘中参考" in page and "indicative" in page
    # Province and zone series are on their own tabs, not on the national one.
    assert "@P:13" not in page


def test_the_list_filters_by_scope_and_category(client, history):
    page = html(client.get("/indices/?scope=province"))
    assert "重型废钢价格指数（河北省）" in page and "重型废钢价格指数（全国）" not in page
    assert "河北省" in page  # the group heading
    page = html(client.get("/indices/?scope=zone&category=ferrous"))
    assert "京津冀" in page and "废钢铁综合价格指数" in page
    page = html(client.get("/indices/?category=paper"))  # no paper series yet: not a choice
    assert "重型废钢价格指数（全国）" in page  # an unknown category is ignored
    assert client.get("/indices/?scope=planet").status_code == 200


def test_the_list_says_so_when_nothing_is_published_yet(client, market):
    response = client.get("/indices/")
    assert response.status_code == 200
    assert "尚未发布价格指数" in html(response)


def test_the_navigation_links_to_the_indices(client):
    page = html(client.get("/"))
    assert 'href="/indices/"' in page and "价格指数" in page
    page = html(client.get("/indices/"))
    assert re.search(r'<a href="/indices/" aria-current="page">', page)


# --- one index ----------------------------------------------------------------------------------


def test_an_index_page_embeds_its_chart_data_and_lists_its_values(
    client, history, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = client.get(f"/indices/{HEAVY}/")
    assert response.status_code == 200
    page = html(response)
    data = json.loads(
        re.search(r'<script id="index-chart-data" type="application/json">(.*?)</script>', page, re.S)[1]
    )
    values = list(IndexValue.objects.filter(series__code=HEAVY).order_by("day"))
    assert data["code"] == HEAVY and data["days"] == [v.day.isoformat() for v in values]
    assert data["level"][-1] == str(values[-1].level) and data["price"][0] == "2000.00"
    assert set(data["status"]) == {"T"} and data["labels"]["status"]["T"] == "T 成交价"
    assert 'data-index-chart="index-chart-data"' in page and "echarts.min.js" in page
    assert "基期 2026-03 = 1000" in page
    # The values table: newest first, with the link to each value's audit list.
    assert page.index("2026-04-03") < page.index("2026-03-31")
    assert f'href="/indices/{HEAVY}/2026-04-03/"' in page
    assert "最低价" in page and "最高价" in page and "剔除" in page
    # The indicative figure, for this series only.
    assert f'data-socket="/ws/indices/?series={HEAVY}"' in page
    assert client.get(f"/indices/{HEAVY}/?page=99").status_code == 200  # past the end: the last page


def test_a_composite_page_shows_its_contributions(client, history):
    page = html(client.get("/indices/composite.ferrous/"))
    last = IndexValue.objects.filter(series__code="composite.ferrous").order_by("-day").first()
    assert last.contributions and set(last.contributions) == {HEAVY, "ferrous.medium@CN"}
    assert "成分与贡献" in page
    assert "重型废钢价格指数（全国）" in page and "中型废钢价格指数（全国）" in page
    weight = Decimal(last.contributions[HEAVY]["weight"]) * 100
    assert f"{weight:.2f}%" in page
    contributions = sum(Decimal(c["contribution"]) for c in last.contributions.values())
    assert abs(contributions - last.level) < Decimal("0.02")
    assert "价格（元/吨）" not in page.split("历史数值")[1].split("</thead>")[0]  # no yuan for a composite
    page = html(client.get(f"/indices/composite.ferrous/{last.day}/"))
    assert "成分与贡献" in page and "重型废钢价格指数（全国）" in page


def test_a_correction_is_announced_beside_the_first_publication(client, history, operator):
    d = date(2026, 4, 6)
    history.liquid_day(d, 2100)
    big = history.record(d, 2300, q="400", seller=3, buyer=2, hour=15)
    indices.indices_close(d)
    before = value(HEAVY, d)
    trade_void(trade_id=big.trade_id, reason="合同撤销")
    indices.index_correct(day=d, reason="成交撤销，剔除该笔", actor=operator)
    after = value(HEAVY, d)
    assert IndexCorrection.objects.filter(value=after).exists() and after.first_level != after.level
    page = html(client.get(f"/indices/{HEAVY}/"))
    assert "更正公告" in page and "成交撤销，剔除该笔" in page
    assert f"由 {before.level:,.2f} 更正为 {after.level:,.2f}" in page
    assert f'<span title="首次发布值，之后已更正">{before.level:,.2f}</span>' in page
    page = html(client.get(f"/indices/{HEAVY}/{d}/"))
    assert f"首次发布 {before.level:,.2f}，已更正" in page
    assert "成交已作废" in page  # the voided trade, examined and not used


def test_unknown_codes_and_days_are_404(client, history):
    assert client.get("/indices/nothing@CN/").status_code == 404
    assert client.get("/indices/nothing@CN/2026-03-02/").status_code == 404
    assert client.get(f"/indices/{HEAVY}/2026-13-45/").status_code == 404
    assert client.get(f"/indices/{HEAVY}/2026-03-01/").status_code == 404  # a Sunday: no value
    assert client.get(f"/indices/{HEAVY}/2025-03-03/").status_code == 404


# --- the audit list -----------------------------------------------------------------------------


@pytest.fixture
def outlier_day(history):
    """A busy day with a mistyped price: six trades, one left out by the outlier rule."""
    d = date(2026, 4, 6)
    history.liquid_day(d, 2100)
    history.record(d, 2100, seller=3, buyer=0, hour=13)
    history.record(d, 2105, seller=1, buyer=3, hour=14)
    wild = history.record(d, 900, seller=2, buyer=1, hour=15)
    indices.indices_close(d)
    return d, wild


def test_the_audit_list_is_anonymous_for_visitors(
    client, history, outlier_day, django_assert_max_num_queries
):
    d, wild = outlier_day
    with django_assert_max_num_queries(10):
        response = client.get(f"/indices/{HEAVY}/{d}/")
    assert response.status_code == 200
    page = html(response)
    assert "计入指数的成交（5 笔）" in page and "审查后未计入的成交（1 笔）" in page
    assert "价格偏离当日中位数过大，按异常值规则剔除" in page
    assert "¥900.00" in page
    assert "卖方 A" in page and "买方 " in page
    for org in history.sellers + history.buyers:
        assert org.uscc not in page and org.legal_name not in page
    assert wild.trade_id not in page and "t:ferrous.heavy" not in page
    assert "median" not in page  # the raw detail is for operators
    # The parameters and the methodology version.
    assert "编制方法版本" in page and "1.0" in page and "每日截止时间" in page and "16:30" in page
    assert "该品类计入指数的最小批量" in page and "5 吨" in page
    assert f'href="/indices/{HEAVY}/2026-04-03/"' in page  # the business day before


def test_the_audit_list_names_the_parties_for_operators(client, history, outlier_day, operator):
    d, wild = outlier_day
    client.force_login(operator)
    page = html(client.get(f"/indices/{HEAVY}/{d}/"))
    assert "平台运营人员" in page
    assert wild.trade_id in page
    assert history.sellers[0].legal_name in page and history.sellers[0].uscc in page
    assert "median" in page  # the outlier rule's figures


def test_a_window_value_lists_the_window_and_the_days_not_liquid(client, history):
    d = date(2026, 4, 6)
    history.record(d, 2200, seller=0, buyer=1)  # one trade: E over the window
    indices.indices_close(d)
    v = value(HEAVY, d)
    assert v.status == "E"
    page = html(client.get(f"/indices/{HEAVY}/{d}/"))
    assert "窗口价：取最近 5 个交易日计入的全部成交。" in page
    assert "2026-03-31" in page  # trades of the window's earlier days


# --- the methodology ----------------------------------------------------------------------------


def test_the_methodology_page_has_the_rules_and_the_parameters_in_force(client, settings):
    settings.INDEX_HOLIDAYS = ["2026-10-01", "2026-10-02"]
    settings.INDEX_MIN_CELL_TONNES = Decimal("50")
    response = client.get("/indices/methodology/")
    assert response.status_code == 200
    page = html(response)
    assert "价格指数编制方法（规范）" in page and "3. 流动性规则" in page and "9. 改基" in page
    assert "<code>min_lot_tonnes(category)</code>" in page  # the markup of the text, not escaped
    assert "INDEX_CUTOFF</code> = 16:30" in page
    assert "2026-10-01, 2026-10-02" in page
    assert "INDEX_MIN_CELL_TONNES</code> = 50" in page
    minimum_lots = page.split("各品类计入指数的最小批量")[1]
    assert "废有色金属" in minimum_lots and "大宗工业固体废物" in minimum_lots


def test_the_methodology_reads_in_english(client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get("/indices/methodology/"))
    assert "Price index methodology (specification)" in page
    assert "Outlier rule" in page and "Liquidity rule" in page and "transaction-based" in page
    assert "价格指数编制方法" not in page and "流动性规则" not in page


def test_the_english_list_uses_the_english_names(client, history):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get("/indices/"))
    assert "Ferrous scrap composite" in page and "Heavy melting scrap price index (China)" in page
    assert "Price indices" in page and "indicative" in page


# --- the home page ------------------------------------------------------------------------------


def test_the_home_ticker_shows_the_composites_and_main_series(client, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = client.get("/")
    page = html(response)
    assert 'id="index-ticker"' in page and 'data-socket="/ws/indices/"' in page
    ticker = page.split('id="index-ticker"')[1].split("</section>")[0]
    assert 'data-series="composite.ferrous"' in ticker and "废钢铁综合价格指数" in ticker
    assert 'data-series="ferrous.heavy@CN"' in ticker
    assert ticker.index("composite.") < ticker.index("ferrous.heavy@CN")
    last = value("composite.ferrous", date(2026, 4, 3))
    assert f"{last.level:,.2f}" in ticker and "04-03 收盘" in ticker
    assert "@P:" not in ticker and "@Z:" not in ticker


def test_the_home_page_has_no_ticker_before_anything_is_published(client, market):
    assert 'id="index-ticker"' not in html(client.get("/"))
    assert not IndexSeries.objects.exists()


def test_the_english_audit_list_names_the_sides_in_english(client, history, outlier_day):
    d, _wild = outlier_day
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = html(client.get(f"/indices/{HEAVY}/{d}/"))
    assert "Seller A" in page and "Buyer " in page and "卖方" not in page
    assert "Price too far from the day" in page and "Transaction" in page
