"""Administrative divisions (GB/T 2260) and economic zones: the loaded data, the model's rules,
the selectors and the public API."""

import datetime
import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.db import connection

from market.core import selectors
from market.core.audit import audit_record
from market.core.models import EconomicZone, Region, RegionDataset, RegionLevel
from tests.factories import make_user

pytestmark = pytest.mark.django_db

MAINLAND_PROVINCES = 31


def region(code: str) -> Region:
    return Region.objects.get(code=code)


# --- the data the migration loaded --------------------------------------------------------------


def test_counts_per_level_are_sensible():
    assert Region.objects.filter(level=RegionLevel.PROVINCE).count() == 34
    assert 330 <= Region.objects.filter(level=RegionLevel.CITY).count() <= 350
    assert 2800 <= Region.objects.filter(level=RegionLevel.COUNTY).count() <= 2900


def test_one_dataset_row_records_source_date_and_counts():
    dataset = RegionDataset.objects.get()
    assert "GB/T 2260" in dataset.source
    assert dataset.snapshot_date >= datetime.date(2024, 1, 1)
    assert dataset.provinces == Region.objects.filter(level=RegionLevel.PROVINCE).count()
    assert dataset.cities == Region.objects.filter(level=RegionLevel.CITY).count()
    assert dataset.counties == Region.objects.filter(level=RegionLevel.COUNTY).count()
    assert selectors.region_dataset_current() == dataset


def test_hierarchy_follows_the_codes():
    """Provinces have no parent; a city's parent is its province, a county's its city (by code)."""
    assert not Region.objects.filter(level=RegionLevel.PROVINCE, parent__isnull=False).exists()
    for r in Region.objects.exclude(level=RegionLevel.PROVINCE).select_related("parent"):
        assert len(r.code) == 6 and r.code.isdigit()
        if r.level == RegionLevel.CITY:
            assert r.parent.level == RegionLevel.PROVINCE and r.parent_id == r.code[:2] + "0000", r
        else:
            assert r.parent.level == RegionLevel.CITY and r.parent_id == r.code[:4] + "00", r


@pytest.mark.parametrize(
    ("code", "name", "level", "parent"),
    [
        ("130000", "河北省", "province", None),
        ("130200", "唐山市", "city", "130000"),
        ("130203", "路北区", "county", "130200"),
        ("320500", "苏州市", "city", "320000"),
        ("320506", "吴中区", "county", "320500"),
        ("110100", "北京市", "city", "110000"),
        ("110105", "朝阳区", "county", "110100"),
        ("310115", "浦东新区", "county", "310100"),
        ("500229", "城口县", "county", "500200"),
        ("419000", "省直辖县级行政区划", "city", "410000"),
        ("419001", "济源市", "county", "419000"),
        ("429021", "神农架林区", "county", "429000"),
        ("659001", "石河子市", "county", "659000"),
        ("441900", "东莞市", "city", "440000"),
        ("620200", "嘉峪关市", "city", "620000"),
        ("810000", "香港特别行政区", "province", None),
    ],
)
def test_known_codes(code, name, level, parent):
    r = region(code)
    assert (r.name, r.level, r.parent_id) == (name, level, parent)


def test_cities_without_counties_and_sars_have_no_children():
    for code in ("441900", "442000", "460400", "620200", "710000", "810000", "820000"):
        assert not region(code).children.exists(), code


def test_statistical_only_codes_are_not_loaded():
    """NBS development-zone codes (x71..x79) are not GB/T 2260 divisions."""
    assert not Region.objects.filter(code__regex=r"^\d{4}7\d$").exists()
    assert not Region.objects.filter(code="620201").exists()


# --- model rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "full_name"),
    [
        ("130000", "河北省"),
        ("130200", "河北省唐山市"),
        ("130203", "河北省唐山市路北区"),
        ("320506", "江苏省苏州市吴中区"),
        ("110100", "北京市"),
        ("110105", "北京市朝阳区"),
        ("500229", "重庆市城口县"),
        ("419001", "河南省济源市"),
        ("659001", "新疆维吾尔自治区石河子市"),
        ("441900", "广东省东莞市"),
    ],
)
def test_full_name_skips_placeholder_levels(code, full_name):
    assert region(code).full_name == full_name


def test_placeholders():
    assert region("110100").is_placeholder
    assert region("500200").is_placeholder
    assert region("419000").is_placeholder
    assert region("659000").is_placeholder
    assert not region("130200").is_placeholder
    assert not region("441900").is_placeholder
    assert not region("130000").is_placeholder


def test_contains_by_level():
    hebei, tangshan, lubei = region("130000"), region("130200"), region("130203")
    assert hebei.contains(hebei) and hebei.contains(tangshan) and hebei.contains(lubei)
    assert hebei.contains("130100") and not hebei.contains("320506")
    assert tangshan.contains(lubei) and tangshan.contains("130200")
    assert not tangshan.contains("130102") and not tangshan.contains(hebei)
    assert lubei.contains("130203") and not lubei.contains("130204") and not lubei.contains(tangshan)
    assert region("110100").contains("110105") and region("419000").contains("419001")


# --- selectors -----------------------------------------------------------------------------------


def test_selectors():
    assert [r.code for r in selectors.region_children(None)][:3] == ["110000", "120000", "130000"]
    assert selectors.region_children(None).count() == 34
    assert "130203" in {r.code for r in selectors.region_children("130200")}
    assert selectors.region_children("441900").count() == 0
    assert selectors.region_get("130203").name == "路北区"
    assert selectors.region_get("999999") is None
    assert selectors.region_get("abc") is None
    assert selectors.region_province_of("130203").code == "130000"
    assert selectors.region_province_of("130000").code == "130000"
    assert selectors.region_province_of("x") is None
    assert selectors.region_city_of("130203").code == "130200"
    assert selectors.region_city_of("130000") is None
    counties = selectors.region_list(level=RegionLevel.COUNTY, within="130000")
    assert counties.count() > 150 and all(r.code.startswith("13") for r in counties)
    assert selectors.region_list(level=RegionLevel.COUNTY, within="999999").count() == 0


def test_economic_zones():
    zones = {z.code: z for z in selectors.economic_zones()}
    assert {p.code for p in zones["jingjinji"].provinces.all()} == {"110000", "120000", "130000"}
    assert {p.code for p in zones["yangtze-river-delta"].provinces.all()} == {
        "310000",
        "320000",
        "330000",
        "340000",
    }
    assert {p.code for p in zones["chengdu-chongqing"].provinces.all()} == {"500000", "510000"}
    assert zones["pearl-river-delta"].name_en == "Pearl River Delta"
    assert all(p.level == RegionLevel.PROVINCE for z in zones.values() for p in z.provinces.all())
    # The four NBS regions cover the mainland's provinces exactly once.
    covered = [p.code for c in ("east", "central", "west", "northeast") for p in zones[c].provinces.all()]
    assert len(covered) == len(set(covered)) == MAINLAND_PROVINCES
    assert {z.code for z in selectors.economic_zones_of("130203")} >= {"jingjinji", "east"}


def test_migrations_reverse_and_load_again():
    """The data migrations undo cleanly and load the same data again."""
    regions = importlib.import_module("market.core.migrations.0002_regions_load")
    zones = importlib.import_module("market.core.migrations.0003_economic_zones")
    editor = SimpleNamespace(connection=connection)
    before = (Region.objects.count(), EconomicZone.objects.count())

    zones.unload(global_apps, editor)
    regions.unload(global_apps, editor)
    assert (Region.objects.count(), EconomicZone.objects.count(), RegionDataset.objects.count()) == (0, 0, 0)

    regions.load(global_apps, editor)
    zones.load(global_apps, editor)
    assert (Region.objects.count(), EconomicZone.objects.count()) == before
    assert RegionDataset.objects.count() == 1


# --- API --------------------------------------------------------------------------------------------


def test_api_lists_provinces(api):
    response = api.get("/api/v1/regions/")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list) and len(body) == 34
    hebei = next(r for r in body if r["code"] == "130000")
    assert hebei == {
        "code": "130000",
        "name": "河北省",
        "level": "province",
        "parent": None,
        "has_children": True,
    }
    assert "public" in response["Cache-Control"] and "max-age=3600" in response["Cache-Control"]


def test_api_blank_parent_lists_provinces(api):
    assert len(api.get("/api/v1/regions/?parent=").json()) == 34


def test_api_lists_children(api):
    body = api.get("/api/v1/regions/", {"parent": "130000"}).json()
    assert isinstance(body, list)
    assert {r["level"] for r in body} == {"city"}
    assert {
        "code": "130200",
        "name": "唐山市",
        "level": "city",
        "parent": "130000",
        "has_children": True,
    } in body

    counties = api.get("/api/v1/regions/", {"parent": "130200"}).json()
    assert "130203" in {r["code"] for r in counties}
    assert all(r["parent"] == "130200" and r["has_children"] is False for r in counties)

    guangdong = {r["code"]: r for r in api.get("/api/v1/regions/", {"parent": "440000"}).json()}
    assert guangdong["441900"]["has_children"] is False
    assert api.get("/api/v1/regions/", {"parent": "441900"}).json() == []


def test_api_level_filter(api):
    counties = api.get("/api/v1/regions/", {"parent": "130000", "level": "county"}).json()
    assert len(counties) > 150 and all(r["level"] == "county" and r["code"][:2] == "13" for r in counties)
    cities = api.get("/api/v1/regions/", {"level": "city"}).json()
    assert len(cities) == Region.objects.filter(level="city").count()

    response = api.get("/api/v1/regions/", {"level": "town"})
    assert response.status_code == 400
    assert "level" in response.json()["fields"]


@pytest.mark.parametrize("parent", ["999999", "abc", "1302030", "13"])
def test_api_unknown_parent_is_400_with_code(api, parent):
    response = api.get("/api/v1/regions/", {"parent": parent})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "region_unknown"
    assert parent in body["message"]
    assert "public" not in response.get("Cache-Control", "")


def test_api_region_detail(api):
    response = api.get("/api/v1/regions/130203/")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "130203" and body["name"] == "路北区" and body["level"] == "county"
    assert body["parent"] == "130200"
    assert body["province"] == "130000"
    assert body["full_name"] == "河北省唐山市路北区"
    assert [a["code"] for a in body["ancestors"]] == ["130000", "130200"]
    assert body["children_count"] == 0
    assert {"code": "jingjinji", "name": "京津冀", "name_en": "Beijing-Tianjin-Hebei"} in body[
        "economic_zones"
    ]
    assert "max-age=3600" in response["Cache-Control"]

    beijing = api.get("/api/v1/regions/110105/").json()
    assert beijing["full_name"] == "北京市朝阳区" and beijing["parent"] == "110100"


def test_api_unknown_region_is_404_json(api):
    for code in ("999999", "abc"):
        response = api.get(f"/api/v1/regions/{code}/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert "Cache-Control" not in response or "public" not in response["Cache-Control"]


def test_api_is_public_even_with_a_stale_token(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get("/api/v1/regions/").status_code == 200
    assert api.get("/api/v1/economic-zones/").status_code == 200


def test_api_economic_zones(api):
    response = api.get("/api/v1/economic-zones/")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list) and len(body) == EconomicZone.objects.count()
    assert body[0]["code"] == "jingjinji"
    jjj = body[0]
    assert jjj["name"] == "京津冀" and jjj["name_en"] == "Beijing-Tianjin-Hebei"
    assert jjj["provinces"] == [
        {"code": "110000", "name": "北京市"},
        {"code": "120000", "name": "天津市"},
        {"code": "130000", "name": "河北省"},
    ]


def test_api_schema_documents_the_parent_parameter(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/regions/"]["get"]["parameters"]}
    assert "parent" in params and params["parent"]["in"] == "query"
    assert set(params["level"]["schema"]["enum"]) == {"province", "city", "county"}
    assert "/api/v1/regions/{code}/" in schema["paths"]
    assert "/api/v1/economic-zones/" in schema["paths"]


# --- admin ------------------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_admin_pages_render(superuser_client):
    for url in (
        "/admin/core/region/?level__exact=county&q=路北",
        "/admin/core/region/130203/change/",
        "/admin/core/regiondataset/",
        "/admin/core/economiczone/",
        "/admin/core/economiczone/jingjinji/change/",
        "/admin/core/auditentry/?action=x",
    ):
        assert superuser_client.get(url).status_code == 200, url


def test_admin_region_and_audit_are_read_only(superuser_client):
    entry = audit_record(actor=None, action="test.action", target=region("130203"), reason="why")
    assert superuser_client.get("/admin/core/auditentry/add/").status_code == 403
    assert superuser_client.get(f"/admin/core/auditentry/{entry.pk}/delete/").status_code == 403
    page = superuser_client.get(f"/admin/core/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert superuser_client.get("/admin/core/region/add/").status_code == 403
    assert superuser_client.get("/admin/core/region/130203/delete/").status_code == 403
