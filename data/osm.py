"""Read a local OSM file (.osm, .osm.bz2, .osm.pbf) into buildings, roads, barriers and POIs."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import shapely

from wangge.errors import InputError
from wangge.geo._geom import polygonal

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)"
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".xml")

#: Highway values that are never walked (osmnx's walk filter excludes the same families).
NOT_WALKABLE = {
    "motorway",
    "motorway_link",
    "construction",
    "proposed",
    "planned",
    "abandoned",
    "razed",
    "bus_guideway",
    "raceway",
    "platform",
    "cycleway",
    "no",
    "elevator",
}
#: Highway values whose centre lines bound blocks: public streets, not paths or driveways.
BLOCK_CUTTING_HIGHWAYS = {
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "pedestrian",
    "road",
}
#: Rank of a road class for boundary preference (1 = most important).
ROAD_RANK = {
    "motorway": 1,
    "trunk": 1,
    "primary": 2,
    "secondary": 3,
    "tertiary": 4,
    "unclassified": 5,
    "residential": 5,
    "living_street": 6,
    "pedestrian": 6,
    "road": 5,
}
BARRIER_WATERWAYS = {"river", "canal", "stream"}
BARRIER_RAILWAYS = {"rail", "light_rail", "narrow_gauge", "preserved", "monorail"}
BARRIER_WALLS = {"wall", "city_wall"}
FACILITY_KEYS = ("amenity", "healthcare", "emergency", "shop", "leisure", "social_facility")
#: Keys whose polygons give buildings their context (what land they stand on).
CONTEXT_KEYS = ("landuse", "amenity", "leisure", "shop", "tourism", "railway", "office")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class OsmExtract:
    """Everything wangge takes from one OSM file, in WGS84 (EPSG:4326)."""

    source: Path
    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    barriers: gpd.GeoDataFrame
    landuse: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    stats: Counter = field(default_factory=Counter)


def osm_id(kind: str, ident: int) -> str:
    """Return the string id wangge uses for an OSM object: ``n123``, ``w123`` or ``r123``."""
    return f"{kind}{ident}"


def check_osm_file(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` looks like a readable OSM file."""
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, not an OSM file", path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    name = path.name.lower()
    if not name.endswith(OSM_SUFFIXES):
        raise InputError(f"unknown OSM file type; expected one of {', '.join(OSM_SUFFIXES)}", path)
    if name.endswith((".osm", ".xml")):
        head = path.open("rb").read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith(b"<"):
            raise InputError("is not XML, so not an OSM XML file", path)
        if b"<osm" not in head:
            raise InputError("is XML but has no <osm> root element, so it is not OSM data", path)


def parse_levels(value: str | None) -> float | None:
    """Parse ``building:levels`` such as ``"6"``, ``"5;7"`` or ``"6F"``; ``None`` if unusable."""
    if not isinstance(value, str) or not value:
        return None
    nums = [float(n) for n in _NUMBER.findall(value)]
    nums = [n for n in nums if 0 < n <= 200]
    return float(np.mean(nums)) if nums else None


def parse_height(value: str | None) -> float | None:
    """Parse ``height`` in metres (``"30"``, ``"30 m"``, ``"98 ft"``); ``None`` if unusable."""
    if not isinstance(value, str) or not value:
        return None
    m = _NUMBER.search(value)
    if not m:
        return None
    h = float(m.group())
    if "ft" in value or "'" in value:
        h *= 0.3048
    return h if 0 < h <= 700 else None


def _is_tunnel(tags: dict) -> bool:
    return (
        tags.get("tunnel", "no") not in ("no",)
        or tags.get("covered") == "yes"
        or tags.get("location") == "underground"
        or (tags.get("layer", "0").lstrip("-").isdigit() and int(tags.get("layer", "0")) < 0)
    )


def _walkable(tags: dict) -> bool:
    hw = tags.get("highway")
    if hw is None or hw in NOT_WALKABLE or tags.get("area") == "yes":
        return False
    if tags.get("foot") in ("no", "private"):
        return False
    return not (tags.get("access") in ("no", "private") and tags.get("foot") not in ("yes",))


class _Collector(osmium.SimpleHandler):
    """Gather the objects wangge needs in one pass, keeping node locations for ways."""

    def __init__(self) -> None:
        super().__init__()
        self.wkb = osmium.geom.WKBFactory()
        self.stats: Counter = Counter()
        self.buildings: list[dict] = []
        self.roads: list[dict] = []
        self.barriers: list[dict] = []
        self.landuse: list[dict] = []
        self.compounds: list[dict] = []
        self.facilities: list[dict] = []

    # nodes: facilities only
    def node(self, n) -> None:
        tags = dict(n.tags)
        if not tags:
            return
        fac = _facility_tags(tags)
        if fac is None:
            return
        loc = n.location
        if not loc.valid():
            self.stats["facility nodes without location"] += 1
            return
        self.facilities.append(
            {
                "facility_id": osm_id("n", n.id),
                **fac,
                "area_m2": 0.0,
                "geometry": shapely.Point(loc.lon, loc.lat),
            }
        )

    def _line(self, w) -> shapely.LineString | None:
        coords = []
        for nd in w.nodes:
            if nd.location.valid():
                coords.append((nd.location.lon, nd.location.lat))
            else:
                self.stats["way nodes without location"] += 1
        return shapely.LineString(coords) if len(coords) >= 2 else None

    def way(self, w) -> None:
        tags = dict(w.tags)
        if not tags:
            return
        hw = tags.get("highway")
        is_road = hw is not None and tags.get("area") != "yes"
        kind = _barrier_kind(tags)
        is_barrier = kind is not None and not _is_tunnel(tags)
        is_gate = tags.get("barrier") in ("wall", "fence") and w.is_closed() and len(w.nodes) >= 4
        if not (is_road or is_barrier or is_gate):
            return
        line = self._line(w)  # built once, whatever the way is used for
        if line is None:
            self.stats["ways without geometry"] += 1
            return
        if is_road:
            tunnel = _is_tunnel(tags)
            self.roads.append(
                {
                    "road_id": osm_id("w", w.id),
                    "highway": hw,
                    "name": tags.get("name"),
                    "walk": _walkable(tags),
                    "cuts_blocks": hw in BLOCK_CUTTING_HIGHWAYS and not tunnel,
                    "rank": ROAD_RANK.get(hw.removesuffix("_link"), 9),
                    "oneway": tags.get("oneway") in ("yes", "1", "true"),
                    "tunnel": tunnel,
                    "bridge": tags.get("bridge", "no") != "no",
                    "geometry": line,
                }
            )
        if is_barrier:
            self.barriers.append(
                {
                    "barrier_id": osm_id("w", w.id),
                    "kind": kind,
                    "name": tags.get("name"),
                    "geometry": line,
                }
            )
        if is_gate and line.is_closed:
            self.compounds.append(
                {
                    "compound_id": osm_id("w", w.id),
                    "kind": "gated",
                    "name": tags.get("name"),
                    "geometry": shapely.Polygon(line.coords),
                }
            )

    def area(self, a) -> None:
        tags = dict(a.tags)
        if not tags:
            return
        kind, ident = ("w", a.orig_id()) if a.from_way() else ("r", a.orig_id())
        wanted = (
            ("building" in tags and tags["building"] != "no")
            or _water_polygon(tags)
            or _compound_kind(tags) is not None
            or any(k in tags for k in CONTEXT_KEYS)
            or _facility_tags(tags) is not None
        )
        if not wanted:
            return
        try:
            geom = shapely.from_wkb(self.wkb.create_multipolygon(a))
        except RuntimeError:
            self.stats[f"areas whose rings do not close ({kind})"] += 1
            return
        if geom.is_empty:
            self.stats["empty areas skipped"] += 1
            return
        if not geom.is_valid:
            geom = polygonal(shapely.make_valid(geom))
            self.stats["invalid OSM polygons repaired"] += 1
            if geom.is_empty:
                return
            if geom.geom_type == "Polygon":
                geom = shapely.MultiPolygon([geom])
        if len(geom.geoms) == 1:
            geom = geom.geoms[0]
        oid = osm_id(kind, ident)
        if "building" in tags and tags["building"] != "no":
            self.buildings.append(
                {
                    "building_id": oid,
                    "building": tags["building"],
                    "name": tags.get("name"),
                    "levels_tag": tags.get("building:levels"),
                    "height_tag": tags.get("height"),
                    "building_use": tags.get("building:use"),
                    "own_use": _own_use(tags),
                    "geometry": geom,
                }
            )
        if _water_polygon(tags):
            self.barriers.append(
                {
                    "barrier_id": oid,
                    "kind": "water",
                    "name": tags.get("name"),
                    "geometry": geom.boundary,
                }
            )
        ckind = _compound_kind(tags)
        if ckind is not None:
            self.compounds.append(
                {"compound_id": oid, "kind": ckind, "name": tags.get("name"), "geometry": geom}
            )
        for key in CONTEXT_KEYS:
            if key in tags and "building" not in tags:
                self.landuse.append(
                    {
                        "landuse_id": oid,
                        "kind": f"{key}={tags[key]}",
                        "name": tags.get("name"),
                        "geometry": geom,
                    }
                )
                break
        fac = _facility_tags(tags)
        if fac is not None:
            self.facilities.append({"facility_id": oid, **fac, "area_m2": np.nan, "geometry": geom})


def _water_polygon(tags: dict) -> bool:
    return (
        tags.get("natural") == "water"
        or "water" in tags
        or tags.get("waterway") in ("riverbank", "dock")
        or tags.get("landuse") in ("reservoir", "basin")
    )


def _barrier_kind(tags: dict) -> str | None:
    if tags.get("waterway") in BARRIER_WATERWAYS:
        return f"waterway={tags['waterway']}"
    if tags.get("railway") in BARRIER_RAILWAYS:
        return f"railway={tags['railway']}"
    if tags.get("barrier") in BARRIER_WALLS:
        return f"barrier={tags['barrier']}"
    return None


def _compound_kind(tags: dict) -> str | None:
    if tags.get("landuse") == "residential" or "residential" in tags:
        return "landuse=residential"
    if tags.get("place") in ("neighbourhood", "quarter", "city_block") and "building" not in tags:
        return f"place={tags['place']}"
    return None


def _own_use(tags: dict) -> str | None:
    """Tags on a building outline that state a non-residential use, as ``key=value``."""
    for key in (
        "amenity",
        "shop",
        "office",
        "tourism",
        "healthcare",
        "railway",
        "public_transport",
        "leisure",
        "man_made",
        "power",
        "craft",
    ):
        if key in tags:
            return f"{key}={tags[key]}"
    return None


def _facility_tags(tags: dict) -> dict | None:
    for key in FACILITY_KEYS:
        if key in tags:
            if key == "leisure" and tags[key] != "park":
                continue
            return {
                "key": key,
                "value": tags[key],
                "name": tags.get("name"),
                **{k: tags.get(k) for k in FACILITY_KEYS},
                "capacity": tags.get("capacity"),
            }
    return None


def _frame(rows: list[dict], columns: list[str]) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame(pd.DataFrame(columns=columns), geometry=[], crs=4326)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def read_osm(path: str | Path) -> OsmExtract:
    """Read a local OSM file with no network access.

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.bz2`` or ``.osm.pbf`` file.

    Returns
    -------
    OsmExtract
        Buildings (polygons with their tags), roads (lines, with walk and block-cutting
        flags), barriers (rivers, water edges, railways, walls), land-use context polygons,
        compounds and facility POIs (points; polygons become their representative point).

    Raises
    ------
    InputError
        If the file is missing, empty, not OSM, truncated, or holds no buildings.
    """
    path = Path(path)
    check_osm_file(path)
    handler = _Collector()
    try:
        handler.apply_file(str(path), locations=True)
    except RuntimeError as exc:
        detail = str(exc)
        if "no element found" in detail:
            detail = f"the file ends too early (truncated?): {detail}"
        raise InputError(f"cannot be read as OSM data: {detail}", path) from exc
    if not handler.buildings:
        raise InputError(
            "holds no buildings (no closed way or multipolygon with a building tag); "
            "wangge needs building footprints to estimate households",
            path,
        )
    buildings = _frame(handler.buildings, ["building_id", "building", "geometry"])
    dup = buildings["building_id"].duplicated()
    if dup.any():
        raise InputError(
            f"duplicate building ids: {', '.join(buildings.loc[dup, 'building_id'][:5])}", path
        )
    facilities = _frame(handler.facilities, ["facility_id", "key", "value", "geometry"])
    polys = facilities.geom_type.isin(["Polygon", "MultiPolygon"])
    if polys.any():
        from wangge.geo.crs import metric_crs

        c = facilities.union_all().centroid
        facilities.loc[polys, "area_m2"] = facilities.loc[polys].to_crs(metric_crs(c.x, c.y)).area
        facilities.loc[polys, "geometry"] = facilities.loc[polys].representative_point()
    return OsmExtract(
        source=path,
        buildings=buildings,
        roads=_frame(handler.roads, ["road_id", "highway", "geometry"]),
        barriers=_frame(handler.barriers, ["barrier_id", "kind", "geometry"]),
        landuse=_frame(handler.landuse, ["landuse_id", "kind", "geometry"]),
        compounds=_frame(handler.compounds, ["compound_id", "kind", "geometry"]),
        facilities=facilities,
        stats=handler.stats,
    )
