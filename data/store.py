"""Where plans are kept: one contract, a GeoPackage file by default and PostGIS by URL.

A plan is a series of versions. Saving writes a new version with all its layers in one
transaction, so a crash mid-save leaves the last committed version as it was, and a
save based on a stale version is refused (:class:`~wangge.errors.VersionConflict`),
never silently lost. Every layer is kept as features: a code, a parent code, the other
attributes as JSON and a WGS84 geometry (NULL for plain tables such as violations).

Both stores pass the same contract tests (tests/test_store_contract.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from wangge.errors import InputError, NotFound, VersionConflict

if TYPE_CHECKING:
    from wangge.data.tiles import TileRequest

#: Schema version written by this code; older stores are migrated at open.
#: 2: ``wg_layers.source``, so a version can share a layer's rows with an earlier one.
#: 4: ``wg_layers.since``/``upto`` and ``wg_features.until``: a version may patch a layer
#: (write only the rows it changes) instead of writing it whole (:class:`LayerInfo`).
SCHEMA_VERSION = 4
#: Levels from the top, with their plan layer and code length.
LEVELS = (
    ("street", "streets", 9),
    ("community", "communities", 12),
    ("grid", "grids", 15),
    ("microgrid", "microgrids", 18),
)
WGS84 = CRS.from_epsg(4326)
_PLAN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Version:
    """One saved version of a plan."""

    plan_id: str
    version: int
    created_at: str
    author: str = ""
    comment: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerInfo:
    """What a version holds in one layer."""

    name: str
    count: int
    geometry_type: str | None
    bbox: tuple[float, float, float, float] | None
    columns: tuple[str, ...]
    #: Where the layer's rows are (one rule, :func:`rows_filter`): the rows of the layer
    #: written under the versions ``since`` to ``upto`` that no version up to ``upto``
    #: retired (``wg_features.until``), and, for a city, all those staged under
    #: ``source`` (a negative stage number no reader lists). A version that writes the
    #: layer whole has ``since = upto =`` itself; one that keeps it shares all three with
    #: its base; one that patches it moves ``upto`` to itself. Versions are linear (each
    #: is saved on the latest), so the rows of one span never change.
    source: int | None = None
    since: int | None = None
    upto: int | None = None

    def span(self, version: int) -> tuple[int | None, int, int]:
        """(stage, since, upto) of this layer of ``version``: what identifies its rows
        (a tile cache key: two versions with one span hold the same rows)."""
        return (self.source, self.since or version, self.upto or version)


@dataclass(frozen=True)
class Page:
    """One page of features from a layer: the frame and how many match in all."""

    frame: gpd.GeoDataFrame
    number_matched: int


class Store(ABC):
    """The contract both stores keep. Geometries go in and come out in WGS84."""

    url: str

    def save(
        self,
        plan_id: str,
        layers: dict[str, pd.DataFrame],
        meta: dict[str, Any] | None = None,
        base_version: int | None = None,
        author: str = "",
        comment: str = "",
        keep: tuple[str, ...] = (),
        audit: dict[str, Any] | None = None,
        bases: dict[str, pd.DataFrame] | None = None,
    ) -> Version:
        """Save ``layers`` as the plan's next version, all in one transaction.

        Parameters
        ----------
        plan_id
            The plan's name (letters, digits, ``_.-``); created on its first save.
        layers
            Frames by layer name; GeoDataFrames in any CRS (stored in WGS84), plain
            DataFrames as tables.
        meta
            Facts about the version (district code, limits, metric CRS, attribution).
        base_version
            The version the caller's change is based on. When given and no longer the
            latest, nothing is written and :class:`VersionConflict` is raised. ``None``
            appends without the check (imports).
        author, comment
            Who saved it and why.
        keep
            Layers of ``base_version`` the new version shares unchanged: no rows are
            copied, so an edit writes only what it changed.
        audit
            The audit log entry of this write (:func:`wangge.data.accounts.audit_entry`),
            appended in the same transaction, so no version exists without its entry.
        bases
            For layers of ``layers`` that the base version holds too: that version's frame
            of the layer, as the store gave it (or as it was saved). The layer is then
            written as a patch: only its rows that differ from the base's (by feature id),
            the base rows they replace or drop retired, so a saved edit writes what it
            changed and not the layer. A layer whose ids are not unique is written whole.
        """
        check_plan_id(plan_id)
        patches = {}
        for name, old in (bases or {}).items():
            if name in layers and base_version is not None:
                found = patch_of(name, layers[name], old)
                if found is not None:
                    patches[name] = found
        flat = {n: p.rows for n, p in patches.items()}
        flat |= {n: flatten(n, f) for n, f in layers.items() if n not in patches}
        return self.save_flat(
            plan_id,
            flat,
            meta,
            base_version,
            author,
            comment,
            keep=keep,
            audit=audit,
            patches=patches,
        )

    def save_flat(
        self,
        plan_id: str,
        flat: dict[str, Rows],
        meta: dict[str, Any] | None = None,
        base_version: int | None = None,
        author: str = "",
        comment: str = "",
        keep: tuple[str, ...] = (),
        audit: dict[str, Any] | None = None,
        staged: dict[str, Rows] | None = None,
        stage: int | None = None,
        patches: dict[str, Patch] | None = None,
    ) -> Version:
        """:meth:`save` for layers already flattened (:func:`flatten`).

        ``staged`` layers (their infos; no records) are already stored under the plan's
        negative version ``stage`` by a city's workers (:mod:`wangge.city`,
        :meth:`write_staged`): the new version points at those rows, none is copied."""
        check_plan_id(plan_id)
        if keep and base_version is None:
            raise InputError("keeping layers needs the base version", where="keep")
        overlap = set(flat) & set(keep)
        if overlap:
            raise InputError(f"layers both given and kept: {sorted(overlap)}", where="keep")
        draft = Version(plan_id, 0, now(), author, comment, meta or {})
        if audit is not None:
            self.book  # noqa: B018 -- the audit table exists before the transaction needs it
        patches = patches or {}
        if set(patches) - set(flat) or (patches and base_version is None):
            raise InputError("a patch is of a layer written on a base", where="patches")
        if staged:
            number = self._commit_version(
                draft, flat, base_version, tuple(keep), audit, staged=staged, stage=stage
            )
        else:
            number = self._commit_version(
                draft, flat, base_version, tuple(keep), audit, patches=patches
            )
        return replace(draft, version=number)

    # rows staged by a city's workers, under a negative version no reader lists ---------

    def write_staged(self, conn, plan_id: str, stage: int, layer: str, records: list) -> None:
        """Write a street's flattened rows under ``stage`` on ``conn`` (a connection of the
        accounts' engine, in the caller's transaction)."""
        raise NotImplementedError

    def delete_staged(self, conn, plan_id: str, stage: int, street: str) -> None:
        """Delete the rows ``street`` staged under ``stage``."""
        raise NotImplementedError

    def copy_staged(self, conn, plan_id: str, old: int, new: int, streets: list[str]) -> None:
        """Copy the rows ``streets`` staged under ``old`` to ``new``."""
        raise NotImplementedError

    @abstractmethod
    def _commit_version(
        self,
        draft: Version,
        flat: dict[str, Rows],
        base_version: int | None,
        keep: tuple[str, ...] = (),
        audit: dict[str, Any] | None = None,
        staged: dict[str, Rows] | None = None,
        stage: int | None = None,
        patches: dict[str, Patch] | None = None,
    ) -> int:
        """Write ``draft`` (its number still 0) and its layers in one transaction; the
        number comes from :func:`next_version` on the plan's latest, read under a lock.
        Layers in ``keep`` point at the base version's rows (:func:`kept_layers`); layers
        in ``patches`` write only their changed rows and retire the replaced ones
        (:func:`patch_of`); the ``audit`` entry, if any, is appended in the same
        transaction (:func:`append_audit`)."""

    @abstractmethod
    def plans(self) -> list[Version]:
        """The latest version of every plan, newest first."""

    @abstractmethod
    def versions(self, plan_id: str) -> list[Version]:
        """Every version of a plan, oldest first."""

    @abstractmethod
    def layers(self, plan_id: str, version: int) -> list[LayerInfo]:
        """The layers one version holds."""

    @abstractmethod
    def query(
        self,
        plan_id: str,
        version: int,
        layer: str,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int | None = None,
        offset: int = 0,
        codes: list[str] | None = None,
        dimension: int | None = None,
    ) -> Page:
        """Features of a layer intersecting ``bbox`` (lon/lat), in code order, paged; with
        ``dimension``, only those whose geometry has it (0 points, 1 lines, 2 areas; a
        collection its highest part's, as ST_Dimension; no geometry has none)."""

    @abstractmethod
    def _cover_codes(
        self, plan_id: str, version: int, lon: np.ndarray, lat: np.ndarray
    ) -> np.ndarray:
        """Code of the micro-grid covering each point ('' where none does)."""

    @abstractmethod
    def tile(self, plan_id: str, version: int, req: TileRequest) -> bytes:
        """One Mapbox Vector Tile of a layer (b"" when nothing is in it), carrying the
        attributes :data:`wangge.data.tiles.TILE_FIELDS` lists and nothing else."""

    @abstractmethod
    def dtypes(self, plan_id: str, version: int, layer: str) -> dict[str, str]:
        """The saved column dtypes of a layer (a saved version never changes)."""

    @abstractmethod
    def latest(self, plan_id: str) -> int | None:
        """The plan's latest version number (one quick read), None if there is no plan."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def _book_engine(self):
        """The SQLAlchemy engine that holds this store's accounts and audit log."""
        raise NotImplementedError

    # shared behaviour on top of the primitives ---------------------------------------

    @property
    def book(self):
        """Accounts and the append-only audit log (:class:`wangge.data.accounts.AccountBook`),
        one implementation for both stores; the tables are made on first use."""
        from wangge.data.accounts import AccountBook

        book = self.__dict__.get("_book")
        if book is None:
            book = self.__dict__["_book"] = AccountBook(self._book_engine())
        return book

    @property
    def roster(self):
        """The grid roster (:class:`wangge.data.roster.Roster`) on the accounts' engine,
        one implementation for both stores; its table is made on first use."""
        from wangge.data.roster import Roster

        roster = self.__dict__.get("_roster")
        if roster is None:
            roster = self.__dict__["_roster"] = Roster(self.book.engine)
        return roster

    @property
    def runs(self):
        """The run table and street results of city runs (:class:`wangge.data.runs.RunTable`)
        on the accounts' engine; its tables are made on first use."""
        from wangge.data.runs import RunTable

        runs = self.__dict__.get("_runs")
        if runs is None:
            runs = self.__dict__["_runs"] = RunTable(self.book.engine, self)
        return runs

    def resolve(self, plan_id: str | None = None, version: int | None = None) -> Version:
        """The version asked for; by default the latest of the newest plan."""
        if plan_id is None:
            plans = self.plans()
            if not plans:
                raise NotFound("the store holds no plan yet; import one", self.url)
            plan_id = plans[0].plan_id
        versions = self.versions(plan_id)
        if not versions:
            raise NotFound(f"no plan named {plan_id!r}", self.url, where="plan")
        if version is None:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        raise NotFound(
            f"plan {plan_id!r} has versions 1–{versions[-1].version}, not {version}",
            self.url,
            where="version",
        )

    def load(self, plan_id: str, version: int | None = None) -> dict[str, pd.DataFrame]:
        """Every layer of a version (the latest by default), as saved."""
        v = self.resolve(plan_id, version)
        out: dict[str, pd.DataFrame] = {}
        for info in self.layers(plan_id, v.version):
            frame = self.query(plan_id, v.version, info.name).frame
            out[info.name] = (
                frame if info.geometry_type else pd.DataFrame(frame.drop(columns="geometry"))
            )
        return out

    def item(
        self, plan_id: str, version: int, layer: str, code: str, dimension: int | None = None
    ) -> gpd.GeoDataFrame:
        """The feature with ``code`` in ``layer`` (of ``dimension``, if given); NotFound if
        there is none."""
        page = self.query(plan_id, version, layer, codes=[code], dimension=dimension)
        if not len(page.frame):
            raise NotFound(f"no feature with code {code!r}", layer, where="code")
        return page.frame

    def cover(self, plan_id: str, version: int, lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
        """The street, community, grid and micro-grid covering each point.

        Returns
        -------
        pandas.DataFrame
            One row per point, in order: ``inside`` and per level ``<level>_code``,
            ``<level>_name`` and ``<level>_households``. Codes are '' outside. The people
            responsible are not plan attributes: they are in the roster (``Store.roster``),
            shown only to callers allowed to see them.
        """
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        micro = self._cover_codes(plan_id, version, lon, lat)
        units = self._units(plan_id, version)
        out = pd.DataFrame({"inside": micro != ""})
        for level, layer, length in LEVELS:
            codes = pd.Series([c[:length] if c else "" for c in micro], dtype=object)
            out[f"{level}_code"] = codes.to_numpy()
            table = units.get(layer)
            for attr in ("name", "households"):
                col = f"{level}_{attr}"
                has = table is not None and attr in table
                out[col] = codes.map(table[attr]).to_numpy() if has else None
        return out

    def _units(self, plan_id: str, version: int) -> dict[str, pd.DataFrame]:
        """Attributes of the four levels by code, read once per version (versions never
        change once saved, so the cache needs no invalidation)."""
        cache = self.__dict__.setdefault("_units_cache", {})
        key = (plan_id, version)
        if key not in cache:
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            have = {i.name for i in self.layers(plan_id, version)}
            cache[key] = {
                layer: pd.DataFrame(
                    self.query(plan_id, version, layer).frame.drop(columns="geometry")
                ).set_index("code")
                for _, layer, _ in LEVELS
                if layer in have
            }
        return cache[key]

    def touched_ids(self, plan_id: str, a: int, b: int, layer: str) -> set[str] | None:
        """The ids of ``layer``'s features that any version after the earlier of ``a``
        and ``b``, up to the later, wrote or retired: every feature that differs between
        the two is among them. A query on what the versions between wrote, not a
        comparison of two copies. None when the layer was written whole in between (the
        two versions hold it on different spans), and the caller must compare."""
        ia, ib = self._check_layer(plan_id, a, layer), self._check_layer(plan_id, b, layer)
        (stage_a, since_a, upto_a), (stage_b, since_b, upto_b) = ia.span(a), ib.span(b)
        if (stage_a, since_a) != (stage_b, since_b):
            return None
        lo, hi = sorted((upto_a, upto_b))
        if lo == hi:
            return set()
        rows = self._select(TOUCHED, {"p": plan_id, "l": layer, "lo": lo, "hi": hi})
        return {r[0] for r in rows}

    @abstractmethod
    def _select(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        """Rows of a read-only SQL statement with named parameters (``:name``)."""

    def _check_layer(self, plan_id: str, version: int, layer: str) -> LayerInfo:
        infos = self.layer_infos(plan_id, version)
        if layer in infos:
            return infos[layer]
        names = ", ".join(infos)
        raise NotFound(f"no layer {layer!r}; this plan has: {names}", where="layer")

    def layer_infos(self, plan_id: str, version: int) -> dict[str, LayerInfo]:
        """The layers of a version by name, read once (a saved version never changes)."""
        cache = self.__dict__.setdefault("_layer_cache", {})
        key = (plan_id, version)
        found = cache.get(key)
        if found is None:
            found = {i.name: i for i in self.layers(plan_id, version)}
            if not found:
                return found  # not saved yet, or no such plan: ask again next time
            if len(cache) >= 256:
                cache.pop(next(iter(cache)), None)
            cache[key] = found
        return found


def open_store(
    target: str | Path,
    statement_timeout_ms: int | None = None,
    pool: tuple[int, int] | None = None,
) -> Store:
    """Open (creating or migrating as needed) the store at a path or database URL; on
    PostGIS, statements are cancelled after ``statement_timeout_ms``, and ``pool`` is the
    connections kept open and the extra ones opened for a moment (default 20 and 20)."""
    text = str(target)
    if text.startswith(("postgresql", "postgres://")):
        from wangge.data.postgis_store import PostgisStore

        return PostgisStore(text, statement_timeout_ms, pool)
    from wangge.data.gpkg_store import GpkgStore

    return GpkgStore(Path(text))


# encoding shared by both stores --------------------------------------------------------


def next_version(plan_id: str, latest: int, base_version: int | None) -> int:
    """The number of the version a save writes, or VersionConflict if its base is stale."""
    if base_version is not None and base_version != latest:
        raise VersionConflict(
            f"based on version {base_version}, but the latest is {latest}; "
            "reload and redo the change",
            plan_id,
            where="base_version",
        )
    return latest + 1


def kept_layers(
    base: list[LayerInfo], base_version: int, keep: tuple[str, ...], plan_id: str
) -> list[LayerInfo]:
    """The base version's ``keep`` layers, each with the span of rows it holds."""
    by_name = {info.name: info for info in base}
    missing = [name for name in keep if name not in by_name]
    if missing:
        raise InputError(
            f"version {base_version} has no layer {', '.join(missing)} to keep", plan_id
        )
    return [spanned(by_name[n], base_version) for n in keep]


#: Schema 3 → 4, the same SQL in both stores: a layer's rows were those of its own version
#: or of the one in ``source`` (positive) or, for a city, a stage (negative): the span of
#: one version, the stage kept as it is.
SPAN_MIGRATION = (
    "UPDATE wg_layers SET"
    " since = CASE WHEN source > 0 THEN source ELSE version END,"
    " upto = CASE WHEN source > 0 THEN source ELSE version END,"
    " source = CASE WHEN source > 0 THEN NULL ELSE source END"
    " WHERE since IS NULL"
)


#: The ids a layer's rows were written or retired under, by the versions after ``lo`` up
#: to ``hi`` (:meth:`Store.touched_ids`).
TOUCHED = (
    "SELECT DISTINCT f.code FROM wg_features f WHERE f.plan_id = :p AND f.layer = :l"
    " AND ((f.version > :lo AND f.version <= :hi) OR (f.until > :lo AND f.until <= :hi))"
)


def spanned(info: LayerInfo, version: int) -> LayerInfo:
    """``info`` with its span written out (as a version that keeps it stores it)."""
    stage, since, upto = info.span(version)
    return replace(info, source=stage, since=since, upto=upto)


def check_schema(have: int | None, source: str) -> None:
    """Refuse a store written by a newer wangge, whose schema this code cannot know."""
    if have is not None and int(have) > SCHEMA_VERSION:
        raise InputError(
            f"store schema {have} is newer than this wangge ({SCHEMA_VERSION})", source
        )


def check_plan_id(plan_id: str) -> str:
    if not isinstance(plan_id, str) or not _PLAN_ID.match(plan_id):
        raise InputError(
            "a plan id is 1–64 letters, digits, '_', '.' or '-'", where=f"plan {plan_id!r}"
        )
    return plan_id


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _plain_column(column: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values (NaN, NaT and NA become None), fast for
    numeric columns and cell by cell only for object columns."""
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else "O"
    if kind in "iub":
        return column.to_numpy().tolist()
    if kind == "f":
        arr = column.to_numpy()
        out = arr.tolist()
        for i in np.flatnonzero(~np.isfinite(arr)):
            out[i] = None
        return out
    return [_plain(v) for v in column.to_numpy(dtype=object)]


def _plain(value: Any) -> Any:
    """A JSON-ready Python value from a pandas/numpy cell (NaN and NaT become None)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


@dataclass
class Rows:
    """A layer flattened for storage: one tuple per feature, plus its schema."""

    info: LayerInfo
    dtypes: dict[str, str]
    records: list[tuple[str | None, str | None, str, bytes | None, tuple | None]]


#: Layers whose rows have no id of their own, or whose ``code`` names another unit or
#: none (a violation's is the unit at fault, and a unit may break two rules; a finding's
#: or a calibration row's may be empty): each row gets an
#: ordinal in this column when the layer is stored (:func:`with_ids`), so that every
#: feature of every collection has a unique GeoJSON id (QGIS drops features without one,
#: or with one it has seen: 3 of 783 network edges once).
MADE_IDS = {
    "study_area": "area_id",
    "suggestions": "suggestion_id",
    "network_edges": "edge_id",
    "unit_edges": "edge_id",
    "feasibility": "finding_id",
    "siting": "run_id",
    "violations": "violation_id",
    "findings": "finding_id",
    "city_findings": "finding_id",
    "calibration": "calibration_id",
}
#: The id column made for any other layer that has neither a code nor an id column.
MADE_ID = "feature_id"
#: The column that identifies a feature of a layer without a ``code`` of its own: stored
#: in the rows' code field (not as a column), so ``/collections/{layer}/items/{id}`` and
#: ``query(codes=...)`` find it, and it is the feature's GeoJSON id.
FEATURE_IDS = {
    "buildings": "building_id",
    "access": "building_id",
    "risk_points": "risk_id",
    "risk_zones": "risk_id",
    "facilities": "facility_id",
    "gaps": "gap_id",
    "candidates": "candidate_id",
    "network_nodes": "node_id",
    **MADE_IDS,
}


def feature_id_column(layer: str, columns) -> str | None:
    """The column whose value is a feature's id in ``layer``: the layer's entry of
    :data:`FEATURE_IDS` (when it has that column), else ``code``, else :data:`MADE_ID`,
    else None."""
    found = FEATURE_IDS.get(layer)
    if found in columns:
        return found
    if "code" in columns:
        return "code"
    return MADE_ID if MADE_ID in columns else None


def with_ids(layer: str, data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with an id column where the layer has none of its own (:data:`MADE_IDS`,
    :data:`MADE_ID`): the rows' ordinals from 1, zero-padded so that they sort in row
    order (the store pages by id). A city's street rows, flattened apart and marked
    ``_street``, are numbered under their street's code, so ids stay unique in the city."""
    col = MADE_IDS.get(layer)
    if col is None:
        if feature_id_column(layer, data.columns) is not None:
            return data
        col = MADE_ID
    if col in data.columns and data[col].notna().all() and data[col].is_unique:
        return data
    n = len(data)
    width = len(str(n))
    ids = [f"{i:0{width}d}" for i in range(1, n + 1)]
    if "_street" in data.columns and n:
        ids = [f"{street}-{i}" for street, i in zip(data["_street"].astype(str), ids, strict=True)]
    return data.assign(**{col: ids})


def flatten(name: str, frame: pd.DataFrame) -> Rows:
    """Flatten a frame into (code, parent_code, properties JSON, WKB, bbox) rows; a layer
    without codes stores its :data:`FEATURE_IDS` column's values as their codes, made
    first by :func:`with_ids` where it has none."""
    if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]{0,62}$", name):
        raise InputError("a layer name is lower-case letters, digits and '_'", where=name)
    geoms = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
        if frame.crs is None and len(frame):
            raise InputError("the layer has no CRS", where=name)
        wgs = frame if frame.crs is None or frame.crs.equals(WGS84) else frame.to_crs(4326)
        geoms = wgs.geometry.to_numpy()
        data = pd.DataFrame(wgs.drop(columns=wgs.geometry.name))
    else:
        data = pd.DataFrame(frame)
    data.columns = [str(c) for c in data.columns]
    data = with_ids(name, data)
    columns = tuple(data.columns)
    n = len(data)
    id_col = feature_id_column(name, data.columns)
    # the code field holds the id; a code that is not the id (a violation's) stays a property
    apart = ("code", "parent_code") if id_col == "code" or id_col is None else ("parent_code",)
    props_cols = [c for c in columns if c not in apart]
    code = _plain_column(data[id_col]) if id_col else [None] * n
    parent = _plain_column(data["parent_code"]) if "parent_code" in data else [None] * n
    values = [_plain_column(data[c]) for c in props_cols]
    records = []
    bbox_all = None
    gtype = None
    wkbs = boxes = None
    if geoms is not None:
        valid = ~shapely.is_missing(geoms)
        types = set(shapely.get_type_id(geoms[valid]).tolist())
        gtype = _geometry_type(types)
        present = valid & ~shapely.is_empty(geoms)
        wkbs = np.where(present, shapely.to_wkb(geoms, byte_order=1), None).tolist()
        bounds = shapely.bounds(geoms)
        boxes = [tuple(b) if ok else None for b, ok in zip(bounds.tolist(), present, strict=True)]
        if valid.any():
            b = bounds[valid]
            bbox_all = (
                float(np.nanmin(b[:, 0])),
                float(np.nanmin(b[:, 1])),
                float(np.nanmax(b[:, 2])),
                float(np.nanmax(b[:, 3])),
            )
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    for i, row in enumerate(zip(*values, strict=True) if values else [()] * n):
        c, p = code[i], parent[i]
        records.append(
            (
                None if c is None else str(c),
                None if p is None else str(p),
                dumps(dict(zip(props_cols, row, strict=True))),
                None if wkbs is None else wkbs[i],
                None if boxes is None else boxes[i],
            )
        )
    dtypes = {c: str(data[c].dtype) for c in columns}
    info = LayerInfo(name, len(data), gtype, bbox_all, columns)
    return Rows(info, dtypes, records)


def _geometry_type(type_ids: set[int]) -> str:
    names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString"}
    names |= {6: "MultiPolygon", 7: "GeometryCollection"}
    return merge_geometry_types([names.get(t, "Geometry") for t in type_ids])


def merge_geometry_types(names: list[str]) -> str:
    """One geometry type for features of the ``names`` types: theirs when they agree,
    MultiPolygon for polygons and multipolygons together, else Geometry."""
    found = set(names)
    if found <= {"Polygon", "MultiPolygon"} and found:
        return "MultiPolygon" if "MultiPolygon" in found else "Polygon"
    if len(found) == 1:
        return found.pop()
    return "Geometry"


def unflatten(
    info: LayerInfo,
    dtypes: dict[str, str],
    rows: list[tuple[str | None, str | None, str, Any]],
    geoms: list,
) -> gpd.GeoDataFrame:
    """Rebuild a frame from stored rows (code, parent_code, properties JSON, _) and
    decoded geometries, with the saved columns in their saved order and types."""
    props = [json.loads(r[2]) for r in rows]
    data: dict[str, Any] = {}
    for col in info.columns:
        if col == "code":  # the code field, unless the layer's id took it (a violation's)
            data[col] = [
                p["code"] if "code" in p else r[0] for r, p in zip(rows, props, strict=True)
            ]
        elif col == "parent_code":
            data[col] = [r[1] for r in rows]
        else:
            data[col] = [p.get(col) for p in props]
    frame = pd.DataFrame(data, columns=list(info.columns))
    for col, dtype in dtypes.items():
        if col in frame and dtype != "object":
            # an int column that now holds nulls keeps floats
            with contextlib.suppress(TypeError, ValueError):
                frame[col] = frame[col].astype(dtype)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)


@dataclass
class Patch:
    """A layer written as a patch on its base (:meth:`Store.save` ``bases``): the whole
    layer's info and dtypes, the rows to write (new or changed) and the ids whose base
    rows are retired (changed or dropped)."""

    rows: Rows
    retire: list[str]


def patch_of(name: str, new: pd.DataFrame, old: pd.DataFrame) -> Patch | None:
    """What differs between two frames of one layer, by feature id: the rows of ``new``
    that are not in ``old`` or differ from it in a value or a coordinate (flattened), and
    the ids of ``old`` they replace or that ``new`` drops. None when the layer must be
    written whole: its ids are made by position, missing or not unique, or the columns,
    their types or the CRS changed."""
    id_col = feature_id_column(name, new.columns)
    if id_col is None or name in MADE_IDS or id_col not in old.columns:
        return None
    if list(new.columns) != list(old.columns) or list(new.dtypes) != list(old.dtypes):
        return None
    spatial = isinstance(new, gpd.GeoDataFrame) and new.geometry.name in new
    if spatial != (isinstance(old, gpd.GeoDataFrame) and old.geometry.name in old):
        return None
    if spatial and not (new.crs is not None and old.crs is not None and new.crs == old.crs):
        return None
    new_ids = new[id_col].astype(object).to_numpy()
    old_ids = old[id_col].astype(object).to_numpy()
    for ids in (new_ids, old_ids):
        if pd.isna(ids).any() or len(set(ids.tolist())) != len(ids):
            return None
    at = pd.Index(old_ids).get_indexer(new_ids)  # each new row's old row, -1 if none
    here = at >= 0
    same = here.copy()
    for col in new.columns:
        a = new[col].to_numpy()[here]
        b = old[col].to_numpy()[at[here]]
        if spatial and col == new.geometry.name:
            eq = shapely.equals_exact(a, b, tolerance=0) | (
                shapely.is_missing(a) & shapely.is_missing(b)
            )
        else:
            eq = np.asarray(pd.Series(a).eq(pd.Series(b)) | (pd.isna(a) & pd.isna(b)))
        same[np.flatnonzero(here)[~eq]] = False
    write = ~same
    whole = flatten(name, new.iloc[:0])  # the layer's schema
    rows = flatten(name, new.iloc[np.flatnonzero(write)]) if write.any() else whole
    kept = set(new_ids[same].tolist())
    retire = [str(c) for c in old_ids.tolist() if c not in kept]
    info = replace(rows.info, count=len(new), **_geometry_summary(new, spatial))
    return Patch(Rows(info, whole.dtypes, rows.records), retire)


def _geometry_summary(frame: pd.DataFrame, spatial: bool) -> dict[str, Any]:
    """The geometry type and WGS84 bbox of a whole layer, as :func:`flatten` gives them."""
    if not spatial:
        return {"geometry_type": None, "bbox": None}
    geoms = frame.geometry
    if geoms.crs is not None and not geoms.crs.equals(WGS84):
        geoms = geoms.to_crs(4326)
    geoms = geoms.to_numpy()
    valid = ~shapely.is_missing(geoms)
    types = set(shapely.get_type_id(geoms[valid]).tolist())
    bbox = None
    if valid.any():
        b = shapely.bounds(geoms[valid])
        bbox = tuple(float(x) for x in (*np.nanmin(b[:, :2], axis=0), *np.nanmax(b[:, 2:], axis=0)))
    return {"geometry_type": _geometry_type(types), "bbox": bbox}


def patched_layers(
    base: list[LayerInfo],
    base_version: int | None,
    version: int,
    flat: dict[str, Rows],
    staged: dict[str, Rows] | None,
    stage: int | None,
    patches: dict[str, Patch] | None,
    plan_id: str,
    retire: Callable[[str, str, dict[str, Any], list[str]], int],
) -> tuple[dict[str, Rows], dict[str, tuple[int | None, int, int]]]:
    """The rows each layer of a new version writes and the span it records (stage, since,
    upto): a whole layer its own version, a staged one its stage, a patched one its
    base's span moved up to ``version``, once ``retire(layer, where, params, ids)`` (the
    store's UPDATE of ``until`` on the base rows ``where`` selects) has retired the rows
    the patch replaces and said how many it found."""
    spans = {n: (None, version, version) for n in flat}
    spans |= {n: (stage, version, version) for n in staged or {}}
    for name, patch in (patches or {}).items():
        (old,) = kept_layers(base, base_version, (name,), plan_id)
        if patch.retire:
            where, params = rows_filter(old, base_version)
            check_retired(retire(name, where, params, patch.retire), patch, name)
        spans[name] = (old.source, old.since, version)
        flat = {**flat, name: patch.rows}
    return flat, spans


def check_retired(found: int, patch: Patch, layer: str) -> None:
    """A patch must retire exactly the base rows it names: fewer found means the frame
    given as the base is not what the store holds, and the patch would be wrong."""
    if found != len(patch.retire):
        raise RuntimeError(
            f"layer {layer!r}: the patch retires {len(patch.retire)} rows but the base"
            f" version holds {found} of them; the base frame given is not the stored one"
        )


def rows_filter(info: LayerInfo, version: int, alias: str = "f") -> tuple[str, dict[str, int]]:
    """The one rule for which stored rows make a layer of a version, as SQL over the
    feature table aliased ``alias``, with named parameters (both stores speak it): the
    rows of its span (:attr:`LayerInfo.source`) that no version up to the span's end
    retired. Returns (condition, parameters)."""
    stage, since, upto = info.span(version)
    f = alias
    where = f"{f}.version BETWEEN :wg_since AND :wg_upto"
    if stage is not None:
        where = f"({f}.version = :wg_stage OR {where})"
    where += f" AND ({f}.until IS NULL OR {f}.until > :wg_upto)"
    params = {"wg_since": since, "wg_upto": upto}
    if stage is not None:
        params["wg_stage"] = stage
    return where, params
