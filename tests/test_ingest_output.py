"""units.gpkg: the layers and columns the rest of wangge reads, written atomically."""

from __future__ import annotations

import pyogrio

from wangge.ingest import LAYERS, write_units

REQUIRED = {
    "buildings": {
        "building_id",
        "households",
        "population",
        "levels",
        "levels_source",
        "estimated",
        "household_source",
        "rule",
        "block_id",
        "compound_id",
    },
    "blocks": {"block_id", "households", "population", "area_m2", "compound_id"},
    "adjacency": {"block_a", "block_b", "length_m", "along", "road_rank"},
    "roads": {"road_id", "highway", "walk", "cuts_blocks"},
    "barriers": {"barrier_id", "kind"},
    "facilities": {"facility_id", "key", "value", "name"},
    "network_edges": {"u", "v", "length_m"},
}


def test_units_gpkg_layers_and_columns(demo_result, tmp_path):
    target = write_units(demo_result, tmp_path)
    assert target == tmp_path / "units.gpkg"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    layers = {name for name, _ in pyogrio.list_layers(target)}
    assert set(LAYERS) | {"meta"} <= layers
    # beside them only the tables of what was noticed: here, that the extract names three
    # districts, and the pieces of their boundaries it holds put most buildings in 秦淮区
    # (geo/district.py)
    assert layers - set(LAYERS) - {"meta"} <= {"findings", "calibration"}
    if "findings" in layers:
        found = pyogrio.read_dataframe(target, layer="findings")
        said = found[found["kind"] == "osm_district"]
        assert len(said) == 1 and said["code"].iloc[0] == "320104", found
    for layer, columns in REQUIRED.items():
        frame = pyogrio.read_dataframe(target, layer=layer)
        assert columns <= set(frame.columns), layer
        assert len(frame) == len(demo_result.layers[layer]), layer
        assert pyogrio.read_info(target, layer=layer)["crs"] == "EPSG:4326"
    buildings = pyogrio.read_dataframe(target, layer="buildings")
    assert buildings["households"].sum() == demo_result.summary["households"]
    meta = pyogrio.read_dataframe(target, layer="meta").set_index("key")["value"]
    assert "OpenStreetMap contributors" in meta["attribution"]
    assert int(meta["households"]) == demo_result.summary["households"]
