"""The catalogue loaded by migration ``listings.0002_catalogue`` from ``listings.catalogue_data``."""

import importlib
import re
from collections import Counter
from decimal import Decimal

import pytest
from django.apps import apps as global_apps

from listings.catalogue_data import CATEGORIES
from listings.models import Category, Unit
from listings.selectors import schema_effective
from listings.specs import schema_check, specs_validate
from market.core.hazardous import HW_CLASSES

pytestmark = pytest.mark.django_db

migration = importlib.import_module("listings.migrations.0002_catalogue")
CODES = [row["code"] for row in CATEGORIES]

BRANCH_COUNTS = {
    "ferrous": 10,
    "nonferrous": 25,
    "paper": 5,
    "plastics": 9,
    "rubber": 3,
    "glass": 6,
    "textiles": 4,
    "weee": 6,
    "vehicles": 5,
    "batteries": 6,
    "bulk": 28,
    "biomass": 4,
    "hazardous": 66,
}

REQUIRED = [
    # 废钢铁 by grade
    "ferrous.heavy", "ferrous.medium", "ferrous.small", "ferrous.light", "ferrous.shredded", "ferrous.turnings",
    "ferrous.cast_iron", "ferrous.alloy",
    # 废有色金属
    "nonferrous.copper.bright", "nonferrous.copper.yellow", "nonferrous.copper.red", "nonferrous.copper.turnings",
    "nonferrous.copper.wire", "nonferrous.aluminium.cast", "nonferrous.aluminium.wrought",
    "nonferrous.aluminium.extrusion", "nonferrous.aluminium.ubc", "nonferrous.aluminium.turnings",
    "nonferrous.lead.scrap", "nonferrous.lead.dross", "nonferrous.zinc.dross", "nonferrous.zinc.scrap",
    "nonferrous.stainless.s200", "nonferrous.stainless.s300", "nonferrous.stainless.s400", "nonferrous.nickel",
    # 废纸, 废塑料, rubber, glass, textiles
    "paper.occ", "paper.onp", "paper.sop", "paper.mixed",
    "plastics.pet", "plastics.hdpe", "plastics.ldpe", "plastics.pp", "plastics.pvc", "plastics.ps", "plastics.abs",
    "plastics.mixed",
    "rubber.tyres", "rubber.crumb",
    "glass.clear", "glass.amber", "glass.green", "glass.mixed",
    "textiles",
    # 废弃电器电子产品, 报废机动车, batteries
    "weee.tv", "weee.fridge", "weee.washer", "weee.aircon", "weee.computer",
    "vehicles",
    "batteries.lead_acid", "batteries.lithium.ncm", "batteries.lithium.lfp",
    # 大宗工业固体废物, biomass
    "bulk.slag.steel.bof", "bulk.slag.steel.eaf", "bulk.slag.blast_furnace", "bulk.fly_ash", "bulk.bottom_ash",
    "bulk.coal_gangue", "bulk.gypsum.fgd", "bulk.gypsum.phospho", "bulk.red_mud", "bulk.tailings", "bulk.slag",
    "bulk.construction",
    "biomass.straw", "biomass.forestry",
    # concrete hazardous wastes
    "hazardous.hw08.mineral_oil", "hazardous.hw50", "hazardous.hw22.sludge", "hazardous.hw34.sulphuric",
]  # fmt: skip


@pytest.fixture(autouse=True)
def catalogue(db):
    """The migration loaded the catalogue; a flush by an earlier transactional test would remove it."""
    if not Category.objects.filter(code="ferrous").exists():
        migration.catalogue_load(global_apps, None)


def effective(code: str) -> list[dict]:
    return schema_effective(Category.objects.get(code=code))


def test_the_tree_is_loaded_with_its_counts_per_branch():
    counts = Counter(code.split(".")[0] for code in Category.objects.values_list("code", flat=True))
    assert {branch: counts[branch] for branch in BRANCH_COUNTS} == BRANCH_COUNTS
    assert set(Category.objects.filter(code__in=CODES).values_list("code", flat=True)) == set(CODES)
    roots = set(Category.objects.filter(parent__isnull=True, code__in=CODES).values_list("code", flat=True))
    assert roots == set(BRANCH_COUNTS)


def test_every_required_group_is_present():
    present = set(Category.objects.filter(code__in=REQUIRED).values_list("code", flat=True))
    assert sorted(set(REQUIRED) - present) == []


def test_codes_are_dotted_paths_consistent_with_parents():
    for cat in Category.objects.filter(code__in=CODES).select_related("parent"):
        assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)*", cat.code), cat.code
        assert cat.depth == cat.code.count(".")
        if cat.depth == 0:
            assert cat.parent is None
        else:
            assert cat.parent is not None, cat.code
            assert cat.parent.code == cat.code.rpartition(".")[0]
        assert cat.name.strip() and cat.name_en.strip()


def test_sort_order_is_unique_among_siblings():
    pairs = Counter(Category.objects.filter(code__in=CODES).values_list("parent_id", "sort_order"))
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_every_hw_class_is_present_and_hazardous():
    for code, name in HW_CLASSES.items():
        cat = Category.objects.get(code=f"hazardous.{code.lower()}")
        assert cat.hazardous and cat.hw_code == code and cat.name == name
        assert cat.unit == Unit.TONNE
    for cat in Category.objects.filter(code__startswith="hazardous."):
        assert cat.hazardous, cat.code
        assert cat.hw_code == cat.code.split(".")[1].upper(), cat.code
    assert Category.objects.get(code="hazardous").hazardous


def test_hazardous_flags_outside_the_hazardous_branch():
    lead_acid = Category.objects.get(code="batteries.lead_acid")
    assert (lead_acid.hazardous, lead_acid.hw_code) == (True, "HW31")
    assert Category.objects.get(code="nonferrous.lead.dross").hw_code == "HW48"
    for code in (
        "batteries.lithium",
        "batteries.lithium.ncm",
        "batteries.lithium.lfp",
        "ferrous.heavy",
        "bulk.fly_ash",
    ):
        cat = Category.objects.get(code=code)
        assert (cat.hazardous, cat.hw_code) == (False, ""), code
    # Every hw_code names a class of the national catalogue, and only hazardous categories carry one.
    for cat in Category.objects.exclude(hw_code=""):
        assert cat.hw_code in HW_CLASSES and cat.hazardous


def test_medical_waste_is_present_but_cannot_be_listed():
    assert not Category.objects.get(code="hazardous.hw01").is_active
    assert list(Category.objects.filter(code__in=CODES, is_active=False).values_list("code", flat=True)) == [
        "hazardous.hw01"
    ]


def test_tonne_conversion_and_minimum_lots():
    factors = {Unit.TONNE: Decimal("1"), Unit.KILOGRAM: Decimal("0.001")}
    for cat in Category.objects.filter(code__in=CODES):
        if cat.unit in factors:
            assert cat.tonnes_per_unit == factors[cat.unit], cat.code
            assert cat.min_lot_tonnes > 0, cat.code
        else:
            assert cat.tonnes_per_unit is None, cat.code
            assert cat.min_lot_tonnes == 0, cat.code
    assert Category.objects.get(code="ferrous.heavy").min_lot_tonnes == 5
    assert Category.objects.get(code="nonferrous.copper.bright").min_lot_tonnes == 1
    assert Category.objects.get(code="bulk.fly_ash").min_lot_tonnes == 10
    assert Category.objects.get(code="weee.tv").unit == Unit.PIECE
    assert Category.objects.get(code="vehicles.passenger").unit == Unit.VEHICLE
    assert Category.objects.get(code="bulk.construction.spoil").unit == Unit.CUBIC_METRE


def test_every_schema_and_every_effective_schema_is_sound():
    for cat in Category.objects.filter(code__in=CODES):
        schema_check(cat.spec_schema)
        schema_check(schema_effective(cat))


def test_children_inherit_and_override_spec_fields():
    heavy = {f["key"]: f for f in effective("ferrous.heavy")}
    assert {"fe_pct", "impurity_pct", "thickness_mm", "max_length_mm"} <= set(heavy)
    assert heavy["thickness_mm"]["min"] == 6
    assert {f["key"]: f for f in effective("ferrous.light")}["thickness_mm"]["max"] == 2
    assert {"cu_pct", "impurity_pct"} <= {f["key"] for f in effective("nonferrous.copper.bright")}
    assert {"al_pct", "oil_water_pct"} <= {f["key"] for f in effective("nonferrous.aluminium.ubc")}
    assert {"grade", "moisture_pct", "impurity_pct"} <= {f["key"] for f in effective("paper.occ")}
    assert {"colour", "mfi", "form"} <= {f["key"] for f in effective("plastics.pet")}
    assert {"grade", "moisture_pct", "loi_pct", "fineness_pct"} <= {
        f["key"] for f in effective("bulk.fly_ash")
    }
    assert {"tfe_pct", "feo_pct", "particle_mm", "fcao_pct"} <= {
        f["key"] for f in effective("bulk.slag.steel.bof")
    }
    assert {"purity_pct", "moisture_pct", "chloride_mg_kg"} <= {
        f["key"] for f in effective("bulk.gypsum.fgd")
    }
    assert {"pb_pct", "acid_drained"} <= {f["key"] for f in effective("batteries.lead_acid")}
    assert {"chemistry", "soh_pct"} <= {f["key"] for f in effective("batteries.lithium.ncm")}
    assert {"moisture_pct", "baled"} <= {f["key"] for f in effective("biomass.straw")}
    assert {"moisture_pct"} <= {f["key"] for f in effective("bulk.red_mud")}
    assert {"waste_code", "physical_form"} <= {f["key"] for f in effective("hazardous.hw08.mineral_oil")}


@pytest.mark.parametrize(
    ("code", "specs", "key", "error"),
    [
        ("ferrous.heavy", {"fe_pct": 98, "thickness_mm": 8}, None, None),
        ("ferrous.heavy", {"thickness_mm": 4}, "specs.thickness_mm", "spec_min"),
        ("ferrous.light", {"thickness_mm": 3}, "specs.thickness_mm", "spec_max"),
        ("bulk.fly_ash", {"grade": "II", "loi_pct": "5.2"}, None, None),
        ("bulk.fly_ash", {"loi_pct": "5.2"}, "specs.grade", "spec_required"),
        ("bulk.fly_ash", {"grade": "IV"}, "specs.grade", "spec_choice"),
        ("batteries.lead_acid", {"acid_drained": True, "pb_pct": 60}, None, None),
        ("batteries.lead_acid", {"pb_pct": 60}, "specs.acid_drained", "spec_required"),
        ("batteries.lithium.lfp", {"chemistry": "LFP", "soh_pct": 72}, None, None),
        ("batteries.lithium.lfp", {"chemistry": "NCM"}, "specs.chemistry", "spec_choice"),
        ("batteries.lithium.other", {}, "specs.chemistry", "spec_required"),
        ("plastics.pet", {"colour": "clear", "form": "flakes", "iv": "0.80"}, None, None),
        ("paper.occ", {"grade": "Z"}, "specs.grade", "spec_choice"),
    ],
)
def test_catalogue_schemas_validate_realistic_specs(code, specs, key, error):
    from django.core.exceptions import ValidationError

    schema = effective(code)
    if key is None:
        assert set(specs_validate(schema, specs)) == set(specs)
    else:
        with pytest.raises(ValidationError) as info:
            specs_validate(schema, specs)
        assert error in {e.code for e in info.value.error_dict[key]}


def test_unload_removes_the_catalogue_and_load_restores_it():
    before = {
        c.code: (c.name, c.spec_schema, c.tonnes_per_unit) for c in Category.objects.filter(code__in=CODES)
    }
    migration.catalogue_unload(global_apps, None)
    assert not Category.objects.filter(code__in=CODES).exists()
    migration.catalogue_load(global_apps, None)
    migration.catalogue_load(global_apps, None)  # loading twice changes nothing
    after = {
        c.code: (c.name, c.spec_schema, c.tonnes_per_unit) for c in Category.objects.filter(code__in=CODES)
    }
    assert after == before


# --- the operators' admin ---------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    from tests.factories import make_user

    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def category_post(**overrides):
    data = {
        "code": "paper.cores",
        "parent": "paper",
        "name": "纸管",
        "name_en": "Paper cores",
        "sort_order": "60",
        "unit": "t",
        "tonnes_per_unit": "",
        "min_lot_tonnes": "5",
        "hw_code": "",
        "is_active": "on",
        "description": "",
        "spec_schema": "[]",
    }
    data.update(overrides)
    return data


def test_admin_pages_open(admin_client):
    for url in (
        "/admin/listings/category/",
        "/admin/listings/category/?q=废钢",
        "/admin/listings/category/ferrous.heavy/change/",
        "/admin/listings/category/add/",
        "/admin/listings/lot/",
        "/admin/listings/wantedlisting/",
        "/admin/listings/wantedoffer/",
        "/admin/listings/savedsearch/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
    page = admin_client.get("/admin/listings/category/ferrous.heavy/change/").content.decode()
    assert "最小厚度" in page  # the schema is shown readable, not as \\u escapes
    assert admin_client.get("/admin/listings/lot/add/").status_code == 403
    assert admin_client.get("/admin/listings/savedsearch/add/").status_code == 403


def test_admin_adds_a_category_and_fills_the_tonne_factor(admin_client):
    schema = '[{"key": "grade", "label": "等级", "type": "choice", "choices": [["A", "一级"]]}]'
    response = admin_client.post("/admin/listings/category/add/", category_post(spec_schema=schema))
    assert response.status_code == 302, response.context["adminform"].form.errors
    cat = Category.objects.get(code="paper.cores")
    assert (cat.depth, cat.tonnes_per_unit, cat.spec_schema[0]["key"]) == (1, Decimal("1"), "grade")


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"spec_schema": '[{"key": "x", "label": "甲", "type": "date"}]'}, "spec_schema", "schema_invalid"),
        (
            {"spec_schema": '[{"key": "x", "label": "甲", "type": "number", "min": 5, "max": 1}]'},
            "spec_schema",
            "schema_invalid",
        ),
        ({"spec_schema": '{"key": "x"}'}, "spec_schema", "schema_invalid"),
        ({"code": "cores"}, "code", "code_parent"),
        ({"code": "paper.Cores"}, "code", "code_invalid"),
        ({"hw_code": "HW99", "hazardous": "on"}, "hw_code", "hw_unknown"),
        ({"hw_code": "HW08"}, "hazardous", "hw_not_hazardous"),
        ({"tonnes_per_unit": "2"}, "tonnes_per_unit", "tonnes_per_unit"),
    ],
)
def test_admin_refuses_a_bad_category_with_a_form_error(admin_client, overrides, field, code):
    response = admin_client.post("/admin/listings/category/add/", category_post(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert code in {e.code for e in errors.get(field, [])}, errors
    assert not Category.objects.filter(code__in=["paper.cores", "cores", "paper.Cores"]).exists()


def test_admin_keeps_the_code_and_deactivates_instead_of_deleting(admin_client):
    from django.contrib.admin.sites import site

    model_admin = site._registry[Category]
    assert not model_admin.has_delete_permission(None)
    assert "code" in model_admin.get_readonly_fields(None, Category.objects.get(code="paper.occ"))
    response = admin_client.post(
        "/admin/listings/category/",
        {"action": "deactivate_selected", "_selected_action": ["nonferrous.copper"]},
    )
    assert response.status_code == 302
    inactive = set(
        Category.objects.filter(code__startswith="nonferrous.copper", is_active=False).values_list(
            "code", flat=True
        )
    )
    assert inactive == {c for c in CODES if c == "nonferrous.copper" or c.startswith("nonferrous.copper.")}
    assert Category.objects.get(code="nonferrous.aluminium").is_active


def _submitted_hazardous_lot(**specs):
    from datetime import timedelta

    from django.utils import timezone

    from listings import services
    from tests.factories import COUNTY_TANGSHAN, make_organisation, make_user

    seller = make_user()
    org = make_organisation(role="generator", admin=seller)
    today = timezone.localdate()
    lot = services.lot_create(
        actor=seller,
        organisation=org,
        category="hazardous.hw08.mineral_oil",
        title="废矿物油 20 吨",
        quantity="20",
        unit="t",
        region=COUNTY_TANGSHAN,
        address="唐山市路北区钢铁路8号",
        available_from=today,
        pickup_by=today + timedelta(days=30),
        specs=specs,
    )
    return services.lot_submit(actor=seller, lot=lot)


def test_admin_lot_review_goes_through_the_services(admin_client):
    from listings.models import Lot, LotStatus
    from market.core.models import AuditEntry

    lot = _submitted_hazardous_lot(waste_code="900-214-08", physical_form="liquid", water_pct=3)
    assert lot.status == LotStatus.SUBMITTED and lot.hazardous  # hazardous lots always wait for review
    page = admin_client.get(f"/admin/listings/lot/{lot.pk}/change/").content.decode()
    assert 'name="status"' not in page and 'name="title"' not in page  # nothing editable
    url = "/admin/listings/lot/"
    response = admin_client.post(url, {"action": "return_selected", "_selected_action": [lot.pk]})
    assert response.status_code == 200 and "reason" in response.content.decode()  # asks for the reason first
    response = admin_client.post(
        url,
        {
            "action": "return_selected",
            "_selected_action": [lot.pk],
            "apply": "1",
            "reason": "请补充危废代码依据",
        },
    )
    assert response.status_code == 302
    lot.refresh_from_db()
    assert (lot.status, lot.status_reason) == (LotStatus.DRAFT, "请补充危废代码依据")
    # Publishing a draft is not an allowed move: the operator sees the error, nothing changes.
    admin_client.post(url, {"action": "publish_selected", "_selected_action": [lot.pk]})
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.DRAFT
    assert AuditEntry.objects.filter(
        target_type="listings.lot", target_id=str(lot.pk), action="lot.return"
    ).exists()


def test_admin_publishes_a_submitted_lot(admin_client):
    from listings.models import LotStatus

    lot = _submitted_hazardous_lot(physical_form="liquid")
    response = admin_client.post(
        "/admin/listings/lot/", {"action": "publish_selected", "_selected_action": [lot.pk]}
    )
    assert response.status_code == 302
    lot.refresh_from_db()
    assert lot.status == LotStatus.PUBLISHED and lot.published_at is not None
