"""Address to grid: a plan version's address index, built once, and the answers it gives.

The index of a version (:func:`index_of`) holds the names of its buildings, and the
entries stored for the plan (``Store.addresses``: standard addresses, the OSM file's names
and ``addr:*`` tags), each taken to one building of this version: by its building id,
by its compound (the compound's building nearest its point), or by its point
(:func:`wangge.data.userfiles.building_at`: the footprint holding it, else the nearest
within 20 m). An answer's units are the matched building's own micro-grid in the
version's buildings layer, as edits keep it (``wangge/plan_state.py``), and its grid,
community and street are that code's parents: never a second point-in-polygon rule. The
index follows the plan: a new version, or a new import, builds a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.addresses import REGION
from wangge.data.store import LEVELS, Store, Version
from wangge.data.userfiles import building_at
from wangge.geo.district import TABLE_DISTRIBUTION, TABLE_FILE
from wangge.geo.geocode import MIN_SCORE, AddressIndex

#: Indexes kept per store (a version's never changes; an import changes the key).
_KEEP = 8
#: The columns of an answer, in order (the CSV batch's header).
ANSWER_COLUMNS = [
    "query",
    "status",
    "score",
    "matched",
    "kind",
    "source",
    "building_id",
    "building_name",
    "lon",
    "lat",
    "rest",
    *(f"{level}_code" for level, _, _ in LEVELS),
]


def division_names(code: str | None) -> list[str]:
    """The province, prefecture and every county-level name of the prefecture of the
    6-digit district ``code`` (GB/T 2260, the table geo/district.py reads): the names an
    address in the district may start with, its neighbours' too (the demo spans two)."""
    if not code or len(str(code)) < 4:
        return []
    code = str(code)
    try:
        text = metadata.distribution(TABLE_DISTRIBUTION).locate_file(TABLE_FILE).read_text("utf-8")
    except (metadata.PackageNotFoundError, OSError):
        return []
    out = []
    for line in text.splitlines()[1:]:
        adcode, name = line.split(",", 2)[:2]
        if adcode[:6] in (code[:2] + "0000", code[:4] + "00") or (
            adcode.startswith(code[:4]) and adcode[6:].strip("0") == ""
        ):
            out.append(name)
    return out


def _buildings(store: Store, v: Version) -> gpd.GeoDataFrame:
    frame = store.query(v.plan_id, v.version, "buildings").frame
    if "microgrid_code" not in frame:
        frame["microgrid_code"] = ""
    frame["microgrid_code"] = (
        frame["microgrid_code"].astype(object).where(frame["microgrid_code"].notna(), "")
    )
    return frame.reset_index(drop=True)


def resolve(entries: pd.DataFrame, buildings: gpd.GeoDataFrame, crs: str) -> np.ndarray:
    """The position in ``buildings`` of each entry's building (-1 where none): by
    ``building_id``, else ``compound_id`` (its building nearest the entry's point), else
    ``lon``/``lat`` (:func:`building_at` in the plan's metric ``crs``)."""
    n = len(entries)
    out = np.full(n, -1, dtype=np.int64)
    if not n or not len(buildings):
        return out
    ids = pd.Index(buildings["building_id"].astype(str))
    given = entries["building_id"].astype(object).where(entries["building_id"].notna(), "")
    at = ids.get_indexer(given.astype(str))
    out[at >= 0] = at[at >= 0]
    lon = pd.to_numeric(entries["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(entries["lat"], errors="coerce").to_numpy(dtype=float)
    placed = np.isfinite(lon) & np.isfinite(lat)
    metric = buildings.geometry.to_crs(crs)
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(crs).to_numpy()
    if "compound_id" in buildings:
        members = pd.Series(np.arange(len(buildings))).groupby(
            buildings["compound_id"].astype(object).to_numpy()
        )
        groups = {k: np.asarray(v) for k, v in members.groups.items()}
        for i in np.flatnonzero((out < 0) & entries["compound_id"].notna().to_numpy()):
            pool = groups.get(entries["compound_id"].iat[i])
            if pool is not None:
                near = metric.iloc[pool].distance(points[i]) if placed[i] else None
                out[i] = pool[int(np.argmin(near.to_numpy()))] if near is not None else pool[0]
    todo = np.flatnonzero((out < 0) & placed)
    if len(todo):
        out[todo] = building_at(points[todo], gpd.GeoDataFrame(geometry=metric))
    return out


@dataclass(frozen=True)
class VersionIndex:
    """A version's :class:`AddressIndex` with the buildings its positions refer to."""

    index: AddressIndex
    buildings: gpd.GeoDataFrame
    #: Each building's representative point (WGS84), rounded to 6 decimals.
    lon: np.ndarray
    lat: np.ndarray


def index_of(store: Store, v: Version) -> VersionIndex:
    """The address index of version ``v``, built on first asking and kept while neither
    the version nor the plan's imports change."""
    tokens = tuple(store.addresses.sources(v.plan_id)["token"])
    cache = store.__dict__.setdefault("_address_index", {})
    key = (v.plan_id, v.version, tokens)
    if key not in cache:
        if len(cache) >= _KEEP:
            cache.pop(next(iter(cache)))
        cache[key] = _build(store, v)
    return cache[key]


def _build(store: Store, v: Version) -> VersionIndex:
    buildings = _buildings(store, v)
    stored = store.addresses.entries(v.plan_id)
    regions = stored.loc[stored["kind"] == REGION, "text"].tolist()
    stored = stored[stored["kind"] != REGION]
    crs = str(v.meta.get("metric_crs") or "EPSG:3857")
    stored = stored.assign(building=resolve(stored, buildings, crs))
    named = buildings["name"].notna() if "name" in buildings else pd.Series(False)
    own = pd.DataFrame(
        {
            "text": buildings.loc[named, "name"].astype(str),
            "kind": "building",
            "source": "plan",
            "public": True,
            "building": np.flatnonzero(named.to_numpy()),
        }
    )
    admin = [*division_names(v.meta.get("district_code")), *regions]
    for layer in ("streets", "communities"):
        if layer in store.layer_infos(v.plan_id, v.version):
            names = store.query(v.plan_id, v.version, layer).frame.get("name")
            admin += [] if names is None else names.dropna().astype(str).tolist()
    entries = pd.concat([own, stored], ignore_index=True)
    index = AddressIndex.build(entries, buildings["microgrid_code"].to_numpy(), admin)
    points = buildings.geometry.representative_point()
    return VersionIndex(
        index, buildings, points.x.round(6).to_numpy(), points.y.round(6).to_numpy()
    )


def lookup(
    store: Store, v: Version, queries: list[str], min_score: float | None = None
) -> pd.DataFrame:
    """Answer each query: :data:`ANSWER_COLUMNS`, one row each in order, and the units'
    names and households (``<level>_name``, ``<level>_households``, as
    :meth:`Store.units_of`). ``matched`` is the entry's own text; the caller withholds a
    non-public one (``public``) from a reader outside the building's territory."""
    known = index_of(store, v)
    found = known.index.match(queries, MIN_SCORE if min_score is None else min_score)
    b = found["building"].to_numpy()
    hit = b >= 0
    k = found["key"].to_numpy()
    keyed = k >= 0
    keys, buildings = known.index.keys, known.buildings

    def take(values, mask: np.ndarray, at: np.ndarray) -> np.ndarray:
        col = np.full(len(found), None, dtype=object)
        col[mask] = np.asarray(values, dtype=object)[at[mask]]
        return col

    names = buildings["name"] if "name" in buildings else pd.Series([None] * len(buildings))
    out = pd.DataFrame(
        {
            "query": queries,
            "status": found["status"].to_numpy(),
            "score": found["score"].to_numpy(),
            "matched": take(keys["text"], keyed, k),
            "kind": take(keys["kind"], keyed, k),
            "source": take(keys["source"], keyed, k),
            "building_id": take(buildings["building_id"], hit, b),
            "building_name": take(names, hit, b),
            "lon": take(known.lon, hit, b),
            "lat": take(known.lat, hit, b),
            "rest": np.where(keyed, found["rest"].to_numpy(), None),
            "public": take(keys["public"], keyed, k),
        }
    )
    micro = np.where(hit, take(buildings["microgrid_code"], hit, b), "")
    units = store.units_of(v.plan_id, v.version, micro).drop(columns="inside")
    frame = pd.concat([out, units.reset_index(drop=True)], axis=1).astype(object)
    frame = frame.where(frame.notna() & (frame != ""), None)
    return frame
