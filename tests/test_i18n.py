"""The English catalogue and the language switch.

Chinese is the source language (the msgids); ``locale/en/LC_MESSAGES/django.po`` supplies English.
The compiled ``django.mo`` is not committed (the Makefile compiles it with Babel at install time),
so a session fixture here compiles it when it is missing or older than the ``.po``.
"""

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import PYTHON_FORMAT
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings

from tests.factories import PASSWORD, make_user

PO_PATH = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")

MARKET_NAME_ZH = "再生资源交易市场"
MARKET_NAME_EN = "Recyclables Exchange"
# Interface strings of the anonymous home page; none may survive on the English page.
HOME_UI_ZH = [
    MARKET_NAME_ZH,
    "再生资源和工业固体废物的在线交易市场",
    "跳到正文",
    "主导航",
    "首页",
    "登录",
    "免费注册",
    "产废单位",
    "回收利用单位",
    "如何开始",
    "开放接口",
]


def _read_catalogue():
    with PO_PATH.open("rb") as f:
        return read_po(f, locale="en")


def _reset_translation_caches() -> None:
    """Forget every loaded catalogue, as Django's own ``setting_changed`` receiver does for
    LOCALE_PATHS (django/test/signals.py), so the next request reads the fresh ``.mo``."""
    from asgiref.local import Local
    from django.utils.translation import trans_real

    trans_real._translations = {}
    trans_real._default = None
    trans_real._active = Local()
    for cached in ("check_for_language", "translation_catalog_exists"):
        cache_clear = getattr(getattr(trans_real, cached, None), "cache_clear", None)
        if cache_clear is not None:
            cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _compiled_english_catalogue():
    if not MO_PATH.exists() or MO_PATH.stat().st_mtime < PO_PATH.stat().st_mtime:
        catalogue = _read_catalogue()
        # Write beside the target and rename, so a parallel worker never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=MO_PATH.parent, prefix=".django.", suffix=".mo.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write_mo(f, catalogue)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; the catalogue is an ordinary project file
            os.replace(tmp, MO_PATH)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    _reset_translation_caches()
    yield
    _reset_translation_caches()


def _placeholders(text: str) -> Counter:
    return Counter(m.group(0) for m in PYTHON_FORMAT.finditer(text) if m.group(0) != "%%")


def _strings(value) -> list[str]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --- (a) the catalogue is complete ------------------------------------------------------------


def test_catalogue_header_declares_english_utf8_and_plurals():
    catalogue = _read_catalogue()
    assert not catalogue.fuzzy, "the header is still marked fuzzy"
    # Babel rewrites some header fields from its own locale data, so read the file's header itself.
    text = PO_PATH.read_text(encoding="utf-8")
    header_block = text[text.index('msgid ""') : text.index("\n\n", text.index('msgid ""'))]
    header = dict(
        line.strip('"').removesuffix("\\n").split(": ", 1)
        for line in header_block.splitlines()[2:]
        if line.startswith('"') and ": " in line
    )
    assert header["Language"] == "en"
    assert header["Content-Type"].lower() == "text/plain; charset=utf-8"
    assert header["Plural-Forms"].replace(" ", "") == "nplurals=2;plural=(n!=1);"


def test_every_entry_is_translated_and_not_fuzzy():
    catalogue = _read_catalogue()
    messages = [m for m in catalogue if m.id]
    assert len(messages) > 300, "the catalogue looks truncated"
    untranslated = [m.id for m in messages if not all(s.strip() for s in _strings(m.string))]
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert untranslated == [], f"{len(untranslated)} untranslated entries, e.g. {untranslated[:5]}"
    assert fuzzy == [], f"{len(fuzzy)} fuzzy entries, e.g. {fuzzy[:5]}"


def test_python_format_placeholders_match():
    catalogue = _read_catalogue()
    checked, problems = 0, []
    for message in catalogue:
        if not message.id:
            continue
        ids = _strings(message.id)
        if "python-format" not in message.flags and not any(_placeholders(i) for i in ids):
            continue
        checked += 1
        expected = _placeholders(ids[0])
        if len(ids) > 1:  # plural: the singular may omit the count, so compare with the plural form
            expected = _placeholders(ids[1])
        for string in _strings(message.string):
            if set(_placeholders(string)) != set(expected):
                problems.append((ids[0], string))
    assert checked > 20
    assert problems == [], problems


# --- (b) the home page in both languages ------------------------------------------------------


@pytest.mark.django_db
def test_home_page_is_chinese_by_default_and_english_after_switching(client):
    page = client.get("/").content.decode()
    assert 'lang="zh-hans"' in page
    assert MARKET_NAME_ZH in page

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302

    page = client.get("/").content.decode()
    assert 'lang="en"' in page
    assert MARKET_NAME_EN in page
    leftover = [s for s in HOME_UI_ZH if s in page]
    assert leftover == [], f"Chinese interface text on the English home page: {leftover}"


# --- (c) an API error in English ----------------------------------------------------------------


@pytest.mark.django_db
def test_api_validation_error_follows_accept_language(client):
    make_user(email="smelter@market.test")
    response = client.post(
        "/api/v1/auth/token/",
        {"email": "smelter@market.test", "password": PASSWORD + "-wrong"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert 400 <= response.status_code < 500
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert body["message"] == "Incorrect email or password."


def test_amounts_have_thousands_separators_in_chinese():
    from decimal import Decimal

    from django.template import Context, Template
    from django.utils import translation

    with translation.override("zh-hans"):
        assert Template('{{ v|floatformat:"2g" }}').render(Context({"v": Decimal("69332")})) == "69,332.00"


def test_spec_errors_use_the_english_label_in_english():
    from django.core.exceptions import ValidationError
    from django.utils import translation

    from listings.specs import specs_validate

    schema = [
        {"key": "fe_pct", "label": "铁含量", "label_en": "Fe content", "type": "number", "min": 0, "max": 100}
    ]
    for language, label in (("en", "Fe content"), ("zh-hans", "铁含量")):
        with translation.override(language), pytest.raises(ValidationError) as exc:
            specs_validate(schema, {"fe_pct": 120})
        assert label in exc.value.error_dict["specs.fe_pct"][0].messages[0]
