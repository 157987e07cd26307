"""A plan, read once: its layers, meta, metric CRS and limits, from a file, a store or an upload.

Every job that reads a plan (validate, import, the editor, printing, overlay, coverage,
the city path) takes a :class:`Plan` from one of the readers here, so that where a plan
comes from never changes what it means: the same layers in WGS84 as stored, the same
metric CRS (the one the plan was drawn in, or a Gauss-Kruger zone at its centre) and
the same limits (those it was drawn with, or the defaults under its district code).
Layers are read when first asked for, so a job that needs three layers of a city reads
three.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from wangge.data.untrusted import check_file as check_untrusted
from wangge.errors import InputError
from wangge.geo.assignment import LEVEL_LAYERS as ASSIGNMENT_LAYERS
from wangge.geo.limits import Limits, limits_from_raw, load_limits

#: The four polygon levels every plan has.
PLAN_POLYGONS = ("streets", "communities", "grids", "microgrids")
#: A GeoJSON upload holds every level in one collection, told apart by this property.
LEVEL_LAYERS = {**ASSIGNMENT_LAYERS, "building": "buildings", "study_area": "study_area"}


@dataclass
class Plan:
    """One plan (a plan.gpkg, a stored version or an upload), read once.

    Attributes
    ----------
    source
        Where it came from, for messages: a path, an upload's name, or
        ``STORE plan P version N``.
    label
        How a person names it on a sheet or a page.
    meta
        The plan's meta (district code, metric CRS, limits, locks...).
    crs
        The metric CRS its geometry is measured in.
    limits
        The limits it was drawn with.
    version
        The store version, when it came from a store.
    path
        The plan.gpkg, when it came from a file.
    """

    source: str
    label: str
    meta: dict[str, Any]
    crs: str
    limits: Limits
    names: tuple[str, ...]
    _read: Callable[[str], pd.DataFrame] = field(repr=False)
    _columns: Callable[[str], tuple[str, ...]] = field(repr=False)
    version: Any = None
    path: Path | None = None
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _metric: dict[str, gpd.GeoDataFrame] = field(default_factory=dict, repr=False)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def frame(self, name: str) -> pd.DataFrame:
        """The layer as stored: a GeoDataFrame in WGS84, or a plain table."""
        if name not in self.names:
            raise InputError(f"the plan has no {name} layer", self.source, where=name)
        if name not in self._frames:
            self._frames[name] = self._read(name)
        return self._frames[name]

    def get(self, name: str) -> pd.DataFrame | None:
        """The layer as stored, or None when the plan has none."""
        return self.frame(name) if name in self.names else None

    def columns(self, name: str) -> tuple[str, ...]:
        """The columns of a layer, without reading its rows."""
        if name in self._frames:
            return tuple(self._frames[name].columns)
        return self._columns(name) if name in self.names else ()

    def frames(self, names: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Layers as stored, by name (all of them by default; those absent left out)."""
        wanted = self.names if names is None else [n for n in names if n in self.names]
        return {n: self.frame(n) for n in wanted}

    def metric(self, name: str) -> gpd.GeoDataFrame:
        """A spatial layer in the plan's metric CRS (polygon levels with ``flag``,
        ``note`` and ``record_codes`` filled, as the checks read them)."""
        if name not in self._metric:
            frame = self.frame(name)
            if not isinstance(frame, gpd.GeoDataFrame):
                raise InputError("the layer has no geometry", self.source, where=name)
            if frame.crs is None:
                raise InputError("the layer has no CRS", self.source, where=name)
            frame = frame.to_crs(self.crs)
            if name in PLAN_POLYGONS:
                for col in ("flag", "note", "record_codes"):
                    if col in frame:
                        frame[col] = frame[col].fillna("")
            self._metric[name] = frame
        return self._metric[name]

    def metric_layers(
        self, names: Iterable[str] = (*PLAN_POLYGONS, "buildings", "study_area")
    ) -> dict[str, gpd.GeoDataFrame]:
        """Spatial layers in the metric CRS, by name, as the validator reads them."""
        return {n: self.metric(n) for n in names if n in self.names}

    @property
    def layers(self) -> MetricLayers:
        """The spatial layers in the metric CRS, by name, read as they are asked for."""
        return MetricLayers(self)

    @property
    def attribution(self) -> str:
        """The credit for the sources the plan was drawn from (only those used)."""
        from wangge.data.osm import attribution_of, credit_of

        if self.meta.get("attribution"):
            return credit_of(self.meta)
        return attribution_of({n: self.frame(n) for n in ("study_area", "roads") if n in self})

    @property
    def study_area_wgs84(self) -> shapely.Geometry:
        """The plan's study area (its grids' union where it has none), in WGS84."""
        area = self.get("study_area")
        if area is None or not len(area):
            area = self.frame("grids")
        return shapely.union_all(area.to_crs(4326).geometry.to_numpy())

    def stored(self) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        """Every layer as stored and the meta: what :meth:`Store.save` takes."""
        return self.frames(), dict(self.meta)


class MetricLayers(Mapping):
    """A plan's spatial layers in its metric CRS, as a read-only mapping (tables left out)."""

    def __init__(self, plan: Plan):
        self._plan = plan

    def _spatial(self, name: str) -> bool:
        return name in self._plan.names and isinstance(self._plan.frame(name), gpd.GeoDataFrame)

    def __getitem__(self, name: str) -> gpd.GeoDataFrame:
        if not self._spatial(name):
            raise KeyError(name)
        return self._plan.metric(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._spatial(name)

    def __iter__(self) -> Iterator[str]:
        return (n for n in self._plan.names if self._spatial(n))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _limits_of(plan: Plan) -> Limits:
    """The limits a plan was drawn with (``limits_json``), else the defaults under the
    district code its meta or its streets' codes name."""
    meta, source = plan.meta, plan.source
    if meta.get("limits_json"):
        try:
            raw = json.loads(meta["limits_json"])
        except (TypeError, json.JSONDecodeError) as exc:
            raise InputError("its meta holds no readable limits_json", source) from exc
        return limits_from_raw(raw, source)
    code = meta.get("district_code")
    streets = plan.get("streets")
    if not code and streets is not None and len(streets) and "code" in streets:
        first = str(streets["code"].iloc[0])
        code = first[:6] if len(first) >= 6 and first[:6].isdigit() else None
    return load_limits(district_code=str(code)) if code else load_limits()


def _metric_crs(plan: Plan) -> str:
    """The plan's metric CRS: its meta's, else the Gauss-Kruger zone at its centre."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    from wangge.geo.crs import metric_crs

    crs, source = plan.meta.get("metric_crs"), plan.source
    if not crs:
        for name in ("streets", *PLAN_POLYGONS, "study_area", "units"):
            frame = plan.get(name)
            if isinstance(frame, gpd.GeoDataFrame) and len(frame) and frame.crs is not None:
                centre = frame.to_crs(4326).geometry.union_all().centroid
                if not centre.is_empty:  # a layer of empty geometries places nothing
                    return metric_crs(centre.x, centre.y).to_string()
        raise InputError("the plan holds no features", source)
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(f"its meta names an unknown metric_crs {crs!r}", source) from exc
    if not parsed.is_projected:
        raise InputError(
            f"its metric_crs {crs!r} is not projected; name one in metres, e.g. EPSG:4549",
            source,
        )
    return str(crs)


def _make(
    source: str,
    label: str,
    meta: dict[str, Any],
    names: Iterable[str],
    read: Callable[[str], pd.DataFrame],
    columns: Callable[[str], tuple[str, ...]],
    **extra: Any,
) -> Plan:
    plan = Plan(source, label, dict(meta), "", None, tuple(names), read, columns, **extra)  # type: ignore[arg-type]
    for name, frame in plan._frames.items():  # layers held already must say where they lie
        if isinstance(frame, gpd.GeoDataFrame) and frame.crs is None:
            raise InputError("the layer has no CRS", source, where=name)
    plan.crs = _metric_crs(plan)
    plan.limits = _limits_of(plan)
    return plan


def _gpkg_frame(path: Path, name: str) -> pd.DataFrame:
    import pyogrio

    frame = pyogrio.read_dataframe(path, layer=name)
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.notna().any():
        return frame
    return pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))


def read_plan(path: str | Path, required: Iterable[str] = (*PLAN_POLYGONS, "buildings")) -> Plan:
    """A plan.gpkg written by ``wangge delineate`` (or the directory holding it).

    Raises
    ------
    InputError
        If the file is missing, not a GeoPackage, or lacks ``required`` layers.
    """
    import pyogrio

    path = Path(path)
    if path.is_dir():
        path = path / "plan.gpkg"
    if not path.exists():
        raise InputError("file not found", path)
    check_untrusted(path)  # its header, views and row counts before GDAL opens it
    try:
        have = [n for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise InputError(f"cannot be read as a GeoPackage: {exc}", path) from None
    missing = [n for n in required if n not in have]
    if missing:
        hint = "; a store? name it with --store" if "wg_versions" in have else ""
        raise InputError(f"is not a plan.gpkg: missing layers {', '.join(missing)}{hint}", path)
    meta = {}
    if "meta" in have:  # without it, the limits and the metric CRS are the defaults
        table = pyogrio.read_dataframe(path, layer="meta")
        meta = dict(zip(table["key"], table["value"], strict=True))
    changed = datetime.fromtimestamp(path.stat().st_mtime, UTC).astimezone()

    def columns(name: str) -> tuple[str, ...]:
        return tuple(pyogrio.read_info(path, layer=name)["fields"])

    return _make(
        str(path),
        f"{path.name} ({changed:%Y-%m-%d %H:%M})",
        meta,
        [n for n in have if n != "meta"],
        lambda name: _gpkg_frame(path, name),
        columns,
        path=path,
    )


def read_stored(
    store, plan_id: str | None = None, version: int | None = None, *, resolved: Any = None
) -> Plan:
    """A version of a stored plan (by default the latest of the newest plan; ``resolved``,
    a :class:`~wangge.data.store.Version` already looked up, saves asking again)."""
    v = resolved if resolved is not None else store.resolve(plan_id, version)
    infos = store.layer_infos(v.plan_id, v.version)

    def read(name: str) -> pd.DataFrame:
        frame = store.query(v.plan_id, v.version, name).frame
        if infos[name].geometry_type is None:
            return pd.DataFrame(frame.drop(columns=frame.geometry.name, errors="ignore"))
        return frame

    return _make(
        f"{store.url} plan {v.plan_id} version {v.version}",
        f"{v.plan_id} 第{v.version}版 version {v.version} ({v.created_at[:10]})",
        v.meta,
        list(infos),
        read,
        lambda name: tuple(infos[name].columns),
        version=v,
    )


def plan_from_frames(
    layers: dict[str, pd.DataFrame], meta: dict[str, Any], source: str, label: str = ""
) -> Plan:
    """A plan held in memory (an upload, a plan being built), its gaps in meta filled:
    the limits from the defaults under the district code its codes name, and the metric
    CRS from its centre."""
    layers = dict(layers)

    def columns(name: str) -> tuple[str, ...]:
        return tuple(layers[name].columns)

    return _make(
        source,
        label or source,
        meta,
        list(layers),
        layers.__getitem__,
        columns,
        _frames=dict(layers),
    )


def read_plan_bytes(data: bytes, filename: str) -> Plan:
    """An uploaded plan: a plan.gpkg, or a GeoJSON FeatureCollection whose features say
    their ``level`` (street, community, grid, microgrid, building, study_area)."""
    if data[:16] == b"SQLite format 3\x00":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.gpkg"
            path.write_bytes(data)
            on_disk = read_plan(path)
            layers, meta = on_disk.stored()  # read now: the file goes with the directory
        return plan_from_frames(layers, meta, filename)
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"neither a GeoPackage nor GeoJSON (truncated?): {exc}", filename) from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InputError("GeoJSON must be a FeatureCollection", filename)
    feats = doc.get("features")
    if not isinstance(feats, list) or not feats:
        raise InputError("the FeatureCollection has no features", filename)
    try:
        frame = gpd.GeoDataFrame.from_features(feats, crs=4326)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(f"unreadable feature: {exc}", filename) from exc
    if "level" not in frame:
        raise InputError(
            "each feature needs a 'level' property: street, community, grid, microgrid"
            " (and building, study_area where given)",
            filename,
        )
    layers: dict[str, pd.DataFrame] = {}
    for level, group in frame.groupby("level", sort=False):
        name = LEVEL_LAYERS.get(str(level))
        if name is None:
            row = int(group.index[0])
            raise InputError(
                f"unknown level {level!r}; use one of {', '.join(LEVEL_LAYERS)}",
                filename,
                where=f"feature {row}",
            )
        layers[name] = group.drop(columns="level").dropna(axis=1, how="all").reset_index(drop=True)
    meta = {k: doc[k] for k in ("district_code", "metric_crs", "limits_json") if k in doc}
    return plan_from_frames(layers, meta, filename)
