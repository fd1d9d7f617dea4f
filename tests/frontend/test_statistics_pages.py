"""The statistics pages: the explorer (who may read which area, figures equal to the selectors'),
the government dashboard (only its jurisdiction, drill-down, the manifests leaving and entering it,
CSV and Excel exports with the right totals), and the open data page (no login, suppressed cells
as "—", the CSV). Trades are recorded through ``pricing.services.trade_record`` on months relative
to today, so the dashboard's two-year window always holds them."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from frontend.templatetags.statfmt import change, tonnes_short, yuan, yuan_short
from market.accounts.models import GovernmentOffice, GovernmentOfficer
from market.accounts.uscc import uscc_make
from market.deals import services as deals
from market.deals.models import Manifest, ManifestStatus
from pricing import selectors
from pricing.index_models import IndexSeries, IndexValue
from pricing.periods import month_add, period_start
from tests.deals.conftest import HAZARDOUS_CATEGORY, DealFloor, licence_give
from tests.factories import COUNTY_TANGSHAN, make_member, make_organisation, make_user
from tests.pricing.conftest import SUZHOU_WUZHONG, TANGSHAN_GUYE, TANGSHAN_LUBEI, record_on
from tests.test_i18n import _compiled_english_catalogue  # noqa: F401 - the English page below
from tests.trading.conftest import Floor, make_party, published_lot

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHIJIAZHUANG_CHANGAN = "130102"  # 河北省石家庄市长安区: Hebei, outside 唐山
TANGSHAN, SHIJIAZHUANG, SUZHOU, HEBEI = "130200", "130100", "320500", "130000"
Q = Decimal("10.000")


def html(response) -> str:
    return response.content.decode()


record = record_on


def officer(jurisdiction: str, name: str | None = None):
    user = make_user()
    office = GovernmentOffice.objects.create(
        name=name or f"{jurisdiction} 商务局", jurisdiction_id=jurisdiction
    )
    GovernmentOfficer.objects.create(user=user, office=office)
    return user


def company_user():
    return make_member(make_organisation()).user


def months_ago(n: int) -> date:
    """The 10th of the month ``n`` months before this one."""
    return month_add(timezone.localdate(), -n).replace(day=10)


@pytest.fixture
def trades():
    """Last month: 唐山 (two counties, steel and paper), 石家庄 and 苏州; the month before: 唐山; and
    a year before last month: 唐山 again (for year on year)."""
    last, before, year_ago = months_ago(1), months_ago(2), months_ago(13)
    record(last, quantity_t=Q, unit_price=Decimal("2500.00"))  # 唐山路北 25,000
    record(last, quantity_t=Q, unit_price=Decimal("2500.00"), county_code=TANGSHAN_GUYE)  # 唐山古冶 25,000
    record(last, quantity_t=Q, unit_price=Decimal("1500.00"), category_code="paper.occ")  # 唐山路北 15,000
    record(last, quantity_t=Q, unit_price=Decimal("1000.00"), county_code=SHIJIAZHUANG_CHANGAN)  # 10,000
    record(last, quantity_t=Q, unit_price=Decimal("3000.00"), county_code=SUZHOU_WUZHONG)  # 苏州 30,000
    record(before, quantity_t=Q, unit_price=Decimal("2000.00"))  # 唐山路北 20,000
    record(year_ago, quantity_t=Q, unit_price=Decimal("2000.00"))  # 唐山路北 20,000
    return {"last": last, "before": before, "year_ago": year_ago}


# --- number formats ---------------------------------------------------------------------------------


def test_numbers_are_written_the_chinese_way():
    assert yuan(Decimal("1234567.8")) == "¥1,234,567.80"
    assert yuan_short(Decimal("123456789012")) == "1,234.57亿元"
    assert yuan_short(Decimal("456789")) == "45.68万元"
    assert yuan_short(Decimal("9876")) == "9,876.00元"
    assert tonnes_short(Decimal("123456.5")) == "12.35万吨"
    assert change(Decimal("0.2750")) == "+27.5%"
    assert change(Decimal("-0.03")) == "-3.0%"
    assert change(None) == "—"


# --- the explorer -------------------------------------------------------------------------------------


def test_the_explorer_needs_a_login(client):
    response = client.get("/statistics/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_explorer_shows_the_selectors_figures(client, trades, operator, django_assert_max_num_queries):
    client.force_login(operator)
    with django_assert_max_num_queries(20):
        response = client.get("/statistics/")
    assert response.status_code == 200
    explorer = response.context["explorer"]
    today = timezone.localdate()
    expected = selectors.volume(
        "month", None, "CN", period_start(today - timedelta(days=365), "month"), today
    )
    assert explorer.points == expected
    assert explorer.totals == (6, Decimal("60.000"), Decimal("125000.00"))  # the year-ago trade is outside
    page = html(response)
    assert "¥125,000.00" in page  # the total row
    assert "12.50万元" in page  # the summary card
    # The top lists are the selectors' answers over the same whole periods.
    first, last = explorer.points[0].period, explorer.points[-1].end
    assert [r["code"] for r in explorer.top_categories] == [
        r["code"] for r in selectors.top_categories(first, last, region_code_or_zone="CN")
    ]
    assert [(r["code"], r["value"]) for r in explorer.top_regions] == [
        (HEBEI, Decimal("95000.00")),
        ("320000", Decimal("30000.00")),
    ]
    # The year's online trade value beside the national target.
    assert explorer.annual == {**selectors.annual_value(last.year), "progress": explorer.annual["progress"]}
    assert "stat-progress" in page


def test_the_explorer_drills_into_a_category_and_a_region_through_the_url(client, trades, operator):
    client.force_login(operator)
    last = trades["last"]
    params = {
        "grain": "month",
        "category": "ferrous",
        "region": TANGSHAN,
        "from": f"{last:%Y-%m-01}",
        "to": str(last),
    }
    response = client.get("/statistics/", params)
    assert response.status_code == 200
    explorer = response.context["explorer"]
    assert [(p.label, p.trades, p.value) for p in explorer.points] == [
        (f"{last:%Y-%m}", 2, Decimal("50000.00"))
    ]
    assert [r["code"] for r in explorer.top_regions] == [TANGSHAN_LUBEI, TANGSHAN_GUYE]  # a tie: by code
    assert explorer.top_regions_level == "county"
    # Year on year: the same month a year before had one trade of 20,000 in 唐山's steel.
    assert explorer.points[0].yoy["value"] == Decimal("1.5000")
    assert f"region={TANGSHAN_LUBEI}" in html(response)  # drill-down links keep the other filters


def test_a_company_sees_the_nation_and_is_refused_a_province_clearly(client, trades):
    client.force_login(company_user())
    response = client.get("/statistics/")
    assert response.status_code == 200
    explorer = response.context["explorer"]
    assert explorer.area.code == "CN" and explorer.regions_hidden and explorer.top_regions == []
    refused = client.get("/statistics/", {"region": HEBEI})
    assert refused.status_code == 403
    assert refused.context["explorer"] is None
    page = html(refused)
    assert "企业用户只能查看全国统计；分地区数据请查阅开放数据。" in page
    assert "/open-data/" in page


def test_a_city_office_reads_its_city_by_default_and_nothing_outside(client, trades):
    client.force_login(officer(TANGSHAN))
    response = client.get("/statistics/")
    assert response.status_code == 200
    explorer = response.context["explorer"]
    assert explorer.area.code == TANGSHAN
    assert explorer.totals[0] == 4 and explorer.totals[2] == Decimal("85000.00")
    assert explorer.annual_national is False  # no national figures for a government user
    for region in ("CN", HEBEI, SHIJIAZHUANG, SUZHOU):
        refused = client.get("/statistics/", {"region": region})
        assert refused.status_code == 403, region
        assert "该区域不在您所在机构的管辖范围内。" in html(refused)


def test_bad_filters_are_400_with_the_message_beside_the_field(client, operator):
    client.force_login(operator)
    for params, text in [
        ({"category": "ferrous.gold"}, "品类代码“ferrous.gold”不存在。"),
        ({"region": "atlantis"}, "统计区域“atlantis”不存在。"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "统计的起始日期不能晚于截止日期。"),
        ({"grain": "day", "from": "2020-01-01", "to": "2026-01-01"}, "时间范围太长"),
        ({"grain": "hour"}, "hour"),
    ]:
        response = client.get("/statistics/", params)
        assert response.status_code == 400, params
        assert text in html(response), params


def test_an_empty_range_says_so(client, operator):
    client.force_login(operator)
    response = client.get("/statistics/", {"from": "2001-01-01", "to": "2001-12-31"})
    assert response.status_code == 200
    assert "所选范围内没有成交" in html(response)


# --- the government dashboard ---------------------------------------------------------------------


def test_the_dashboard_is_for_government_users_only(client, trades):
    client.force_login(company_user())
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert "监管看板仅向政府用户开放" in html(response)
    for export in ("/dashboard/export.csv", "/dashboard/export.xlsx"):
        assert client.get(export).status_code == 403
    client.logout()
    assert client.get("/dashboard/").status_code == 302


def test_a_city_office_sees_only_its_jurisdiction(client, trades, django_assert_max_num_queries):
    client.force_login(officer(TANGSHAN, "唐山市商务局"))
    with django_assert_max_num_queries(26):
        response = client.get("/dashboard/")
    assert response.status_code == 200
    board = response.context["board"]
    assert board.region.code == TANGSHAN
    # Twelve months to this one: last month's three 唐山 trades and the month before's one; the
    # year before holds the trade of a year before last month.
    assert board.recent_totals == (4, Decimal("40.000"), Decimal("85000.00"))
    assert board.prior_totals == (1, Decimal("10.000"), Decimal("20000.00"))
    assert board.recent_yoy["value"] == Decimal("3.2500")
    assert board.totals == (5, Decimal("50.000"), Decimal("105000.00"))
    assert {r["code"]: r["recent"][2] for r in board.categories if r["recent"][0]} == {
        "ferrous": Decimal("70000.00"),
        "paper": Decimal("15000.00"),
    }
    counties = {r["code"]: r["recent"][2] for r in board.regions}
    assert counties[TANGSHAN_LUBEI] == Decimal("60000.00") and counties[TANGSHAN_GUYE] == Decimal("25000.00")
    assert SHIJIAZHUANG_CHANGAN not in counties
    page = html(response)
    assert "唐山市商务局" in page and "¥85,000.00" in page
    assert "¥10,000.00" not in page  # 石家庄's trade is nowhere on the page
    # Another city, the province and the nation are refused; a county of its own is allowed.
    for region in (SHIJIAZHUANG, HEBEI, SUZHOU):
        refused = client.get("/dashboard/", {"region": region})
        assert refused.status_code == 403, region
        assert "该区域不在您所在机构的管辖范围内。" in html(refused)
        assert client.get("/dashboard/export.csv", {"region": region}).status_code == 403
    county = client.get("/dashboard/", {"region": TANGSHAN_LUBEI})
    assert county.status_code == 200
    assert county.context["board"].recent_totals[2] == Decimal("60000.00")


def test_drilling_down_narrows_by_category_and_sub_region(client, trades):
    client.force_login(officer(HEBEI))
    board = client.get("/dashboard/").context["board"]
    cities = {r["code"]: r["recent"][2] for r in board.regions}
    assert cities[TANGSHAN] == Decimal("85000.00") and cities[SHIJIAZHUANG] == Decimal("10000.00")
    tangshan = next(r for r in board.regions if r["code"] == TANGSHAN)
    assert tangshan["url"] == f"/dashboard/?region={TANGSHAN}"
    ferrous = next(r for r in board.categories if r["code"] == "ferrous")
    response = client.get(ferrous["url"])
    assert response.status_code == 200
    narrowed = response.context["board"]
    assert narrowed.category.code == "ferrous"
    assert narrowed.recent_totals == (4, Decimal("40.000"), Decimal("80000.00"))  # 唐山 3 + 石家庄 1
    assert [c["code"] for c in narrowed.categories if c["recent"][0]] == ["ferrous.heavy"]
    both = client.get("/dashboard/", {"region": TANGSHAN, "category": "ferrous"}).context["board"]
    assert both.recent_totals[2] == Decimal("70000.00")


@pytest.fixture
def manifest(operator):
    """A hazardous deal from 唐山 (the generator's county) to 苏州 (the buyer's), paid, with its
    transfer manifest of 30 t of HW31 shipped today."""
    seller = make_party(role="generator", region=COUNTY_TANGSHAN, name="唐山蓄电池有限公司")
    buyers = [make_party(name="苏州再生铅有限公司")]
    floor = DealFloor(
        floor=Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org)), operator=operator
    )
    licence_give(buyers[0], operator)
    lot = published_lot(seller.org, category=HAZARDOUS_CATEGORY, quantity="30", title="废铅酸蓄电池 30 吨")
    deal = floor.pay(floor.deal_of(lot=lot, bids=((0, "9000"),)))
    return deals.manifest_create(
        actor=seller.user,
        deal=deal,
        transporter_name="唐山危险品运输有限公司",
        transporter_licence="冀交运管许可唐字130200000001号",
        vehicle_plate="冀B12345",
        shipped_on=timezone.localdate(),
    )


def test_manifests_leave_the_generators_jurisdiction_and_enter_the_receivers(client, manifest):
    month = f"{timezone.localdate():%Y-%m}"
    client.force_login(officer(TANGSHAN))
    out = client.get("/dashboard/").context["board"].manifests
    assert out["totals"]["out_n"] == 1 and out["totals"]["out_t"] == manifest.quantity_t
    assert out["totals"]["in_n"] == 0
    assert [(r["month"].strftime("%Y-%m"), r["hw_code"], r["out_n"]) for r in out["detail"]] == [
        (month, "HW31", 1)
    ]
    assert out["by_code"][0]["name"] == "含铅废物"
    client.force_login(officer(SUZHOU))
    into = client.get("/dashboard/").context["board"].manifests
    assert (into["totals"]["in_n"], into["totals"]["out_n"]) == (1, 0)
    client.force_login(officer(SHIJIAZHUANG))
    assert client.get("/dashboard/").context["board"].manifests["totals"]["out_n"] == 0
    assert Manifest.objects.count() == 1


def test_an_open_manifest_of_a_cancelled_deal_is_not_a_transfer(client, manifest, operator):
    client.force_login(officer(TANGSHAN))
    assert client.get("/dashboard/").context["board"].manifests["totals"]["out_n"] == 1
    deal = manifest.deal
    deals.deal_dispute(actor=deal.seller.memberships.first().user, deal=deal, reason="买方车辆资质不符")
    deals.dispute_resolve(actor=operator, deal=deal, decision="cancel", reason="双方同意解除合同")
    manifest.refresh_from_db()
    assert manifest.status == ManifestStatus.VOID  # the waste never moved
    assert client.get("/dashboard/").context["board"].manifests["totals"]["out_n"] == 0


def test_the_csv_export_holds_every_table_with_the_right_totals(client, trades, manifest):
    client.force_login(officer(TANGSHAN))
    response = client.get("/dashboard/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    sections = {row[0]: i for i, row in enumerate(rows) if len(row) == 1 and row[0].startswith("【")}
    assert {"【月度成交】", "【按品类】", "【按下级区域】", "【价格指数】"} <= set(sections)
    start = sections["【月度成交】"]
    header = rows[start + 1]
    assert header[:2] == ["月份", "成交额（元）"]
    body = []
    for row in rows[start + 2 :]:
        if not row:
            break
        body.append(row)
    assert body[-1][0] == "合计" and body[-1][1] == "105000.00"
    assert sum(Decimal(r[1]) for r in body[:-1]) == Decimal("105000.00")
    assert len(body) == 25  # 24 months and the total
    outgoing = next(k for k in sections if "转出" in k)
    assert rows[sections[outgoing] + 2][1] == "HW31"


def test_the_excel_export_has_a_sheet_per_table_with_chinese_headers_and_number_formats(
    client, trades, manifest
):
    client.force_login(officer(TANGSHAN))
    response = client.get("/dashboard/export.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["说明", "月度成交", "按品类", "按下级区域", "价格指数", "危废转出", "危废转入"]
    monthly = book["月度成交"]
    assert [c.value for c in monthly[1]][:4] == ["月份", "成交额（元）", "成交额环比", "成交额同比"]
    total = monthly[monthly.max_row]
    assert total[0].value == "合计" and total[1].value == pytest.approx(105000.00)
    assert total[1].number_format == "#,##0.00"
    assert monthly.cell(row=2, column=5).number_format == "#,##0.000"
    categories = book["按品类"]
    last = categories[categories.max_row]
    assert last[0].value == "合计" and last[2].value == pytest.approx(85000.00)
    counties = book["按下级区域"]
    assert counties[counties.max_row][2].value == pytest.approx(85000.00)
    outgoing = book["危废转出"]
    assert [c.value for c in outgoing[2]][1] == "HW31"
    assert outgoing[outgoing.max_row][4].value == pytest.approx(float(Manifest.objects.get().quantity_t))
    assert book["危废转入"].max_row == 1  # the heading only: nothing entered 唐山


def _series(code, *, kind="elementary", scope="national", province=None, category=None, level="104.50"):
    series = IndexSeries.objects.create(
        code=code, kind=kind, name=f"指数 {code}", name_en=f"Index {code}", scope=scope,
        province_id=province, category_id=category,
    )  # fmt: skip
    for days, value in ((2, Decimal("100.00")), (1, Decimal(level))):
        IndexValue.objects.create(
            series=series, day=timezone.localdate() - timedelta(days=days), status="T", price=Decimal("2500"),
            level=value, methodology_version="1", published_at=timezone.now(),
        )  # fmt: skip
    return series


def test_the_dashboard_shows_its_provinces_indices_and_the_national_composites(client, trades):
    _series("composite@CN", kind="composite")
    _series("ferrous@CN", category="ferrous")
    _series("ferrous@P:13", scope="province", province=HEBEI, category="ferrous")
    _series("ferrous@P:32", scope="province", province="320000", category="ferrous")
    client.force_login(officer(TANGSHAN))
    response = client.get("/dashboard/")
    codes = [row.series.code for row in response.context["board"].indices]
    assert codes == ["composite@CN", "ferrous@P:13"]
    assert "+4.50%" in html(response)
    book = load_workbook(io.BytesIO(client.get("/dashboard/export.xlsx").content))
    sheet = book["价格指数"]
    assert [sheet.cell(row=r, column=1).value for r in (2, 3)] == codes
    assert sheet.cell(row=3, column=5).value == pytest.approx(0.045)
    # The open data page lists the national series.
    page = html(client.get("/open-data/"))
    assert "指数 composite@CN" in page and "指数 ferrous@CN" in page and "指数 ferrous@P:13" not in page


def test_an_operator_chooses_any_jurisdiction(client, trades, operator):
    GovernmentOffice.objects.create(name="苏州市商务局", jurisdiction_id=SUZHOU)
    client.force_login(operator)
    chooser = client.get("/dashboard/")
    assert chooser.status_code == 200 and "苏州市商务局" in html(chooser)
    response = client.get("/dashboard/", {"region": SUZHOU})
    assert response.status_code == 200
    assert response.context["board"].recent_totals[2] == Decimal("30000.00")
    assert client.get("/dashboard/", {"region": "999999"}).status_code == 400
    assert client.get("/dashboard/export.xlsx").status_code == 400  # which jurisdiction?
    book = load_workbook(io.BytesIO(client.get("/dashboard/export.xlsx", {"region": SUZHOU}).content))
    assert book["月度成交"].cell(row=book["月度成交"].max_row, column=2).value == pytest.approx(30000.00)


def test_the_dashboard_speaks_english(client, trades):
    client.force_login(officer(TANGSHAN))
    response = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en")
    page = html(response)
    assert response.status_code == 200
    assert "Government dashboard" in page and "政府监管看板" not in page


# --- open data ----------------------------------------------------------------------------------------


def _organisation(n: int) -> str:
    return uscc_make(TANGSHAN_LUBEI, f"{300000000 + n}")


@pytest.fixture
def open_year():
    """A finished year with a January where 江苏's paper has a single seller and buyer."""
    year = timezone.localdate().year - 1
    jan = date(year, 1, 12)
    for county in (TANGSHAN_LUBEI, SUZHOU_WUZHONG):
        for category in ("ferrous.heavy", "paper.occ"):
            if (county, category) == (SUZHOU_WUZHONG, "paper.occ"):
                continue
            for n in range(4):
                record(
                    jan,
                    county_code=county,
                    category_code=category,
                    seller_uscc=_organisation(n),
                    buyer_uscc=_organisation(10 + n),
                    quantity_t=Decimal("25.000"),
                )
    record(
        jan,
        county_code=SUZHOU_WUZHONG,
        category_code="paper.occ",
        seller_uscc=_organisation(20),
        buyer_uscc=_organisation(21),
        quantity_t=Decimal("3.000"),
        unit_price=Decimal("1500.00"),
    )
    return year


def test_the_open_data_page_works_without_login_and_hides_suppressed_cells(
    client, open_year, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        response = client.get("/open-data/", {"year": open_year, "month": f"{open_year}-01"})
    assert response.status_code == 200
    page = html(response)
    grid = response.context["grid"]
    hidden = [
        (row["code"], index)
        for row in grid["rows"]
        for index, cell in enumerate(row["cells"])
        if cell["suppressed"]
    ]
    assert len(hidden) == 4 and {code for code, _i in hidden} == {"130000", "320000"}
    assert page.count('class="num is-suppressed"') == 4
    assert page.count("—</abbr>") == 4
    assert "303.000" in page  # the national total is published
    assert "3 家卖方" in page and "50%" in page  # the rule in plain words
    assert "/api/v1/open/indices/" in page and "/api/v1/open/volume/" in page
    assert f"/open-data/volume.csv?year={open_year}" in page
    # The page shows what the open API publishes.
    api = client.get("/api/v1/open/volume/", {"year": open_year}).json()
    api_hidden = {(c["province"], c["category"]) for c in api["months"][0]["cells"] if c["suppressed"]}
    assert len(api_hidden) == 4


def test_the_open_data_csv_downloads_without_login(client, open_year):
    response = client.get("/open-data/volume.csv", {"year": open_year})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["月份", "省份代码", "省份"]
    small = next(r for r in rows[1:] if r[1] == "320000" and r[3] == "paper")
    assert small[5:] == ["", "", "", "是"]
    grand = next(r for r in rows[1:] if r[0] == f"{open_year}-01" and r[1] == "" and r[3] == "")
    assert grand[5:8] == ["13", "303.000", "739500.00"] and grand[8] == "否"


def test_the_open_data_page_refuses_a_bad_year_and_says_when_nothing_is_published(client):
    response = client.get("/open-data/", {"year": "1999"})
    assert response.status_code == 400
    assert "年份无效" in html(response)
    assert client.get("/open-data/volume.csv", {"year": "twenty"}).status_code == 400
    empty = client.get("/open-data/", {"year": timezone.localdate().year - 1})
    assert empty.status_code == 200


def test_navigation_links(client, trades):
    page = html(client.get("/"))
    assert 'href="/open-data/"' in page and 'href="/statistics/"' not in page
    client.force_login(company_user())
    page = html(client.get("/"))
    assert 'href="/statistics/"' in page and 'href="/dashboard/"' not in page
    client.force_login(officer(TANGSHAN))
    page = html(client.get("/"))
    assert 'href="/statistics/"' in page and 'href="/dashboard/"' in page
