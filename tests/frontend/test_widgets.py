"""The long selects (catalogue, regions) render what Django's own select would."""

import pytest
from django import forms
from pytest_django.asserts import assertHTMLEqual

from frontend.widgets import LongSelect

CHOICES = [
    ("", "全国"),
    ("河北省", [("130000", "河北省（全省）"), ("130200", "唐山市")]),
    ("x&y", "A<B>"),  # escaped, never markup
]


@pytest.mark.parametrize("value", ["", "130200", "x&y", "nothing-offered"])
def test_a_long_select_renders_as_djangos_select(value):
    attrs = {"id": "id_region", "class": "field"}
    assertHTMLEqual(
        LongSelect(choices=CHOICES, attrs=attrs).render("region", value),
        forms.Select(choices=CHOICES, attrs=attrs).render("region", value),
    )
