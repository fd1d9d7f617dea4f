"""Economic zones: named groups of provinces for index series, statistics and search filters.

A zone is a set of whole provinces (two-digit GB/T 2260 prefixes), so zones defined on cities are
approximated by the provinces that hold them: 珠三角 is all of 广东, 关中平原 takes in 陕西, 山西 and
甘肃, 北部湾 广西 and 海南. Zones overlap on purpose (广东 is in 粤港澳大湾区, 珠三角 and 东部地区).

The first group are the national regional strategies and city clusters; the second are the four
regions of the National Bureau of Statistics (东部, 中部, 西部, 东北), which together cover the
31 mainland provinces exactly once.
"""

from django.db import migrations

# (code, name, name_en, two-digit province prefixes)
ZONES = [
    ("jingjinji", "京津冀", "Beijing-Tianjin-Hebei", ["11", "12", "13"]),
    ("yangtze-river-delta", "长三角", "Yangtze River Delta", ["31", "32", "33", "34"]),
    ("greater-bay-area", "粤港澳大湾区", "Guangdong-Hong Kong-Macao Greater Bay Area", ["44", "81", "82"]),
    ("pearl-river-delta", "珠三角", "Pearl River Delta", ["44"]),
    ("chengdu-chongqing", "成渝", "Chengdu-Chongqing", ["50", "51"]),
    ("middle-yangtze", "长江中游", "Middle Reaches of the Yangtze River", ["42", "43", "36"]),
    ("central-plains", "中原", "Central Plains", ["41"]),
    ("guanzhong-plain", "关中平原", "Guanzhong Plain", ["61", "14", "62"]),
    ("shandong-peninsula", "山东半岛", "Shandong Peninsula", ["37"]),
    ("west-strait", "海峡西岸", "West Coast of the Taiwan Strait", ["35"]),
    ("beibu-gulf", "北部湾", "Beibu Gulf", ["45", "46"]),
    ("harbin-changchun", "哈长", "Harbin-Changchun", ["22", "23"]),
    (
        "yangtze-economic-belt",
        "长江经济带",
        "Yangtze River Economic Belt",
        ["31", "32", "33", "34", "36", "42", "43", "50", "51", "52", "53"],
    ),
    (
        "yellow-river-basin",
        "黄河流域",
        "Yellow River Basin",
        ["63", "51", "62", "64", "15", "14", "61", "41", "37"],
    ),
    ("east", "东部地区", "Eastern Region", ["11", "12", "13", "31", "32", "33", "35", "37", "44", "46"]),
    ("central", "中部地区", "Central Region", ["14", "34", "36", "41", "42", "43"]),
    (
        "west",
        "西部地区",
        "Western Region",
        ["15", "45", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65"],
    ),
    ("northeast", "东北地区", "Northeast Region", ["21", "22", "23"]),
]


def load(apps, schema_editor):
    EconomicZone = apps.get_model("core", "EconomicZone")
    Region = apps.get_model("core", "Region")
    db = schema_editor.connection.alias

    provinces = {r.code[:2]: r for r in Region.objects.using(db).filter(level="province")}
    for order, (code, name, name_en, prefixes) in enumerate(ZONES, start=1):
        zone = EconomicZone.objects.using(db).create(
            code=code, name=name, name_en=name_en, sort_order=order * 10
        )
        zone.provinces.set([provinces[p] for p in prefixes])


def unload(apps, schema_editor):
    EconomicZone = apps.get_model("core", "EconomicZone")
    EconomicZone.objects.using(schema_editor.connection.alias).filter(code__in=[z[0] for z in ZONES]).delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0002_regions_load")]

    operations = [migrations.RunPython(load, unload, elidable=False)]
