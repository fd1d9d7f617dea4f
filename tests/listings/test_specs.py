"""Spec schemas (``listings.specs``): the schema check, validation of a lot's specs, inheritance."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from listings.specs import schema_check, schema_merge, specs_validate

SCHEMA = [
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
    {"key": "pieces", "label": "件数", "type": "integer", "min": 1, "max": 1000},
    {
        "key": "grade",
        "label": "等级",
        "type": "choice",
        "choices": [["HMS1", "重废一级"], ["HMS2", "重废二级", "HMS 2"]],
    },
    {"key": "note", "label": "备注", "type": "text", "max_length": 10},
    {"key": "baled", "label": "是否打包", "type": "bool"},
]


def errors_of(schema, specs) -> dict[str, set[str]]:
    with pytest.raises(ValidationError) as info:
        specs_validate(schema, specs)
    return {key: {e.code for e in errs} for key, errs in info.value.error_dict.items()}


def messages_of(schema, specs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        specs_validate(schema, specs)
    return info.value.message_dict


# --- schema_check ----------------------------------------------------------------------------------


def test_sound_schema_passes():
    schema_check(SCHEMA)
    schema_check([])


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"key": "a"}, "list"),
        (["a"], "object"),
        ([{"key": "a", "label": "甲", "type": "date"}], "unknown type"),
        ([{"key": "a", "label": "甲"}], "unknown type"),
        (
            [{"key": "a", "label": "甲", "type": "text"}, {"key": "a", "label": "乙", "type": "text"}],
            "duplicate key",
        ),
        ([{"key": "a", "label": "甲", "type": "number", "min": 5, "max": 1}], "min is greater than max"),
        ([{"key": "a", "label": "甲", "type": "choice"}], "choices"),
        ([{"key": "a", "label": "甲", "type": "choice", "choices": []}], "choices"),
        ([{"key": "a", "label": "甲", "type": "choice", "choices": [["x"]]}], "choice"),
        (
            [{"key": "a", "label": "甲", "type": "choice", "choices": [["x", "叉"], ["x", "又"]]}],
            "duplicate choice",
        ),
        ([{"key": "a", "label": "甲", "type": "choice", "choices": [["", "空"]]}], "non-empty"),
        ([{"key": "a", "label": "甲", "type": "text", "choices": [["x", "叉"]]}], "choice fields only"),
        ([{"key": "a", "label": "甲", "type": "text", "min": 1}], "number and integer"),
        ([{"key": "a", "label": "甲", "type": "number", "min": "1"}], "must be a number"),
        ([{"key": "a", "label": "甲", "type": "number", "max": True}], "must be a number"),
        ([{"key": "a", "label": "甲", "type": "number", "required": "yes"}], "required"),
        ([{"key": "a", "label": "甲", "type": "number", "maximum": 3}], "unknown attribute"),
        ([{"key": "Fe-pct", "label": "甲", "type": "number"}], "key"),
        ([{"label": "甲", "type": "number"}], "key"),
        ([{"key": "a", "label": " ", "type": "number"}], "label"),
        ([{"key": "a", "label": "甲", "type": "number", "max_length": 3}], "text fields only"),
        ([{"key": "a", "label": "甲", "type": "text", "max_length": 0}], "positive"),
    ],
)
def test_malformed_schema_is_refused(schema, words):
    with pytest.raises(ValueError, match=words):
        schema_check(schema)


# --- specs_validate --------------------------------------------------------------------------------


def test_good_specs_are_cleaned():
    cleaned = specs_validate(
        SCHEMA, {"fe_pct": 98.5, "pieces": "12", "grade": " HMS2 ", "note": " 无油污 ", "baled": "true"}
    )
    assert cleaned == {"fe_pct": "98.5", "pieces": 12, "grade": "HMS2", "note": "无油污", "baled": True}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (98.5, "98.5"),
        ("98.50", "98.5"),
        (Decimal("100"), "100"),
        (0, "0"),
        ("0.000", "0"),
        ("1e2", "100"),
        (" 7 ", "7"),
    ],
)
def test_numbers_become_plain_decimal_strings(value, expected):
    cleaned = specs_validate(SCHEMA, {"fe_pct": value})
    assert cleaned == {"fe_pct": expected}
    assert Decimal(cleaned["fe_pct"]) == Decimal(str(value).strip())


def test_blank_optional_values_are_left_out():
    assert specs_validate(SCHEMA, {"fe_pct": "90", "pieces": None, "note": "  ", "grade": ""}) == {
        "fe_pct": "90"
    }


def test_none_specs_means_no_specs():
    assert specs_validate([], None) == {}


@pytest.mark.parametrize(
    ("specs", "key", "code"),
    [
        ({}, "specs.fe_pct", "spec_required"),
        ({"fe_pct": None}, "specs.fe_pct", "spec_required"),
        ({"fe_pct": " "}, "specs.fe_pct", "spec_required"),
        ({"fe_pct": 90, "colour": "red"}, "specs.colour", "spec_unknown"),
        ({"fe_pct": "ninety"}, "specs.fe_pct", "spec_type"),
        ({"fe_pct": True}, "specs.fe_pct", "spec_type"),
        ({"fe_pct": [90]}, "specs.fe_pct", "spec_type"),
        ({"fe_pct": "NaN"}, "specs.fe_pct", "spec_type"),
        ({"fe_pct": float("inf")}, "specs.fe_pct", "spec_type"),
        ({"fe_pct": 90, "pieces": 2.5}, "specs.pieces", "spec_type"),
        ({"fe_pct": 90, "pieces": "3.5"}, "specs.pieces", "spec_type"),
        ({"fe_pct": -0.1}, "specs.fe_pct", "spec_min"),
        ({"fe_pct": 90, "pieces": 0}, "specs.pieces", "spec_min"),
        ({"fe_pct": "100.01"}, "specs.fe_pct", "spec_max"),
        ({"fe_pct": 90, "pieces": 1001}, "specs.pieces", "spec_max"),
        ({"fe_pct": 90, "grade": "HMS3"}, "specs.grade", "spec_choice"),
        ({"fe_pct": 90, "grade": "重废一级"}, "specs.grade", "spec_choice"),
        ({"fe_pct": 90, "baled": "maybe"}, "specs.baled", "spec_type"),
        ({"fe_pct": 90, "baled": 2}, "specs.baled", "spec_type"),
        ({"fe_pct": 90, "note": 5}, "specs.note", "spec_type"),
        ({"fe_pct": 90, "note": "一二三四五六七八九十十"}, "specs.note", "spec_max"),
    ],
)
def test_each_bad_value_has_its_code_under_its_key(specs, key, code):
    errors = errors_of(SCHEMA, specs)
    assert key in errors, errors
    assert code in errors[key]


def test_every_bad_key_is_reported_at_once():
    errors = errors_of(SCHEMA, {"fe_pct": 120, "pieces": "x", "grade": "nope", "extra": 1})
    assert errors == {
        "specs.fe_pct": {"spec_max"},
        "specs.pieces": {"spec_type"},
        "specs.grade": {"spec_choice"},
        "specs.extra": {"spec_unknown"},
    }


def test_specs_must_be_an_object():
    assert errors_of(SCHEMA, ["fe_pct"]) == {"specs": {"spec_type"}}


def test_messages_are_chinese_and_name_the_field():
    messages = messages_of(SCHEMA, {"fe_pct": 120, "grade": "x", "extra": 1})
    assert messages["specs.fe_pct"] == ["铁含量 不能大于 100 %。"]
    assert messages["specs.grade"] == ["等级 只能选择：重废一级、重废二级。"]
    assert "extra" in messages["specs.extra"][0]
    assert messages_of(SCHEMA, {})["specs.fe_pct"] == ["请填写 铁含量。"]
    assert messages_of(SCHEMA, {"fe_pct": 90, "pieces": 0})["specs.pieces"] == ["件数 不能小于 1。"]


def test_optional_field_without_required_attribute():
    schema = [{"key": "a", "label": "甲", "type": "number"}]
    assert specs_validate(schema, {}) == {}
    assert specs_validate(schema, {"a": "-3.25"}) == {"a": "-3.25"}


# --- schema_merge ----------------------------------------------------------------------------------

ROOT = [
    {"key": "fe_pct", "label": "铁含量", "type": "number", "min": 0, "max": 100},
    {"key": "impurity_pct", "label": "杂质率", "type": "number", "min": 0, "max": 100},
]
CHILD = [
    {"key": "thickness_mm", "label": "最小厚度", "type": "number", "min": 6, "max": 500},
    {"key": "fe_pct", "label": "铁含量", "type": "number", "min": 90, "max": 100, "required": True},
]


def test_merge_inherits_and_child_overrides_in_place():
    merged = schema_merge([ROOT, [], CHILD])
    assert [f["key"] for f in merged] == ["fe_pct", "impurity_pct", "thickness_mm"]
    assert merged[0]["min"] == 90 and merged[0]["required"] is True
    schema_check(merged)
    assert "specs.fe_pct" in errors_of(merged, {"fe_pct": 85})
    assert specs_validate(merged, {"fe_pct": 95, "impurity_pct": 1, "thickness_mm": 8}) == {
        "fe_pct": "95",
        "impurity_pct": "1",
        "thickness_mm": "8",
    }
    # The parent alone still accepts what the child refuses, and nothing was modified.
    assert specs_validate(ROOT, {"fe_pct": 85}) == {"fe_pct": "85"}
    assert ROOT[0]["min"] == 0 and "required" not in ROOT[0]


def test_merge_of_nothing_is_empty():
    assert schema_merge([]) == []
    assert schema_merge([None, []]) == []


# --- properties ------------------------------------------------------------------------------------

bounds = st.tuples(
    st.decimals(min_value=-(10**6), max_value=10**6, places=3),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3),
).map(sorted)


@given(bounds=bounds, data=st.data())
def test_numbers_inside_the_bounds_always_pass(bounds, data):
    lo, hi = bounds
    schema = [{"key": "x", "label": "值", "type": "number", "min": lo, "max": hi, "required": True}]
    schema_check(schema)
    value = data.draw(st.decimals(min_value=lo, max_value=hi, places=4) | st.sampled_from([lo, hi]))
    cleaned = specs_validate(schema, {"x": value})
    assert Decimal(cleaned["x"]) == value
    assert specs_validate(schema, {"x": str(value)}) == cleaned


@given(bounds=bounds, excess=st.decimals(min_value="0.0001", max_value=10**6, places=4), below=st.booleans())
def test_numbers_outside_the_bounds_always_fail(bounds, excess, below):
    lo, hi = bounds
    schema = [{"key": "x", "label": "值", "type": "number", "min": lo, "max": hi}]
    value = lo - excess if below else hi + excess
    assert errors_of(schema, {"x": value}) == {"specs.x": {"spec_min" if below else "spec_max"}}
    assert errors_of(schema, {"x": str(value)}) == {"specs.x": {"spec_min" if below else "spec_max"}}


@given(lo=st.integers(-1000, 1000), span=st.integers(0, 1000), data=st.data())
def test_integers_inside_pass_and_outside_fail(lo, span, data):
    hi = lo + span
    schema = [{"key": "n", "label": "数", "type": "integer", "min": lo, "max": hi}]
    inside = data.draw(st.integers(lo, hi))
    assert specs_validate(schema, {"n": inside}) == {"n": inside}
    outside = data.draw(st.integers(hi + 1, hi + 1000) | st.integers(lo - 1000, lo - 1))
    assert errors_of(schema, {"n": outside}) == {"specs.n": {"spec_max" if outside > hi else "spec_min"}}


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=100))
def test_floats_in_range_round_trip_through_their_repr(value):
    cleaned = specs_validate(
        [{"key": "p", "label": "比例", "type": "number", "min": 0, "max": 100}], {"p": value}
    )
    assert Decimal(cleaned["p"]) == Decimal(repr(value))
