"""The contract every search backend keeps, run against each: the database backend (PostgreSQL
full text) always, Elasticsearch whenever ``ELASTICSEARCH_URL`` points at a cluster.

The lots are those of ``tests/listings/conftest.py``; each test names the lots it expects.
"""

import os
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from listings.models import Lot, LotStatus
from listings.search import SORTS, LotQuery
from listings.search.database import DatabaseBackend
from market.core.geo import haversine_km
from market.core.models import Region
from tests.listings.conftest import NOT_FOUND, SEARCH_LOTS

pytestmark = pytest.mark.django_db

ES_URL = os.environ.get("ELASTICSEARCH_URL", "")
PUBLISHED = {name for name, row in SEARCH_LOTS.items() if row[-1] == "published"}


@pytest.fixture(
    params=[
        pytest.param("database", id="database"),
        pytest.param(
            "elasticsearch",
            id="elasticsearch",
            marks=pytest.mark.skipif(
                not ES_URL, reason="ELASTICSEARCH_URL is not set: no cluster to test against"
            ),
        ),
    ]
)
def backend(request, db, settings):
    if request.param == "database":
        settings.ELASTICSEARCH_URL = ""
        yield DatabaseBackend()
        return
    from listings.search.elastic import ElasticsearchBackend

    settings.ELASTICSEARCH_URL = ES_URL
    settings.ELASTICSEARCH_INDEX_PREFIX = f"test-{uuid.uuid4().hex[:12]}-"
    backend = ElasticsearchBackend(ES_URL)
    try:
        yield backend
    finally:
        backend.delete_index()


@pytest.fixture
def market(backend, search_lots):
    """The lots of SEARCH_LOTS, indexed by the backend under test."""
    backend.index_lots([lot.pk for lot in search_lots.values()])
    backend.refresh()
    return search_lots


def found(backend, lots, **fields) -> set[str]:
    """Names of the lots a search finds (every page at once)."""
    result = backend.search(LotQuery(page_size=100, **fields))
    names = {pk: name for name, lot in lots.items() for pk in [lot.pk]}
    assert len(result.ids) == len(set(result.ids)) == result.total
    return {names.get(pk, f"#{pk}") for pk in result.ids}


# --- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # two-character words, kept whole by the trade dictionary
        ("废钢", {"heavy_ts", "plate_gy", "turnings_sjz"}),  # in the titles or in the category names
        (
            "重废",
            {"heavy_ts"},
        ),  # not 高比重废渣 (比重 / 废渣), not 重型废钢, not the withdrawn or closed ones
        ("粉煤灰", {"flyash_ts", "flyash_sz"}),  # not the draft nor the expired one
        ("煤灰", {"flyash_ts", "flyash_sz"}),  # a word inside a longer one (search mode)
        ("光亮铜", {"bright_sz"}),
        ("黄杂铜", {"brass_nj"}),
        # English: category names and titles, any case
        ("copper", {"bright_sz", "brass_nj", "wire_dg"}),
        ("COPPER Wire", {"wire_dg"}),
        ("fly ash", {"flyash_ts", "flyash_sz"}),
        # mixed: every word must match, Chinese and English alike
        ("废铜 copper", {"bright_sz", "brass_nj", "wire_dg"}),
        ("光亮铜 copper", {"bright_sz"}),
        # a material and a place: the lot's county, city and province names count
        ("粉煤灰 江苏", {"flyash_sz"}),
        ("粉煤灰 唐山", {"flyash_ts"}),
        ("江苏 粉煤灰", {"flyash_sz"}),
        ("苏州", {"bright_sz", "flyash_sz", "gypsum_sz"}),
        ("东莞", {"wire_dg"}),
        ("浦东", {"oil_sh"}),
        # the seller's name, the hazardous-waste class, the trade mode
        ("热电", {"flyash_sz", "gypsum_sz"}),
        ("hw08", {"oil_sh"}),
        ("竞价 copper", {"bright_sz", "wire_dg"}),
        # full-width letters and punctuation
        ("ＣＯＰＰＥＲ，光亮铜！", {"bright_sz"}),
        ("不存在的货物", set()),
    ],
)
def test_text(backend, market, text, expected):
    assert found(backend, market, text=text) == expected


def test_text_without_tokens_matches_everything(backend, market):
    assert found(backend, market, text="，。！ ") == PUBLISHED


def test_relevance_puts_the_better_match_first(backend, market):
    # 粉煤灰 three times in the title, text and category of one lot against once in another's.
    lot = market["flyash_sz"]
    Lot.objects.filter(pk=lot.pk).update(description="粉煤灰 粉煤灰 粉煤灰 粉煤灰，粉煤灰")
    backend.index_lots([lot.pk])
    backend.refresh()
    result = backend.search(LotQuery(text="粉煤灰"))
    assert result.ids == [lot.pk, market["flyash_ts"].pk]


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("sxferrous", {"heavy_ts", "plate_gy", "turnings_sjz"}),  # not sxferrousx
        ("sxferrous.heavy", {"heavy_ts", "plate_gy"}),  # with the grandchild
        ("sxferrous.heavy.plate", {"plate_gy"}),
        ("sxferrousx", {"alloy_ts"}),
        ("sxcopper", {"bright_sz", "brass_nj", "wire_dg"}),  # wire_dg is filed on the branch itself
        ("sxbulk", {"slag_ts", "flyash_ts", "flyash_sz", "gypsum_sz"}),
        ("sxhaz", {"oil_sh"}),
    ],
)
def test_category_with_descendants(backend, market, category, expected):
    assert found(backend, market, category=category) == expected


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("130000", {"heavy_ts", "plate_gy", "turnings_sjz", "alloy_ts", "slag_ts", "flyash_ts"}),  # 河北省
        ("130200", {"heavy_ts", "plate_gy", "alloy_ts", "slag_ts", "flyash_ts"}),  # 唐山市
        ("130203", {"heavy_ts", "alloy_ts", "slag_ts", "flyash_ts"}),  # 路北区
        ("320000", {"bright_sz", "brass_nj", "flyash_sz", "gypsum_sz"}),  # 江苏省
        ("320500", {"bright_sz", "flyash_sz", "gypsum_sz"}),  # 苏州市
        ("320508", {"flyash_sz"}),  # 姑苏区
        ("440000", {"wire_dg"}),  # 广东省
        ("441900", {"wire_dg"}),  # 东莞市: a city without counties, the lot's own region
        ("310000", {"oil_sh"}),  # 上海市 (its districts sit under 310100)
        ("310100", {"oil_sh"}),
        ("110000", set()),
    ],
)
def test_region_with_descendants(backend, market, region, expected):
    assert found(backend, market, region=region) == expected


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("jingjinji", {"heavy_ts", "plate_gy", "turnings_sjz", "alloy_ts", "slag_ts", "flyash_ts"}),
        ("yangtze-river-delta", {"bright_sz", "brass_nj", "flyash_sz", "gypsum_sz", "oil_sh"}),
        ("pearl-river-delta", {"wire_dg"}),
        ("chengdu-chongqing", {"occ_cd"}),
        ("northeast", set()),
    ],
)
def test_economic_zone(backend, market, zone, expected):
    assert found(backend, market, zone=zone) == expected


def test_region_zone_category_and_text_combine(backend, market):
    assert found(backend, market, zone="yangtze-river-delta", category="sxbulk", text="热电") == {
        "flyash_sz",
        "gypsum_sz",
    }
    assert found(backend, market, region="320500", category="sxbulk.flyash") == {"flyash_sz"}
    assert found(backend, market, region="130000", zone="yangtze-river-delta") == set()


def test_quantity_and_price_ranges_include_their_bounds(backend, market):
    from decimal import Decimal

    assert found(backend, market, quantity_min=Decimal("120"), quantity_max=Decimal("3000")) == {
        "heavy_ts", "plate_gy", "slag_ts", "flyash_sz", "gypsum_sz",
    }  # fmt: skip
    assert found(backend, market, quantity_min=Decimal("5000")) == {"flyash_ts"}
    assert found(backend, market, quantity_max=Decimal("2")) == {"bright_sz"}
    assert found(backend, market, quantity_min=Decimal("2.001"), quantity_max=Decimal("7.999")) == set()
    # On current_price; a lot without a price is in no price range.
    assert found(backend, market, price_min=Decimal("1500"), price_max=Decimal("3000")) == {
        "heavy_ts", "plate_gy", "turnings_sjz", "oil_sh", "occ_cd",
    }  # fmt: skip
    assert found(backend, market, price_max=Decimal("40")) == {"flyash_ts", "gypsum_sz"}
    assert found(backend, market, price_min=Decimal("60000")) == {"bright_sz", "wire_dg"}
    assert found(backend, market, price_min=Decimal("2450.01"), price_max=Decimal("2599.99")) == set()


def test_trade_mode_and_hazardous(backend, market):
    assert found(backend, market, trade_mode="auction") == {"heavy_ts", "bright_sz", "wire_dg"}
    assert found(backend, market, trade_mode="quotation") == {"slag_ts", "gypsum_sz"}
    assert found(backend, market, hazardous=True) == {"oil_sh"}
    assert found(backend, market, hazardous=False) == PUBLISHED - {"oil_sh"}
    assert found(backend, market, hazardous=True, trade_mode="auction") == set()


def test_closing_within_hours(backend, market):
    # Closing in (now, now + N hours]: gypsum_sz closed two hours ago, slag_ts has no deadline.
    assert found(backend, market, closing_within_hours=4) == {"oil_sh"}
    assert found(backend, market, closing_within_hours=24) == {
        "heavy_ts",
        "flyash_ts",
        "bright_sz",
        "oil_sh",
        "occ_cd",
    }
    assert found(backend, market, closing_within_hours=24 * 30) == PUBLISHED - {"slag_ts", "gypsum_sz"}


def test_distance_from_county_centroids(backend, market):
    """Within ``km`` of a point, measured to the lot's region's centroid; checked against the
    haversine distance of every lot."""
    centroids = {
        code: (lat, lon) for code, lat, lon in Region.objects.values_list("code", "latitude", "longitude")
    }
    for (lat, lon), km in [
        ((39.63, 118.18), 10),
        ((39.63, 118.18), 50),
        ((39.63, 118.18), 300),
        ((31.3, 120.6), 120),
        ((23.0, 113.9), 5),
    ]:
        expected = {
            name
            for name in PUBLISHED
            if centroids[market[name].region_id][0] is not None
            and haversine_km(lat, lon, *centroids[market[name].region_id]) <= km
        }
        assert found(backend, market, near=(lat, lon), within_km=km) == expected, (lat, lon, km)
    assert found(backend, market, near=(39.63, 118.18), within_km=50) == {
        "heavy_ts",
        "plate_gy",
        "alloy_ts",
        "slag_ts",
        "flyash_ts",
    }
    assert found(backend, market, near=(31.3, 120.6), within_km=120) >= {
        "bright_sz",
        "flyash_sz",
        "gypsum_sz",
        "oil_sh",
    }


# --- what is never found --------------------------------------------------------------------


def test_drafts_submitted_withdrawn_closed_and_expired_lots_are_never_found(backend, market):
    hidden = {market[name].pk for name in NOT_FOUND}
    for query in [
        LotQuery(page_size=100),
        LotQuery(text="重废", page_size=100),
        LotQuery(text="粉煤灰", page_size=100),
        LotQuery(text="光亮铜", page_size=100),
        LotQuery(text="草稿", page_size=100),
        LotQuery(text="撤回", page_size=100),
        LotQuery(category="sxferrous.heavy", page_size=100),
        LotQuery(region="320506", page_size=100),
        *[LotQuery(sort=sort, page_size=100) for sort in SORTS],
    ]:
        result = backend.search(query)
        assert not hidden & set(result.ids), query
    assert found(backend, market) == PUBLISHED


def test_a_withdrawn_lot_disappears_once_reindexed(backend, market):
    lot = market["heavy_ts"]
    Lot.objects.filter(pk=lot.pk).update(status=LotStatus.WITHDRAWN)
    backend.index_lots([lot.pk])
    backend.refresh()
    assert found(backend, market, text="重废") == set()
    assert "heavy_ts" not in found(backend, market)


def test_a_changed_title_is_found_by_its_new_words_once_reindexed(backend, market):
    lot = market["occ_cd"]
    Lot.objects.filter(pk=lot.pk).update(title="黄板纸 打包 20 吨")
    backend.index_lots([lot.pk])
    backend.refresh()
    assert found(backend, market, text="废纸箱") == set()
    assert found(backend, market, text="黄板纸 打包") == {"occ_cd"}


# --- facets ---------------------------------------------------------------------------------


FACET_FILTER = {"category": "category", "province": "region", "trade_mode": "trade_mode"}


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"text": "粉煤灰"},
        {"text": "copper"},
        {"category": "sxferrous"},
        {"category": "sxferrous.heavy"},
        {"category": "sxbulk", "region": "320000"},
        {"zone": "yangtze-river-delta"},
        {"trade_mode": "fixed"},
        {"hazardous": False, "closing_within_hours": 24 * 30},
    ],
)
def test_facet_counts_equal_the_counts_of_the_filtered_search(backend, market, fields):
    result = backend.search(LotQuery(**fields))
    assert set(result.facets) == {"category", "province", "trade_mode"}
    for facet, buckets in result.facets.items():
        assert buckets == sorted(buckets, key=lambda b: (-b[1], b[0])), facet
        for key, count in buckets:
            narrowed = backend.search(LotQuery(**{**fields, FACET_FILTER[facet]: key}))
            assert narrowed.total == count, (facet, key)
    # Every lot is in one trade mode and one province bucket.
    assert sum(n for _, n in result.facets["province"]) == result.total


def test_category_facet_is_top_level_then_one_level_down(backend, market):
    top = dict(backend.search(LotQuery()).facets["category"])
    assert top == {"sxferrous": 3, "sxferrousx": 1, "sxcopper": 3, "sxbulk": 4, "sxpaper": 1, "sxhaz": 1}
    assert backend.search(LotQuery()).facets["province"] == [
        ("130000", 6), ("320000", 4), ("310000", 1), ("440000", 1), ("510000", 1),
    ]  # fmt: skip
    assert backend.search(LotQuery()).facets["trade_mode"] == [
        ("fixed", 5), ("auction", 3), ("tender", 3), ("quotation", 2),
    ]  # fmt: skip
    ferrous = backend.search(LotQuery(category="sxferrous")).facets["category"]
    assert ferrous == [("sxferrous.heavy", 2), ("sxferrous.turnings", 1)]
    heavy = backend.search(LotQuery(category="sxferrous.heavy")).facets["category"]
    assert heavy == [("sxferrous.heavy.plate", 1)]  # heavy_ts is filed on sxferrous.heavy itself
    copper = backend.search(LotQuery(category="sxcopper")).facets["category"]
    assert copper == [("sxcopper.bright", 1), ("sxcopper.yellow", 1)]


# --- sorting and pagination -----------------------------------------------------------------


def _all_pages(backend, page_size, **fields) -> tuple[list[int], int]:
    ids, page = [], 1
    while True:
        result = backend.search(LotQuery(page=page, page_size=page_size, **fields))
        assert result.page == page and result.page_size == page_size
        if not result.ids:
            return ids, result.total
        assert len(result.ids) <= page_size
        ids += result.ids
        page += 1


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("text", ["", "重废"])
def test_pages_have_no_duplicates_and_no_gaps_even_with_equal_sort_keys(
    backend, market, twin_lots, sort, text
):
    backend.index_lots([lot.pk for lot in twin_lots])
    backend.refresh()
    everything = backend.search(LotQuery(sort=sort, text=text, page_size=100))
    paged, total = _all_pages(backend, 7, sort=sort, text=text)
    assert paged == everything.ids
    assert len(paged) == len(set(paged)) == total == everything.total
    twins = [lot.pk for lot in twin_lots]
    assert set(twins) <= set(paged)
    # Alike lots come newest id first: -id breaks every tie.
    order = [pk for pk in paged if pk in set(twins)]
    assert order == sorted(twins, reverse=True)


def test_sort_orders(backend, market):
    def names(sort):
        lookup = {lot.pk: name for name, lot in market.items()}
        return [lookup[pk] for pk in backend.search(LotQuery(sort=sort, page_size=100)).ids]

    newest = names("newest")
    assert newest == sorted(PUBLISHED, key=list(SEARCH_LOTS).index, reverse=True)
    assert names("relevance") == newest  # without text, relevance is newest
    closing = names("closing")
    assert closing[:3] == ["gypsum_sz", "oil_sh", "bright_sz"]  # past deadlines first, then the nearest
    assert closing[-1] == "slag_ts"  # no deadline: last
    price_asc, price_desc = names("price_asc"), names("price_desc")
    assert price_asc[:2] == ["gypsum_sz", "flyash_ts"] and price_asc[-1] == "slag_ts"
    assert price_desc[:2] == ["bright_sz", "wire_dg"] and price_desc[-1] == "slag_ts"


def test_a_page_past_the_end_is_empty_with_the_total(backend, market):
    result = backend.search(LotQuery(page=50, page_size=10))
    assert result.ids == [] and result.total == len(PUBLISHED)


# --- saved-search matching ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "粉煤灰 江苏"},
        {"text": "copper", "trade_mode": "auction"},
        {"category": "sxferrous", "region": "130200"},
        {"zone": "yangtze-river-delta", "hazardous": False},
        {"price_min": 1000, "closing_within_hours": 24},
        {"near": (39.63, 118.18), "within_km": 50},
        {"text": "重废"},
    ],
)
def test_lot_matches_agrees_with_search(backend, market, fields):
    from decimal import Decimal

    fields = {k: Decimal(v) if k.startswith("price") else v for k, v in fields.items()}
    query = LotQuery(page_size=100, **fields)
    hits = set(backend.search(query).ids)
    for name, lot in market.items():
        assert backend.lot_matches(query, lot.pk) == (lot.pk in hits), name


def test_lot_matches_does_not_wait_for_the_index(backend, market):
    lot = market["occ_cd"]
    Lot.objects.filter(pk=lot.pk).update(title="废旧纸板 二手")  # not re-indexed
    assert backend.lot_matches(LotQuery(text="纸板"), lot.pk)
    assert not backend.lot_matches(LotQuery(text="纸板"), market["oil_sh"].pk)


# --- keeping the index in line ----------------------------------------------------------------


def test_reconcile_repairs_missing_and_stale_entries(backend, market):
    lot, gone = market["flyash_sz"], market["occ_cd"]
    backend.remove_lots([lot.pk])
    backend.refresh()
    assert found(backend, market, text="粉煤灰") == {"flyash_ts"}
    Lot.objects.filter(pk=gone.pk).update(
        status=LotStatus.WITHDRAWN, updated_at=timezone.now() + timedelta(seconds=1)
    )
    counts = backend.reconcile()
    backend.refresh()
    assert counts["indexed"] >= 1
    assert found(backend, market, text="粉煤灰") == {"flyash_ts", "flyash_sz"}
    assert "occ_cd" not in found(backend, market, text="废纸箱")
    assert backend.reconcile() == {"indexed": 0, "removed": 0}


def test_rebuild_indexes_every_lot(backend, market):
    calls = []
    done = backend.rebuild(progress=lambda n, total: calls.append((n, total)))
    backend.refresh()
    assert calls[-1] == (done, done) and done >= len(PUBLISHED)
    assert found(backend, market) == PUBLISHED
    assert found(backend, market, text="粉煤灰 江苏") == {"flyash_sz"}
