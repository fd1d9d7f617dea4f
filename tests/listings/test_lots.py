"""Lots through /api/v1/: drafting, validation of every field, the lifecycle, visibility, media."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from listings.models import Category, Lot, LotStatus
from market.accounts.models import MemberRole, VerificationStatus
from market.core.models import AuditEntry
from tests.factories import COUNTY_SUZHOU, COUNTY_TANGSHAN, make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db

SCRAP_SCHEMA = [
    {
        "key": "fe_pct",
        "label": "铁含量",
        "label_en": "Fe content",
        "type": "number",
        "unit": "%",
        "min": 0,
        "max": 100,
        "required": True,
    },
    {
        "key": "thickness_mm",
        "label": "厚度",
        "label_en": "Thickness",
        "type": "number",
        "unit": "mm",
        "min": 0,
        "max": 500,
    },
]


@pytest.fixture
def categories(db):
    root = Category.objects.create(
        code="zz", name="测试品类", name_en="Test", tonnes_per_unit=1, spec_schema=SCRAP_SCHEMA
    )
    scrap = Category.objects.create(
        code="zz.scrap", parent=root, name="测试重废", name_en="Test heavy scrap", tonnes_per_unit=1
    )
    haz = Category.objects.create(
        code="zz.oil",
        parent=root,
        name="测试废矿物油",
        name_en="Test waste oil",
        tonnes_per_unit=1,
        hazardous=True,
        hw_code="HW08",
        spec_schema=[
            {"key": "fe_pct", "label": "铁含量", "type": "number", "min": 0, "max": 100, "required": False}
        ],
    )
    pieces = Category.objects.create(
        code="zz.tv", parent=root, name="测试电视机", name_en="Test TV sets", unit="piece"
    )
    return {"root": root, "scrap": scrap, "haz": haz, "pieces": pieces}


@pytest.fixture
def seller():
    admin = make_user()
    org = make_organisation(role="generator", admin=admin)
    return org, admin


def lot_payload(**overrides):
    today = timezone.localdate()
    data = {
        "category": "zz.scrap",
        "title": "转炉车间重型废钢 500 吨",
        "description": "厚度 6 mm 以上，无封闭容器。",
        "quantity": "500",
        "unit": "t",
        "specs": {"fe_pct": 98.5, "thickness_mm": 8},
        "region": COUNTY_TANGSHAN,
        "address": "唐山市路北区钢铁路8号",
        "available_from": today.isoformat(),
        "pickup_by": (today + timedelta(days=30)).isoformat(),
        "packaging": "bulk",
    }
    data.update(overrides)
    return data


def test_draft_then_submit_publishes_a_verified_sellers_ordinary_lot(
    api, categories, seller, django_capture_on_commit_callbacks
):
    org, admin = seller
    api.force_authenticate(admin)
    response = api.post("/api/v1/lots/", lot_payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["specs"] == {"fe_pct": "98.5", "thickness_mm": "8"} or body["specs"]["fe_pct"] in (
        98.5,
        "98.5",
    )
    lot_id = body["id"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(f"/api/v1/lots/{lot_id}/submit/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "published"
    assert len(callbacks) >= 2  # search indexing and saved-search alerts queued after commit
    actions = list(
        AuditEntry.objects.filter(target_type="listings.lot", target_id=str(lot_id)).values_list(
            "action", "to_state"
        )
    )
    assert ("lot.submit", "submitted") in actions and ("lot.publish", "published") in actions


def test_a_blacklisted_seller_can_neither_submit_nor_be_published(api, categories, seller, operator):
    from market.accounts.services import organisation_blacklist

    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    organisation_blacklist(actor=operator, organisation=org, blacklist=True, reason="虚假过磅")
    refused = api.post(f"/api/v1/lots/{lot_id}/submit/")
    assert refused.status_code == 400 and refused.json()["code"] == "blacklisted"
    assert "虚假过磅" in refused.json()["message"]
    assert Lot.objects.get(pk=lot_id).status == LotStatus.DRAFT
    organisation_blacklist(actor=operator, organisation=org, blacklist=False, reason="整改完成")
    assert api.post(f"/api/v1/lots/{lot_id}/submit/").json()["status"] == "published"


def test_hazardous_lot_waits_for_an_operator(api, categories, seller, operator):
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(category="zz.oil", specs={}), format="json").json()["id"]
    assert api.post(f"/api/v1/lots/{lot_id}/submit/").json()["status"] == "submitted"
    assert Lot.objects.get(pk=lot_id).hazardous is True
    # The seller cannot publish it.
    assert api.post(f"/api/v1/lots/{lot_id}/publish/").status_code == 403
    api.force_authenticate(operator)
    response = api.post(f"/api/v1/lots/{lot_id}/return/", {"reason": ""}, format="json")
    assert response.status_code == 400 and response.json()["fields"]["reason"][0]["code"] == "required"
    response = api.post(f"/api/v1/lots/{lot_id}/publish/")
    assert response.status_code == 200
    assert response.json()["status"] == "published"


def test_operator_returns_a_lot_with_a_reason_and_the_seller_resubmits(
    api, categories, seller, operator, settings
):
    settings.LOTS_AUTO_PUBLISH = False
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    api.post(f"/api/v1/lots/{lot_id}/submit/")
    api.force_authenticate(operator)
    body = api.post(f"/api/v1/lots/{lot_id}/return/", {"reason": "请补充现场照片"}, format="json").json()
    assert (body["status"], body["status_reason"]) == ("draft", "请补充现场照片")
    api.force_authenticate(admin)
    assert api.post(f"/api/v1/lots/{lot_id}/submit/").json()["status"] == "submitted"


def test_transitions_not_in_the_table_are_refused(api, categories, seller, operator):
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    api.force_authenticate(operator)
    response = api.post(f"/api/v1/lots/{lot_id}/publish/")  # a draft cannot be published directly
    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"
    api.force_authenticate(admin)
    assert (
        api.post(f"/api/v1/lots/{lot_id}/withdraw/", {"reason": "不卖了"}, format="json").json()["status"]
        == "withdrawn"
    )
    response = api.post(f"/api/v1/lots/{lot_id}/submit/")
    assert response.status_code == 409
    assert Lot.objects.get(pk=lot_id).status == LotStatus.WITHDRAWN


def test_only_verified_generators_publish(api, categories):
    pending_admin = make_user()
    pending = make_organisation(role="generator", admin=pending_admin, status=VerificationStatus.PENDING)
    api.force_authenticate(pending_admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(organisation=pending.pk), format="json").json()["id"]
    response = api.post(f"/api/v1/lots/{lot_id}/submit/")
    assert response.status_code == 400
    assert response.json()["code"] == "seller_not_verified"

    recycler_admin = make_user()
    make_organisation(role="recycler", admin=recycler_admin)
    api.force_authenticate(recycler_admin)
    response = api.post("/api/v1/lots/", lot_payload(), format="json")
    assert response.status_code == 403
    assert "求购" in response.json()["message"]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"specs": {"fe_pct": 120}}, "specs.fe_pct", "spec_max"),
        ({"specs": {"thickness_mm": 8}}, "specs.fe_pct", "spec_required"),
        ({"specs": {"fe_pct": 90, "colour": "red"}}, "specs.colour", "spec_unknown"),
        ({"region": "999999"}, "region", "region_unknown"),
        ({"region": "130200"}, "region", "region_not_county"),
        ({"quantity": "0"}, "quantity", "not_positive"),
        ({"quantity": "-5"}, "quantity", "not_positive"),
        ({"quantity": "1.23456"}, "quantity", "max_decimal_places"),
        ({"category": "zz.tv", "specs": {"fe_pct": 90}}, "unit", "unit_mismatch"),
        ({"category": "zz"}, "category", "category_not_leaf"),
        ({"category": "nope"}, "category", "category_unknown"),
        ({"pickup_by": "2020-01-01"}, "pickup_by", "dates_order"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(api, categories, seller, overrides, field, code):
    org, admin = seller
    api.force_authenticate(admin)
    response = api.post("/api/v1/lots/", lot_payload(**overrides), format="json")
    assert response.status_code == 400, response.json()
    fields = response.json()["fields"]
    assert field in fields, fields
    assert code in {e["code"] for e in fields[field]}
    assert not Lot.objects.exists()


def test_a_draft_is_invisible_to_other_organisations(api, categories, seller, operator):
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    colleague = make_member(org, MemberRole.VIEWER).user
    api.force_authenticate(colleague)
    assert api.get(f"/api/v1/lots/{lot_id}/").status_code == 200
    stranger = make_user()
    make_organisation(role="recycler", admin=stranger, region=COUNTY_SUZHOU)
    api.force_authenticate(stranger)
    assert api.get(f"/api/v1/lots/{lot_id}/").status_code == 404
    assert api.patch(f"/api/v1/lots/{lot_id}/", {"title": "x"}, format="json").status_code == 404
    api.force_authenticate(None)
    assert api.get(f"/api/v1/lots/{lot_id}/").status_code == 404
    api.force_authenticate(operator)
    assert api.get(f"/api/v1/lots/{lot_id}/").status_code == 200


def test_a_viewer_cannot_draft_or_edit(api, categories, seller):
    org, admin = seller
    viewer = make_member(org, MemberRole.VIEWER).user
    api.force_authenticate(viewer)
    assert api.post("/api/v1/lots/", lot_payload(organisation=org.pk), format="json").status_code == 403


def test_published_terms_are_fixed(api, categories, seller):
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    assert (
        api.patch(f"/api/v1/lots/{lot_id}/", {"quantity": "450"}, format="json").json()["quantity"]
        == "450.000"
    )
    api.post(f"/api/v1/lots/{lot_id}/submit/")
    response = api.patch(f"/api/v1/lots/{lot_id}/", {"quantity": "1"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "not_editable"
    assert Lot.objects.get(pk=lot_id).quantity == 450


def test_editing_a_submitted_lot_sends_it_back_to_draft(api, categories, seller, settings):
    settings.LOTS_AUTO_PUBLISH = False
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    api.post(f"/api/v1/lots/{lot_id}/submit/")
    body = api.patch(f"/api/v1/lots/{lot_id}/", {"title": "重型废钢 450 吨"}, format="json").json()
    assert (body["status"], body["title"]) == ("draft", "重型废钢 450 吨")


def png(size=(800, 600)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 90, 100)).save(buf, format="PNG")
    return buf.getvalue()


def test_photos_are_checked_and_thumbnailed(api, categories, seller, settings):
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    response = api.post(
        f"/api/v1/lots/{lot_id}/media/", {"file": SimpleUploadedFile("a.png", png())}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    media = response.json()
    thumb = api.get(media["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(b"".join(thumb.streaming_content))) as img:
        assert max(img.size) <= 480

    fake = SimpleUploadedFile("photo.jpg", b"%PDF-1.4 not a photo\n%%EOF\n")
    response = api.post(f"/api/v1/lots/{lot_id}/media/", {"file": fake}, format="multipart")
    assert response.status_code == 400
    assert response.json()["fields"]["file"][0]["code"] == "file_type"

    settings.LOT_MEDIA_MAX_BYTES = 1000
    response = api.post(
        f"/api/v1/lots/{lot_id}/media/", {"file": SimpleUploadedFile("b.png", png())}, format="multipart"
    )
    assert response.json()["fields"]["file"][0]["code"] == "file_too_large"


def test_a_photo_whose_file_is_gone_is_not_found_not_a_server_error(api, categories, seller):
    from listings.models import LotMedia

    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    media = api.post(
        f"/api/v1/lots/{lot_id}/media/", {"file": SimpleUploadedFile("a.png", png())}, format="multipart"
    ).json()
    stored = LotMedia.objects.get(pk=media["id"])
    stored.file.storage.delete(stored.file.name)  # a database restored without its media
    response = api.get(media["url"])
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_photo_count_is_limited(api, categories, seller, monkeypatch):
    from listings import services

    monkeypatch.setitem(services.MEDIA_LIMITS, "photo", 2)
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    codes = [
        api.post(
            f"/api/v1/lots/{lot_id}/media/",
            {"file": SimpleUploadedFile(f"{i}.png", png((60, 40)))},
            format="multipart",
        ).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 400]


def test_draft_photos_are_private(api, categories, seller):
    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    url = api.post(
        f"/api/v1/lots/{lot_id}/media/",
        {"file": SimpleUploadedFile("a.png", png((60, 40)))},
        format="multipart",
    ).json()["url"]
    api.force_authenticate(None)
    assert api.get(url).status_code == 404
    api.force_authenticate(admin)
    api.post(f"/api/v1/lots/{lot_id}/submit/")
    api.force_authenticate(None)
    assert api.get(url).status_code == 200


def test_expiry_sweep(categories, seller):
    from listings.services import lot_create, lot_submit
    from listings.tasks import lots_expire_sweep

    org, admin = seller
    today = timezone.localdate()
    lot = lot_create(
        actor=admin,
        organisation=org,
        **{**lot_payload(), "available_from": today, "pickup_by": today + timedelta(days=1)},
    )
    lot = lot_submit(actor=admin, lot=lot)
    assert lots_expire_sweep() == 0
    Lot.objects.filter(pk=lot.pk).update(
        pickup_by=today - timedelta(days=1), available_from=today - timedelta(days=3)
    )
    assert lots_expire_sweep() == 1
    assert Lot.objects.get(pk=lot.pk).status == LotStatus.EXPIRED


def test_an_expired_lot_can_be_relisted(api, categories, seller):
    from listings.tasks import lots_expire_sweep

    org, admin = seller
    api.force_authenticate(admin)
    lot_id = api.post("/api/v1/lots/", lot_payload(), format="json").json()["id"]
    api.post(f"/api/v1/lots/{lot_id}/submit/")
    assert api.post(f"/api/v1/lots/{lot_id}/relist/").status_code == 409  # only expired lots
    today = timezone.localdate()
    Lot.objects.filter(pk=lot_id).update(
        available_from=today - timedelta(days=9), pickup_by=today - timedelta(days=1)
    )
    lots_expire_sweep()
    body = api.post(f"/api/v1/lots/{lot_id}/relist/").json()
    assert body["status"] == "draft"
    new_dates = {"available_from": today.isoformat(), "pickup_by": (today + timedelta(days=20)).isoformat()}
    assert api.patch(f"/api/v1/lots/{lot_id}/", new_dates, format="json").status_code == 200
    assert api.post(f"/api/v1/lots/{lot_id}/submit/").json()["status"] == "published"
