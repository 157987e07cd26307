"""Where plans are kept: one contract, a GeoPackage file by default and PostGIS by URL.

A plan is a series of versions. Saving writes a new version with all its layers in one
transaction, so a crash mid-save leaves the last committed version as it was, and a
save based on a stale version is refused (:class:`~wangge.errors.VersionConflict`),
never silently lost. Every layer is kept as features: a code, a parent code, the other
attributes as JSON and a WGS84 geometry (NULL for plain tables such as violations).

Both stores pass the same contract tests (tests/test_store_contract.py).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.rows import (
    FEATURE_IDS,
    MADE_ID,
    MADE_IDS,
    WGS84,
    LayerInfo,
    Rows,
    feature_id_column,
    flatten,
    merge_geometry_types,
    unflatten,
    with_ids,
)
from wangge.data.spans import (
    PARENT_TOTALS,
    PROPERTIES,
    PROPERTY_OF,
    RECORDS_EVER,
    SPAN_MIGRATION,
    TOUCHED,
    UNIT_PARENTS,
    UNIT_PARENTS_EVER,
    Patch,
    check_retired,
    kept_layers,
    patch_of,
    patched_layers,
    rows_filter,
    spanned,
)
from wangge.errors import InputError, NotFound, VersionConflict

if TYPE_CHECKING:
    from wangge.data.tiles import TileRequest

#: What other modules import from here: the contract, and the rows and spans it is made of.
__all__ = [
    "FEATURE_IDS",
    "LEVELS",
    "MADE_ID",
    "MADE_IDS",
    "SCHEMA_VERSION",
    "SPAN_MIGRATION",
    "TOUCHED",
    "WGS84",
    "LayerInfo",
    "Page",
    "Patch",
    "Rows",
    "Store",
    "Version",
    "check_plan_id",
    "check_retired",
    "check_schema",
    "feature_id_column",
    "flatten",
    "kept_layers",
    "merge_geometry_types",
    "next_version",
    "now",
    "open_store",
    "patch_of",
    "patched_layers",
    "prefix_sql",
    "rows_filter",
    "spanned",
    "unflatten",
    "with_ids",
]

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
#: Layers a save from part of a version writes whole: they are made whole by the caller
#: (the violations of every street: the held street's found again, the others' as stored).
PARTIAL_WHOLE = frozenset({"violations"})
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
        partial: bool = False,
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
        partial
            The ``bases`` (and the ``layers`` made from them) are parts of the stored
            layers (an editor holding one street of a city): each is written as a patch
            on the whole stored layer, or refused if it cannot be, and every layer given
            must come with its base (but :data:`PARTIAL_WHOLE`, made whole by the caller).
        """
        check_plan_id(plan_id)
        if partial:
            bare = sorted(n for n in layers if n not in (bases or {}) and n not in PARTIAL_WHOLE)
            if bare or base_version is None:
                raise InputError(
                    f"a save from part of a version needs the base of every layer: {bare}",
                    plan_id,
                    where="bases",
                )
        patches = {}
        for name, old in (bases or {}).items():
            if name in layers and base_version is not None:
                found = patch_of(name, layers[name], old, partial)
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
        prefix: tuple[str, str] | None = None,
    ) -> Page:
        """Features of a layer intersecting ``bbox`` (lon/lat), in code order, paged; with
        ``dimension``, only those whose geometry has it (0 points, 1 lines, 2 areas; a
        collection its highest part's, as ST_Dimension; no geometry has none); with
        ``prefix`` (key, text), only those whose ``code``, ``parent_code`` or property
        ``key`` starts with ``text`` (one street's rows: :func:`prefix_sql`)."""

    @abstractmethod
    def _cover_codes(
        self, plan_id: str, version: int, lon: np.ndarray, lat: np.ndarray
    ) -> np.ndarray:
        """Code of the micro-grid covering each point ('' where none does)."""

    @abstractmethod
    def tile(self, plan_id: str, version: int, req: TileRequest) -> bytes:
        """One Mapbox Vector Tile of a layer (b"" when nothing is in it), carrying the
        attributes :data:`wangge.data.tiles.TILE_FIELDS` lists and nothing else."""

    def warm_tiles(self, plan_id: str, version: int, layers: list[str], connections: int) -> int:
        """Make the store ready to cut tiles of these layers before a server reports ready
        (the PostGIS store readies ``connections`` pooled connections); returns how many
        connections it readied. A file store has nothing to ready."""
        return 0

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
    def addresses(self):
        """The address entries of every plan (:class:`wangge.data.addresses.AddressBook`)
        on the accounts' engine, one implementation for both stores; made on first use."""
        from wangge.data.addresses import AddressBook

        book = self.__dict__.get("_addresses")
        if book is None:
            book = self.__dict__["_addresses"] = AddressBook(self.book.engine)
        return book

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
        return self.units_of(plan_id, version, self._cover_codes(plan_id, version, lon, lat))

    def units_of(self, plan_id: str, version: int, micro: np.ndarray) -> pd.DataFrame:
        """The street, community, grid and micro-grid of each micro-grid code ('' for
        none), as :meth:`cover` gives them: the units of a point, or of a building."""
        micro = np.asarray(micro, dtype=object)
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

    def codes_ever(self, plan_id: str) -> set[str]:
        """Every micro-grid and grid code (vertical micro-grids' records too) that any
        version of the plan has given out, never to be given out again by a completion or
        a rebalance (DB11/T 2157-2023: a code has one life). A query on every unit and
        micro-grid row the plan ever stored, not a read of each version. (Rows of a city's
        stages count too: a code a stage held is never given out again, the safe side.)"""
        out: set[str] = set()
        for (code,) in self._select(UNIT_PARENTS_EVER, {"p": plan_id}):
            if code:
                out |= {str(code), str(code)[:15]}
        records = RECORDS_EVER.format(records=self._property("f", "record_codes"))
        for (text,) in self._select(records, {"p": plan_id}):
            if text:
                out |= {c for c in str(text).split(",") if c}
        return out

    def parent_totals(self, plan_id: str, version: int, level: str) -> pd.DataFrame:
        """Each micro-grid's (``level`` "microgrid") or grid's ("grid") units and
        households in a version, summed from its unit rows by the database: indexed by
        code, columns ``units`` and ``households``."""
        info = self._check_layer(plan_id, version, "units")
        span, params = rows_filter(info, version, "f")
        sql = PARENT_TOTALS.format(households=self._property("f", "households"), span=span)
        n = {"microgrid": 18, "grid": 15}[level]
        rows = self._select(sql, {"p": plan_id, "n": n, **params})
        frame = pd.DataFrame(rows, columns=["code", "units", "households"])
        frame["code"] = frame["code"].astype(str)
        frame["units"] = frame["units"].astype(np.int64)
        frame["households"] = frame["households"].astype(float)
        return frame.set_index("code").sort_index()

    def unit_parents(self, plan_id: str, version: int) -> pd.DataFrame:
        """Every unit of a version with its micro-grid and compound (``code``,
        ``parent_code``, ``compound_id``; None where none), in code order, without
        reading a geometry: what an editor holding one street knows of the others."""
        info = self._check_layer(plan_id, version, "units")
        span, params = rows_filter(info, version, "f")
        sql = UNIT_PARENTS.format(compound=self._property("f", "compound_id"), span=span)
        frame = pd.DataFrame(
            self._select(sql, {"p": plan_id, **params}),
            columns=["code", "parent_code", "compound_id"],
            dtype=object,
        )
        frame["code"] = frame["code"].astype(str)
        frame["parent_code"] = frame["parent_code"].astype(str)
        frame = frame.iloc[np.argsort(frame["code"].astype(np.int64).to_numpy(), kind="stable")]
        return frame.reset_index(drop=True)

    def properties(
        self,
        plan_id: str,
        version: int,
        layer: str,
        keys: tuple[str, ...],
        between: dict[str, tuple[int, int]] | None = None,
    ) -> pd.DataFrame:
        """Properties ``keys`` of every feature of a version's layer (``code`` first, then
        one column each, as the database gives them: text from PostGIS, JSON's types
        from SQLite), without reading geometry or the other properties. ``between``
        keeps the features with any of its integer properties in its range (the unit
        graph's edges with an end among one street's units)."""
        info = self._check_layer(plan_id, version, layer)
        span, params = rows_filter(info, version, "f")
        for key in (*keys, *(between or {})):
            check_key(key)
        values = ", ".join(self._property("f", k) for k in keys)
        sql = PROPERTIES.format(values=values, span=span)
        ranges = []
        for i, (key, (lo, hi)) in enumerate((between or {}).items()):
            prop = self._property("f", key)
            ranges.append(f"CAST({prop} AS BIGINT) BETWEEN :lo{i} AND :hi{i}")
            params |= {f"lo{i}": int(lo), f"hi{i}": int(hi)}
        if ranges:
            sql += " AND (" + " OR ".join(ranges) + ")"
        rows = self._select(sql, {"p": plan_id, "l": layer, **params})
        return pd.DataFrame(rows, columns=["code", *keys], dtype=object)

    def property_of(self, plan_id: str, version: int, layer: str, key: str) -> dict[str, Any]:
        """Property ``key`` of each feature of a version's layer, by code, without
        reading its geometry or its other properties."""
        info = self._check_layer(plan_id, version, layer)
        span, params = rows_filter(info, version, "f")
        sql = PROPERTY_OF.format(value=self._property("f", key), span=span)
        return {str(c): v for c, v in self._select(sql, {"p": plan_id, "l": layer, **params})}

    @abstractmethod
    def _select(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        """Rows of a read-only SQL statement with named parameters (``:name``)."""

    @abstractmethod
    def _property(self, alias: str, key: str) -> str:
        """The SQL text of property ``key`` of the features aliased ``alias``."""

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


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PREFIX = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def check_key(key: str) -> str:
    """A property's name, checked to be a plain name before it goes into SQL text."""
    if not _KEY.match(str(key)):
        raise InputError(f"not a property name: {key!r}", where="key")
    return key


def prefix_sql(store: Store, alias: str, prefix: tuple[str, str]) -> tuple[str, dict[str, str]]:
    """The SQL condition (and its parameter) for :meth:`Store.query`'s ``prefix``: the
    code or parent code column, or the property, starting with the text (a code's
    letters and digits only, so that nothing in it is a LIKE pattern)."""
    key, text = prefix
    check_key(key)
    if not _PREFIX.match(str(text)):
        raise InputError(f"not a code prefix: {text!r}", where="prefix")
    expr = f"{alias}.{key}" if key in ("code", "parent_code") else store._property(alias, key)
    return f"{expr} LIKE :wg_prefix", {"wg_prefix": f"{text}%"}


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
