"""The printing job: a plan's notice-board maps (公示图), one sheet per community or grid.

A plan is read from a plan.gpkg (``wangge delineate``) or from a store version; roads come
from the plan's walking network or the units.gpkg beside a plan file, when there. The
grid staff come only from a store's roster and only when asked for, and then only those
of grids the caller may see: everything, for the holder of the store, or an account's
territory (:meth:`wangge.data.privacy.Reader.sees_staff`) when a key is given. A sheet
reads only public columns (codes, names, households: :mod:`wangge.data.privacy`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyogrio import list_layers, read_dataframe
from pyproj import CRS

from wangge.data.plan import Plan
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
    #: The credit of the plan's sources (``Plan.attribution``), printed on every sheet.
    credit: str = ""


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


def print_plan(plan: Plan) -> PrintPlan:
    """What a sheet shows of a plan (a plan.gpkg or a store version: :mod:`wangge.data.plan`):
    its polygons in the plan's metric CRS, whether any layer is sample data, and the roads
    of its walking network or of the units.gpkg beside a plan file, when there."""
    missing = [n for n in LAYERS if n not in plan]
    if missing:
        raise InputError(f"the plan has no layer {', '.join(missing)} to print", plan.source)
    crs = CRS.from_user_input(plan.crs)
    layers = {}
    for name in LAYERS:
        f = plan.frame(name)
        f = f[f.geometry.notna() & ~f.geometry.is_empty].to_crs(crs)
        layers[name] = f.assign(code=f["code"].astype(str))
    sample = any(
        has_sample(plan.frame(name)[["sample"]])
        for name in plan.names
        if "sample" in plan.columns(name)
    )
    roads = None
    units = plan.path.parent / "units.gpkg" if plan.path is not None else None
    if units is not None and units.exists() and "roads" in [n for n, _ in list_layers(units)]:
        roads = read_dataframe(units, layer="roads", columns=["highway"])
    else:
        roads = next((plan.frame(n) for n in ROAD_LAYERS if n in plan), None)
    if roads is not None:
        roads = roads[roads.geometry.notna()].to_crs(crs)
    return PrintPlan(layers, crs, plan.label, sample, plan.source, roads, plan.attribution)


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
        "credit": plan.credit,
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
