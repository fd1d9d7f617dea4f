"""GB 32100-2015 unified social credit codes: properties of the check character."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.accounts.uscc import ALPHABET, CATEGORIES, USCCError, check_char, uscc_make, uscc_validate

authority_category = st.sampled_from([(a, c) for a, cats in CATEGORIES.items() for c in cats])
division = st.text(alphabet="0123456789", min_size=6, max_size=6)
org_code = st.text(alphabet=ALPHABET, min_size=9, max_size=9)


@st.composite
def valid_codes(draw):
    authority, category = draw(authority_category)
    return uscc_make(draw(division), draw(org_code), authority=authority, category=category)


@given(valid_codes())
def test_every_generated_valid_code_passes(code):
    assert uscc_validate(code) == code
    assert uscc_validate(f"  {code.lower()} ") == code  # users paste with spaces and lower case


@given(valid_codes(), st.integers(min_value=0, max_value=17), st.sampled_from(ALPHABET + "IOSVZ*a0"))
def test_every_single_character_change_fails(code, position, replacement):
    replacement = replacement.upper()
    if code[position] == replacement:
        return
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(USCCError):
        uscc_validate(changed)


@pytest.mark.parametrize(
    "code",
    [
        "91350100M000100Y43",  # published sample codes of real enterprises
        "91110000600037341L",
        "91310000132200821H",
    ],
)
def test_real_world_codes_pass(code):
    assert uscc_validate(code) == code


@pytest.mark.parametrize(
    ("value", "error_code"),
    [
        ("", "uscc_length"),
        ("9135010", "uscc_length"),
        ("91350100M000100Y4O", "uscc_characters"),
        ("Z1350100M000100Y43", "uscc_characters"),
        ("B1350100M000100Y43", "uscc_category"),
        ("913501A0M000100Y43", "uscc_division"),
        ("91350100M000100Y44", "uscc_checksum"),
    ],
)
def test_errors_say_what_is_wrong(value, error_code):
    with pytest.raises(USCCError) as exc:
        uscc_validate(value)
    assert exc.value.code == error_code
    assert exc.value.message  # a sentence in Chinese for the form


def test_check_char_is_in_alphabet_and_zero_when_sum_divisible():
    assert check_char("0" * 17) == "0"
