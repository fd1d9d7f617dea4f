"""Statistics for logged-in users (who may see which area) and the open data (disclosure control),
through the API, and the selectors behind them."""

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from market.accounts.models import GovernmentOffice, GovernmentOfficer
from market.accounts.uscc import uscc_make
from pricing import selectors
from pricing.services import trade_void
from tests.factories import make_member, make_organisation, make_user
from tests.pricing.conftest import SUZHOU_WUZHONG, TANGSHAN_GUYE, TANGSHAN_LUBEI, committed, record_on
from tests.test_i18n import _compiled_english_catalogue  # noqa: F401 - English messages below

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
VOLUME = "/api/v1/statistics/volume/"
OPEN = "/api/v1/open/volume/"
SHIJIAZHUANG_CHANGAN = "130102"  # 河北省石家庄市长安区: Hebei, outside 唐山


record = record_on


def officer(jurisdiction: str):
    user = make_user()
    office = GovernmentOffice.objects.create(name=f"{jurisdiction} 商务局", jurisdiction_id=jurisdiction)
    GovernmentOfficer.objects.create(user=user, office=office)
    return user


@pytest.fixture
def trades():
    """Trades in 唐山 (two counties), 石家庄 and 苏州 over March 2025, February and March 2026."""
    q = Decimal("10.000")
    record(date(2025, 3, 10), quantity_t=q, unit_price=Decimal("2000.00"))
    record(date(2026, 2, 10), quantity_t=q, unit_price=Decimal("2000.00"))
    record(date(2026, 3, 2), quantity_t=q, unit_price=Decimal("2500.00"))
    record(date(2026, 3, 3), quantity_t=q, unit_price=Decimal("2500.00"), county_code=TANGSHAN_GUYE)
    record(date(2026, 3, 4), quantity_t=q, unit_price=Decimal("2500.00"), category_code="paper.occ")
    record(date(2026, 3, 5), quantity_t=q, unit_price=Decimal("1000.00"), county_code=SHIJIAZHUANG_CHANGAN)
    record(date(2026, 3, 6), quantity_t=q, unit_price=Decimal("3000.00"), county_code=SUZHOU_WUZHONG)
    voided = record(date(2026, 3, 7), quantity_t=q, unit_price=Decimal("9000.00"))
    committed(trade_void, trade_id=voided.trade_id, reason="撤销")


def _point(body, label):
    return next(p for p in body["points"] if p["period"] == label)


# --- access -----------------------------------------------------------------------------------------


def test_statistics_need_a_login(api):
    response = api.get(VOLUME)
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_a_company_sees_the_nation_and_no_region(api, trades):
    member = make_member(make_organisation())
    api.force_authenticate(member.user)
    body = api.get(VOLUME, {"grain": "month", "from": "2026-03-01", "to": "2026-03-31"}).json()
    assert body["region"] == {"code": "CN", "name": "全国", "level": "national"}
    assert _point(body, "2026-03")["trades"] == 5
    for region in ("130000", "130200", "yangtze-river-delta"):
        response = api.get(VOLUME, {"region": region})
        assert response.status_code == 403
        assert response.json()["code"] == "region_not_allowed"
    assert api.get(VOLUME, {"region": "CN"}).status_code == 200


def test_a_city_office_sees_its_city_and_counties_and_nothing_else(api, trades):
    api.force_authenticate(officer("130200"))  # 唐山市
    body = api.get(VOLUME, {"from": "2026-03-01", "to": "2026-03-31"}).json()
    assert body["region"]["code"] == "130200"  # the default is the jurisdiction
    assert _point(body, "2026-03")["trades"] == 3
    county = api.get(VOLUME, {"region": TANGSHAN_GUYE, "from": "2026-03-01", "to": "2026-03-31"}).json()
    assert _point(county, "2026-03")["trades"] == 1
    for region in ("130000", SHIJIAZHUANG_CHANGAN, SUZHOU_WUZHONG, "CN", "jingjinji"):
        response = api.get(VOLUME, {"region": region})
        assert response.status_code == 403, region
        body = response.json()
        assert body["code"] == "outside_jurisdiction" and body["message"]


def test_a_province_office_sees_its_cities_and_a_zone_only_if_it_is_all_theirs(api, trades):
    api.force_authenticate(officer("130000"))  # 河北省
    body = api.get(VOLUME, {"grain": "quarter", "from": "2026-01-01", "to": "2026-03-31"}).json()
    assert body["region"]["code"] == "130000"
    assert _point(body, "2026-Q1")["trades"] == 5  # 唐山 3 + 石家庄 1 in March, 1 in February
    assert api.get(VOLUME, {"region": "130100"}).status_code == 200
    assert api.get(VOLUME, {"region": "jingjinji"}).json()["code"] == "outside_jurisdiction"
    api.force_authenticate(officer("440000"))
    assert api.get(VOLUME, {"region": "pearl-river-delta"}).status_code == 200  # 珠三角 is all 广东


def test_an_operator_sees_everything_zones_included(api, trades):
    api.force_authenticate(make_user(is_staff=True))
    body = api.get(
        VOLUME, {"region": "jingjinji", "category": "ferrous", "from": "2026-03-01", "to": "2026-03-31"}
    ).json()
    assert body["region"]["level"] == "zone"
    assert body["category"]["code"] == "ferrous"
    march = _point(body, "2026-03")
    assert (march["trades"], march["tonnes"], march["value"]) == (3, "30.000", "60000.00")


def test_government_scope_and_its_breakdown(trades):
    city, province = officer("130200"), officer("130000")
    assert selectors.government_scope(city).code == "130200"
    assert selectors.government_scope(make_user()) is None
    counties = list(selectors.government_scope_breakdown(selectors.government_scope(city)))
    assert TANGSHAN_LUBEI in [r.code for r in counties] and all(r.level == "county" for r in counties)
    cities = list(selectors.government_scope_breakdown(selectors.government_scope(province)))
    assert "130200" in [r.code for r in cities] and all(r.level == "city" for r in cities)


# --- the series -------------------------------------------------------------------------------------


def test_month_series_with_period_on_period_and_year_on_year_changes(api, trades):
    api.force_authenticate(make_user(is_staff=True))
    body = api.get(
        VOLUME, {"grain": "month", "region": "130200", "from": "2026-01-15", "to": "2026-03-15"}
    ).json()
    assert [p["period"] for p in body["points"]] == ["2026-01", "2026-02", "2026-03"]  # whole periods
    assert (body["from"], body["to"]) == ("2026-01-01", "2026-03-31")
    jan, feb, march = body["points"]
    assert (jan["trades"], jan["value"]) == (0, "0.00")
    assert feb["change_pop"] == {"trades": None, "tonnes": None, "value": None}  # January was zero
    assert (march["trades"], march["tonnes"], march["value"]) == (3, "30.000", "75000.00")
    assert march["change_pop"] == {"trades": "2.0000", "tonnes": "2.0000", "value": "2.7500"}
    assert march["change_yoy"] == {"trades": "2.0000", "tonnes": "2.0000", "value": "2.7500"}


def test_every_grain_sums_the_same_trades(api, trades):
    api.force_authenticate(make_user(is_staff=True))
    totals = {}
    for grain in ("day", "week", "month", "quarter", "year"):
        body = api.get(VOLUME, {"grain": grain, "from": "2026-01-01", "to": "2026-03-31"}).json()
        totals[grain] = (
            sum(p["trades"] for p in body["points"]),
            sum(Decimal(p["value"]) for p in body["points"]),
        )
    assert set(totals.values()) == {(6, Decimal("135000.00"))}
    body = api.get(VOLUME, {"grain": "week", "from": "2026-03-02", "to": "2026-03-08"}).json()
    assert [p["period"] for p in body["points"]] == ["2026-W10"]
    assert body["points"][0]["start"] == "2026-03-02" and body["points"][0]["end"] == "2026-03-08"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"grain": "hour"}, "invalid_choice"),
        ({"category": "ferrous.gold"}, "category_unknown"),
        ({"region": "999999"}, "region_unknown"),
        ({"region": "atlantis"}, "region_unknown"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "invalid_range"),
        ({"from": "yesterday"}, "invalid_date"),
        ({"grain": "day", "from": "2020-01-01", "to": "2026-01-01"}, "range_too_long"),
    ],
)
def test_bad_requests_are_400_with_a_code(api, params, code):
    api.force_authenticate(make_user(is_staff=True))
    response = api.get(VOLUME, params)
    assert response.status_code == 400
    body = response.json()
    assert code in [body["code"], *[e["code"] for errors in body["fields"].values() for e in errors]]
    assert body["message"]


def test_errors_speak_english_when_asked(api):
    api.force_authenticate(make_user())
    response = api.get(VOLUME, {"region": "130000"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert "national" in response.json()["message"]


# --- top lists and the annual target --------------------------------------------------------------


def test_top_categories_regions_and_the_annual_target(trades, settings):
    march = (date(2026, 3, 1), date(2026, 3, 31))
    categories = selectors.top_categories(*march)
    assert [(c["code"], c["trades"]) for c in categories] == [("ferrous", 4), ("paper", 1)]
    assert categories[0]["value"] == Decimal("90000.00") and categories[0]["share"] == Decimal("0.7826")
    children = selectors.top_categories(*march, parent="paper")
    assert [c["code"] for c in children] == ["paper.occ"]
    provinces = selectors.top_regions(*march)
    assert [(r["code"], r["value"]) for r in provinces] == [
        ("130000", Decimal("85000.00")),
        ("320000", Decimal("30000.00")),
    ]
    cities = selectors.top_regions(*march, level="city", within="130000")
    assert [r["code"] for r in cities] == ["130200", "130100"]
    # A range cut inside months reads days at the ends and months in between.
    assert [r["trades"] for r in selectors.top_regions(date(2026, 2, 10), date(2026, 3, 3))] == [3]
    zones = selectors.top_regions(*march, level="zone")
    assert zones[0]["code"] in ("jingjinji", "east") and zones[0]["share"] is None

    settings.STATS_ANNUAL_TARGET_YUAN = Decimal("1000000")
    year = selectors.annual_value(2026)
    assert (year["trades"], year["value"], year["target"], year["share"]) == (
        6,
        Decimal("135000.00"),
        Decimal("1000000"),
        Decimal("0.1350"),
    )


def test_the_default_annual_target_is_500_billion_yuan():
    from django.conf import settings

    assert Decimal("500000000000") == settings.STATS_ANNUAL_TARGET_YUAN


# --- open data --------------------------------------------------------------------------------------


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


def test_open_data_suppresses_the_small_cell_and_its_complements_and_survives_subtraction(api, open_year):
    response = api.get(OPEN, {"year": open_year})
    assert response.status_code == 200
    body = response.json()
    assert [m["month"] for m in body["months"]] == [f"{open_year}-{m:02d}" for m in range(1, 13)]
    cells = {(c["province"], c["category"]): c for c in body["months"][0]["cells"]}

    small = cells[("320000", "paper")]
    assert (
        small["suppressed"] and small["tonnes"] is None and small["value"] is None and small["trades"] is None
    )
    hidden = {p for p, c in cells.items() if c["suppressed"]}
    # Its row and column each hold another suppressed cell, so total minus published is no answer.
    assert hidden == {("130000", "ferrous"), ("130000", "paper"), ("320000", "ferrous"), ("320000", "paper")}
    assert cells[(None, None)] == {
        "province": None,
        "category": None,
        "trades": 13,
        "tonnes": "303.000",
        "value": "739500.00",
        "suppressed": False,
    }
    for total in [("130000", None), ("320000", None), (None, "ferrous"), (None, "paper")]:
        assert not cells[total]["suppressed"]
        row, col = total
        members = [p for p in cells if p[0] is not None and p[1] is not None and (p[0] == row or p[1] == col)]
        assert sum(p in hidden for p in members) != 1
    # The attack in numbers: the 江苏 total minus its published cells is not the small cell.
    published = sum(
        Decimal(cells[p]["tonnes"]) for p in cells if p[0] == "320000" and p[1] and p not in hidden
    )
    assert Decimal(cells[("320000", None)]["tonnes"]) - published != Decimal("3.000")
    assert body["months"][1]["cells"] == []  # February: nothing traded
    assert body["rule"] == {"min_sellers": 3, "min_buyers": 3, "max_share": "0.5"}


def test_open_data_of_a_safe_table_is_all_published(api, open_year):
    trade_void(trade_id=_the_small_trade(), reason="撤销")
    from pricing.rollups import rollups_sweep

    rollups_sweep()
    body = api.get(OPEN, {"year": open_year}).json()
    cells = body["months"][0]["cells"]
    assert cells and not any(c["suppressed"] for c in cells)
    assert {(c["province"], c["category"]): c["trades"] for c in cells}[("320000", None)] == 4


def _the_small_trade() -> str:
    from pricing.models import TradeFact

    return TradeFact.objects.get(seller_uscc=_organisation(20)).trade_id


def test_open_data_publishes_only_finished_months(api):
    today = timezone.localdate()
    body = api.get(OPEN).json()
    assert body["year"] == today.year
    assert len(body["months"]) == today.month - 1


@pytest.mark.parametrize("year", ["1999", "3000", "twenty"])
def test_open_data_refuses_a_bad_year(api, year):
    response = api.get(OPEN, {"year": year})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_year"
