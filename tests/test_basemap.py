"""The basemap (issue 24, deliverable 1): roads by class with their names, water, green, rail
and place names drawn from the plan's own OSM extract, on both real cities; stored with the
plan on both stores and served as one vector tile source with its MapLibre style (no glyph
URL: nothing to fetch); a plan stored without one answers 404 saying how to make it.

The browser checks are where the pages are: the four web maps in tests/test_maps_offline.py,
the editor in tests/test_editor_e2e.py, the package viewer in tests/test_tile_packages.py.
"""

from __future__ import annotations

import math
import uuid

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from apitools import auth
from cities_osm import BEIJING_OSM, real_file
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.basemap import (
    BASEMAP_FIELDS,
    BASEMAP_LAYERS,
    PLACE_RANK,
    ROAD_CLASSES,
    SAME_PLACE_M,
    basemap_layers,
)
from wangge.data.plan import plan_from_frames, read_plan
from wangge.data.privacy import PUBLIC, class_of
from wangge.importing import save_plan
from wangge.maps.basemap_style import basemap_style_layers


@pytest.fixture(scope="module")
def beijing_units():
    from wangge.ingest import ingest

    result = ingest(real_file(BEIJING_OSM), progress=False)
    return {k: v.to_crs(result.crs) for k, v in result.layers.items()}


@pytest.fixture(scope="module")
def cities(demo_metric, beijing_units):
    return {"nanjing": demo_metric, "beijing": beijing_units}


@pytest.mark.parametrize("city", ["nanjing", "beijing"])
def test_roads_water_green_and_names_come_from_the_extract(cities, city):
    units = cities[city]
    made = basemap_layers(units)
    assert list(made) == [n for n in BASEMAP_LAYERS if n in made]
    assert {"basemap_roads", "basemap_areas", "basemap_places"} <= set(made)
    roads, areas, places = made["basemap_roads"], made["basemap_areas"], made["basemap_places"]
    # every road the style can draw, by class, its name as OSM has it
    src = units["roads"]
    drawable = src[src["highway"].isin(list(ROAD_CLASSES))]
    assert set(roads["osm_id"]) == set(drawable["road_id"])
    assert (roads["class"] == roads["highway"].map(ROAD_CLASSES)).all()
    named = dict(zip(drawable["road_id"], drawable["name"], strict=True))
    for oid, name in zip(roads["osm_id"], roads["name"], strict=True):
        given = named[oid]
        assert (name if isinstance(name, str) else None) == (
            given.strip() if isinstance(given, str) and given.strip() else None
        )
    assert roads["name"].notna().sum() >= 40
    assert {"primary", "secondary", "tertiary", "minor"} <= set(roads["class"])
    # green from parks and grass; water from the extract's water edges, as areas
    assert (areas["kind"] == "green").sum() >= 5
    water = areas[areas["kind"] == "water"]
    assert len(water) and (water.geometry.area > 0).all()
    edges = units["barriers"].set_index("barrier_id").geometry
    outline = units["study_area"].geometry.union_all().boundary
    for oid, shape in zip(water["osm_id"], water.geometry, strict=True):
        # the area's rim is the water's edge as OSM has it (or the study area's, if cut)
        assert shape.boundary.within(shapely.union(edges[oid], outline).buffer(0.01))
    # the names of schools and hospitals, each place once in its neighbourhood
    kinds = set(places["kind"])
    assert {"school", "hospital"} <= kinds and kinds <= set(PLACE_RANK)
    assert (places["rank"] == places["kind"].map(PLACE_RANK)).all()
    for _, same in places.groupby("name"):
        xy = shapely.get_coordinates(same.geometry.to_numpy())
        gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert (gaps[np.triu_indices(len(xy), 1)] >= SAME_PLACE_M).all()
    # all of it inside the study area (a city's streets do not store a road twice)
    area = units["study_area"].geometry.union_all().buffer(0.01)
    for frame in made.values():
        assert frame.geometry.within(area).all()
        assert not frame.geometry.is_empty.any()


def test_nanjing_has_its_rivers_and_beijing_its_compounds(cities):
    nanjing = basemap_layers(cities["nanjing"])
    rivers = nanjing["basemap_lines"]
    assert set(rivers["class"]) == {"waterway"} and "珍珠河" in set(rivers["name"])
    beijing = basemap_layers(cities["beijing"])
    assert (beijing["basemap_places"]["kind"] == "compound").any()


def test_without_an_osm_file_only_named_buildings_remain(demo_metric):
    units = {k: demo_metric[k] for k in ("buildings", "study_area")}
    made = basemap_layers(units)
    assert list(made) == ["basemap_places"]
    places = made["basemap_places"]
    assert set(places["kind"]) == {"building"}
    assert set(places["name"]) <= set(demo_metric["buildings"]["name"].dropna())


def test_every_basemap_column_is_public_and_every_style_layer_reads_one():
    for layer, fields in BASEMAP_FIELDS.items():
        for column in (*fields, "osm_id", "feature_id"):
            assert class_of(layer, column) == PUBLIC, (layer, column)
    served = basemap_style_layers("basemap")
    assert {layer["source-layer"] for layer in served} == set(BASEMAP_LAYERS)
    assert all(layer["source"] == "basemap" for layer in served)
    inline = basemap_style_layers(None)
    assert {layer["source"] for layer in inline} == set(BASEMAP_LAYERS)
    assert not any("source-layer" in layer for layer in inline)
    # labels last, so a road's name is never hidden under another road
    kinds = [layer["type"] for layer in served]
    assert kinds.index("symbol") > max(i for i, k in enumerate(kinds) if k != "symbol")


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def test_stored_and_served_on_both_stores(store, plan_dir):
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    assert set(BASEMAP_LAYERS) <= set(layers)  # delineate keeps it with the plan
    plan = f"bm-{uuid.uuid4().hex[:8]}"
    save_plan(store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "basemap")
    bare = f"bare-{uuid.uuid4().hex[:8]}"
    old = {k: v for k, v in layers.items() if k not in BASEMAP_LAYERS}
    save_plan(store, plan_from_frames(old, meta, "plan.gpkg"), bare, None, "tests", "old")
    roads = store.query(plan, 1, "basemap_roads").frame
    assert len(roads) == len(layers["basemap_roads"])
    with TestClient(create_app(Settings(), store), headers=auth(store, "viewer")) as client:
        style = client.get("/basemap/style.json", params={"plan": plan}).json()
        assert "glyphs" not in style  # labels are drawn with the browser's fonts
        source = style["sources"]["basemap"]
        assert "OpenStreetMap" in source["attribution"]
        assert source["tiles"][0].endswith(f"/basemap/{{z}}/{{x}}/{{y}}.mvt?plan={plan}")
        # the tile over a named primary road holds it, its name and class as stored
        road = roads[(roads["class"] == "primary") & roads["name"].notna()].iloc[0]
        p = road.geometry.interpolate(0.5, normalized=True)
        x, y = _tile(p.x, p.y, 16)
        r = client.get(f"/basemap/16/{x}/{y}.mvt", params={"plan": plan})
        assert r.status_code == 200, r.text
        tile = mapbox_vector_tile.decode(r.content)
        assert {"basemap_roads"} <= set(tile) <= set(BASEMAP_LAYERS)
        found = [f["properties"] for f in tile["basemap_roads"]["features"]]
        assert {"class": "primary", "name": road["name"]}.items() <= next(
            f for f in found if f.get("name") == road["name"]
        ).items()
        again = client.get(
            f"/basemap/16/{x}/{y}.mvt",
            params={"plan": plan},
            headers={"If-None-Match": r.headers["etag"]},
        )
        assert again.status_code == 304
        # the same layer through the route every layer's tiles come from
        one = client.get(f"/tiles/basemap_roads/16/{x}/{y}.mvt", params={"plan": plan})
        assert one.status_code == 200 and one.content in r.content
        for path in ("/basemap/style.json", f"/basemap/16/{x}/{y}.mvt"):
            missing = client.get(path, params={"plan": bare})
            assert missing.status_code == 404
            assert "no basemap" in missing.json()["error"]
