"""Spec schemas of catalogue categories and the validation of a lot's specs against them.

Pure: no database. A category's ``spec_schema`` is a list of field dicts::

    {"key": "fe_pct", "label": "铁含量", "label_en": "Fe content", "type": "number", "unit": "%",
     "min": 0, "max": 100, "required": False, "help": "..."}

Field attributes (only ``key``, ``label`` and ``type`` are mandatory):

``key``        lower-case identifier, unique within a schema (``^[a-z][a-z0-9_]*$``)
``label``      Chinese label shown to people; ``label_en`` the English one
``type``       ``number`` (Decimal, cleaned to a plain decimal string such as ``"98.5"``),
               ``integer`` (cleaned to ``int``), ``choice`` (cleaned to the choice value, a ``str``),
               ``text`` (cleaned to a stripped ``str``), ``bool`` (cleaned to ``bool``)
``unit``       unit shown after the value (``%``, ``mm``, ``mg/kg``)
``min``/``max``  inclusive bounds, only for ``number`` and ``integer``
``choices``    for ``choice`` only and then mandatory: ``[[value, label], ...]`` or
               ``[[value, label, label_en], ...]`` with unique non-empty string values
``max_length`` for ``text`` only (default 200)
``required``   bool, default ``False``
``help``/``help_en``  a hint shown under the field

A category's effective schema is its ancestors' fields followed by its own, a child's field
replacing the ancestor's field with the same key in place: ``schema_merge`` (root first).
"""

import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext as _

FIELD_TYPES = ("number", "integer", "choice", "text", "bool")
FIELD_ATTRS = frozenset(
    {
        "key",
        "label",
        "label_en",
        "type",
        "unit",
        "min",
        "max",
        "choices",
        "required",
        "help",
        "help_en",
        "max_length",
    }
)
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
TEXT_MAX_LENGTH = 200
TRUE_WORDS = frozenset({"true", "1", "yes", "on", "是"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", "否"})


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | Decimal):
        return not isinstance(value, Decimal) or value.is_finite()
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return False


def _dec(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def schema_check(schema) -> None:
    """Raise ``ValueError`` naming the first problem of a malformed schema; return ``None`` if sound."""
    if not isinstance(schema, list):
        raise ValueError("spec schema must be a list of field objects")
    seen: set[str] = set()
    for index, field in enumerate(schema):
        where = f"field {index}"
        if not isinstance(field, dict):
            raise ValueError(f"{where}: must be an object")
        unknown = sorted(set(field) - FIELD_ATTRS)
        if unknown:
            raise ValueError(f"{where}: unknown attribute(s) {', '.join(unknown)}")
        key = field.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise ValueError(f"{where}: key must match {KEY_RE.pattern}, got {key!r}")
        where = f"field {key!r}"
        if key in seen:
            raise ValueError(f"{where}: duplicate key")
        seen.add(key)
        for attr in ("label", "label_en", "unit", "help", "help_en"):
            if attr in field and not isinstance(field[attr], str):
                raise ValueError(f"{where}: {attr} must be a string")
        if not (field.get("label") or "").strip():
            raise ValueError(f"{where}: label is required")
        ftype = field.get("type")
        if ftype not in FIELD_TYPES:
            raise ValueError(f"{where}: unknown type {ftype!r} (expected one of {', '.join(FIELD_TYPES)})")
        if "required" in field and not isinstance(field["required"], bool):
            raise ValueError(f"{where}: required must be true or false")
        for bound in ("min", "max"):
            if bound in field:
                if ftype not in ("number", "integer"):
                    raise ValueError(f"{where}: {bound} applies to number and integer fields only")
                if not _is_number(field[bound]):
                    raise ValueError(f"{where}: {bound} must be a number")
        if "min" in field and "max" in field and _dec(field["min"]) > _dec(field["max"]):
            raise ValueError(f"{where}: min is greater than max")
        if "max_length" in field:
            if ftype != "text":
                raise ValueError(f"{where}: max_length applies to text fields only")
            ml = field["max_length"]
            if isinstance(ml, bool) or not isinstance(ml, int) or ml < 1:
                raise ValueError(f"{where}: max_length must be a positive integer")
        if ftype == "choice":
            choices = field.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ValueError(f"{where}: a choice field needs a non-empty list of choices")
            values: set[str] = set()
            for choice in choices:
                if not isinstance(choice, list | tuple) or len(choice) not in (2, 3):
                    raise ValueError(
                        f"{where}: each choice must be [value, label] or [value, label, label_en]"
                    )
                if not all(isinstance(part, str) and part.strip() for part in choice):
                    raise ValueError(f"{where}: choice values and labels must be non-empty strings")
                if choice[0] in values:
                    raise ValueError(f"{where}: duplicate choice {choice[0]!r}")
                values.add(choice[0])
        elif "choices" in field:
            raise ValueError(f"{where}: choices apply to choice fields only")


def schema_merge(schemas) -> list[dict]:
    """Merge schemas given root first: a later field with the same key replaces the earlier one in
    its position; new keys are appended. The input is not modified."""
    merged: dict[str, dict] = {}
    for schema in schemas:
        for field in schema or []:
            merged[field["key"]] = dict(field)
    return list(merged.values())


def _limit(value, field) -> str:
    unit = field.get("unit") or ""
    return f"{value} {unit}" if unit else f"{value}"


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _label(field) -> str:
    """The field's label in the active language (the schema holds Chinese and English)."""
    if _english() and field.get("label_en"):
        return field["label_en"]
    return field.get("label") or field["key"]


def _error(field, code: str, message: str, **params) -> ValidationError:
    return ValidationError(message % {"label": _label(field), **params}, code=code)


def _clean_number(field, value):
    if _is_number(value):
        number = _dec(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace("，", "").replace(",", ""))
        except InvalidOperation:
            number = None
        if number is not None and not number.is_finite():
            number = None
    else:
        number = None
    if number is None:
        raise _error(field, "spec_type", _("%(label)s 必须是数字。"))
    if field["type"] == "integer":
        if number != number.to_integral_value():
            raise _error(field, "spec_type", _("%(label)s 必须是整数。"))
        number = int(number)
    if "min" in field and number < _dec(field["min"]):
        raise _error(
            field, "spec_min", _("%(label)s 不能小于 %(limit)s。"), limit=_limit(field["min"], field)
        )
    if "max" in field and number > _dec(field["max"]):
        raise _error(
            field, "spec_max", _("%(label)s 不能大于 %(limit)s。"), limit=_limit(field["max"], field)
        )
    if isinstance(number, int):
        return number
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _clean_bool(field, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _error(field, "spec_type", _("%(label)s 只能填“是”或“否”。"))


def _clean_choice(field, value):
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        value = value.strip()
        for choice in field["choices"]:
            if value == choice[0]:
                return value
    english = _english()
    labels = _("、").join(
        (choice[2] if english and len(choice) > 2 else choice[1]) for choice in field["choices"]
    )
    raise _error(field, "spec_choice", _("%(label)s 只能选择：%(choices)s。"), choices=labels)


def _clean_text(field, value):
    if not isinstance(value, str):
        raise _error(field, "spec_type", _("%(label)s 必须是文字。"))
    value = value.strip()
    limit = field.get("max_length", TEXT_MAX_LENGTH)
    if len(value) > limit:
        raise _error(field, "spec_max", _("%(label)s 最多 %(limit)s 个字。"), limit=limit)
    return value


CLEANERS = {
    "number": _clean_number,
    "integer": _clean_number,
    "bool": _clean_bool,
    "choice": _clean_choice,
    "text": _clean_text,
}


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def specs_validate(schema: list[dict], specs: dict) -> dict:
    """Return the cleaned specs, in schema order, blank optional values left out; or raise one
    ``ValidationError`` whose dict names every bad key as ``specs.<key>``."""
    if specs is None:
        specs = {}
    if not isinstance(specs, dict):
        raise ValidationError({"specs": ValidationError(_("规格格式不正确。"), code="spec_type")})
    errors: dict[str, ValidationError] = {}
    fields = {field["key"]: field for field in schema}
    for key in specs:
        if key not in fields:
            errors[f"specs.{key}"] = ValidationError(
                _("该品类没有规格项“%(key)s”。") % {"key": key}, code="spec_unknown"
            )
    cleaned: dict = {}
    for key, field in fields.items():
        value = specs.get(key)
        if _blank(value):
            if field.get("required"):
                errors[f"specs.{key}"] = _error(field, "spec_required", _("请填写 %(label)s。"))
            continue
        try:
            cleaned[key] = CLEANERS[field["type"]](field, value)
        except ValidationError as exc:
            errors[f"specs.{key}"] = exc
    if errors:
        raise ValidationError(errors)
    return cleaned
