"""The web maps' content without a browser, on small frames: the layers each map has, the
colour of every shape, the tooltips' fields, the legends, the kernel density, and a page
that names nothing outside itself. tests/test_maps_offline.py opens the real maps in
chromium."""

from __future__ import annotations

import importlib.util
import re

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely

from wangge.data.osm import ATTRIBUTION as OSM_CREDIT
from wangge.geo.rules import LEVEL_COLOURS, LEVEL_ZH
from wangge.maps.gap_map import BEYOND, FACILITY, MISSING, OVER, gap_map, write_gap_maps
from wangge.maps.grid_map import DEDICATED, PALETTE, grid_map, household_classes, write_grid_map
from wangge.maps.heatmap import (
    density_raster,
    heatmap,
    kernel_density,
    mercator_density,
    write_heatmap,
)
from wangge.maps.risk_maps import COLD, HOT, risk_map, write_risk_map
from wangge.maps.webmap import (
    OSM_COPYRIGHT,
    SAMPLE_BANNER,
    OfflineError,
    check_offline,
    features,
    page,
)

CRS = "EPSG:4549"
X0, Y0, SIDE = 480000.0, 3545000.0, 200.0
LEVELS = ["red", "orange", "yellow", "blue", "red", "blue"]
HOTSPOT = ["hot", "", "", "", "", "cold"]


# --- reading a folium map ---------------------------------------------------------------


def layers(m: folium.Map) -> dict[str, folium.map.Layer]:
    """The map's layers by their name in the layer control."""
    return {
        c.layer_name: c
        for c in m._children.values()
        if isinstance(c, folium.map.Layer) and c.control
    }


def parts(group: folium.FeatureGroup) -> dict[str, folium.GeoJson]:
    """The GeoJSON layers inside a feature group, by name."""
    return {c.layer_name: c for c in group._children.values() if isinstance(c, folium.GeoJson)}


def styles(layer: folium.GeoJson) -> list[dict]:
    return [layer.style_function(f) for f in layer.data["features"]]


def tips(layer: folium.GeoJson) -> list[str]:
    """Each feature's tooltip as text: ``label value`` lines, as the browser shows them."""
    (tip,) = [c for c in layer._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    return [
        "\n".join(f"{a} {f['properties'][k]}" for k, a in zip(tip.fields, tip.aliases, strict=True))
        for f in layer.data["features"]
    ]


def assert_page(m: folium.Map, sample: bool) -> str:
    text = page(m)
    assert "© OpenStreetMap contributors, ODbL 1.0" in text
    assert "OpenStreetMap 贡献者" in text and f'href="{OSM_COPYRIGHT}"' in text
    assert (SAMPLE_BANNER in text) == sample
    # Leaflet inlined, none of folium's CDN links, the control images as data: URIs
    assert "Leaflet 1.9.4" in text
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", text)
    assert "cdn.jsdelivr" not in text and "bootstrap" not in text.lower()
    assert "images/layers" not in text and "url(data:image/png;base64," in text
    check_offline(text)
    return text


# --- frames -----------------------------------------------------------------------------


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
            "name": ["加油站", "仓库 <b>&", "工地", "小店"],
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


# --- the shared parts -------------------------------------------------------------------


def test_features_are_wgs84_to_six_decimals_escaped_and_keep_row_ids(grids):
    frame = grids.iloc[:3].copy()
    frame.loc[frame.index[1], "geometry"] = None  # a row without geometry is left out
    fc = features(
        frame, [{"name": n, "n": k, "gone": None} for k, n in enumerate(["<a>", "b", "c"])]
    )
    assert [f["id"] for f in fc["features"]] == ["0", "2"]
    assert fc["features"][0]["properties"] == {"name": "&lt;a&gt;", "n": 0, "gone": ""}
    coords = np.asarray(fc["features"][0]["geometry"]["coordinates"][0])
    assert (coords[:, 0] > 110).all() and (coords[:, 1] > 30).all() and (coords[:, 1] < 35).all()
    assert np.allclose(coords, np.round(coords, 6), rtol=0, atol=0)
    # the corners come back within 0.1 m of the original
    back = gpd.GeoSeries(shapely.points(coords), crs=4326).to_crs(CRS)
    corners = np.asarray(grids.geometry.iloc[0].exterior.coords)
    near = np.hypot(*(np.column_stack([back.x, back.y])[:, None, :] - corners[None]).T)
    assert near.min(axis=0).max() < 0.1


def test_check_offline_refuses_what_a_browser_would_fetch():
    fine = (
        '<a href="https://www.openstreetmap.org/copyright">osm</a>'
        '<img src="data:image/png;base64,AAAA"><style>.x{background:url(data:image/png;base64,A)}'
        ".y{fill:url(#hatch)}</style><script>var s = '<a href=\"https://leafletjs.com\">'</script>"
    )
    check_offline(fine)
    for bad in (
        '<script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"></script>',
        '<link rel="stylesheet" href="//cdn.example.com/x.css"/>',
        '<script src="leaflet.js"></script>',
        '<img src="http://tile.openstreetmap.org/1/1/1.png">',
        "<style>.a{background:url(images/layers.png)}</style>",
        "<style>@import 'https://fonts.example.com/a.css';</style>",
    ):
        with pytest.raises(OfflineError):
            check_offline(bad)


def test_no_module_draws_svg_by_hand_any_more():
    assert importlib.util.find_spec("wangge.maps._svg") is None


# --- the plan map -----------------------------------------------------------------------


def test_household_classes_follow_the_band():
    classes, labels = household_classes([0, 299, 300, 399, 400, 499, 500, 749, 750, 2000], 300, 500)
    assert classes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert labels == ["< 300", "300–400", "400–500", "500–750", "> 750"]


def test_grid_map_colours_grids_by_class_and_names_each_level(grids, tmp_path):
    plan = grids[["code", "name", "households", "geometry"]].copy()
    plan["households"] = [250, 320, 450, 520, 900, 0]
    plan["flag"] = ["", "", "", "", "oversize", "dedicated"]
    plan["note"] = ["", "", "", "", "", "amenity=school 中学"]
    micro = plan.iloc[:2].copy()
    micro["parent_code"] = micro["code"]
    micro["code"] = micro["code"] + "001"
    micro["households"] = [25, 30]
    micro["flag"] = ["vertical", ""]
    community = gpd.GeoDataFrame(
        {"code": ["C1"]}, geometry=[shapely.union_all(plan.geometry)], crs=CRS
    )
    frames = {"grids": plan, "microgrids": micro, "communities": community, "streets": community}
    # the credit a plan records with its study area (data/osm.attribution): here OSM's
    frames["study_area"] = community.assign(attribution=OSM_CREDIT)
    m = grid_map(frames, "网格 plan", 300, 500)
    named = layers(m)
    assert list(named) == ["网格 grids", "微网格 micro-grids", "社区 communities", "街道 streets"]
    fills = [s["fillColor"] for s in styles(named["网格 grids"])]
    assert fills == [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[3], PALETTE[4], DEDICATED]
    text = tips(named["网格 grids"])
    assert "网格 grid G04" in text[4] and "户数 households 900 户" in text[4]
    assert "超限 over the limit" in text[4]
    assert "专属网格 dedicated grid · amenity=school 中学" in text[5]
    micro_tips = tips(named["微网格 micro-grids"])
    assert "微网格 micro-grid G00001" in micro_tips[0] and "竖向微网格" in micro_tips[0]
    assert "所属网格 grid G00 网格0 · 250 户" in micro_tips[0]
    # boundaries only draw, above the grids whatever is ticked off and on
    assert named["社区 communities"].options == {"interactive": False, "pane": "wg-lines"}
    assert named["微网格 micro-grids"].options == {"pane": "wg-upper"}
    assert named["网格 grids"].options == {}  # Leaflet's overlay pane, under the others
    html = assert_page(m, sample=False)
    for term in (
        "户数 households per grid",
        "300–400",
        "专属网格 dedicated grid",
        "社区 community",
    ):
        assert term in html
    path = write_grid_map(tmp_path / "map.html", frames, "网格 plan", 300, 500)
    assert path.stat().st_size < 500_000


# --- the four-colour risk map -----------------------------------------------------------


@pytest.mark.parametrize("sample", [False, True])
def test_risk_map_colours_grids_zones_and_points_by_level(tmp_path, grids, sample):
    points = make_points(sample)
    m = risk_map(grids, points, make_zones(), title="风险 risk")
    named = layers(m)
    assert list(named) == [
        "网格风险 grid risk",
        "风险区 risk zones",
        "冷热点 hot and cold spots (Gi*)",
        "风险点 risk points",
    ]
    cells = named["网格风险 grid risk"]
    assert [s["fillColor"] for s in styles(cells)] == grids["colour"].tolist()
    first = tips(cells)[0]
    for term in ("网格 grid G00 网格0", "120 户", "2/1/0/0", "重大风险 red (major risk)"):
        assert term in first
    assert "22.0 (18.3 /100户 per 100 hh)" in first and "z 2.50 p 0.010 · 热点 hot spot" in first
    assert "40 户 hh, 重点人群 vulnerable 5" in first

    spots = named["冷热点 hot and cold spots (Gi*)"]
    assert spots.options == {"interactive": False, "pane": "wg-lines"}
    assert [(s["color"], s["dashArray"]) for s in styles(spots)] == [
        (HOT, "10 5"),
        (COLD, "10 5"),
    ]
    (zone,) = styles(named["风险区 risk zones"])
    assert zone["fillColor"] == "url(#hatch-orange)" and zone["color"] == LEVEL_COLOURS["orange"]
    dots = named["风险点 risk points"]
    # blue first and red last, so that red points lie on top
    assert [s["fillColor"] for s in styles(dots)] == [
        LEVEL_COLOURS[lv] for lv in ("blue", "orange", "red", "red")
    ]
    assert dots.marker.options["radius"] == 5 and dots.marker.options["fill"]
    assert {s["pane"] for s in styles(dots)} == {"wg-points"}  # points stay on top
    point_tips = tips(dots)
    assert "风险点 risk point R1 仓库 &lt;b&gt;&amp;" in point_tips[3]  # escaped for the HTML
    assert "类别 category 消防安全" in point_tips[3] and "风险值 score 20 (matrix)" in point_tips[3]
    assert ("样例 sample" in point_tips[2]) == sample

    html = assert_page(m, sample)
    assert '<pattern id="hatch-orange"' in html
    for term in (
        "重大风险 major risk",
        "低风险 low risk",
        "热点 hot spot (Gi*)",
        "风险区 risk zone",
    ):
        assert term in html
    table = html[html.index('id="summary"') :]
    assert re.search(r"重大风险 red</td><td>2</td><td>270</td><td>2</td><td>0</td>", table)
    assert "热点网格 hot-spot grids: 1" in table
    path = write_risk_map(tmp_path / "risk.html", grids, points, make_zones())
    assert path.read_text("utf-8").count("L.map(") == 1


# --- the heatmap ------------------------------------------------------------------------


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


def test_mercator_density_is_per_square_metre_and_peaks_at_the_cluster(grids):
    box = shapely.box(X0 - 1000, Y0 - 1000, X0 + 2000, Y0 + 1000)
    wide = gpd.GeoDataFrame(geometry=[box], crs=CRS)
    points = make_points(False)
    weights = {"red": 9, "orange": 4, "yellow": 2, "blue": 1}
    dens, box, cell = mercator_density(points, wide, weights, 20.0, 150.0)
    assert cell == 20.0
    (south, west), (north, east) = box
    w0, s0, e0, n0 = wide.to_crs(4326).total_bounds
    assert west <= w0 and south <= s0 and east >= e0 and north >= n0
    # ground cells of 20 m: the raster holds the weights (9 + 9 + 4 + 1), none cut off
    assert dens.sum() * 20.0**2 == pytest.approx(23.0, rel=2e-2)
    iy, ix = np.unravel_index(np.argmax(dens), dens.shape)
    lon = west + (ix + 0.5) / dens.shape[1] * (east - west)
    lat = north - (iy + 0.5) / dens.shape[0] * (north - south)
    peak = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(CRS).iloc[0]
    assert np.hypot(peak.x - (X0 + 100), peak.y - (Y0 + 103)) < 40


@pytest.mark.parametrize("sample", [False, True])
def test_heatmap_is_an_inline_image_under_grids_zones_and_points(tmp_path, grids, sample):
    points = make_points(sample)
    m = heatmap(points, make_zones(), grids, bandwidth_m=150)
    named = layers(m)
    assert list(named) == [
        "风险核密度 risk density",
        "网格 grids",
        "风险区 risk zones",
        "风险点 risk points",
    ]
    image = named["风险核密度 risk density"]
    assert image.url.startswith("data:image/png;base64,")
    (south, west), (north, east) = image.bounds
    w0, s0, e0, n0 = grids.to_crs(4326).total_bounds
    assert west <= w0 < e0 <= east and south <= s0 < n0 <= north
    assert len(named["网格 grids"].data["features"]) == len(grids)
    assert "网格 grid G02\n名称 name 网格2\n户数 households 200 户" in tips(named["网格 grids"])[2]
    (zone,) = styles(named["风险区 risk zones"])
    assert zone["fill"] is False and zone["dashArray"] == "4 3"
    assert len(named["风险点 risk points"].data["features"]) == len(points)
    html = assert_page(m, sample)
    for term in ("低 low", "高 high", "带宽 bandwidth 150 m", "Gaussian kernel", "权重 weights"):
        assert term in html
    path = write_heatmap(tmp_path / "heat.html", points, make_zones(), grids, bandwidth_m=150)
    assert path.stat().st_size < 3_000_000


# --- the coverage-gap map ---------------------------------------------------------------


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
            "ref": [f"w{k}" for k in range(len(rows))],
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
def test_gap_map_one_base_layer_per_type_with_the_uncovered_totals(tmp_path, grids, sample):
    buildings, facilities, gaps, types = make_gap_inputs(sample)
    m = gap_map(grids, buildings, facilities, gaps, types)
    named = layers(m)
    assert list(named) == [
        "楼栋 buildings",
        "网格 grids",
        "紧急避难场所 emergency shelter ≤ 500 m",
        "卫生服务站 health station ≤ 1,000 m",
        "重点人群暴露 exposed vulnerable people",
    ]
    shelter, clinic = (
        named["紧急避难场所 emergency shelter ≤ 500 m"],
        named["卫生服务站 health station ≤ 1,000 m"],
    )
    # one facility type at a time: radio buttons, the first shown; the overlay starts off
    assert not shelter.overlay and not clinic.overlay and shelter.show and not clinic.show
    assert named["重点人群暴露 exposed vulnerable people"].show is False
    assert named["楼栋 buildings"].options["interactive"] is False

    s, c = parts(shelter), parts(clinic)
    beyond = styles(s["beyond"])
    assert len(beyond) == 2 and len(styles(c["beyond"])) == 1
    assert beyond[0]["fillColor"] == BEYOND and beyond[0]["radius"] > 5
    assert beyond[1]["fill"] is False and beyond[1]["dashArray"]  # straight line: dashed ring
    text = tips(s["beyond"])
    assert "距离 distance 900 m &gt; 500 m (直线距离 straight line, no network)" in text[1]
    assert (
        "户数 households 45 户 households, 120 人 people" in text[1]
        and "原因 reason 远 far" in text[1]
    )
    assert "楼栋 building w0" in text[0]
    (missing,) = styles(c["missing"])
    assert missing["fillColor"] == "url(#hatch-missing)" and missing["color"] == MISSING
    assert "网格 grid G00 缺少必配设施 lacks a required 卫生服务站" in tips(c["missing"])[0]
    assert [st["fillColor"] for st in styles(s["over"])] == [OVER]
    (ring,) = styles(s["rings"])
    assert ring["interactive"] is False and ring["fill"] is False and ring["color"] == OVER
    fac = styles(s["facilities"])
    assert [f["color"] for f in fac] == ["#ffffff", FACILITY if sample else "#ffffff"]
    assert ("样例 sample" in tips(s["facilities"])[1]) == sample
    assert "负荷 load 1.40 · 超容量 over capacity" in tips(s["facilities"])[0]
    assert (
        "重点人群 vulnerable 7 人 people"
        in tips(named["重点人群暴露 exposed vulnerable people"])[0]
    )

    html = assert_page(m, sample)
    assert '<pattern id="hatch-missing"' in html
    for term in ("直线距离 straight-line (no network)", "超出服务范围的楼栋 building beyond reach"):
        assert term in html
    # 24 buildings of 30 households = 720; shelters leave 30 + 45 out, the clinic 12
    cells = re.findall(r'<td class="uncovered">([^<]*)</td>', html)
    assert cells[0].startswith("75 / 720 (10.4%), 直线 straight-line 45")
    assert cells[1].startswith("12 / 720")
    path = write_gap_maps(tmp_path / "gaps.html", grids, buildings, facilities, gaps, types)
    assert path.stat().st_size < 3_000_000


def test_maps_without_points_or_gaps_still_render(grids):
    none = make_points(False).iloc[:0]
    zones = make_zones().iloc[:0]
    m = heatmap(none, zones, grids)
    assert "风险核密度 risk density" not in layers(m)
    assert "无风险点 no risk points" in assert_page(m, False)
    m = risk_map(grids, none, zones)
    assert len(layers(m)["网格风险 grid risk"].data["features"]) == len(grids)
    assert not layers(m)["风险点 risk points"].data["features"]
    assert_page(m, False)
    buildings, facilities, gaps, types = make_gap_inputs(False)
    html = assert_page(gap_map(grids, buildings, facilities.iloc[:0], gaps.iloc[:0], types), False)
    assert re.findall(r'<td class="uncovered">([^<]*)</td>', html) == ["0 / 720 (0.0%)"] * 2
