"""The basemap layers of a plan: roads, water, green, rail and place names from its own data.

A planner redrawing grids finds the way by road names, rivers, parks, schools and the names
of compounds (小区). wangge draws them from the OSM extract the plan was made of, so the
basemap needs no tile server and no network: :func:`basemap_layers` turns the ingest
layers (``roads``, ``barriers``, ``landuse``, ``compounds``, ``facilities``, ``buildings``)
into four layers that are stored with the plan like any other, served as vector tiles by
``/tiles/{layer}``, packed into offline tile packages, and drawn by one MapLibre style
(:mod:`wangge.maps.basemap_style`) under the editor, the web maps and the package viewer:

- ``basemap_roads`` (lines): every road by ``class`` (motorway, trunk, primary, secondary,
  tertiary, minor, service, path; :data:`ROAD_CLASSES`), with its ``name``, ``bridge`` and
  ``tunnel``;
- ``basemap_lines`` (lines): rivers, canals and streams, and railways above ground
  (``class`` waterway or railway, ``kind`` the OSM value, ``name``);
- ``basemap_areas`` (polygons): ``water`` (rebuilt from the water edges the extract keeps,
  islands left as holes), ``green`` (parks, grass, woods, pitches), ``school`` and
  ``hospital`` grounds, with their names;
- ``basemap_places`` (points): the names of compounds, schools, hospitals, parks, water and
  other public facilities, and of named buildings, each with a ``kind`` and a ``rank``
  (1 first) that the style places labels by. A name given twice within
  :data:`SAME_PLACE_M` (a school's grounds and its node) is kept once.

Without an OSM file (buildings from a city's layer, given streets and communities) only the
named buildings remain; the plan's own boundaries are drawn over the basemap anyway.
Everything is cut to the plan's study area, so a city's streets, each drawn with a halo,
do not store the same road twice. Every column is public (:mod:`wangge.data.privacy`):
these are the names of places, never of people.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: The basemap's layers, beneath first.
BASEMAP_LAYERS = ("basemap_areas", "basemap_lines", "basemap_roads", "basemap_places")

#: The attributes each basemap layer's tiles carry (:data:`wangge.data.tiles.TILE_FIELDS`).
BASEMAP_FIELDS: dict[str, tuple[str, ...]] = {
    "basemap_areas": ("kind", "name"),
    "basemap_lines": ("class", "kind", "name"),
    "basemap_roads": ("class", "highway", "name", "bridge", "tunnel"),
    "basemap_places": ("kind", "name", "rank"),
}

#: OSM ``highway`` → the class the style draws by. Values not listed (construction,
#: proposed, platforms, elevators...) are not drawn.
ROAD_CLASSES = {
    **dict.fromkeys(("motorway", "motorway_link"), "motorway"),
    **dict.fromkeys(("trunk", "trunk_link"), "trunk"),
    **dict.fromkeys(("primary", "primary_link"), "primary"),
    **dict.fromkeys(("secondary", "secondary_link"), "secondary"),
    **dict.fromkeys(("tertiary", "tertiary_link"), "tertiary"),
    **dict.fromkeys(("unclassified", "residential", "living_street", "road"), "minor"),
    "service": "service",
    **dict.fromkeys(
        ("pedestrian", "footway", "path", "steps", "cycleway", "track", "bridleway", "corridor"),
        "path",
    ),
}
#: Land use and leisure values drawn as green.
GREEN = {
    "landuse=grass",
    "landuse=forest",
    "landuse=meadow",
    "landuse=village_green",
    "landuse=recreation_ground",
    "landuse=park",
    "landuse=orchard",
    "landuse=cemetery",
    "landuse=allotments",
    "leisure=park",
    "leisure=garden",
    "leisure=pitch",
    "leisure=playground",
    "leisure=nature_reserve",
    "leisure=golf_course",
    "leisure=common",
    "leisure=stadium",
    "leisure=track",
}
#: Facility values (``amenity``, ``healthcare``, ``leisure``, ``emergency``,
#: ``social_facility``) → the kind of place their name labels. Shops, restaurants and
#: street furniture are left out: they crowd the names a planner navigates by.
PLACE_KINDS = {
    **dict.fromkeys(("school", "kindergarten", "university", "college"), "school"),
    **dict.fromkeys(("hospital", "clinic", "doctors"), "hospital"),
    "park": "park",
    **dict.fromkeys(
        (
            "police",
            "fire_station",
            "townhall",
            "community_centre",
            "social_facility",
            "library",
            "post_office",
            "marketplace",
            "place_of_worship",
            "theatre",
            "cinema",
            "arts_centre",
            "courthouse",
            "nursing_home",
            "pharmacy",
            "bank",
            "shelter",
            "assembly_point",
            "bus_station",
        ),
        "facility",
    ),
}
#: Which label wins where two collide (1 first), by kind.
PLACE_RANK = {
    "school": 1,
    "hospital": 1,
    "compound": 2,
    "park": 3,
    "water": 3,
    "facility": 4,
    "building": 5,
}
#: A name seen again within this many metres is the same place.
SAME_PLACE_M = 150.0

_AREA_KINDS = {
    **dict.fromkeys(("amenity=school", "amenity=kindergarten"), "school"),
    **dict.fromkeys(("amenity=university", "amenity=college"), "school"),
    **dict.fromkeys(("amenity=hospital", "amenity=clinic"), "hospital"),
}


def basemap_layers(units: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """The basemap layers of a plan's units, in the units' own (metric) CRS.

    Parameters
    ----------
    units
        Layers of an ingest (``wangge/ingest.py``) in one metric CRS: ``study_area``, and
        where there are any ``roads``, ``barriers``, ``landuse``, ``compounds``,
        ``facilities`` and ``buildings``.

    Returns
    -------
    dict
        Those of :data:`BASEMAP_LAYERS` that hold a feature, each cut to the study area.
    """
    area = units.get("study_area")
    crs = area.crs if area is not None else units["buildings"].crs
    outline = shapely.union_all(area.geometry.to_numpy()) if area is not None else None
    made = {
        "basemap_areas": _areas(units.get("barriers"), units.get("landuse"), crs),
        "basemap_lines": _lines(units.get("barriers"), crs),
        "basemap_roads": _roads(units.get("roads"), crs),
    }
    made["basemap_places"] = _places(units, made["basemap_areas"], crs)
    out = {}
    for name, frame in made.items():
        if outline is not None and len(frame):
            frame = _cut(frame, outline)
        if len(frame):
            out[name] = frame.reset_index(drop=True)
    return out


def _frame(rows: dict, geoms, crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=list(geoms), crs=crs)


def _text(values) -> list:
    """Names as text, missing and blank as None."""
    return [v.strip() if isinstance(v, str) and v.strip() else None for v in values]


def _roads(roads: gpd.GeoDataFrame | None, crs) -> gpd.GeoDataFrame:
    if roads is None or not len(roads):
        return _frame({"class": [], "highway": [], "name": []}, [], crs)
    cls = roads["highway"].map(ROAD_CLASSES)
    keep = cls.notna().to_numpy()
    r = roads[keep]
    return _frame(
        {
            "class": cls[keep].to_list(),
            "highway": r["highway"].astype(str).to_list(),
            "name": _text(r["name"] if "name" in r else [None] * len(r)),
            "bridge": r["bridge"].astype(bool).to_list() if "bridge" in r else False,
            "tunnel": r["tunnel"].astype(bool).to_list() if "tunnel" in r else False,
            "osm_id": r["road_id"].astype(str).to_list(),
        },
        r.geometry,
        crs,
    )


def _lines(barriers: gpd.GeoDataFrame | None, crs) -> gpd.GeoDataFrame:
    empty = _frame({"class": [], "kind": [], "name": []}, [], crs)
    if barriers is None or not len(barriers):
        return empty
    kind = barriers["kind"].astype(str)
    keep = kind.str.startswith(("waterway=", "railway=")).to_numpy()
    b = barriers[keep]
    if not len(b):
        return empty
    pairs = [k.split("=", 1) for k in kind[keep]]
    return _frame(
        {
            "class": [k for k, _ in pairs],
            "kind": [v for _, v in pairs],
            "name": _text(b["name"] if "name" in b else [None] * len(b)),
            "osm_id": b["barrier_id"].astype(str).to_list(),
        },
        b.geometry,
        crs,
    )


def _areas(barriers, landuse, crs) -> gpd.GeoDataFrame:
    rows: dict[str, list] = {"kind": [], "name": [], "osm_id": []}
    geoms: list = []
    if barriers is not None and len(barriers):
        water = barriers[barriers["kind"].astype(str) == "water"]
        # the extract keeps a water polygon as its edges (they bound blocks): built back into
        # an area, an island in a lake stays a hole
        for oid, name, edge in zip(
            water["barrier_id"], _text(water["name"]), water.geometry, strict=True
        ):
            poly = shapely.build_area(edge)
            if poly is not None and not poly.is_empty and poly.area > 0:
                rows["kind"].append("water")
                rows["name"].append(name)
                rows["osm_id"].append(str(oid))
                geoms.append(poly)
    if landuse is not None and len(landuse):
        kinds = landuse["kind"].astype(str)
        kind = kinds.map(lambda k: "green" if k in GREEN else _AREA_KINDS.get(k))
        keep = kind.notna().to_numpy()
        lu = landuse[keep]
        rows["kind"] += kind[keep].to_list()
        rows["name"] += _text(lu["name"] if "name" in lu else [None] * len(lu))
        rows["osm_id"] += lu["landuse_id"].astype(str).to_list()
        geoms += list(lu.geometry)
    return _frame(rows, geoms, crs)


def _places(units: dict[str, gpd.GeoDataFrame], areas: gpd.GeoDataFrame, crs) -> gpd.GeoDataFrame:
    """Named points, one per place: areas, compounds, facilities and buildings."""
    parts: list[tuple[list, list, list, np.ndarray]] = []  # kinds, names, ids, points

    def add(frame, kinds, names, ids) -> None:
        names = _text(names)
        named = np.array(
            [n is not None and k is not None for n, k in zip(names, kinds, strict=True)], bool
        )
        if named.any():
            points = shapely.point_on_surface(frame.geometry.to_numpy()[named])
            pick = np.flatnonzero(named)
            parts.append(
                ([kinds[i] for i in pick], [names[i] for i in pick], [ids[i] for i in pick], points)
            )

    if len(areas):
        kinds = [{"green": "park"}.get(k, k) for k in areas["kind"]]
        add(areas, kinds, areas["name"], list(areas["osm_id"]))
    compounds = units.get("compounds")
    if compounds is not None and len(compounds) and "name" in compounds:
        add(
            compounds,
            ["compound"] * len(compounds),
            compounds["name"],
            compounds["compound_id"].astype(str).to_list(),
        )
    fac = units.get("facilities")
    if fac is not None and len(fac) and "value" in fac:
        add(fac, [PLACE_KINDS.get(v) for v in fac["value"]], fac["name"], list(fac["facility_id"]))
    buildings = units.get("buildings")
    if buildings is not None and len(buildings) and "name" in buildings:
        add(
            buildings,
            ["building"] * len(buildings),
            buildings["name"],
            buildings["building_id"].astype(str).to_list(),
        )
    if not parts:
        return _frame({"kind": [], "name": [], "rank": []}, [], crs)
    frame = _frame(
        {
            "kind": [k for p in parts for k in p[0]],
            "name": [n for p in parts for n in p[1]],
            "osm_id": [i for p in parts for i in p[2]],
        },
        np.concatenate([p[3] for p in parts]),
        crs,
    )
    frame["rank"] = frame["kind"].map(PLACE_RANK).astype(int)
    return _once(frame)


def _once(places: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Each name once per neighbourhood: the best-ranked copy of a name within
    :data:`SAME_PLACE_M` of another is kept (a school's grounds and its node)."""
    order = places.sort_values(["rank", "name"], kind="stable")
    xy = shapely.get_coordinates(order.geometry.to_numpy())
    kept: dict[str, list[np.ndarray]] = {}
    keep = []
    for i, (name, p) in enumerate(zip(order["name"], xy, strict=True)):
        seen = kept.setdefault(name, [])
        if any(np.hypot(*(p - q)) < SAME_PLACE_M for q in seen):
            continue
        seen.append(p)
        keep.append(i)
    return order.iloc[keep]


def _cut(frame: gpd.GeoDataFrame, outline: shapely.Geometry) -> gpd.GeoDataFrame:
    """The features inside ``outline``, lines and areas cut at it."""
    geoms = frame.geometry.to_numpy()
    inside = shapely.intersects(geoms, outline)
    frame = frame[inside]
    geoms = geoms[inside]
    points = shapely.get_type_id(geoms) == 0
    whole = shapely.within(geoms, outline) | points
    cut = geoms.copy()
    if (~whole).any():
        cut[~whole] = [
            _of_dimension(shapely.intersection(g, outline), shapely.get_dimensions(g))
            for g in geoms[~whole]
        ]
    frame = frame.set_geometry(cut)
    return frame[~shapely.is_empty(frame.geometry.to_numpy())]


def _of_dimension(geom: shapely.Geometry, dim: int) -> shapely.Geometry:
    """The parts of ``geom`` of dimension ``dim`` (a road cut at the outline may leave a
    touching point beside its line), as one geometry of a single type."""
    parts = [p for p in shapely.get_parts(geom) if shapely.get_dimensions(p) == dim]
    parts = [q for p in parts for q in shapely.get_parts(p)]
    if not parts:
        return shapely.Point()
    if len(parts) == 1:
        return parts[0]
    return shapely.multilinestrings(parts) if dim == 1 else shapely.multipolygons(parts)
