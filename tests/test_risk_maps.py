"""The offline risk maps: four-colour grid map, heatmap and coverage gaps, on small frames."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import geopandas as gpd
import numpy as np
import pytest
import shapely

from wangge.geo.rules import LEVEL_COLOURS, LEVEL_ZH
from wangge.maps._svg import OSM_COPYRIGHT, SAMPLE_BANNER
from wangge.maps.risk_maps import (
    density_raster,
    kernel_density,
    write_gap_maps,
    write_heatmap,
    write_risk_map,
)

CRS = "EPSG:4549"
X0, Y0, SIDE = 480000.0, 3545000.0, 200.0
LEVELS = ["red", "orange", "yellow", "blue", "red", "blue"]
HOTSPOT = ["hot", "", "", "", "", "cold"]


class Tags(HTMLParser):
    """Every start tag with its attributes; fails on what the parser cannot close."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def having(self, tag: str, cls: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag and cls in (a.get("class") or "").split()]


def parse(path) -> tuple[str, Tags]:
    text = path.read_text("utf-8")
    tags = Tags()
    tags.feed(text)
    tags.close()
    return text, tags


def assert_offline(text: str) -> None:
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)
    assert refs, "expected at least the copyright link"
    for ref in refs:
        assert ref == OSM_COPYRIGHT or ref.startswith(("#", "data:image/png")), ref
    assert not re.findall(
        r"https?://", text.replace(OSM_COPYRIGHT, "").replace("http://www.w3.org/2000/svg", "")
    )


def assert_common(text: str, sample: bool) -> None:
    assert "© OpenStreetMap contributors, ODbL 1.0" in text
    assert "OpenStreetMap 贡献者" in text
    assert (SAMPLE_BANNER in text) == sample
    assert_offline(text)


@pytest.fixture()
def grids() -> gpd.GeoDataFrame:
    boxes = [
        shapely.box(X0 + i * SIDE, Y0 + j * SIDE, X0 + (i + 1) * SIDE, Y0 + (j + 1) * SIDE)
        for j in range(2)
        for i in range(3)
    ]
    n = len(boxes)
    return gpd.GeoDataFrame(
        {
            "code": [f"G{k:02d}" for k in range(n)],
            "name": [f"网格{k}" for k in range(n)],
            "households": [120, 80, 200, 60, 150, 90],
            "n_red": [2, 0, 0, 0, 1, 0],
            "n_orange": [1, 1, 0, 0, 0, 0],
            "n_yellow": [0, 0, 1, 0, 0, 0],
            "n_blue": [0, 0, 0, 1, 0, 1],
            "score": [22.0, 4.0, 2.0, 1.0, 9.0, 1.0],
            "score_per_100hh": [18.3, 5.0, 1.0, 1.7, 6.0, 1.1],
            "level": LEVELS,
            "level_zh": [LEVEL_ZH[lv] for lv in LEVELS],
            "colour": [LEVEL_COLOURS[lv] for lv in LEVELS],
            "exposed_households": [40, 0, 0, 0, 10, 0],
            "exposed_vulnerable": [5, 0, 0, 0, 1, 0],
            "gi_z": [2.5, 0.3, -0.1, np.nan, 1.0, -2.2],
            "gi_p": [0.01, 0.7, 0.9, np.nan, 0.3, 0.03],
            "hotspot": HOTSPOT,
            "sample": False,
        },
        geometry=boxes,
        crs=CRS,
    )


def make_points(sample: bool) -> gpd.GeoDataFrame:
    # a heavy cluster of red points in the first grid, a few light ones in the last
    xy = [(X0 + 90, Y0 + 100), (X0 + 110, Y0 + 100), (X0 + 100, Y0 + 110), (X0 + 520, Y0 + 300)]
    levels = ["red", "red", "orange", "blue"]
    return gpd.GeoDataFrame(
        {
            "risk_id": [f"R{k}" for k in range(len(xy))],
            "name": ["加油站", "仓库", "工地", "小店"],
            "category_zh": ["安全生产", "消防安全", "安全生产", "社会治安"],
            "level": levels,
            "level_zh": [LEVEL_ZH[lv] for lv in levels],
            "colour": [LEVEL_COLOURS[lv] for lv in levels],
            "score": [25, 20, 12, 2],
            "method": ["matrix", "matrix", "lec", "matrix"],
            "sample": [sample, False, False, False],
        },
        geometry=shapely.points(xy),
        crs=CRS,
    )


def make_zones() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "risk_id": ["Z1"],
            "name": ["河道"],
            "category_zh": ["自然灾害"],
            "kind": ["flood"],
            "level": ["orange"],
            "level_zh": [LEVEL_ZH["orange"]],
            "colour": [LEVEL_COLOURS["orange"]],
            "score": [12],
            "method": ["matrix"],
            "sample": [False],
        },
        geometry=[shapely.box(X0 + 250, Y0 + 50, X0 + 350, Y0 + 350)],
        crs=CRS,
    )


@pytest.mark.parametrize("sample", [False, True])
def test_risk_map_draws_each_grid_and_point_in_its_colour(tmp_path, grids, sample):
    points = make_points(sample)
    path = write_risk_map(tmp_path / "risk.html", grids, points, make_zones(), title="风险 risk")
    text, tags = parse(path)
    assert_common(text, sample)
    for term in ("重大风险", "较大风险", "一般风险", "低风险", "major risk", "low risk", "Gi*"):
        assert term in text
    for term in ("热点 hot spot", "冷点 cold spot", "风险点 risk point", "风险区 risk zone"):
        assert term in text
    cells = tags.having("path", "grid")
    assert [c["data-code"] for c in cells] == grids["code"].tolist()
    assert [c["fill"] for c in cells] == grids["colour"].tolist()
    assert len(tags.having("path", "hot")) == 1 and len(tags.having("path", "cold")) == 1
    assert tags.having("path", "hot")[0]["stroke-dasharray"]
    dots = tags.having("circle", "point")
    assert len(dots) == len(points)
    assert sorted(d["fill"] for d in dots) == sorted(points["colour"])
    assert len(tags.having("path", "zone")) == 1
    # the summary table counts grids per level
    table = text[text.index('id="summary"') :]
    assert re.search(r"重大风险 red</td><td>2</td><td>270</td>", table)


def test_kernel_density_keeps_the_mass_and_peaks_at_the_heavy_cluster():
    xs, ys = density_raster((0, 0, 4000, 3000), 20.0)
    assert len(xs) == 200 and len(ys) == 150 and ys[0] > ys[-1]
    heavy = np.array([[1000.0, 1000.0], [1040.0, 1000.0], [1000.0, 1040.0]])
    light = np.array([[3000.0, 2000.0], [3040.0, 2000.0]])
    xy = np.vstack([heavy, light])
    w = np.array([9.0, 9.0, 4.0, 1.0, 1.0])
    dens = kernel_density(xy, w, (xs, ys), bandwidth_m=150.0)
    assert dens.shape == (150, 200)
    assert dens.sum() * 20.0**2 == pytest.approx(w.sum(), rel=1e-3)
    iy, ix = np.unravel_index(np.argmax(dens), dens.shape)
    assert np.hypot(xs[ix] - 1013, ys[iy] - 1013) < 40
    # nothing beyond three bandwidths of every point
    far = np.hypot(xs[None, :] - 2000, ys[:, None] - 2800) < 50
    assert dens[far].max() == 0.0
    assert not kernel_density(np.empty((0, 2)), [], (xs, ys), 150.0).any()


@pytest.mark.parametrize("sample", [False, True])
def test_heatmap_is_an_offline_image_with_ramp_legend(tmp_path, grids, sample):
    points = make_points(sample)
    path = write_heatmap(tmp_path / "heat.html", points, make_zones(), grids, bandwidth_m=150)
    text, tags = parse(path)
    assert_common(text, sample)
    for term in ("低 low", "高 high", "带宽 bandwidth 150 m", "Gaussian kernel"):
        assert term in text
    (image,) = [a for t, a in tags.tags if t == "image"]
    assert image["href"].startswith("data:image/png;base64,")
    assert len(tags.having("path", "grid")) == len(grids)
    assert len(tags.having("circle", "point")) == len(points)
    assert path.stat().st_size < 3_000_000


def make_gap_inputs(sample: bool):
    bxy = [(X0 + 50 + 100 * i, Y0 + 50 + 100 * j) for j in range(4) for i in range(6)]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{k}" for k in range(len(bxy))],
            "households": [30] * len(bxy),
            "grid_code": ["G00"] * len(bxy),
        },
        geometry=[shapely.box(x - 15, y - 15, x + 15, y + 15) for x, y in bxy],
        crs=CRS,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["F1", "F2", "F3"],
            "type": ["emergency_shelter", "emergency_shelter", "clinic"],
            "type_zh": ["紧急避难场所", "紧急避难场所", "卫生服务站"],
            "name": ["公园", "广场", "卫生站"],
            "source": ["osm", "sample" if sample else "user", "osm"],
            "sample": [False, sample, False],
            "capacity": [500.0, 200.0, np.nan],
            "load": [1.4, 0.5, np.nan],
            "over_capacity": [True, False, False],
        },
        geometry=shapely.points([(X0 + 60, Y0 + 60), (X0 + 500, Y0 + 300), (X0 + 300, Y0 + 300)]),
        crs=CRS,
    )
    rows = [
        # kind, type, households, people, straight, geometry
        ("beyond_reach", "emergency_shelter", 30, 80, False, shapely.Point(X0 + 550, Y0 + 50)),
        ("beyond_reach", "emergency_shelter", 45, 120, True, shapely.Point(X0 + 450, Y0 + 50)),
        ("over_capacity", "emergency_shelter", 30, 80, False, shapely.Point(X0 + 50, Y0 + 50)),
        ("beyond_reach", "clinic", 12, 30, False, shapely.Point(X0 + 50, Y0 + 350)),
        ("missing_required", "clinic", 150, 400, False, shapely.box(X0, Y0, X0 + 200, Y0 + 200)),
        ("exposed_vulnerable", "", 20, 7, False, shapely.Point(X0 + 150, Y0 + 150)),
    ]
    gaps = gpd.GeoDataFrame(
        {
            "gap_id": [f"P{k}" for k in range(len(rows))],
            "kind": [r[0] for r in rows],
            "type": [r[1] for r in rows],
            "type_zh": [{"clinic": "卫生服务站", "": ""}.get(r[1], "紧急避难场所") for r in rows],
            "grid_code": ["G00"] * len(rows),
            "households": [r[2] for r in rows],
            "people": [r[3] for r in rows],
            "distance_m": [720.0, 900.0, np.nan, 1200.0, np.nan, np.nan],
            "reach_m": [500.0, 500.0, 500.0, 1000.0, 1000.0, np.nan],
            "straight": [r[4] for r in rows],
            "reason": ["远 far"] * len(rows),
            "sample": False,
        },
        geometry=[r[5] for r in rows],
        crs=CRS,
    )
    types = {
        "emergency_shelter": {"zh": "紧急避难场所", "en": "emergency shelter", "reach_m": 500},
        "clinic": {"zh": "卫生服务站", "en": "health station", "reach_m": 1000},
    }
    return buildings, facilities, gaps, types


@pytest.mark.parametrize("sample", [False, True])
def test_gap_maps_one_group_per_type_with_the_uncovered_totals(tmp_path, grids, sample):
    buildings, facilities, gaps, types = make_gap_inputs(sample)
    path = write_gap_maps(tmp_path / "gaps.html", grids, buildings, facilities, gaps, types)
    text, tags = parse(path)
    assert_common(text, sample)
    groups = [a for t, a in tags.tags if t == "g" and "data-layer" in a]
    assert [g["data-layer"] for g in groups] == [*types, "exposed_vulnerable"]
    # without JS only the first layer shows
    assert "style" not in groups[0] and all(g["style"] == "display:none" for g in groups[1:])
    assert [a["data-show"] for t, a in tags.tags if t == "button"] == [
        g["data-layer"] for g in groups
    ]
    assert "<script>" in text and "直线距离 straight-line (no network)" in text
    for term in ("紧急避难场所 emergency shelter", "重点人群暴露 exposed vulnerable people"):
        assert term in text
    # 24 buildings of 30 households = 720; shelters leave 30 + 45 out, the clinic 12
    cells = re.findall(r'<td class="uncovered">([^<]*)</td>', text)
    assert cells[0].startswith("75 / 720 (10.4%), 直线 straight-line 45")
    assert cells[1].startswith("12 / 720")
    assert len(tags.having("circle", "beyond")) == 3
    assert len(tags.having("circle", "straight")) == 1
    assert tags.having("circle", "straight")[0]["fill"] == "none"
    assert len(tags.having("path", "missing")) == 1
    assert len(tags.having("circle", "over-ring")) == 1
    assert len(tags.having("rect", "facility")) == 3
    assert len(tags.having("rect", "sample")) == int(sample)
    assert len(tags.having("circle", "exposed")) == 1


def test_maps_without_points_or_gaps_still_render(tmp_path, grids):
    none = make_points(False).iloc[:0]
    zones = make_zones().iloc[:0]
    text, tags = parse(write_heatmap(tmp_path / "heat.html", none, zones, grids))
    assert "无风险点 no risk points" in text and not [t for t, _ in tags.tags if t == "image"]
    text, tags = parse(write_risk_map(tmp_path / "risk.html", grids, none, zones))
    assert len(tags.having("path", "grid")) == len(grids) and not tags.having("circle", "point")
    buildings, facilities, gaps, types = make_gap_inputs(False)
    text, tags = parse(
        write_gap_maps(
            tmp_path / "gaps.html", grids, buildings, facilities.iloc[:0], gaps.iloc[:0], types
        )
    )
    assert re.findall(r'<td class="uncovered">([^<]*)</td>', text) == ["0 / 720 (0.0%)"] * 2
    assert_common(text, False)
