"""The vector tile encoder, checked against the independent mapbox_vector_tile decoder."""

from __future__ import annotations

import itertools
import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from pyproj import Transformer
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
    box,
    shape,
)

from wangge.maps.mvt import (
    ORIGIN_SHIFT,
    Layer,
    encode,
    encode_with_stats,
    simplify_tolerance,
    tile_bounds,
)

# The z14 tile over Xinjiekou, Nanjing (lon 118.78, lat 32.04).
TILE = (14, 13597, 6651)
MINX, MINY, MAXX, MAXY = tile_bounds(*TILE)
WIDTH = MAXX - MINX
EXTENT = 4096
TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def metres(geom):
    """A geometry drawn in tile units of TILE (y down) moved to EPSG:3857 metres."""
    scale = WIDTH / EXTENT
    return shapely.transform(
        geom, lambda c: np.column_stack([MINX + c[:, 0] * scale, MAXY - c[:, 1] * scale])
    )


def decode(data: bytes) -> dict:
    """The tile as GeoJSON-like dicts, in tile units with y down as encoded."""
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def raw(data: bytes):
    """The tile as protobuf messages, to see fields the decoder folds away."""
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(data)
    return tile


def surveyor(ring) -> float:
    """Twice the signed area of a closed ring by the spec's surveyor formula."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))


def commands(ints) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """A geometry field as (command id, count, absolute vertices), per spec 4.3."""
    out, i, x, y = [], 0, 0, 0
    while i < len(ints):
        cmd, count = ints[i] & 7, ints[i] >> 3
        i += 1
        vertices = []
        if cmd in (1, 2):
            for _ in range(count):
                dx, dy = ((v >> 1) ^ -(v & 1) for v in ints[i : i + 2])
                assert cmd == 1 or (dx, dy) != (0, 0), "zero-length LineTo"
                x, y = x + dx, y + dy
                vertices.append((x, y))
                i += 2
        out.append((cmd, count, vertices))
    return out


def one_layer(data: bytes, name: str = "l") -> list[dict]:
    """The decoded features of one layer."""
    return decode(data)[name]["features"]


def tag_fields(layer, feature) -> dict[str, tuple[str, object]]:
    """Each attribute of a raw feature as (Value field name, value)."""
    tags = list(feature.tags)
    return {
        layer.keys[k]: next((f.name, v) for f, v in layer.values[i].ListFields())
        for k, i in zip(tags[::2], tags[1::2], strict=True)
    }


# --- tile bounds and tolerance -----------------------------------------------------------


def test_tile_bounds_of_the_world_and_its_quadrants():
    o = 20037508.342789244
    assert abs(ORIGIN_SHIFT - o) < 1e-9
    assert tile_bounds(0, 0, 0) == pytest.approx((-o, -o, o, o), abs=1e-6)
    assert tile_bounds(1, 0, 0) == pytest.approx((-o, 0, 0, o), abs=1e-6)  # north-west
    assert tile_bounds(1, 1, 0) == pytest.approx((0, 0, o, o), abs=1e-6)
    assert tile_bounds(1, 0, 1) == pytest.approx((-o, -o, 0, 0), abs=1e-6)
    assert tile_bounds(1, 1, 1) == pytest.approx((0, -o, o, 0), abs=1e-6)  # south-east


def test_tile_bounds_of_nanjing_agree_with_slippy_map_math_and_pyproj():
    lon, lat, z = 118.78, 32.04, 14
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    assert (x, y) == (13597, 6651)  # the row is 6651; 6711 lies 60 tiles (~1.1°) south
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    px, py = TO_3857.transform(lon, lat)
    assert minx <= px < maxx and miny <= py < maxy
    # the north-west corner is the slippy-map corner of (x, y), projected by pyproj
    west = x / n * 360 - 180
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    assert (minx, maxy) == pytest.approx(TO_3857.transform(west, north), abs=1e-3)
    assert maxx - minx == pytest.approx(2445.98, abs=0.01)
    assert maxy - miny == pytest.approx(maxx - minx)
    assert tile_bounds(z, x + 1, y)[0] == maxx  # neighbours share their edges exactly
    assert tile_bounds(z, x, y + 1)[3] == miny


@pytest.mark.parametrize("tile", [(0, 1, 0), (2, 0, 4), (3, -1, 0), (-1, 0, 0)])
def test_tile_bounds_refuse_tiles_that_do_not_exist(tile):
    with pytest.raises(ValueError):
        tile_bounds(*tile)


def test_simplify_tolerance_is_a_quarter_pixel_until_z16():
    assert simplify_tolerance(14) == pytest.approx(WIDTH / 1024)
    assert simplify_tolerance(14) == pytest.approx(2.389, abs=1e-3)
    assert simplify_tolerance(12) == pytest.approx(4 * simplify_tolerance(14))
    assert simplify_tolerance(15) > 0
    assert simplify_tolerance(16) == 0.0
    assert simplify_tolerance(18) == 0.0
    assert simplify_tolerance(14, extent=512) == pytest.approx(WIDTH / 512)  # one tile unit


# --- geometry round trip -----------------------------------------------------------------


def test_polygons_round_trip_within_one_unit():
    units = [
        box(100, 100, 400, 300),
        Polygon([(1000.3, 1000.7), (1800.2, 1200.1), (1500.6, 1900.4)]),
        Polygon([(3000, 3000), (3900, 3100), (3700, 3900), (3100, 3600)]),
    ]
    data = encode([Layer("l", [metres(g) for g in units])], *TILE, simplify=False)
    features = one_layer(data)
    assert [f["geometry"]["type"] for f in features] == ["Polygon"] * 3
    for feature, expected in zip(features, units, strict=True):
        got = shape(feature["geometry"])
        assert got.is_valid
        assert shapely.hausdorff_distance(got, expected) <= 1
        assert got.area == pytest.approx(expected.area, rel=0.01)


def test_multipolygon_with_holes_round_trips():
    first = Polygon(
        [(200, 200), (1800, 200), (1800, 1800), (200, 1800)],
        [
            [(500, 500), (900, 500), (900, 900), (500, 900)],
            [(1200, 1200), (1500, 1200), (1500, 1500)],
        ],
    )
    second = box(2500, 2500, 3500, 3500)
    expected = MultiPolygon([first, second])
    data = encode([Layer("l", [metres(expected)])], *TILE, simplify=False)
    (feature,) = one_layer(data)
    assert feature["geometry"]["type"] == "MultiPolygon"
    polygons = feature["geometry"]["coordinates"]
    assert [len(p) for p in polygons] == [3, 1]  # exterior + 2 holes, then a lone exterior
    got = shape(feature["geometry"])
    assert got.is_valid
    assert shapely.hausdorff_distance(got, expected) <= 1
    assert got.area == pytest.approx(expected.area, rel=0.001)


def test_lines_and_points_round_trip():
    line = LineString([(10.2, 20.7), (2000, 2000), (4000.4, 100.1)])
    multiline = MultiLineString([[(100, 3000), (900, 3100)], [(1000, 3900), (1500, 3500)]])
    point = Point(2048.3, 1024.6)
    multipoint = MultiPoint([(10, 10), (4000, 4000), (10, 10)])  # a repeated point is kept
    data = encode([Layer("l", [metres(g) for g in (line, multiline, point, multipoint)])], *TILE)
    got = [f["geometry"] for f in one_layer(data)]
    assert [g["type"] for g in got] == ["LineString", "MultiLineString", "Point", "MultiPoint"]
    assert got[0]["coordinates"] == [[10, 21], [2000, 2000], [4000, 100]]
    assert got[1]["coordinates"] == [[[100, 3000], [900, 3100]], [[1000, 3900], [1500, 3500]]]
    assert got[2]["coordinates"] == [2048, 1025]
    assert got[3]["coordinates"] == [[10, 10], [4000, 4000], [10, 10]]


def test_a_layer_can_mix_points_lines_and_polygons():
    geoms = [Point(100, 100), box(500, 500, 900, 900), LineString([(0, 0), (50, 60)])]
    data = encode([Layer("gaps", [metres(g) for g in geoms])], *TILE)
    assert [f.type for f in raw(data).layers[0].features] == [1, 3, 2]
    assert [f["geometry"]["type"] for f in one_layer(data, "gaps")] == [
        "Point",
        "Polygon",
        "LineString",
    ]


def test_the_default_decoding_flips_y_up():
    data = encode([Layer("l", [metres(Point(100, 300))])], *TILE)
    (feature,) = mapbox_vector_tile.decode(data)["l"]["features"]
    assert feature["geometry"]["coordinates"] == [100, EXTENT - 300]


def test_geometry_integers_follow_the_spec():
    """MoveTo(1)/LineTo(n>1)/ClosePath per ring, the cursor restarting at each feature."""
    units = [
        MultiPolygon([box(100, 100, 300, 300), box(1000, 1000, 1300, 1300)]),
        LineString([(4000, 4000), (4000, 4001), (4000, 4001), (3000, 3000)]),
        MultiPoint([(7, 9), (7, 9), (20, 30)]),
    ]
    data = encode([Layer("l", [metres(g) for g in units])], *TILE)
    polygon, line, points = (list(f.geometry) for f in raw(data).layers[0].features)
    parsed = commands(polygon)
    assert [(c, n) for c, n, _ in parsed] == [(1, 1), (2, 3), (7, 1)] * 2
    # vertices are absolute once deltas are summed from (0, 0), across the two rings
    for (_, _, move), (_, _, lineto), square in zip(
        parsed[0::3], parsed[1::3], units[0].geoms, strict=True
    ):
        ring = move + lineto
        assert set(ring) == set(square.exterior.coords)
        assert len(ring) == 4 and ring[-1] != ring[0]  # no closing vertex
        assert surveyor([*ring, ring[0]]) > 0
    parsed = commands(line)
    assert [(c, n) for c, n, _ in parsed] == [(1, 1), (2, 2)]  # the repeated vertex is gone
    assert parsed[0][2] == [(4000, 4000)]  # absolute: the cursor restarts at (0, 0)
    assert commands(points) == [(1, 3, [(7, 9), (7, 9), (20, 30)])]
    assert points[:3] == [(3 << 3) | 1, 7 << 1, 9 << 1]


# --- orientation -------------------------------------------------------------------------


@pytest.mark.parametrize("reverse_exterior", [False, True])
@pytest.mark.parametrize("reverse_holes", [False, True])
def test_exterior_rings_are_positive_and_holes_negative(reverse_exterior, reverse_holes):
    def ring(coords, reverse):
        return coords[::-1] if reverse else coords

    shell = [(100, 100), (2000, 100), (2000, 2000), (100, 2000)]
    hole = [(500, 500), (900, 500), (900, 900), (500, 900)]
    polygons = MultiPolygon(
        [
            Polygon(ring(shell, reverse_exterior), [ring(hole, reverse_holes)]),
            Polygon(ring([(3000, 3000), (3500, 3000), (3500, 3800)], not reverse_exterior)),
        ]
    )
    data = encode([Layer("l", [metres(polygons)])], *TILE)
    (feature,) = one_layer(data)
    assert feature["geometry"]["type"] == "MultiPolygon"
    (outer, inner), (other,) = feature["geometry"]["coordinates"]
    assert surveyor(outer) > 0 and surveyor(other) > 0
    assert surveyor(inner) < 0
    assert abs(surveyor(inner)) == 2 * 400 * 400


# --- attributes and ids ------------------------------------------------------------------


def test_attributes_round_trip_by_type():
    geoms = [metres(Point(i * 100 + 50, 50)) for i in range(4)]
    properties = {
        "name": ["新街口网格", "玄武区", None, "grid-3"],
        "households": np.array([120, 0, 45, 7]),
        "change": [-3, 5, None, -(2**40)],
        "density": np.array([1.5, np.nan, 3.0, -0.25]),
        "flagged": np.array([True, False, True, False]),
        "mixed": [True, 1, 2.0, "2"],
    }
    data = encode([Layer("l", geoms, properties, ids=np.array([11, 12, 13, 2**40]))], *TILE)
    got = one_layer(data)
    assert [f["id"] for f in got] == [11, 12, 13, 2**40]
    assert got[0]["properties"] == {
        "name": "新街口网格",
        "households": 120,
        "change": -3,
        "density": 1.5,
        "flagged": True,
        "mixed": True,
    }
    assert got[1]["properties"] == {
        "name": "玄武区",
        "households": 0,
        "change": 5,
        "flagged": False,
        "mixed": 1,
    }  # NaN density left out
    assert got[2]["properties"] == {"households": 45, "density": 3, "flagged": True, "mixed": 2}
    assert got[3]["properties"]["change"] == -(2**40)
    assert got[3]["properties"]["mixed"] == "2"

    layer = raw(data).layers[0]
    assert layer.version == 2 and layer.extent == EXTENT and layer.name == "l"
    first, second = (tag_fields(layer, f) for f in layer.features[:2])
    assert first["name"] == ("string_value", "新街口网格")
    assert first["households"] == ("uint_value", 120)
    assert first["change"] == ("sint_value", -3)
    assert second["change"] == ("uint_value", 5)
    assert first["density"] == ("double_value", 1.5)
    assert first["flagged"] == ("bool_value", True)
    assert first["mixed"] == ("bool_value", True)
    assert second["mixed"] == ("uint_value", 1)  # True and 1 are two values
    values = [v.ListFields()[0] for v in layer.values]
    assert [v for f, v in values if f.name == "uint_value"].count(2) == 1  # 2.0 and 2 are one


def test_dates_become_iso_strings_and_pandas_missing_values_are_left_out():
    import pandas as pd

    geoms = [metres(Point(10, 10)), metres(Point(20, 20))]
    properties = {
        "surveyed": np.array(["2024-05-01", "NaT"], dtype="datetime64[ns]"),
        "floors": pd.array([6, None], dtype="Int64"),
        "label": pd.Series(["甲", pd.NA], dtype="string"),
    }
    got = one_layer(encode([Layer("l", geoms, properties)], *TILE))
    assert got[0]["properties"] == {"surveyed": "2024-05-01", "floors": 6, "label": "甲"}
    assert got[1]["properties"] == {}


def test_features_without_ids_or_attributes_have_neither():
    data = encode([Layer("l", [metres(Point(5, 5))], {"note": [None]})], *TILE)
    layer = raw(data).layers[0]
    feature = layer.features[0]
    assert not feature.HasField("id")
    assert list(feature.tags) == []
    assert list(layer.keys) == [] and list(layer.values) == []


def test_keys_and_values_are_deduplicated_per_layer():
    n = 1000
    rng = np.random.default_rng(3)
    points = [metres(Point(x, y)) for x, y in rng.uniform(0, EXTENT, (n, 2))]
    properties = {
        "grid": ["玄武区-网格01"] * n,
        "level": np.full(n, 3),
        "level_float": np.full(n, 3.0),  # the same value as level: one entry
        "id": np.arange(n),
    }
    data = encode([Layer("l", points, properties)], *TILE)
    layer = raw(data).layers[0]
    assert len(layer.features) == n
    assert list(layer.keys) == ["grid", "level", "level_float", "id"]
    # one string, one 3 (shared by two columns and by id 3), the other 999 ids
    assert len(layer.values) == 1 + 1 + (n - 1)
    tags = {tuple(f.tags[:6]) for f in layer.features}
    assert len(tags) == 1  # every feature points at the same grid and level entries


def test_ids_must_be_non_negative_integers():
    with pytest.raises(ValueError):
        encode([Layer("l", [metres(Point(1, 1))], ids=np.array([-1]))], *TILE)
    with pytest.raises(ValueError):
        encode([Layer("l", [metres(Point(1, 1))], ids=np.array([1.5]))], *TILE)


def test_columns_must_match_the_geometries():
    with pytest.raises(ValueError, match="column 'name'"):
        Layer("l", [metres(Point(1, 1))], {"name": ["a", "b"]})


def test_layer_names_must_be_unique():
    layer = Layer("l", [metres(Point(1, 1))])
    with pytest.raises(ValueError, match="unique"):
        encode([layer, layer], *TILE)


# --- clipping and dropping ---------------------------------------------------------------


def test_a_polygon_covering_the_tile_becomes_the_buffered_square():
    huge = box(MINX - 50_000, MINY - 50_000, MAXX + 50_000, MAXY + 50_000)
    for buffer in (64, 0, 256):
        data = encode([Layer("l", [huge])], *TILE, buffer=buffer)
        (feature,) = one_layer(data)
        square = box(-buffer, -buffer, EXTENT + buffer, EXTENT + buffer)
        got = shape(feature["geometry"])
        assert shapely.hausdorff_distance(got, square) <= 1
        assert surveyor(feature["geometry"]["coordinates"][0]) > 0


def test_every_vertex_stays_within_the_buffer():
    rng = np.random.default_rng(11)
    centres = rng.uniform(-600, EXTENT + 600, (300, 2))
    polygons = [
        shapely.buffer(Point(c), r) for c, r in zip(centres, rng.uniform(50, 800, 300), strict=True)
    ]
    lines = [LineString([(-5000, y), (EXTENT + 5000, y + 300)]) for y in range(0, 4000, 500)]
    holed = Polygon(
        [(-900, -900), (5000, -900), (5000, 5000)], [[(4000, 100), (4090, 100), (4090, 300)]]
    )
    geoms = [metres(g) for g in [*polygons, *lines, holed]]
    for buffer in (0, 64):
        data = encode([Layer("l", geoms)], *TILE, buffer=buffer)
        features = one_layer(data)
        assert len(features) > 250
        for feature in features:
            xy = shapely.get_coordinates(shape(feature["geometry"]))
            assert xy.min() >= -buffer and xy.max() <= EXTENT + buffer
            if feature["geometry"]["type"] != "LineString":
                assert shape(feature["geometry"]).is_valid
        lines_out = [f for f in features if f["geometry"]["type"] == "LineString"]
        assert len(lines_out) == len(lines)
        assert all(f["geometry"]["coordinates"][0][0] == -buffer for f in lines_out)


def test_features_outside_the_tile_are_dropped_and_an_empty_tile_is_empty():
    outside = [
        metres(box(-3000, 100, -2000, 900)),  # west, beyond the buffer
        metres(Point(EXTENT + 65, 10)),  # just beyond the 64-unit buffer
        metres(LineString([(100, -4000), (900, -5000)])),
        None,
        Polygon(),
    ]
    inside = metres(Point(EXTENT + 63, 10))  # in the buffer: kept
    data, stats = encode_with_stats([Layer("l", [*outside, inside])], *TILE)
    assert [f["geometry"]["coordinates"] for f in one_layer(data)] == [[EXTENT + 63, 10]]
    assert stats["l"] == (1, 0, 5)
    data, stats = encode_with_stats([Layer("l", outside), Layer("m", [])], *TILE)
    assert data == b""
    assert stats["l"].kept == 0 and stats["l"].empty == 5 and stats["m"].kept == 0
    assert encode([], *TILE) == b""


def test_layers_without_features_are_left_out():
    data = encode(
        [Layer("empty", [metres(Point(-9000, 0))]), Layer("full", [metres(Point(1, 2))])], *TILE
    )
    assert list(decode(data)) == ["full"]


def test_what_rounding_makes_degenerate_is_dropped():
    tiny = box(1000.1, 1000.1, 1000.3, 1000.3)  # rounds to one point
    sliver = Polygon([(100, 2000.1), (3000, 2000.2), (3000, 2000.3), (100, 2000.2)])  # no area
    short = LineString([(500.1, 500.1), (500.2, 500.3)])
    kept = Polygon(
        [(2000, 2000), (3000, 2000), (3000, 3000), (2000, 3000)],
        [[(2500.1, 2500.1), (2500.2, 2500.1), (2500.2, 2500.2)]],  # the hole vanishes
    )
    with_gone_part = MultiPolygon([box(10, 10, 50, 50), tiny])
    geoms = [metres(g) for g in (tiny, sliver, short, kept, with_gone_part)]
    data, stats = encode_with_stats([Layer("l", geoms, ids=np.arange(5))], *TILE, simplify=False)
    features = one_layer(data)
    assert [f["id"] for f in features] == [3, 4]
    assert len(features[0]["geometry"]["coordinates"]) == 1  # no hole left
    assert features[1]["geometry"]["type"] == "Polygon"
    assert stats["l"].empty == 3


def test_holes_go_with_a_dropped_exterior_ring():
    # invalid input: the shell rounds to a point, the "hole" is a large square
    broken = Polygon([(10.1, 10.1), (10.2, 10.1), (10.2, 10.2)], [box(100, 100, 900, 900).exterior])
    data, stats = encode_with_stats([Layer("l", [metres(broken)])], *TILE, simplify=False)
    assert data == b"" and stats["l"].empty == 1


def test_geometry_collections_keep_the_parts_of_their_own_dimension():
    collection = GeometryCollection(
        [box(-500, 100, 500, 900), LineString([(0, 0), (100, 100)]), Point(5, 5)]
    )
    data = encode([Layer("l", [metres(collection)])], *TILE)
    (feature,) = one_layer(data)
    assert feature["geometry"]["type"] == "Polygon"
    assert shapely.hausdorff_distance(shape(feature["geometry"]), box(-64, 100, 500, 900)) <= 1


def test_max_features_keeps_the_largest_polygons():
    sides = [100, 900, 50, 700, 300, 800, 20]
    geoms = [metres(box(i * 10, i * 500, i * 10 + s, i * 500 + s)) for i, s in enumerate(sides)]
    layer = Layer("l", geoms, {"side": sides}, ids=np.arange(len(sides)))
    data, stats = encode_with_stats([layer], *TILE, max_features=3)
    got = one_layer(data)
    assert [f["id"] for f in got] == [1, 3, 5]  # the three largest, in input order
    assert [f["properties"]["side"] for f in got] == [900, 700, 800]
    assert stats["l"] == (3, 4, 0)
    # a polygon mostly outside the tile counts by its area in the tile
    half_out = metres(box(-20000, 0, 200, 200))
    data, stats = encode_with_stats(
        [Layer("l", [half_out, geoms[4]], ids=np.array([0, 1]))], *TILE, max_features=1
    )
    assert [f["id"] for f in one_layer(data)] == [1]
    # points come after polygons, the first ones first
    mixed = [metres(Point(1, 1)), metres(Point(2, 2)), geoms[2], metres(Point(3, 3))]
    data, stats = encode_with_stats([Layer("l", mixed, ids=np.arange(4))], *TILE, max_features=2)
    assert [f["id"] for f in one_layer(data)] == [0, 2]
    assert stats["l"].dropped == 2
    _, stats = encode_with_stats([layer], *TILE, max_features=100)
    assert stats["l"] == (7, 0, 0)


# --- simplification ----------------------------------------------------------------------


def test_simplification_at_z12_removes_invisible_vertices_and_keeps_polygons_valid():
    z, x, y = 12, TILE[1] // 4, TILE[2] // 4
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    centre = Point((minx + maxx) / 2, (miny + maxy) / 2)
    rng = np.random.default_rng(5)
    angle = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    radius = 2000 + rng.normal(0, 1.0, angle.size)  # 1 m of noise on a 2 km district
    district = Polygon(
        np.column_stack([centre.x + radius * np.cos(angle), centre.y + radius * np.sin(angle)]),
        [shapely.buffer(centre, 300, quad_segs=64).exterior.coords],
    )
    rough = one_layer(encode([Layer("l", [district])], z, x, y, simplify=False))
    smooth = one_layer(encode([Layer("l", [district])], z, x, y))
    rough_shape, smooth_shape = shape(rough[0]["geometry"]), shape(smooth[0]["geometry"])
    assert smooth_shape.is_valid and len(smooth_shape.interiors) == 1
    vertices = shapely.get_num_coordinates
    assert vertices(smooth_shape) < vertices(rough_shape) / 4
    tolerance_units = simplify_tolerance(z) / ((maxx - minx) / EXTENT)
    assert shapely.hausdorff_distance(smooth_shape, rough_shape) <= tolerance_units + 1
    # a small round building that simplification would collapse is kept as it was
    hut = shapely.buffer(centre, 2.0, quad_segs=4)
    assert shapely.is_empty(shapely.simplify(hut, simplify_tolerance(z), preserve_topology=False))
    (feature,) = one_layer(encode([Layer("l", [hut])], z, x, y))
    assert feature["geometry"]["type"] == "Polygon"
    # at z16 nothing is simplified: the tile on the district's eastern edge
    n = 2**16
    east = (centre.x + 2000, centre.y)
    z16 = (
        16,
        int((east[0] + ORIGIN_SHIFT) / (2 * ORIGIN_SHIFT) * n),
        int((ORIGIN_SHIFT - east[1]) / (2 * ORIGIN_SHIFT) * n),
    )
    edge = encode([Layer("l", [district])], *z16)
    assert edge and edge == encode([Layer("l", [district])], *z16, simplify=False)


def test_extent_scales_tile_units():
    data = encode([Layer("l", [metres(Point(2048, 1024))])], *TILE, extent=512)
    assert one_layer(data)[0]["geometry"]["coordinates"] == [256, 128]
    assert raw(data).layers[0].extent == 512
