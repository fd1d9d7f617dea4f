"""Licences: upload checks by content, size and name; verification; expiry."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from market.accounts.models import Licence, LicenceStatus, MemberRole
from market.accounts.selectors import licence_valid_for
from market.accounts.services import licence_add, licence_decide
from market.accounts.tasks import licences_expiry_sweep
from tests.factories import make_member, make_organisation, make_user

pytestmark = pytest.mark.django_db


def png_bytes(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (20, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def licence_form(**overrides):
    today = timezone.localdate()
    data = {
        "kind": "hazardous_waste",
        "number": "冀危废经字第130203001号",
        "issuer": "河北省生态环境厅",
        "valid_from": (today - timedelta(days=100)).isoformat(),
        "valid_to": (today + timedelta(days=900)).isoformat(),
        "hw_codes": "HW08, hw49",
        "annual_capacity_t": "30000",
        "document": SimpleUploadedFile("licence.png", png_bytes(), content_type="image/png"),
    }
    data.update(overrides)
    return data


@pytest.fixture
def recycler():
    admin = make_user()
    org = make_organisation(role="recycler", admin=admin)
    return org, admin


def test_upload_a_licence_scan(api, recycler):
    org, admin = recycler
    api.force_authenticate(admin)
    response = api.post(f"/api/v1/organisations/{org.pk}/licences/", licence_form(), format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["hw_codes"] == ["HW08", "HW49"]
    licence = Licence.objects.get(pk=body["id"])
    # Stored under a generated name, never the uploader's.
    assert licence.document.name.startswith(f"licences/{org.pk}/")
    assert licence.document.name.endswith(".png")
    assert "licence" not in licence.document.name.rsplit("/", 1)[-1]
    assert licence.document_name == "licence.png"
    # Only members, operators and the jurisdiction's government download it.
    download = api.get(body["document_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "image/png"
    assert b"".join(download.streaming_content) == png_bytes()
    api.force_authenticate(make_user())
    assert api.get(body["document_url"]).status_code in (403, 404)


def test_wrong_type_by_content_is_refused_whatever_the_name(api, recycler):
    org, admin = recycler
    api.force_authenticate(admin)
    fake_pdf = SimpleUploadedFile(
        "licence.pdf", b"MZ\x90\x00 this is an executable" * 10, content_type="application/pdf"
    )
    response = api.post(
        f"/api/v1/organisations/{org.pk}/licences/", licence_form(document=fake_pdf), format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["fields"]["document"][0]["code"] == "file_type"
    assert Licence.objects.count() == 0


def test_a_real_pdf_is_accepted_and_a_truncated_one_refused(api, recycler):
    org, admin = recycler
    api.force_authenticate(admin)
    ok = SimpleUploadedFile("scan.PDF", PDF, content_type="application/octet-stream")
    assert (
        api.post(
            f"/api/v1/organisations/{org.pk}/licences/", licence_form(document=ok), format="multipart"
        ).status_code
        == 201
    )
    truncated = SimpleUploadedFile("scan2.pdf", PDF[:-8], content_type="application/pdf")
    response = api.post(
        f"/api/v1/organisations/{org.pk}/licences/",
        licence_form(document=truncated, number="冀危废经字第2号"),
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["fields"]["document"][0]["code"] == "file_corrupt"


def test_oversize_is_refused(api, recycler, settings):
    settings.LICENCE_DOCUMENT_MAX_BYTES = 1024
    org, admin = recycler
    api.force_authenticate(admin)
    big = SimpleUploadedFile("big.png", png_bytes((400, 400)) + b"\0" * 2048, content_type="image/png")
    response = api.post(
        f"/api/v1/organisations/{org.pk}/licences/", licence_form(document=big), format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["fields"]["document"][0]["code"] == "file_too_large"


@pytest.mark.parametrize(
    "name", ["../../etc/passwd.png", "..\\..\\win.ini.png", "/abs/path.png", ".hidden.png", "a\x00b.png"]
)
def test_path_tricks_in_the_name_never_reach_the_disk(recycler, name, settings):
    org, admin = recycler
    doc = SimpleUploadedFile("x.png", png_bytes(), content_type="image/png")
    doc.name = name
    licence = licence_add(
        actor=admin,
        organisation=org,
        kind="renewable_record",
        number=f"备案-{abs(hash(name))}",
        issuer="唐山市商务局",
        valid_from=timezone.localdate(),
        valid_to=timezone.localdate() + timedelta(days=30),
        document=doc,
    )
    stored = licence.document.path
    assert stored.startswith(str(settings.MEDIA_ROOT))
    assert ".." not in licence.document.name
    assert "/" not in licence.document_name and "\\" not in licence.document_name
    assert "\x00" not in licence.document_name


def test_corrupt_image_is_refused(recycler):
    org, admin = recycler
    broken = SimpleUploadedFile("x.png", png_bytes()[:60], content_type="image/png")
    with pytest.raises(Exception) as exc:
        licence_add(
            actor=admin,
            organisation=org,
            kind="renewable_record",
            number="1",
            issuer="x",
            valid_from=timezone.localdate(),
            valid_to=timezone.localdate(),
            document=broken,
        )
    assert exc.value.error_dict["document"][0].code == "file_corrupt"


def test_hazardous_licence_needs_classes_and_capacity(api, recycler):
    org, admin = recycler
    api.force_authenticate(admin)
    form = licence_form(hw_codes="", annual_capacity_t="")
    form.pop("annual_capacity_t")
    response = api.post(f"/api/v1/organisations/{org.pk}/licences/", form, format="multipart")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["hw_codes"][0]["code"] == "required"
    assert fields["annual_capacity_t"][0]["code"] == "required"
    response = api.post(
        f"/api/v1/organisations/{org.pk}/licences/", licence_form(hw_codes="HW08,HW99"), format="multipart"
    )
    assert response.json()["fields"]["hw_codes"][0]["code"] == "hw_unknown"


def test_expired_or_unverified_licence_never_counts(recycler, operator):
    org, admin = recycler
    today = timezone.localdate()
    licence = licence_add(
        actor=admin,
        organisation=org,
        kind="hazardous_waste",
        number="L-1",
        issuer="河北省生态环境厅",
        valid_from=today - timedelta(days=10),
        valid_to=today + timedelta(days=10),
        hw_codes=["HW08"],
        annual_capacity_t=1000,
        document=SimpleUploadedFile("a.png", png_bytes()),
    )
    assert not licence.covers("HW08", today)  # pending
    assert licence_valid_for(org, hw_code="HW08", on=today) is None

    licence_decide(actor=operator, licence=licence, decision="verify")
    licence.refresh_from_db()
    assert licence.covers("HW08", today)
    assert not licence.covers("HW31", today)  # class not on the licence
    assert licence_valid_for(org, hw_code="HW08", on=today) == licence
    # On a pickup date after expiry it does not count.
    assert not licence.covers("HW08", today + timedelta(days=11))
    assert licence_valid_for(org, hw_code="HW08", on=today + timedelta(days=11)) is None

    licence_decide(actor=operator, licence=licence, decision="revoke", reason="被发证机关吊销")
    assert licence_valid_for(org, hw_code="HW08", on=today) is None


def test_an_expired_licence_cannot_be_uploaded(recycler):
    org, admin = recycler
    today = timezone.localdate()
    with pytest.raises(Exception) as exc:
        licence_add(
            actor=admin,
            organisation=org,
            kind="renewable_record",
            number="old",
            issuer="x",
            valid_from=today - timedelta(days=400),
            valid_to=today - timedelta(days=1),
            document=SimpleUploadedFile("a.png", png_bytes()),
        )
    assert exc.value.error_dict["valid_to"][0].code == "expired"


def test_only_operators_decide_licences(api, recycler):
    org, admin = recycler
    api.force_authenticate(admin)
    lid = api.post(f"/api/v1/organisations/{org.pk}/licences/", licence_form(), format="multipart").json()[
        "id"
    ]
    response = api.post(f"/api/v1/organisations/{org.pk}/licences/{lid}/decisions/", {"decision": "verify"})
    assert response.status_code == 403
    assert Licence.objects.get(pk=lid).status == LicenceStatus.PENDING


def test_viewer_cannot_upload(api, recycler):
    org, _admin = recycler
    viewer = make_member(org, MemberRole.VIEWER).user
    api.force_authenticate(viewer)
    assert (
        api.post(f"/api/v1/organisations/{org.pk}/licences/", licence_form(), format="multipart").status_code
        == 403
    )


def test_expiry_sweep_warns_members_once(recycler, operator, django_capture_on_commit_callbacks, mailoutbox):
    org, admin = recycler
    today = timezone.localdate()
    soon = licence_add(
        actor=admin,
        organisation=org,
        kind="renewable_record",
        number="soon",
        issuer="唐山市商务局",
        valid_from=today - timedelta(days=300),
        valid_to=today + timedelta(days=5),
        document=SimpleUploadedFile("a.png", png_bytes()),
    )
    later = licence_add(
        actor=admin,
        organisation=org,
        kind="renewable_record",
        number="later",
        issuer="唐山市商务局",
        valid_from=today - timedelta(days=300),
        valid_to=today + timedelta(days=300),
        document=SimpleUploadedFile("b.png", png_bytes()),
    )
    for lic in (soon, later):
        licence_decide(actor=operator, licence=lic, decision="verify")
    with django_capture_on_commit_callbacks(execute=True):
        assert licences_expiry_sweep() == 1
    assert licences_expiry_sweep() == 0  # once only
    soon.refresh_from_db()
    later.refresh_from_db()
    assert soon.expiry_warned_at is not None and later.expiry_warned_at is None
