"""Read any local OSM file (.osm, .osm.gz, .osm.bz2, .osm.pbf; sorted or not) into map layers."""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import shapely

from wangge.data._osm_order import (
    claims_sorted,
    copies,
    osm_id,
    positive_ids,
    read_error,
    sorted_copy,
)
from wangge.errors import InputError
from wangge.geo._geom import polygonal

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)"
#: OSM's admin_level of a county-level division (区/县/县级市) in China; such areas are read
#: (tags, and the polygon where the file holds all of it) to name the district.
ADMIN_LEVEL = "6"
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
_WORD = {"n": "node", "w": "way", "r": "relation"}
_RANK_KIND = {1: "n", 2: "w", 3: "r"}


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
    #: The extract's bounds as the file states them (WGS84 minx, miny, maxx, maxy), or None.
    bounds: tuple[float, float, float, float] | None = None
    #: County-level administrative areas (``boundary=administrative``, :data:`ADMIN_LEVEL`):
    #: ``osm_id``, ``admin_level``, ``name``, ``tags`` (a dict), ``edges`` (the boundary
    #: ways the file holds: way id → WGS84 line) and the polygon, None where the file does
    #: not hold the whole boundary (a clipped extract).
    admin_areas: gpd.GeoDataFrame | None = None
    #: How many objects name each ``addr:district`` value.
    addr_districts: Counter = field(default_factory=Counter)


def attribution(osm: bool, files: dict[str, str | Path | None] | None = None) -> str:
    """The credit for the data a run used: OpenStreetMap's (:data:`ATTRIBUTION`) only when
    an OSM file was read, and the user's own files by role and name (``buildings:
    楼栋.geojson``). Files that are None are left out."""
    parts = [ATTRIBUTION] if osm else []
    for role, path in (files or {}).items():
        if path is not None:
            parts.append(f"{role}: {Path(path).name} (the user's file)")
    return "; ".join(parts) if parts else "no data source named"


def attribution_of(layers: dict) -> str:
    """The credit a plan or units file carries: the ``attribution`` its ``study_area``
    layer records (:func:`attribution`); for a units file from before it was recorded,
    OpenStreetMap's when the file holds OSM roads, else none."""
    area = layers.get("study_area")
    if area is not None and "attribution" in area and len(area):
        text = area["attribution"].iloc[0]
        if isinstance(text, str) and text:
            return text
    roads = layers.get("roads")
    return ATTRIBUTION if roads is not None and len(roads) else "no data source named"


def credit_of(meta: dict) -> str:
    """The credit a stored plan's meta records (:func:`attribution`); a plan stored before
    it was recorded was drawn from OSM, so it carries OpenStreetMap's."""
    text = meta.get("attribution")
    return text if isinstance(text, str) and text else ATTRIBUTION


def uses_osm(credit: str) -> bool:
    """Whether a credit names OpenStreetMap (its pages then link the copyright page)."""
    return "OpenStreetMap" in credit


#: OpenStreetMap's credit in Chinese, shown beside the English on sheets and pages.
ATTRIBUTION_ZH = "地图数据 © OpenStreetMap 贡献者，ODbL 1.0"


def _is_admin(tags) -> bool:
    return tags.get("boundary") == "administrative" and tags.get("admin_level") == ADMIN_LEVEL


class _Unsorted(Exception):
    """The input is not sorted by type, then id: it has to be read again, sorted."""


class _Negative(Exception):
    """The input holds ids ≤ 0: it has to be read again with its ids made positive."""


class _Twice(Exception):
    """The input holds an object more than once: it is read again with one copy of each."""


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
    """Gather the objects wangge needs in one pass, keeping node locations for ways.

    It also checks the order libosmium relies on (nodes, then ways, then relations, each by
    rising positive id): it raises :class:`_Unsorted` or :class:`_Negative` so that the
    caller reads the file again prepared, and :class:`InputError` for an id seen twice. It
    remembers the areas it expects, so that :meth:`finish` counts those libosmium could not
    assemble (nodes or member ways missing from a clipped extract).
    """

    def __init__(self, source: Path) -> None:
        super().__init__()
        self.source = source
        self.wkb = osmium.geom.WKBFactory()
        self.stats: Counter = Counter()
        self.rank = 0
        self.last = 0
        self.way_ids: set[int] = set()
        self.expected_ways: dict[int, bool] = {}  # closed way → all its nodes have locations
        self.expected_relations: dict[int, list[int]] = {}  # relation → its member ways
        self.assembled: set[tuple[str, int]] = set()
        self.buildings: list[dict] = []
        self.roads: list[dict] = []
        self.barriers: list[dict] = []
        self.landuse: list[dict] = []
        self.compounds: list[dict] = []
        self.facilities: list[dict] = []
        self.admin: dict[str, dict] = {}  # county-level areas by osm id: tags, then polygon
        self.boundary_lines: dict[int, shapely.LineString] = {}  # boundary=administrative ways
        self.addr_districts: Counter = Counter()  # addr:district values, over all objects

    @property
    def where(self) -> str | None:
        """The last object read, e.g. ``way w-5``, to name in an error."""
        if not self.rank:
            return None
        kind = _RANK_KIND[self.rank]
        return f"{_WORD[kind]} {osm_id(kind, self.last)}"

    def _order(self, rank: int, ident: int) -> None:
        if ident <= 0:
            raise _Negative
        if rank == self.rank and ident > self.last:
            self.last = ident
            return
        if rank == self.rank and ident == self.last:
            raise _Twice
        if rank <= self.rank:
            raise _Unsorted
        self.rank, self.last = rank, ident

    def finish(self) -> None:
        """Count the areas expected from closed ways and relations that were not assembled."""
        for ident, located in self.expected_ways.items():
            if ("w", ident) not in self.assembled:
                if located:
                    self.stats["areas skipped: way rings libosmium cannot assemble"] += 1
                else:
                    self.stats["areas skipped: way nodes missing from the file"] += 1
        for ident, members in self.expected_relations.items():
            if ("r", ident) not in self.assembled:
                if all(m in self.way_ids for m in members):
                    self.stats["multipolygons skipped: rings not closed or nodes missing"] += 1
                else:
                    self.stats["multipolygons skipped: member ways missing from the file"] += 1

    # nodes: facilities only
    def node(self, n) -> None:
        ident = n.id
        if ident > self.last and self.rank == 1:  # the common case, inline: nodes are many
            self.last = ident
        else:
            self._order(1, ident)
        if not n.tags:
            return
        tags = dict(n.tags)
        if "addr:district" in tags:
            self.addr_districts[tags["addr:district"]] += 1
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
        missing = len(w.nodes) - len(coords)
        if missing:
            self.stats["way nodes missing from the file or without lat/lon"] += missing
            if len(coords) >= 2:
                self.stats["ways cut short: nodes missing from the file"] += 1
        return shapely.LineString(coords) if len(coords) >= 2 else None

    def way(self, w) -> None:
        self._order(2, w.id)
        self.way_ids.add(w.id)
        tags = dict(w.tags)
        if not tags:
            return
        if "addr:district" in tags:
            self.addr_districts[tags["addr:district"]] += 1
        if _is_admin(tags) and w.is_closed():
            self.admin[osm_id("w", w.id)] = {"tags": tags, "geometry": None, "ways": [w.id]}
        if tags.get("boundary") == "administrative":  # kept quietly: a clipped one is common
            coords = [(n.location.lon, n.location.lat) for n in w.nodes if n.location.valid()]
            if len(coords) >= 2:
                self.boundary_lines[w.id] = shapely.LineString(coords)
        nodes = w.nodes
        if (
            len(nodes) >= 4
            and nodes[0].ref == nodes[len(nodes) - 1].ref
            and tags.get("area") != "no"
            and _area_wanted(tags)
        ):
            self.expected_ways[w.id] = all(nd.location.valid() for nd in nodes)
        hw = tags.get("highway")
        is_road = hw is not None and tags.get("area") != "yes"
        kind = _barrier_kind(tags)
        is_barrier = kind is not None and not _is_tunnel(tags)
        is_gate = tags.get("barrier") in ("wall", "fence") and w.is_closed() and len(w.nodes) >= 4
        if not (is_road or is_barrier or is_gate):
            return
        line = self._line(w)  # built once, whatever the way is used for
        if line is None:
            self.stats["ways skipped: fewer than 2 nodes in the file"] += 1
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

    def relation(self, r) -> None:
        self._order(3, r.id)
        if _is_admin(r.tags):
            ways = [m.ref for m in r.members if m.type == "w"]
            self.admin[osm_id("r", r.id)] = {"tags": dict(r.tags), "geometry": None, "ways": ways}
        if r.tags.get("type") in ("multipolygon", "boundary") and _area_wanted(dict(r.tags)):
            self.expected_relations[r.id] = [m.ref for m in r.members if m.type == "w"]

    def _admin_shape(self, a) -> shapely.Geometry | None:
        """An administrative area's polygon, repaired; None if its rings do not close."""
        try:
            geom = shapely.from_wkb(self.wkb.create_multipolygon(a))
        except RuntimeError:
            return None
        return polygonal(shapely.make_valid(geom)) if not geom.is_valid else geom

    def area(self, a) -> None:
        tags = dict(a.tags)
        if not tags:
            return
        kind, ident = ("w", a.orig_id()) if a.from_way() else ("r", a.orig_id())
        if osm_id(kind, ident) in self.admin:
            self.admin[osm_id(kind, ident)]["geometry"] = self._admin_shape(a)
        if not _area_wanted(tags):
            return
        self.assembled.add((kind, ident))
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


def _area_wanted(tags: dict) -> bool:
    """Whether an area with these tags gives wangge a layer's polygon."""
    return (
        ("building" in tags and tags["building"] != "no")
        or _water_polygon(tags)
        or _compound_kind(tags) is not None
        or any(k in tags for k in CONTEXT_KEYS)
        or _facility_tags(tags) is not None
    )


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


#: The roads table's columns and types, which a file without roads (buildings alone) and
#: a run without an OSM file have too.
ROAD_DTYPES = {
    "road_id": object, "highway": object, "name": object, "walk": bool, "cuts_blocks": bool,
    "rank": int, "oneway": bool, "tunnel": bool, "bridge": bool,
}  # fmt: skip


def empty_roads() -> gpd.GeoDataFrame:
    """A roads table without roads, with every column the reader gives."""
    columns = {c: pd.Series(dtype=t) for c, t in ROAD_DTYPES.items()}
    return gpd.GeoDataFrame(pd.DataFrame(columns), geometry=[], crs=4326)


def _frame(rows: list[dict], columns: list[str]) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame(pd.DataFrame(columns=columns), geometry=[], crs=4326)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def _collect(path: Path, source: Path, *, is_sorted: bool) -> _Collector:
    """Run the collector over ``path`` (``source`` as the user named it, for errors)."""
    handler = _Collector(source)
    try:
        handler.apply_file(str(path), locations=True)
    except (_Unsorted, _Negative, _Twice, InputError):
        raise
    except Exception as exc:
        if "out of order" in str(exc) and not is_sorted:
            raise _Unsorted from exc
        if "twice in input" in str(exc):  # libosmium's own check, at the second copy
            raise _Twice from exc
        raise read_error(exc, source, handler) from exc
    handler.finish()
    return handler


def _read_any(path: Path) -> _Collector:
    """Collect ``path`` in the order libosmium needs, preparing a copy only when needed.

    A PBF whose header says it is sorted is read as it is. Any other file (XML is parsed
    once either way) is sorted in memory into a temporary PBF by libosmium's own
    ``MergeInputReader``, which costs about nothing; a file with ids ≤ 0 (JOSM) is copied
    once more with positive ids, because the node location index keeps positive ids only.
    A file holding objects more than once (Overpass downloads joined end to end) is copied
    with one copy of each, the newest version, as ``osmium merge`` would; how many were
    dropped, and the first, is counted in ``stats``.
    """
    if claims_sorted(path):
        try:
            return _collect(path, path, is_sorted=False)
        except (_Unsorted, _Negative, _Twice):
            pass
    with tempfile.TemporaryDirectory(prefix="wangge-osm-") as tmp:
        current = sorted_copy(path, Path(tmp) / "sorted.osm.pbf", path)
        noted: Counter = Counter()
        for _ in range(3):  # at most: ids made positive once, copies dropped once
            try:
                handler = _collect(current, path, is_sorted=True)
            except _Negative:
                current = positive_ids(current, Path(tmp), path)
            except _Twice:
                noted.update(copies(current))
                current = sorted_copy(current, Path(tmp) / "once.osm.pbf", path, once=True)
            else:
                handler.stats.update(noted)
                return handler
        raise InputError("cannot be put in id order", path, None)


def read_osm(path: str | Path) -> OsmExtract:
    """Read a local OSM file with no network access.

    Any order and any ids are read: files saved by JOSM (ids < 0, objects in any order) and
    Overpass exports come out with the same layers as the sorted file would give, the ids
    keeping their sign (``w-12``). What a clipped extract lacks (nodes of a way, members of
    a multipolygon) is skipped and counted in ``stats``.

    Parameters
    ----------
    path
        An ``.osm`` (or ``.xml``), ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` file.

    Returns
    -------
    OsmExtract
        Buildings (polygons with their tags), roads (lines, with walk and block-cutting
        flags), barriers (rivers, water edges, railways, walls), land-use context polygons,
        compounds and facility POIs (points; polygons become their representative point).

    Raises
    ------
    InputError
        If the file is missing, empty, not OSM, truncated or holds no buildings.
    """
    path = Path(path)
    check_osm_file(path)
    handler = _read_any(path)
    if not handler.buildings:
        skipped = "; ".join(f"{what}: {n}" for what, n in sorted(handler.stats.items()))
        raise InputError(
            "holds no buildings (no closed way or multipolygon with a building tag); "
            "wangge needs building footprints to estimate households"
            + (f" (skipped while reading: {skipped})" if skipped else ""),
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
        roads=_frame(handler.roads, []) if handler.roads else empty_roads(),
        barriers=_frame(handler.barriers, ["barrier_id", "kind", "name", "geometry"]),
        landuse=_frame(handler.landuse, ["landuse_id", "kind", "geometry"]),
        compounds=_frame(handler.compounds, ["compound_id", "kind", "geometry"]),
        facilities=facilities,
        stats=handler.stats,
        bounds=header_bounds(path),
        admin_areas=_admin_frame(handler.admin, handler.boundary_lines),
        addr_districts=handler.addr_districts,
    )


def _admin_frame(admin: dict[str, dict], lines: dict[int, shapely.LineString]) -> gpd.GeoDataFrame:
    """The county-level areas collected, one row each (polygon None where not assembled),
    with ``edges``: the lines of their boundary ways that the file holds, by way id."""
    rows = [
        {
            "osm_id": oid,
            "admin_level": a["tags"].get("admin_level"),
            "name": a["tags"].get("name"),
            "tags": a["tags"],
            "edges": {w: lines[w] for w in a["ways"] if w in lines},
            "geometry": a["geometry"],
        }
        for oid, a in admin.items()
    ]
    columns = ["osm_id", "admin_level", "name", "tags", "edges", "geometry"]
    frame = pd.DataFrame(rows, columns=columns)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)


def header_bounds(path: Path) -> tuple[float, float, float, float] | None:
    """The bounds an OSM file's header states (``<bounds>`` in XML, the PBF header box),
    as WGS84 (minx, miny, maxx, maxy); None when it states none."""
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    except Exception:
        return None
    try:
        box = reader.header().box()
        if not box.valid():
            return None
        bl, tr = box.bottom_left, box.top_right
        return (bl.lon, bl.lat, tr.lon, tr.lat)
    finally:
        reader.close()
