"""Search pieces that are not the backends' shared contract: the tokeniser, URL parameters, the
database backend's tokens, index and query count, the tasks and the rebuild command."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.http import QueryDict
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from listings.models import Lot
from listings.search import LotQuery, SearchResult, get_backend, tokenise
from listings.search.database import DatabaseBackend
from listings.search.documents import lot_tokens
from listings.search.query import region_prefix
from listings.search.tokens import TRADE_TERMS, query_tokens, region_short_name
from market.core.models import Region, RegionLevel

# --- tokeniser ------------------------------------------------------------------------------

TRADE_WORDS = [
    "重废",
    "废钢",
    "光亮铜",
    "黄杂铜",
    "粉煤灰",
    "脱硫石膏",
    "钢渣",
    "赤泥",
    "磷石膏",
    "煤矸石",
    "易拉罐",
    "废纸箱",
]


@pytest.mark.parametrize("word", TRADE_WORDS)
def test_trade_terms_stay_whole_alone_and_in_a_sentence(word):
    assert word in TRADE_TERMS
    assert word in tokenise(word)
    assert word in tokenise(f"本厂出售{word}一批，欢迎看货")


def test_search_mode_adds_the_words_inside_longer_ones():
    assert tokenise("粉煤灰") == ["粉煤", "煤灰", "粉煤灰"]
    assert tokenise("重型废钢") == ["重型", "废钢", "重型废钢"]


def test_words_that_only_look_alike_are_not_cut_the_same():
    assert "重废" not in tokenise("高比重废渣")  # 比重 / 废渣
    assert "重废" not in tokenise("重型废钢")


def test_english_is_lower_cased_and_punctuation_and_full_width_forms_are_normalised():
    assert tokenise("ＣＯＰＰＥＲ, Copper-Wire！ 98.5% Q235B") == [
        "copper",
        "copper",
        "wire",
        "98",
        "5",
        "q235b",
    ]
    assert tokenise("  ，。！ ") == []
    assert tokenise("") == tokenise(None) == []


def test_place_names_and_their_short_forms():
    assert tokenise("唐山") == ["唐山"]  # a dictionary word of its own, not 唐 + 山
    assert set(tokenise("江苏省")) >= {"江苏", "江苏省"}
    assert set(tokenise("河北唐山重废")) >= {"河北", "唐山", "重废"}
    for name, short in [
        ("江苏省", "江苏"), ("唐山市", "唐山"), ("浦东新区", "浦东"), ("广西壮族自治区", "广西"),
        ("延边朝鲜族自治州", "延边"), ("恩施土家族苗族自治州", "恩施"), ("香港特别行政区", "香港"),
        ("内蒙古自治区", "内蒙古"), ("神农架林区", "神农架"), ("丰县", "丰县"),
    ]:  # fmt: skip
        assert region_short_name(name) == short


def test_unknown_words_are_cut_the_same_way_in_any_context():
    # Without HMM new-word discovery an unknown name is single characters wherever it stands.
    assert query_tokens("鑫达") == ["鑫", "达"]
    assert set(query_tokens("鑫达")) <= set(tokenise("唐山市丰润区鑫达再生资源有限公司"))


def test_query_tokens_are_distinct():
    assert query_tokens("粉煤灰 粉煤灰 copper COPPER") == ["粉煤", "煤灰", "粉煤灰", "copper"]


_ALPHABET = st.sampled_from(
    list("重废钢粉煤灰江苏唐山铜光亮黄杂脱硫石膏赤泥电厂吨件的了是")
    + list("abcXYZ0189 ,.-_%/:'\"&|!()<>*")
    + list("ＡＢｃ１２３，。！？、（）【】　")
)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(_ALPHABET, max_size=40))
def test_postgresql_sees_exactly_our_tokens(text):
    """Every token is one lexeme of PostgreSQL's 'simple' parser, itself, so the tsvector of the joined
    tokens holds the tokens and nothing else, and plainto_tsquery of a query is all of its tokens."""
    tokens = tokenise(text)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(array_agg(lexeme ORDER BY lexeme), '{}') FROM unnest(to_tsvector('simple', %s))",
            [" ".join(tokens)],
        )
        lexemes = cursor.fetchone()[0]
    assert sorted(lexemes) == sorted(set(tokens))


# --- URL parameters -------------------------------------------------------------------------


@pytest.mark.django_db
def test_from_params_reads_every_parameter(search_catalogue):
    params = QueryDict(
        "q=%E7%B2%89%E7%85%A4%E7%81%B0++%E6%B1%9F%E8%8B%8F&category=sxbulk&region=320500&zone=yangtze-river-delta"
        "&qmin=10&qmax=2000.5&pmin=0&pmax=80&mode=fixed&hazardous=false&closing_within=48"
        "&lat=31.3&lon=120.6&km=80&sort=price_asc&page=2&page_size=50&format=json"
    )
    query = LotQuery.from_params(params)
    assert query == LotQuery(
        text="粉煤灰 江苏",
        category="sxbulk",
        region="320500",
        zone="yangtze-river-delta",
        quantity_min=Decimal("10"),
        quantity_max=Decimal("2000.5"),
        price_min=Decimal("0"),
        price_max=Decimal("80"),
        trade_mode="fixed",
        hazardous=False,
        closing_within_hours=48,
        near=(31.3, 120.6),
        within_km=80.0,
        sort="price_asc",
        page=2,
        page_size=50,
    )
    assert LotQuery.from_params(query.to_params()) == query


@pytest.mark.django_db
def test_defaults_and_round_trips():
    assert LotQuery.from_params({}) == LotQuery.from_params(QueryDict("")) == LotQuery()
    assert LotQuery().to_params() == {}
    assert LotQuery().statuses == ("published",) and LotQuery().page_size == 20
    # A saved search keeps a JSON dict: numbers and booleans are welcome.
    query = LotQuery.from_params(
        {"region": "130000", "hazardous": True, "qmin": 10, "lat": 39.6, "lon": 118.2, "km": 50}
    )
    assert (query.hazardous, query.quantity_min, query.near, query.within_km) == (
        True,
        Decimal(10),
        (39.6, 118.2),
        50.0,
    )
    assert query.to_params() == {
        "region": "130000",
        "qmin": "10",
        "hazardous": "true",
        "lat": "39.6",
        "lon": "118.2",
        "km": "50.0",
    }
    assert LotQuery.from_params(query.to_params()) == query
    # The last of repeated parameters counts, as Django's QueryDict.get does.
    assert LotQuery.from_params(QueryDict("sort=newest&sort=closing")).sort == "closing"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"q": "废" * 201}, "q", "too_long"),
        ({"category": "no.such"}, "category", "category_unknown"),
        ({"region": "999999"}, "region", "region_unknown"),
        ({"region": "32"}, "region", "region_unknown"),
        ({"zone": "atlantis"}, "zone", "zone_unknown"),
        ({"qmin": "abc"}, "qmin", "invalid"),
        ({"qmax": "NaN"}, "qmax", "invalid"),
        ({"pmin": "-1"}, "pmin", "out_of_range"),
        ({"pmax": "1e20"}, "pmax", "out_of_range"),
        ({"qmin": "10", "qmax": "5"}, "qmax", "range_reversed"),
        ({"pmin": "10", "pmax": "5"}, "pmax", "range_reversed"),
        ({"mode": "barter"}, "mode", "invalid_choice"),
        ({"hazardous": "maybe"}, "hazardous", "invalid"),
        ({"closing_within": "soon"}, "closing_within", "invalid"),
        ({"closing_within": "0"}, "closing_within", "out_of_range"),
        ({"lat": "31", "lon": "120"}, "km", "required"),
        ({"km": "10"}, "lat", "required"),
        ({"lat": "91", "lon": "120", "km": "10"}, "lat", "out_of_range"),
        ({"lat": "31", "lon": "east", "km": "10"}, "lon", "invalid"),
        ({"lat": "31", "lon": "120", "km": "0"}, "km", "out_of_range"),
        ({"sort": "cheapest"}, "sort", "invalid_choice"),
        ({"page": "0"}, "page", "out_of_range"),
        ({"page": "two"}, "page", "invalid"),
        ({"page_size": "101"}, "page_size", "out_of_range"),
        ({"page": "501", "page_size": "20"}, "page", "page_too_deep"),
    ],
)
def test_bad_parameters_raise_field_errors_with_codes(params, field, code):
    with pytest.raises(ValidationError) as caught:
        LotQuery.from_params(params)
    errors = caught.value.error_dict
    assert field in errors, errors
    assert code in [e.code for e in errors[field]]


@pytest.mark.django_db
def test_every_bad_parameter_is_reported_at_once():
    with pytest.raises(ValidationError) as caught:
        LotQuery.from_params({"region": "999999", "mode": "barter", "page": "x"})
    assert set(caught.value.error_dict) == {"region", "mode", "page"}


@pytest.mark.django_db
def test_region_prefix_follows_the_level_of_every_loaded_division():
    want = {RegionLevel.PROVINCE: 2, RegionLevel.CITY: 4, RegionLevel.COUNTY: 6}
    rows = list(Region.objects.values_list("code", "level"))
    assert len(rows) > 3000
    assert [(code, level) for code, level in rows if len(region_prefix(code)) != want[level]] == []


# --- the database backend -------------------------------------------------------------------


@pytest.mark.django_db
def test_indexing_writes_the_tokens_and_leaves_updated_at(search_lots):
    lot = search_lots["flyash_sz"]
    before = Lot.objects.get(pk=lot.pk).updated_at
    assert DatabaseBackend().index_lots([lot.pk, lot.pk, 999999]) == 1
    stored = Lot.objects.select_related("category", "seller", "region__parent__parent").get(pk=lot.pk)
    assert stored.search_tokens.split() == lot_tokens(stored)
    assert stored.updated_at == before
    tokens = set(stored.search_tokens.split())
    # title, category (zh and en), county, city and province, seller, trade mode
    assert tokens >= {"粉煤灰", "fly", "ash", "姑苏区", "苏州", "江苏", "江苏省", "热电", "一口价", "fixed"}
    assert DatabaseBackend().index_lots([lot.pk]) == 0  # nothing changed, nothing written


@pytest.mark.django_db
def test_the_search_index_is_a_gin_index_the_query_uses(search_lots):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'listings_lot_search_gin'")
        (definition,) = cursor.fetchone()
    assert "USING gin (search_vector)" in definition

    backend = DatabaseBackend()
    backend.index_lots([lot.pk for lot in search_lots.values()])
    # The text condition exactly as the backend writes it (without the status filter, whose b-tree
    # a planner may prefer on a handful of rows).
    qs, _ = backend._match_text(Lot.objects.all(), query_tokens("粉煤灰 江苏"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of rows: make the planner show its hand
    plan = qs.explain()
    assert "listings_lot_search_gin" in plan, plan
    assert {lot.pk for lot in qs} == {
        search_lots[n].pk for n in ("flyash_sz", "draft_flyash", "expired_flyash")
    }


@pytest.mark.django_db
def test_a_search_takes_a_handful_of_queries(search_lots, django_assert_max_num_queries):
    backend = DatabaseBackend()
    backend.index_lots([lot.pk for lot in search_lots.values()])
    query = LotQuery(text="粉煤灰", zone="yangtze-river-delta", category="sxbulk", sort="relevance")
    with django_assert_max_num_queries(5):
        result = backend.search(query)
    assert isinstance(result, SearchResult) and result.total == 1
    with django_assert_max_num_queries(4):
        backend.search(LotQuery(page=40))  # past the end: no page query


@pytest.mark.django_db
def test_get_backend_follows_the_settings(settings):
    settings.ELASTICSEARCH_URL = ""
    assert isinstance(get_backend(), DatabaseBackend)
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:9"
    settings.ELASTICSEARCH_INDEX_PREFIX = "unit-"
    from listings.search.elastic import ElasticsearchBackend

    backend = get_backend()
    assert isinstance(backend, ElasticsearchBackend) and backend.alias == "unit-lots"
    assert get_backend() is backend  # one per URL and index: the client and its pool are kept


@pytest.mark.django_db
def test_tasks_and_the_rebuild_command(search_lots, settings):
    from listings.search.tasks import lots_index, lots_reconcile

    settings.ELASTICSEARCH_URL = ""
    ids = [lot.pk for lot in search_lots.values()]
    assert lots_index(ids) == len(ids)
    assert lots_reconcile() == {"indexed": 0, "removed": 0}
    Lot.objects.filter(pk=search_lots["oil_sh"].pk).update(search_tokens="")
    assert lots_reconcile() == {"indexed": 1, "removed": 0}

    Lot.objects.update(search_tokens="")
    out = StringIO()
    call_command("search_rebuild", "--no-progress", stdout=out)
    assert f"{Lot.objects.count()} lots indexed by the database backend" in out.getvalue()
    assert not Lot.objects.filter(search_tokens="").exists()


@pytest.mark.django_db
def test_the_lots_api_searches_through_the_backend(api, search_lots, settings):
    settings.ELASTICSEARCH_URL = ""
    DatabaseBackend().index_lots([lot.pk for lot in search_lots.values()])
    response = api.get("/api/v1/lots/", {"q": "粉煤灰 江苏"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 1 and [r["id"] for r in body["results"]] == [search_lots["flyash_sz"].pk]
    assert {"key": "320000", "count": 1} in body["facets"]["province"]
    response = api.get("/api/v1/lots/", {"region": "999999", "sort": "cheapest"})
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["region"][0]["code"] == "region_unknown" and fields["sort"][0]["code"] == "invalid_choice"


@pytest.mark.django_db
def test_the_stored_vector_follows_tokens_written_by_any_path(search_lots):
    backend = DatabaseBackend()
    backend.index_lots([lot.pk for lot in search_lots.values()])
    lot = search_lots["occ_cd"]
    # Written around the backend (a raw update): the trigger keeps the stored tsvector in line. (Each
    # search here asks its filter for the first time: a raw update bumps no cached counts.)
    Lot.objects.filter(pk=lot.pk).update(search_tokens="铝锭 废纸箱")
    assert backend.search(LotQuery(text="铝锭")).ids == [lot.pk]
    Lot.objects.filter(pk=lot.pk).update(search_tokens="")
    assert backend.search(LotQuery(text="废纸箱")).total == 0


# --- cached counts --------------------------------------------------------------------------


@pytest.fixture
def indexed_lots(search_lots):
    DatabaseBackend().index_lots([lot.pk for lot in search_lots.values()])
    return search_lots


def _counts(result):
    return result.total, result.facets


@pytest.mark.django_db
def test_a_newly_published_lot_changes_the_counts_at_once(indexed_lots):
    from listings.services import lot_publish
    from tests.factories import make_user

    backend = DatabaseBackend()
    before = backend.search(LotQuery())
    copper = backend.search(LotQuery(text="光亮铜", page=2))  # cached for the filter, any page
    lot = indexed_lots["submitted_copper"]
    lot_publish(actor=make_user(is_staff=True), lot=lot)
    DatabaseBackend().index_lots([lot.pk])  # what the after-commit task does (no token change here)

    after = backend.search(LotQuery(page=3, sort="price_asc"))  # another page and sort, same filter
    assert after.total == before.total + 1
    assert dict(after.facets["category"])["sxcopper"] == dict(before.facets["category"])["sxcopper"] + 1
    assert dict(after.facets["trade_mode"])["auction"] == dict(before.facets["trade_mode"])["auction"] + 1
    assert backend.search(LotQuery(text="光亮铜")).total == copper.total + 1


@pytest.mark.django_db
def test_a_market_update_from_trading_changes_the_counts_at_once(indexed_lots):
    from listings.services import lot_market_update

    backend = DatabaseBackend()
    query = LotQuery(price_min=Decimal("60000"))
    before = backend.search(query)
    lot = indexed_lots["occ_cd"]
    lot_market_update(lot_id=lot.pk, current_price=Decimal("61000.00"), trade_mode="auction")
    after = backend.search(query)
    assert after.total == before.total + 1 and lot.pk in after.ids
    assert (
        dict(after.facets["trade_mode"]).get("auction", 0)
        == dict(before.facets["trade_mode"]).get("auction", 0) + 1
    )


@pytest.mark.django_db
def test_a_bid_moves_price_filtered_counts_at_once_and_leaves_other_cached_counts(
    indexed_lots, django_assert_num_queries
):
    from listings.services import lot_market_update

    backend = DatabaseBackend()
    priced = LotQuery(price_min=Decimal("60000"))
    before = backend.search(priced)
    browse = backend.search(LotQuery())
    lot = indexed_lots["occ_cd"]
    lot_market_update(lot_id=lot.pk, current_price=Decimal("61000.00"), bid_count=3)  # what a bid writes
    assert backend.search(priced).total == before.total + 1
    with django_assert_num_queries(1):  # the page only: the browse counts stay cached
        again = backend.search(LotQuery())
    assert again.total == browse.total and again.facets == browse.facets


@pytest.mark.django_db
def test_a_withdrawn_lot_leaves_the_counts_at_once(indexed_lots, search_sellers):
    from listings.services import lot_withdraw
    from tests.factories import make_member

    backend = DatabaseBackend()
    before = backend.search(LotQuery(region="510000"))
    lot = indexed_lots["occ_cd"]
    admin = make_member(search_sellers["chengdu"]).user
    lot_withdraw(actor=admin, lot=lot)
    after = backend.search(LotQuery(region="510000"))
    assert (after.total, after.facets["province"]) == (before.total - 1, [])


@pytest.mark.django_db
def test_paging_a_search_counts_the_facets_once(indexed_lots, django_assert_num_queries):
    backend = DatabaseBackend()
    first = backend.search(LotQuery(category="sxbulk"))
    with django_assert_num_queries(1):  # the page alone: counts and total come from the cache
        second = backend.search(LotQuery(category="sxbulk", page=2, page_size=2, sort="closing"))
    assert _counts(second) == _counts(first)
    with django_assert_num_queries(2):  # another filter is counted afresh
        backend.search(LotQuery(category="sxbulk", hazardous=False))
