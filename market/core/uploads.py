"""Checking uploaded files by their content, never by their name.

Used for licence scans now and for lot photos and documents later. The file's bytes decide its
type (magic numbers, then a full parse for images and a structure check for PDF); the size is
capped; the name the uploader gave is kept only as a label and never reaches the file system.
"""

import hashlib
import io
import os
import unicodedata
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import Http404
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

KINDS = {
    "pdf": ("application/pdf", "pdf"),
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
}
MAX_IMAGE_PIXELS = 40_000_000  # refuses decompression bombs long before they fill memory
# Archives are never accepted (no upload is unpacked); they get their own message, because "zip the
# scans" is what an uploader tries first, and a zip bomb must never reach anything that unpacks.
ARCHIVES = {
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/vnd.rar",
    "application/zstd",
    "application/x-lzip",
    "application/x-compress",
    "application/x-zstd",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/epub+zip",
}


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
        if (guess and guess.mime in ARCHIVES) or head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ValidationError(
                _("不接受压缩包或 Office 文档：请直接上传 %(names)s 文件。") % {"names": names},
                code="file_archive",
            )
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


def _image_too_large(width: int | None = None, height: int | None = None) -> ValidationError:
    limit = number_format(MAX_IMAGE_PIXELS, force_grouping=True)
    if width and height:
        message = _("图片尺寸过大（%(width)d × %(height)d 像素），上限为 %(max)s 像素。") % {
            "width": width,
            "height": height,
            "max": limit,
        }
    else:
        message = _("图片尺寸过大，上限为 %(max)s 像素。") % {"max": limit}
    return ValidationError(message, code="image_too_large")


def _check_image(upload) -> None:
    """The header's dimensions are read before any pixel is decoded: a decompression bomb (a few
    kilobytes that decode to gigabytes) is refused here, and Pillow's own limit is a second net."""
    try:
        with Image.open(upload) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _image_too_large(width, height)
            img.verify()
    except ValidationError:
        raise
    except Image.DecompressionBombError as exc:
        raise _image_too_large() from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(_("图片文件无法读取或已损坏。"), code="file_corrupt") from exc


def upload_max_bytes() -> int:
    """The largest file any upload of the market accepts."""
    return max(settings.LICENCE_DOCUMENT_MAX_BYTES, settings.LOT_MEDIA_MAX_BYTES)


class OversizeUpload(UploadedFile):
    """What is left of a file that passed ``upload_max_bytes()``: its name and real size, no content.
    ``upload_check`` refuses it as too large with the usual message."""

    def __init__(self, name, content_type, size, charset=None, content_type_extra=None):
        super().__init__(io.BytesIO(), name, content_type, size, charset, content_type_extra)


class SizeLimitUploadHandler(FileUploadHandler):
    """First of ``FILE_UPLOAD_HANDLERS``: once a file passes the largest size any upload accepts,
    its further chunks are counted and dropped instead of written to a temporary file, so a huge
    upload cannot fill the disk; the form or API then refuses it as too large. (The body is still
    read to its end: the reverse proxy's body limit, client_max_body_size, stops it earlier.)"""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.limit = upload_max_bytes()
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        return None if self.received > self.limit else raw_data

    def file_complete(self, file_size):
        if self.received > self.limit:
            return OversizeUpload(
                self.file_name, self.content_type, file_size, self.charset, self.content_type_extra
            )
        return None


def stored_open(field):
    """A stored upload opened for reading, or 404 when its file is gone (a restored database
    without its media, a disk cleaned by hand): a missing file is not a server error."""
    try:
        return field.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
