"""``pricing.selectors.trade_facts``: category subtrees, region prefixes, time bounds, voided facts."""

import pytest

from pricing.selectors import trade_fact_exists, trade_facts
from pricing.services import trade_void
from tests.pricing.conftest import (
    SUZHOU_GUSU,
    SUZHOU_WUZHONG,
    TANGSHAN_GUYE,
    TANGSHAN_LUBEI,
    at,
    make_trade,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def facts():
    """Name -> trade id of a handful of facts across categories, places and days."""
    rows = {
        "heavy_lubei": ("ferrous.heavy", TANGSHAN_LUBEI, 3),
        "heavy_guye": ("ferrous.heavy", TANGSHAN_GUYE, 4),
        "turnings_lubei": ("ferrous.turnings", TANGSHAN_LUBEI, 5),
        "copper_wuzhong": ("nonferrous.copper", SUZHOU_WUZHONG, 6),
        "bright_gusu": ("nonferrous.copper.bright", SUZHOU_GUSU, 7),
        "aluminium_gusu": ("nonferrous.aluminium", SUZHOU_GUSU, 8),
        "dongguan_wire": ("nonferrous.copper.wire", "441900", 9),
    }
    for name, (category, county, day) in rows.items():
        make_trade(
            trade_id=f"deal:{name}",
            category_code=category,
            county_code=county,
            awarded_at=at(day, 9),
            settled_at=at(day, 15),
        )
    return {name: f"deal:{name}" for name in rows}


def _names(qs) -> set[str]:
    return {fact.trade_id.removeprefix("deal:") for fact in qs}


def test_everything_newest_settlement_first(facts):
    assert [f.trade_id for f in trade_facts()] == [facts[n] for n in reversed(list(facts))]


def test_a_category_brings_its_descendants_and_nothing_that_merely_shares_a_prefix(facts):
    assert _names(trade_facts(category_code="ferrous")) == {"heavy_lubei", "heavy_guye", "turnings_lubei"}
    assert _names(trade_facts(category_code="ferrous.heavy")) == {"heavy_lubei", "heavy_guye"}
    assert _names(trade_facts(category_code="nonferrous.copper")) == {
        "copper_wuzhong",
        "bright_gusu",
        "dongguan_wire",
    }
    assert _names(trade_facts(category_code="nonferrous.copper.bright")) == {"bright_gusu"}
    # "nonferrous.copp" is a prefix of a code but no category: nothing
    assert _names(trade_facts(category_code="nonferrous.copp")) == set()
    assert _names(trade_facts(category_code="paper")) == set()


def test_a_region_brings_everything_inside_it(facts):
    assert _names(trade_facts(region_code="130000")) == {"heavy_lubei", "heavy_guye", "turnings_lubei"}
    assert _names(trade_facts(region_code="130200")) == {"heavy_lubei", "heavy_guye", "turnings_lubei"}
    assert _names(trade_facts(region_code=TANGSHAN_LUBEI)) == {"heavy_lubei", "turnings_lubei"}
    assert _names(trade_facts(region_code="320000")) == {"copper_wuzhong", "bright_gusu", "aluminium_gusu"}
    assert _names(trade_facts(region_code=SUZHOU_GUSU)) == {"bright_gusu", "aluminium_gusu"}
    assert _names(trade_facts(region_code="440000")) == {"dongguan_wire"}
    assert _names(trade_facts(region_code="441900")) == {"dongguan_wire"}
    assert _names(trade_facts(region_code="110000")) == set()
    assert _names(trade_facts(region_code="999999")) == set()  # unknown code: nothing, not everything


def test_filters_combine_with_time_bounds(facts):
    assert _names(trade_facts(category_code="nonferrous", region_code="320500")) == {
        "copper_wuzhong",
        "bright_gusu",
        "aluminium_gusu",
    }
    # since inclusive, until exclusive, on the settlement time
    assert _names(trade_facts(since=at(4, 15), until=at(6, 15))) == {"heavy_guye", "turnings_lubei"}
    assert _names(trade_facts(category_code="ferrous", since=at(5, 0))) == {"turnings_lubei"}


def test_voided_facts_are_left_out_unless_asked_for(facts):
    trade_void(trade_id=facts["heavy_guye"], reason="成交撤销")
    assert _names(trade_facts(category_code="ferrous.heavy")) == {"heavy_lubei"}
    assert _names(trade_facts(category_code="ferrous.heavy", include_void=True)) == {
        "heavy_lubei",
        "heavy_guye",
    }
    assert trade_fact_exists(facts["heavy_guye"]) and not trade_fact_exists("deal:none")
