"""Seeded builders that rewrite a real OSM XML file as the odd files planners really have."""

from __future__ import annotations

import gzip
import math
import random
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

#: A lon/lat box: (west, south, east, north) in degrees, WGS84.
Window = tuple[float, float, float, float]
#: OSM element name → the one-letter kind of wangge's string ids (``n1``, ``w1``, ``r1``).
#: The two real cities every test of real data uses: the bundled demo and the shared
#: second city, which CI keeps beside the repository (../shared/data).
ROOT = Path(__file__).resolve().parent.parent
DEMO_OSM = ROOT / "data" / "demo" / "nanjing-xinjiekou.osm"
BEIJING_OSM = ROOT.parent / "shared" / "data" / "beijing-cau.osm"


def real_file(path: Path) -> Path:
    """``path`` if it is there; a failure, never a skip, when it is not: a missing real
    city would otherwise pass the tests that exist to try wangge beyond the demo."""
    import pytest

    if not Path(path).exists():
        pytest.fail(f"{path} is missing; the shared data must sit beside the repository")
    return Path(path)


KIND = {"node": "n", "way": "w", "relation": "r"}
#: Attributes an editor such as JOSM drops from objects it creates.
_META = ("version", "timestamp", "changeset", "user", "uid", "visible")


def _objects(root: ET.Element) -> list[ET.Element]:
    return [el for el in root if el.tag in KIND]


def _write(root: ET.Element, dst: str | Path) -> Path:
    dst = Path(dst)
    ET.indent(root, space=" ")
    ET.ElementTree(root).write(dst, encoding="utf-8", xml_declaration=True)
    return dst


def josm_variant(src: str | Path, dst: str | Path, seed: int = 0) -> dict[str, str]:
    """Rewrite ``src`` as JOSM saves a layer of new and modified objects.

    Every id becomes negative (a seeded random 1:1 map per object type, applied to way node
    refs and relation members alike, including members absent from the file); the objects
    come in shuffled order with nodes, ways and relations interleaved; each carries
    ``action="modify"``; version, timestamp, changeset, user and uid are dropped. A
    ``<bounds>`` element is kept first, as JOSM writes it.

    Parameters
    ----------
    src
        A real OSM XML file (not compressed).
    dst
        Where to write the variant (``.osm``).
    seed
        Seed of the id map and of the order.

    Returns
    -------
    dict[str, str]
        The map from each original string id to the new one, e.g. ``{"w12": "w-345"}``.
    """
    rng = random.Random(seed)
    root = ET.parse(src).getroot()
    objects = _objects(root)
    ids: dict[str, set[int]] = {k: set() for k in KIND.values()}
    for el in objects:
        ids[KIND[el.tag]].add(int(el.get("id")))
        for nd in el.iter("nd"):
            ids["n"].add(int(nd.get("ref")))
        for m in el.iter("member"):
            ids[KIND[m.get("type")]].add(int(m.get("ref")))
    new: dict[str, dict[int, int]] = {}
    for kind, old in ids.items():
        fresh = list(range(-1, -len(old) - 1, -1))
        rng.shuffle(fresh)
        new[kind] = dict(zip(sorted(old), fresh, strict=True))
    for el in objects:
        el.set("id", str(new[KIND[el.tag]][int(el.get("id"))]))
        for key in _META:
            el.attrib.pop(key, None)
        el.set("action", "modify")
        for nd in el.iter("nd"):
            nd.set("ref", str(new["n"][int(nd.get("ref"))]))
        for m in el.iter("member"):
            m.set("ref", str(new[KIND[m.get("type")]][int(m.get("ref"))]))
    rng.shuffle(objects)
    bounds = [el for el in root if el.tag == "bounds"]
    out = ET.Element("osm", {"version": "0.6", "generator": "JOSM", "upload": "never"})
    out.extend(bounds + objects)
    _write(out, dst)
    return {
        f"{kind}{old}": f"{kind}{neg}" for kind, table in new.items() for old, neg in table.items()
    }


def gz_variant(src: str | Path, dst: str | Path) -> Path:
    """Write ``src`` gzip-compressed to ``dst`` (an ``.osm.gz``) and return ``dst``."""
    dst = Path(dst)
    dst.write_bytes(gzip.compress(Path(src).read_bytes(), mtime=0))
    return dst


def _node_coords(root: ET.Element) -> dict[str, tuple[float, float]]:
    return {
        el.get("id"): (float(el.get("lon")), float(el.get("lat")))
        for el in root.iter("node")
        if el.get("lon") is not None and el.get("lat") is not None
    }


def _inside(point: tuple[float, float], windows: Sequence[Window]) -> bool:
    x, y = point
    return any(w <= x <= e and s <= y <= n for w, s, e, n in windows)


def default_windows(src: str | Path, size_m: float = 350.0) -> list[Window]:
    """Four windows of ``size_m`` metres at the corners of the buildings' extent in ``src``.

    The extent is taken between the 2nd and 98th percentiles of the building nodes'
    longitudes and latitudes, so that one stray building does not move a corner; each
    window lies inside the extent, in one of its corners. This works on any city file.

    Parameters
    ----------
    src
        A real OSM XML file holding buildings as ways.
    size_m
        Side of each square window, in metres.

    Returns
    -------
    list[Window]
        South-west, south-east, north-west and north-east windows as (west, south, east,
        north).
    """
    root = ET.parse(src).getroot()
    coords = _node_coords(root)
    pts = [
        coords[nd.get("ref")]
        for way in root.iter("way")
        if any(t.get("k") == "building" for t in way.iter("tag"))
        for nd in way.iter("nd")
        if nd.get("ref") in coords
    ]
    if not pts:
        raise ValueError(f"{src}: no building ways to take an extent from")
    lons = sorted(p[0] for p in pts)
    lats = sorted(p[1] for p in pts)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    west, east = pct(lons, 0.02), pct(lons, 0.98)
    south, north = pct(lats, 0.02), pct(lats, 0.98)
    dy = size_m / 111_320.0
    dx = dy / math.cos(math.radians((south + north) / 2))
    return [
        (west, south, west + dx, south + dy),
        (east - dx, south, east, south + dy),
        (west, north - dy, west + dx, north),
        (east - dx, north - dy, east, north),
    ]


def clustered_variant(src: str | Path, dst: str | Path, windows: Sequence[Window]) -> Path:
    """Clip ``src`` to several small far-apart windows, as a clipped extract is cut.

    Kept: the nodes inside any window; every way that has a node inside a window, with all
    its nodes (so ways reach far out of the windows, as in extracts cut with complete
    ways); and every relation with at least one kept member, its member list left whole
    (so relations reference members absent from the file). ``<bounds>`` becomes the box
    around the windows; other elements are kept in the source's order.

    Parameters
    ----------
    src
        A real OSM XML file (not compressed).
    dst
        Where to write the clipped file.
    windows
        Lon/lat boxes (west, south, east, north), e.g. from :func:`default_windows`.

    Returns
    -------
    Path
        ``dst``.
    """
    root = ET.parse(src).getroot()
    coords = _node_coords(root)
    keep: dict[str, set[str]] = {"node": set(), "way": set(), "relation": set()}
    keep["node"] = {i for i, xy in coords.items() if _inside(xy, windows)}
    for way in root.iter("way"):
        refs = [nd.get("ref") for nd in way.iter("nd")]
        if any(r in keep["node"] for r in refs if r is not None):
            keep["way"].add(way.get("id"))
    for way in root.iter("way"):
        if way.get("id") in keep["way"]:
            keep["node"].update(nd.get("ref") for nd in way.iter("nd"))
    relations = list(root.iter("relation"))
    changed = True
    while changed:  # a relation may be kept through a kept relation
        changed = False
        for rel in relations:
            rid = rel.get("id")
            if rid not in keep["relation"] and any(
                m.get("ref") in keep[m.get("type")] for m in rel.iter("member")
            ):
                keep["relation"].add(rid)
                changed = True
    out = ET.Element("osm", dict(root.attrib))
    west = min(w[0] for w in windows)
    south = min(w[1] for w in windows)
    east = max(w[2] for w in windows)
    north = max(w[3] for w in windows)
    for el in root:
        if el.tag == "bounds":
            bounds = {"minlat": south, "minlon": west, "maxlat": north, "maxlon": east}
            out.append(ET.Element("bounds", {k: f"{v:.7f}" for k, v in bounds.items()}))
        elif el.tag not in KIND or el.get("id") in keep[el.tag]:
            out.append(el)
    return _write(out, dst)


def _new_way(
    root: ET.Element,
    next_id: int,
    points: list[tuple[float, float]],
    tags: dict[str, str],
    closed: bool,
) -> tuple[str, int]:
    """Add a way through new nodes at ``points`` (lon/lat), ``closed`` back to its first,
    with ``tags``; ids from ``next_id`` on. Returns its wangge id (``w…``) and the next
    free id."""
    refs = []
    for lon, lat in points:
        node = ET.SubElement(root, "node", id=str(next_id), lat=f"{lat:.7f}")
        node.set("lon", f"{lon:.7f}")
        refs.append(str(next_id))
        next_id += 1
    way = ET.SubElement(root, "way", id=str(next_id))
    for ref in refs + refs[:1] * closed:
        ET.SubElement(way, "nd", ref=ref)
    for k, v in tags.items():
        ET.SubElement(way, "tag", k=k, v=v)
    return f"w{next_id}", next_id + 1


def drift_variant(
    src: str | Path,
    dst: str | Path,
    seed: int = 0,
    k: int = 6,
    storeys: int = 12,
    road: Sequence[tuple[float, float]] | None = None,
) -> dict[str, set]:
    """The district a year on, as a new extract of it would show it (seeded): a cleared
    block (the ``k`` buildings nearest one residential building removed), a new compound
    (``k`` apartment blocks of 30 m × 15 m and ``storeys`` storeys beside another, with new
    ids), ``k`` buildings elsewhere with two more storeys, and, given its line (lon/lat
    points), a new residential street (新辟路). Returns the ids (wangge's ``w…``) gone,
    added and raised, and the road's."""
    rng = random.Random(seed)
    tree = ET.parse(src)
    root = tree.getroot()
    coords = _node_coords(root)
    ways = [el for el in root if el.tag == "way"]
    tagged = {w: {t.get("k"): t.get("v") for t in w.findall("tag")} for w in ways}
    homes = [w for w in ways if tagged[w].get("building") in {"residential", "apartments"}]
    if len(homes) < 3 * k:
        homes = [w for w in ways if "building" in tagged[w]]

    def centre(w: ET.Element) -> tuple[float, float]:
        pts = [coords[nd.get("ref")] for nd in w.findall("nd") if nd.get("ref") in coords]
        return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)

    centres = {w: centre(w) for w in homes}
    cleared_at = rng.choice(homes)
    cx, cy = centres[cleared_at]
    nearest = sorted(homes, key=lambda w: (centres[w][0] - cx) ** 2 + (centres[w][1] - cy) ** 2)
    gone = nearest[:k]
    for w in gone:
        root.remove(w)
    rest = [w for w in homes if w not in gone]
    bx, by = centres[rng.choice(rest)]
    next_id = max(int(el.get("id")) for el in root if el.tag in ("node", "way")) + 1
    added = set()
    dlon = 1.0 / (111_320 * math.cos(math.radians(by)))
    dlat = 1.0 / 110_540
    for i in range(k):
        x0 = bx + ((i % 4) * 40 - 60) * dlon
        y0 = by + ((i // 4) * 25 + 30) * dlat
        corners = [
            (x0 + ex * dlon, y0 + ny * dlat) for ex, ny in ((0, 0), (30, 0), (30, 15), (0, 15))
        ]
        way, next_id = _new_way(
            root,
            next_id,
            corners,
            {"building": "apartments", "building:levels": str(storeys)},
            True,
        )
        added.add(way)
    raised = set()
    for w in rng.sample([w for w in rest if w is not cleared_at], k):
        tags = {t.get("k"): t for t in w.findall("tag")}
        levels = tags.get("building:levels")
        now = int(float(levels.get("v"))) if levels is not None else 0
        if levels is None:
            levels = ET.SubElement(w, "tag", k="building:levels")
        levels.set("v", str(max(now, 6) + 2))  # six: the household model's default
        raised.add(f"w{w.get('id')}")
    cut_road = None
    if road is not None:  # a new residential street along the given line
        tags = {"highway": "residential", "name": "新辟路"}
        cut_road, next_id = _new_way(root, next_id, list(road), tags, False)
    # ET.SubElement appends nodes after ways: put every node first, as OSM files order them
    nodes = [el for el in root if el.tag == "node"]
    others = [el for el in root if el.tag != "node" and el.tag != "bounds"]
    for el in nodes + others:
        root.remove(el)
    for el in nodes + others:
        root.append(el)
    _write(root, dst)
    return {
        "gone": {f"w{w.get('id')}" for w in gone},
        "added": added,
        "raised": raised,
        "road": {cut_road} if cut_road else set(),
    }
