# Day rows of the statistics rollups are kept for the provinces and the nation only; a city's or a
# county's days are summed from the trade facts through a covering index (pricing.rollups).

from django.db import migrations, models


def day_rows_of_cities_and_counties_delete(apps, schema_editor):
    """The rows no longer kept (the month rows of every level stay as they are)."""
    VolumeRollup = apps.get_model("pricing", "VolumeRollup")
    VolumeRollup.objects.filter(grain="day", level__in=["city", "county"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_notification_idempotency"),
        ("listings", "0005_search_vector"),
        ("pricing", "0003_indices"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="tradefact",
            name="tradefact_region_settled",
        ),
        migrations.AddIndex(
            model_name="tradefact",
            index=models.Index(
                fields=["region", "settled_at"],
                include=("category", "quantity_t", "amount", "voided_at"),
                name="tradefact_region_cover",
            ),
        ),
        migrations.RunPython(day_rows_of_cities_and_counties_delete, migrations.RunPython.noop),
    ]
