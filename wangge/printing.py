"""The printing job: a plan's notice-board maps (公示图), one sheet per community or grid.

A plan is read from a plan.gpkg (``wangge delineate``) or from a store version; roads come
from the plan's walking network or the units.gpkg beside a plan file, when there. The
grid staff come only from a store's roster and only when asked for, and then only those
of grids the caller may see: everything, for the holder of the store, or an account's
territory (:meth:`wangge.data.accounts.Account.covers`) when a key is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from wangge.errors import InputError, NotFound
from wangge.maps.notice import Sheet, draw_sheet, notice_font, sheet_texts
from wangge.maps.webmap import has_sample

LAYERS = ("communities", "grids", "microgrids")
#: Layers that may carry roads, best first.
ROAD_LAYERS = ("roads", "network_edges")


@dataclass
class PrintPlan:
    """A plan's polygons in its metric CRS, and what a sheet says about the plan."""

    layers: dict[str, gpd.GeoDataFrame]
    crs: CRS
    version: str
    sample: bool
    source: str
    roads: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class Printed:
    """One sheet written: its level, code and name, how many parts and staff rows it
    shows, the files, and the labels it could not put on the map."""

    level: str
    code: str
    name: str
    parts: int
    staff: int | None
    pdf: Path
    png: Path
    labels_off: int


def _metric(frames: dict[str, gpd.GeoDataFrame], meta: dict) -> CRS:
    from wangge.geo.crs import metric_crs

    if meta.get("metric_crs"):
        return CRS.from_user_input(meta["metric_crs"])
    c = frames["communities"].to_crs(4326).union_all().centroid
    return metric_crs(c.x, c.y)


def _plan(frames, meta, version: str, sample: bool, source: str, roads) -> PrintPlan:
    crs = _metric(frames, meta)
    layers = {}
    for name in LAYERS:
        f = frames[name]
        f = f[f.geometry.notna() & ~f.geometry.is_empty].to_crs(crs)
        layers[name] = f.assign(code=f["code"].astype(str))
    if roads is not None:
        roads = roads[roads.geometry.notna()].to_crs(crs)
    return PrintPlan(layers, crs, version, sample, source, roads)


def read_plan_file(path: Path) -> PrintPlan:
    """A plan.gpkg (or the directory holding it) written by ``wangge delineate``."""
    import pyogrio

    path = Path(path)
    if path.is_dir():
        path = path / "plan.gpkg"
    if not path.exists():
        raise InputError("file not found", path)
    try:
        have = [n for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise InputError(f"cannot be read as a GeoPackage: {exc}", path) from None
    missing = [n for n in (*LAYERS, "meta") if n not in have]
    if missing:
        hint = "; a store? print from it with --store" if "wg_versions" in have else ""
        raise InputError(f"is not a plan.gpkg: missing layers {', '.join(missing)}{hint}", path)
    frames = {n: pyogrio.read_dataframe(path, layer=n) for n in LAYERS}
    meta_frame = pyogrio.read_dataframe(path, layer="meta")
    meta = dict(zip(meta_frame["key"], meta_frame["value"], strict=True))
    sample = False
    for name in have:
        fields = pyogrio.read_info(path, layer=name)["fields"]
        if "sample" in list(fields):
            cols = pyogrio.read_dataframe(path, layer=name, columns=["sample"], read_geometry=False)
            sample = sample or has_sample(cols)
    roads = None
    units = path.parent / "units.gpkg"
    if units.exists() and "roads" in [n for n, _ in pyogrio.list_layers(units)]:
        roads = pyogrio.read_dataframe(units, layer="roads", columns=["highway"])
    elif "network_edges" in have:
        roads = pyogrio.read_dataframe(path, layer="network_edges", columns=["highway"])
    changed = datetime.fromtimestamp(path.stat().st_mtime, UTC).astimezone()
    version = f"{path.name} ({changed:%Y-%m-%d %H:%M})"
    return _plan(frames, meta, version, sample, str(path), roads)


def read_store_plan(store, plan_id: str | None, version: int | None) -> tuple[PrintPlan, str]:
    """A version of a stored plan (the latest of the newest plan by default), and its id."""
    v = store.resolve(plan_id, version)
    infos = store.layer_infos(v.plan_id, v.version)
    missing = [n for n in LAYERS if n not in infos]
    if missing:
        raise InputError(
            f"version {v.version} has no layer {', '.join(missing)} to print", store.url, v.plan_id
        )
    frames = {n: store.query(v.plan_id, v.version, n).frame for n in LAYERS}
    sample = any(
        has_sample(store.query(v.plan_id, v.version, name).frame)
        for name, info in infos.items()
        if "sample" in info.columns
    )
    roads = next(
        (store.query(v.plan_id, v.version, n).frame for n in ROAD_LAYERS if n in infos), None
    )
    label = f"{v.plan_id} 第{v.version}版 version {v.version} ({v.created_at[:10]})"
    source = f"{store.url} plan {v.plan_id} version {v.version}"
    return _plan(frames, v.meta, label, sample, source, roads), v.plan_id


def _named(frame: pd.DataFrame) -> pd.DataFrame:
    names = frame["name"] if "name" in frame else pd.Series("", index=frame.index)
    return frame.assign(name=names.fillna("").astype(str).str.strip())


def _parts(frame: gpd.GeoDataFrame, parent: str) -> gpd.GeoDataFrame:
    inside = frame[frame["code"].str.startswith(parent)]
    dedicated = pd.Series(False, index=inside.index)
    for col in ("grid_type", "flag"):
        if col in inside:
            dedicated |= inside[col].astype(str).eq("dedicated")
    return _named(inside).assign(dedicated=dedicated.to_numpy()).sort_values("code")


def _nearby(frame: gpd.GeoDataFrame, geom, code: str) -> gpd.GeoDataFrame:
    """Units of ``frame`` near ``geom``, but the one with ``code``."""
    near = frame.iloc[frame.sindex.query(geom.buffer(geom.length / 8 + 50))]
    return near[near["code"] != code]


def sheets(
    plan: PrintPlan,
    community: str | None = None,
    per_grid: bool = False,
    staff: Callable[[list[str]], list[tuple[str, str, str, str]]] | None = None,
    staff_note: str = "",
    printed: str | None = None,
) -> list[Sheet]:
    """The sheets of a plan: one per community (just ``community`` if given), followed,
    with ``per_grid``, by one per grid of it.

    Parameters
    ----------
    staff
        Given the codes of a sheet's parts (and its own code), their ``(code, role, name,
        phone)`` rows; None prints no staff.

    Raises
    ------
    NotFound
        For a ``community`` the plan does not have (naming it and some it has).
    """
    comms = _named(plan.layers["communities"]).sort_values("code")
    if community is not None:
        chosen = comms[comms["code"] == str(community)]
        if chosen.empty:
            known = ", ".join(comms["code"].head(8)) + (" …" if len(comms) > 8 else "")
            raise NotFound(
                f"no community {community} in this plan; it has {len(comms)}: {known}",
                plan.source,
                where="--community",
            )
    else:
        chosen = comms
    printed = printed or date.today().isoformat()
    common = {
        "crs": plan.crs,
        "version": plan.version,
        "printed": printed,
        "sample": plan.sample,
        "roads": plan.roads,
        "staff_note": staff_note,
    }
    grids, micro = plan.layers["grids"], plan.layers["microgrids"]
    out = []
    for row in chosen.itertuples():
        parts = _parts(grids, row.code)
        codes = list(parts["code"])
        out.append(
            Sheet(
                "community",
                row.code,
                row.name,
                row.geometry,
                parts,
                faint=micro[micro["code"].str.startswith(row.code)],
                context=_nearby(comms, row.geometry, row.code),
                staff=None if staff is None else staff(codes),
                **common,
            )
        )
        if not per_grid:
            continue
        for grid in parts.itertuples():
            small = _parts(micro, grid.code)
            out.append(
                Sheet(
                    "grid",
                    grid.code,
                    grid.name,
                    grid.geometry,
                    small,
                    context=_nearby(parts, grid.geometry, grid.code),
                    staff=None if staff is None else staff([grid.code, *small["code"]]),
                    **common,
                )
            )
    return out


def file_stem(code: str, name: str) -> str:
    """``<code>-<name>``, with characters no file system takes replaced."""
    safe = re.sub(r'[\\/:*?"<>|\s\x00-\x1f]+', "_", name).strip("._")
    return f"{code}-{safe}" if safe else code


def write_sheets(sheets: list[Sheet], out_dir: Path, progress: bool = False) -> list[Printed]:
    """Draw each sheet as ``<code>-<name>.pdf`` and ``.png`` in ``out_dir``, with one font
    cut for them all (:func:`wangge.maps.notice.notice_font`) and a progress bar."""
    from tqdm import tqdm

    family = notice_font(text for sheet in sheets for text in sheet_texts(sheet))
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(sheets, desc="print", unit="sheet", disable=not progress, leave=False)
    return [write_sheet(sheet, out_dir, family) for sheet in bar]


def write_sheet(sheet: Sheet, out_dir: Path, family: str | None = None) -> Printed:
    """Draw one sheet as ``<code>-<name>.pdf`` and ``.png`` in ``out_dir``."""
    stem = file_stem(sheet.code, sheet.name)
    pdf, png = out_dir / f"{stem}.pdf", out_dir / f"{stem}.png"
    drawn = draw_sheet(sheet, png=png, pdf=pdf, family=family)
    return Printed(
        sheet.level,
        sheet.code,
        sheet.name,
        len(sheet.parts),
        None if sheet.staff is None else len(sheet.staff),
        pdf,
        png,
        sum(label.box is None for label in drawn.labels),
    )


def roster_rows(table: pd.DataFrame) -> Callable[[list[str]], list[tuple[str, str, str, str]]]:
    """A ``staff`` callable for :func:`sheets` from a roster table
    (:meth:`wangge.data.roster.Roster.table`, already cut to what the caller may see):
    the people of the codes asked for, in roster order, as ``(code, role, name, phone)``."""
    by_code = {str(code): group for code, group in table.groupby("code", sort=False)}

    def rows(codes: list[str]) -> list[tuple[str, str, str, str]]:
        return [
            (c, r.role_zh, r.name, r.phone)
            for c in codes
            if c in by_code
            for r in by_code[c].itertuples()
        ]

    return rows
