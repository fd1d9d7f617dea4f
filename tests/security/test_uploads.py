"""Uploads refused (issue 8, security): every place that takes a file (licence scans, lot photos and
documents, bank-transfer slips, weighbridge tickets) refuses, with a clear error, an executable or a
web page named like an image, archives (a zip bomb, an Office document), image decompression bombs,
files past the size limit (dropped while the request is read, never written out in full) and file
names that try to climb out of the media folder. The checks live in ``market/core/uploads.py``;
tests/accounts/test_licences.py and tests/listings/test_lots.py hold the first cases (an executable
named .pdf, a truncated PDF, oversize, path tricks on licences), this module the rest."""

import functools
import gzip
import io
import json
import struct
import zipfile
import zlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation
from PIL import Image

from listings.models import LotMedia
from market.accounts.models import Licence
from market.core.uploads import (
    MAX_IMAGE_PIXELS,
    OversizeUpload,
    SizeLimitUploadHandler,
    safe_label,
    upload_check,
)
from market.deals import services as deals
from market.deals.models import Payment, PaymentMethod, Weighing
from tests.deals.conftest import awarded_deal, floor, market  # noqa: F401 - fixtures used below
from tests.factories import make_organisation, make_user
from tests.trading.conftest import make_party, published_lot

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


# --- hostile files -------------------------------------------------------------------------------


def png_bytes(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (20, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of ``width`` × ``height`` black pixels: kilobytes on disk,
    width × height bytes once decoded to RGB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def jpeg_bomb() -> bytes:
    """A small JPEG whose frame header claims 60,000 × 60,000 pixels (3.6 gigapixels)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


@functools.cache
def zip_bomb() -> bytes:
    """200 MB of zeros deflated into a zip of a few hundred kilobytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("scan.pdf", "w") as inner:
        zeros = b"\x00" * MB
        for _ in range(200):
            inner.write(zeros)
    return buf.getvalue()


def office_document() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 44
    + b"PE\x00\x00"
    + b"\x00" * 400
)
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 400
HTML = b"<!DOCTYPE html><html><body><script>fetch('/api/v1/me/').then(r=>r.text()).then(alert)</script></body></html>"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"><script>alert(1)</script></svg>'
)

# (what, file name, bytes, the refusal's code)
HOSTILE = [
    ("an executable renamed .jpg", "photo.jpg", lambda: EXE, "file_type"),
    ("a Linux executable renamed .png", "scan.png", lambda: ELF, "file_type"),
    ("a web page as an image", "scan.png", lambda: HTML, "file_type"),
    ("an SVG with script as an image", "scan.png", lambda: SVG, "file_type"),
    ("a zip bomb named .pdf", "scan.pdf", zip_bomb, "file_archive"),
    ("a gzip bomb named .jpg", "photo.jpg", lambda: gzip.compress(b"\x00" * (20 * MB)), "file_archive"),
    ("an Office document", "report.docx", office_document, "file_archive"),
    ("a PNG of 8,000 × 6,000 pixels", "big.png", lambda: png_bomb(8000, 6000), "image_too_large"),
    ("a PNG bomb of 20,000 × 20,000 pixels", "bomb.png", lambda: png_bomb(20000, 20000), "image_too_large"),
    ("a JPEG claiming 60,000 × 60,000 pixels", "bomb.jpg", jpeg_bomb, "image_too_large"),
]
PATH_TRICKS = [
    "../../etc/passwd",
    "../../../../var/www/shell.png",
    "..\\..\\windows\\win.ini.png",
    "/etc/cron.d/job.png",
    "a\x00b.png",
    "photo\u202egnp.exe",  # a right-to-left override hiding ".exe"
    "..",
]


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="image/png")


def codes(body) -> set[str]:
    """Every error code in an API error answer, wherever the field puts it."""
    found = set()
    if isinstance(body, dict):
        if isinstance(body.get("code"), str):
            found.add(body["code"])
        for value in body.values():
            found |= codes(value)
    elif isinstance(body, list):
        for value in body:
            found |= codes(value)
    return found


def assert_refused(response, code: str, what: str) -> None:
    assert response.status_code == 400, f"{what}: HTTP {response.status_code} {response.content[:300]!r}"
    assert code in codes(response.json()), f"{what}: {response.json()}"


# --- the check itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(("what", "name", "make", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("allowed", [("pdf", "jpeg", "png"), ("jpeg", "png")], ids=["documents", "photos"])
def test_upload_check_refuses(what, name, make, code, allowed):
    with pytest.raises(ValidationError) as refused:
        upload_check(upload(name, make()), allowed=allowed, max_bytes=10 * MB)
    assert refused.value.code == code, what


def test_the_messages_say_what_is_wrong_in_both_languages():
    def message(content, name="x.png"):
        with pytest.raises(ValidationError) as refused:
            upload_check(upload(name, content), max_bytes=10 * MB)
        return refused.value.messages[0]

    assert message(png_bomb(8000, 6000)) == "图片尺寸过大（8000 × 6000 像素），上限为 40,000,000 像素。"
    assert message(zip_bomb(), "scan.pdf") == "不接受压缩包或 Office 文档：请直接上传 PDF、JPEG、PNG 文件。"
    assert "按文件内容识别" in message(HTML)
    with translation.override("en"):
        assert message(png_bomb(8000, 6000)) == (
            "The image is too large (8000 × 6000 pixels); the limit is 40,000,000 pixels."
        )
        assert message(jpeg_bomb()) == "The image is too large; the limit is 40,000,000 pixels."
        assert message(zip_bomb(), "scan.pdf").startswith("Archives and Office documents are not accepted")


def test_an_image_just_under_the_pixel_limit_is_accepted():
    side = int(MAX_IMAGE_PIXELS**0.5) - 1
    checked = upload_check(upload("ok.png", png_bomb(side, side)), allowed=("png",), max_bytes=10 * MB)
    assert checked.kind == "png"


@pytest.mark.parametrize("name", PATH_TRICKS)
def test_a_file_name_is_only_ever_a_label(name):
    label = safe_label(name)
    assert "/" not in label and "\\" not in label and "\x00" not in label and "\u202e" not in label
    assert not label.startswith(".")
    assert label


# --- oversize: dropped while the request is read -------------------------------------------------


def test_the_size_limit_handler_stops_storing_past_the_limit(settings):
    settings.LICENCE_DOCUMENT_MAX_BYTES = settings.LOT_MEDIA_MAX_BYTES = 1000
    handler = SizeLimitUploadHandler()
    handler.new_file("file", "huge.png", "image/png", 5000)
    passed = [handler.receive_data_chunk(b"x" * 400, start) for start in range(0, 4000, 400)]
    assert passed[:2] == [b"x" * 400] * 2  # below the limit, the next handler stores the chunks
    assert passed[3:] == [None] * 7  # past it, nothing more is stored anywhere
    oversize = handler.file_complete(4000)
    assert isinstance(oversize, OversizeUpload) and oversize.size == 4000
    assert oversize.read() == b""
    with pytest.raises(ValidationError) as refused:
        upload_check(oversize, max_bytes=1000)
    assert refused.value.code == "file_too_large"

    small = SizeLimitUploadHandler()
    small.new_file("file", "small.png", "image/png", 500)
    assert small.receive_data_chunk(b"y" * 500, 0) == b"y" * 500
    assert small.file_complete(500) is None  # the usual handlers make the file


def test_an_oversize_upload_is_refused_with_its_real_size(api, settings):
    """Through Django's multipart parser: a 3 MB file against a 1 MB limit."""
    settings.LICENCE_DOCUMENT_MAX_BYTES = settings.LOT_MEDIA_MAX_BYTES = MB
    seller = make_party(role="generator")
    lot = published_lot(seller.org)
    big = png_bytes((16, 16)) + b"\x00" * (3 * MB)
    response = seller.client.post(
        f"/api/v1/lots/{lot.pk}/media/", {"file": upload("big.png", big)}, format="multipart"
    )
    assert_refused(response, "file_too_large", "3 MB photo")
    assert "3.0 MB" in json.dumps(response.json(), ensure_ascii=False)
    assert LotMedia.objects.count() == 0


# --- each place that takes a file ----------------------------------------------------------------


def licence_form(document) -> dict:
    today = timezone.localdate()
    return {
        "kind": "renewable_record",
        "number": f"备案-{abs(hash(document.name))}",
        "issuer": "唐山市商务局",
        "valid_from": (today - timedelta(days=10)).isoformat(),
        "valid_to": (today + timedelta(days=300)).isoformat(),
        "document": document,
    }


def test_licence_scans_refuse_hostile_files(api):
    admin = make_user()
    org = make_organisation(role="recycler", admin=admin)
    api.force_authenticate(admin)
    for what, name, make, code in HOSTILE:
        response = api.post(
            f"/api/v1/organisations/{org.pk}/licences/",
            licence_form(upload(name, make())),
            format="multipart",
        )
        assert_refused(response, code, f"licence: {what}")
    assert Licence.objects.count() == 0


def test_lot_photos_and_documents_refuse_hostile_files():
    seller = make_party(role="generator")
    lot = published_lot(seller.org)
    for kind in ("photo", "document"):
        for what, name, make, code in HOSTILE:
            response = seller.client.post(
                f"/api/v1/lots/{lot.pk}/media/",
                {"file": upload(name, make()), "kind": kind},
                format="multipart",
            )
            assert_refused(response, code, f"lot {kind}: {what}")
    assert LotMedia.objects.count() == 0


def test_the_lot_media_form_shows_the_refusal(client):
    seller = make_party(role="generator")
    lot = published_lot(seller.org)
    client.force_login(seller.user)
    response = client.post(
        f"/lots/{lot.pk}/media/", {"kind": "photo", "file": upload("bomb.png", png_bomb(20000, 20000))}
    )
    assert response.status_code in (200, 400, 422)
    assert "图片尺寸过大" in response.content.decode()
    assert LotMedia.objects.count() == 0


def test_payment_slips_refuse_hostile_files(market, awarded_deal):  # noqa: F811 - fixtures
    buyer = market.buyer_of(awarded_deal)
    payment = deals.payment_start(actor=buyer.user, deal=awarded_deal, method=PaymentMethod.BANK_TRANSFER)
    url = f"/api/v1/deals/{awarded_deal.pk}/payments/{payment.pk}/slip/"
    for what, name, make, code in HOSTILE:
        response = buyer.client.post(
            url, {"slip": upload(name, make()), "reference": "ICBC-1"}, format="multipart"
        )
        assert_refused(response, code, f"slip: {what}")
    assert not Payment.objects.get(pk=payment.pk).slip


def test_weighbridge_tickets_refuse_hostile_files(market, awarded_deal):  # noqa: F811 - fixtures
    deal = market.book_pickup(market.pay(awarded_deal))
    url = f"/api/v1/deals/{deal.pk}/weighings/"
    for what, name, make, code in HOSTILE:
        data = {"ticket_no": "BD-1", "gross_t": "520", "tare_t": "20", "ticket": upload(name, make())}
        response = market.seller.client.post(url, data, format="multipart")
        assert_refused(response, code, f"ticket: {what}")
    assert Weighing.objects.filter(deal=deal).count() == 0


# --- path tricks: the uploader's name never reaches the file system ------------------------------


def _inside_media(field) -> Path:
    stored = Path(field.path).resolve()
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve()), stored
    assert ".." not in field.name and "\x00" not in field.name
    return stored


def test_lot_media_names_never_reach_the_disk():
    seller = make_party(role="generator")
    lot = published_lot(seller.org)
    for name in PATH_TRICKS[:6]:
        response = seller.client.post(
            f"/api/v1/lots/{lot.pk}/media/",
            {"file": upload(name, png_bytes()), "kind": "document"},
            format="multipart",
        )
        assert response.status_code == 201, (name, response.json())
    for media in LotMedia.objects.filter(lot=lot):
        stored = _inside_media(media.file)
        assert stored.parent.name == str(lot.pk) and stored.parent.parent.name == "lots"
        assert stored.suffix == ".png"  # from the content, never from the name
        for bad in ("/", "\\", "\x00", "\u202e"):
            assert bad not in media.original_name


def test_slip_and_ticket_names_never_reach_the_disk(market, awarded_deal):  # noqa: F811 - fixtures
    buyer = market.buyer_of(awarded_deal)
    payment = deals.payment_start(actor=buyer.user, deal=awarded_deal, method=PaymentMethod.BANK_TRANSFER)
    deals.payment_slip_submit(actor=buyer.user, payment=payment, slip=upload("../../etc/passwd", png_bytes()))
    payment.refresh_from_db()
    assert _inside_media(payment.slip).parent.name == "payments"
    assert payment.slip.name.endswith(".png")
    deals.payment_confirm(actor=market.seller.user, payment=payment)
    awarded_deal.refresh_from_db()
    deal = market.book_pickup(awarded_deal)
    deals.weighing_record(
        actor=market.seller.user, deal=deal, ticket_no="BD-7", gross_t=Decimal("520"), tare_t=Decimal("20"),
        ticket=upload("..\\..\\a\x00b.exe", png_bytes()),
    )  # fmt: skip
    weighing = Weighing.objects.get(deal=deal)
    stored = _inside_media(weighing.ticket)
    assert stored.parent.name == str(deal.pk) and stored.suffix == ".png"
