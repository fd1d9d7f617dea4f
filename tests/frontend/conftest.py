import pytest

# province > city > county for the two test counties of tests/factories.py.
TEST_REGIONS = [
    ("130000", "河北省", "province", None),
    ("130200", "唐山市", "city", "130000"),
    ("130203", "路北区", "county", "130200"),
    ("320000", "江苏省", "province", None),
    ("320500", "苏州市", "city", "320000"),
    ("320506", "吴中区", "county", "320500"),
]


@pytest.fixture(autouse=True)
def _test_regions(db):
    """The regions data migration loads these; create them only if it has not (yet)."""
    from market.core.models import Region

    for code, name, level, parent in TEST_REGIONS:
        Region.objects.get_or_create(code=code, defaults={"name": name, "level": level, "parent_id": parent})
