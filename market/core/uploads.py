"""Checking uploaded files by their content, never by their name.

Used for licence scans now and for lot photos and documents later. The file's bytes decide its
type (magic numbers, then a full parse for images and a structure check for PDF); the size is
capped; the name the uploader gave is kept only as a label and never reaches the file system.
"""

import hashlib
import os
import unicodedata
from dataclasses import dataclass

import filetype
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

KINDS = {
    "pdf": ("application/pdf", "pdf"),
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
}
MAX_IMAGE_PIXELS = 40_000_000  # refuses decompression bombs long before they fill memory


@dataclass(frozen=True)
class CheckedUpload:
    kind: str
    content_type: str
    extension: str
    size: int
    sha256: str
    original_name: str


def safe_label(name: str) -> str:
    """The uploader's file name reduced to a harmless label (no directories, no control characters)."""
    base = os.path.basename((name or "").replace("\\", "/"))
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".")
    return base[:200] or "document"


def upload_check(upload, *, allowed=("pdf", "jpeg", "png"), max_bytes: int) -> CheckedUpload:
    """Validate ``upload`` (a Django UploadedFile) or raise ValidationError with code and message."""
    size = upload.size or 0
    if size == 0:
        raise ValidationError(_("文件为空。"), code="file_empty")
    if size > max_bytes:
        raise ValidationError(
            _("文件过大（%(size).1f MB），上限为 %(max).0f MB。")
            % {"size": size / 1048576, "max": max_bytes / 1048576},
            code="file_too_large",
        )
    upload.seek(0)
    head = upload.read(8192)
    guess = filetype.guess(head)
    kind = {"application/pdf": "pdf", "image/jpeg": "jpeg", "image/png": "png"}.get(
        guess.mime if guess else ""
    )
    if kind not in allowed:
        names = _("、").join(k.upper() for k in allowed)  # the list separator of the language
        raise ValidationError(
            _("文件类型不受支持：请上传 %(names)s 文件（按文件内容识别，而不是扩展名）。") % {"names": names},
            code="file_type",
        )
    upload.seek(0)
    if kind == "pdf":
        _check_pdf(upload, size)
    else:
        _check_image(upload)
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    content_type, extension = KINDS[kind]
    return CheckedUpload(kind, content_type, extension, size, digest.hexdigest(), safe_label(upload.name))


def _check_pdf(upload, size: int) -> None:
    upload.seek(max(0, size - 2048))
    tail = upload.read()
    if b"%%EOF" not in tail:
        raise ValidationError(_("PDF 文件不完整或已损坏。"), code="file_corrupt")


def _check_image(upload) -> None:
    try:
        with Image.open(upload) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValidationError(_("图片像素过大。"), code="image_too_large")
            img.verify()
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(_("图片文件无法读取或已损坏。"), code="file_corrupt") from exc


def stored_open(field):
    """A stored upload opened for reading, or 404 when its file is gone (a restored database
    without its media, a disk cleaned by hand): a missing file is not a server error."""
    try:
        return field.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
