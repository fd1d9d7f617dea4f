"""Load the catalogue tree from ``listings.catalogue_data`` (parents before children).

Forward: create or update every category of the data module. Reverse: delete those categories,
deepest first (lots referring to them block the reverse, by design: ``on_delete=PROTECT``).
"""

from django.db import migrations

FIELDS = (
    "name",
    "name_en",
    "depth",
    "sort_order",
    "unit",
    "tonnes_per_unit",
    "hazardous",
    "hw_code",
    "spec_schema",
    "min_lot_tonnes",
    "description",
    "is_active",
)


def catalogue_load(apps, schema_editor):
    from listings.catalogue_data import CATEGORIES

    Category = apps.get_model("listings", "Category")
    for row in CATEGORIES:
        defaults = {name: row[name] for name in FIELDS}
        defaults["parent_id"] = row["parent"]
        Category.objects.update_or_create(code=row["code"], defaults=defaults)


def catalogue_unload(apps, schema_editor):
    from listings.catalogue_data import CATEGORIES

    Category = apps.get_model("listings", "Category")
    for row in sorted(CATEGORIES, key=lambda r: -r["depth"]):
        Category.objects.filter(code=row["code"]).delete()


class Migration(migrations.Migration):
    dependencies = [("listings", "0001_initial")]

    operations = [migrations.RunPython(catalogue_load, catalogue_unload)]
