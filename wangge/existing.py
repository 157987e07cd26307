"""Adopt a city's existing grid layer as a version of a stored plan, and complete it.

The grid file is read and checked first (data/existing.py), so bad input saves nothing.
The grids are brought onto the plan's atomic units (geo/existing.py) and the assignment
is saved through the editor, as an edit is (:class:`wangge.editing.Editor`): the changed
polygons are dissolved again, the rest kept from the base, the violations saved with it.
The version is of kind ``adopted`` and lists the grids that break the rules as its
edited grids, so that :meth:`Editor.complete` (the editor's button, ``--complete``)
re-solves exactly those grids and their neighbours and leaves the others untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.existing import read_grids
from wangge.data.store import Store
from wangge.editing import Editor, EditResult
from wangge.errors import InputError
from wangge.geo import assignment as ge
from wangge.geo.crs import unshift
from wangge.geo.existing import Adoption, assign_existing, changed_grids, fit
from wangge.plan_state import PlanState
from wangge.scopes import Who

#: Below this share of the plan's households inside the file's grids, the file is
#: taken to be somewhere else (wrong CRS, or shifted coordinates) and refused.
MIN_COVER = 0.5
#: A layer whose buildings lie less than this share (by area) inside their grid is tried
#: as GCJ-02 and BD-09 too (:func:`_check_shift`).
SHIFT_FIT = 0.9


@dataclass
class Adopted:
    """What :func:`adopt` did."""

    result: EditResult  # the saved version, its violations
    adoption: Adoption  # the report, the units outside every grid
    source: str
    findings: pd.DataFrame  # what the reader noticed
    bad: list[str]  # grids with error-level violations (completion's edited grids)
    timings: dict[str, float] = field(default_factory=dict)
    completed: EditResult | None = None
    changes: pd.DataFrame | None = None  # grids completion changed, vs the adopted version

    @property
    def version(self) -> int:
        return self.result.version.version

    def summary(self) -> dict[str, Any]:
        report = self.adoption.report
        file_rows = report[report["source"] == "file"]
        out = {
            "plan": self.result.version.plan_id,
            "version": self.version,
            "source": self.source,
            "grids_in_file": len(file_rows),
            "grids_adopted": int((file_rows["units"] > 0).sum()),
            "codes_kept": int((file_rows["code_kept"] & (file_rows["units"] > 0)).sum()),
            "renumbered": int((~file_rows["code_kept"] & (file_rows["units"] > 0)).sum()),
            "empty_in_plan": int((file_rows["units"] == 0).sum()),
            "units_outside": len(self.adoption.outside),
            "grids_flagged": len(self.bad),
            "errors": sum(1 for v in self.result.violations if v["severity"] == "error"),
        }
        if self.completed is not None:
            out["completed_version"] = self.completed.version.version
            out["grids_changed"] = len(self.changes)
            out["errors_after"] = self.completed.extra.get("errors_after")
        return out


def _grid_names(base: PlanState, adoption: Adoption, grids_wgs: gpd.GeoDataFrame):
    """The base's grids layer carrying the adopted names: renamed where a code is kept,
    and a draft row (the file's polygon) for each new code, so that the editor's
    re-dissolve names every grid as the file does."""
    frame = base.layers["grids"].copy()
    names = adoption.names
    known = frame["code"].isin(names)
    frame.loc[known, "name"] = frame.loc[known, "code"].map(names)
    new = sorted(set(names) - set(frame["code"]))
    if new:
        report = adoption.report.dropna(subset=["feature", "code"])
        feature = dict(zip(report["code"], report["feature"].astype(int), strict=True))
        polygons = grids_wgs.geometry.to_numpy()
        rows = [
            {
                "code": code,
                "parent_code": code[:12],
                "name": names[code],
                "geometry": polygons[feature[code] - 1] if code in feature else None,
            }
            for code in new
        ]
        draft = gpd.GeoDataFrame(rows, geometry="geometry", crs=frame.crs)
        frame = gpd.GeoDataFrame(pd.concat([frame, draft], ignore_index=True), crs=frame.crs)
    return frame


def adopt(
    store: Store,
    plan_id: str,
    grid_file: str | Path,
    coords: str = "wgs84",
    encoding: str = "utf-8",
    crs: str | int | None = None,
    who: Who = None,
    comment: str = "",
    name: str = "",
    base_version: int | None = None,
    complete: bool = False,
    editor: Editor | None = None,
    source: str | None = None,
) -> Adopted:
    """Bring ``grid_file`` onto the latest version of ``plan_id`` as a new version.

    Parameters
    ----------
    store
        The store holding the plan.
    plan_id
        The plan.
    grid_file
        GeoJSON, GeoPackage, zipped Shapefile or CSV with WKT (:func:`read_grids`).
    coords
        ``wgs84`` (also CGCS2000), ``gcj02`` or ``bd09``: the file's coordinates.
    encoding, crs
        The attribute encoding and CRS when the file does not say (or says wrongly).
    who, comment, name
        Recorded with the version (``name`` defaults to "adopted <file name>").
    base_version
        When given and no longer the latest, nothing is saved (409).
    complete
        Also run :meth:`Editor.complete` on the grids that break the rules, and report
        which grids it changed.
    editor
        The editor to save through (the API passes its own, to share its cache).
    source
        How to name the file in messages (an upload's name).

    Returns
    -------
    Adopted
    """
    t0 = time.perf_counter()
    label = source or str(grid_file)
    editor = editor or Editor(store)
    latest = store.resolve(plan_id)
    if base_version is None:
        base_version = latest.version
    base = editor.base(plan_id, base_version, False)
    try:
        read = read_grids(grid_file, coords=coords, encoding=encoding, crs=crs)
    except InputError as exc:
        if source:
            exc.source = source
            exc.args = (exc.message,)
        raise
    grids_wgs = read.frame
    metric = grids_wgs.to_crs(base.crs)
    _check_shift(base, metric, coords, label)
    plan_names = dict(zip(base.layers["grids"]["code"], base.layers["grids"]["name"], strict=True))
    t1 = time.perf_counter()
    adoption = assign_existing(
        base.units, base.metric, base.micro, metric, base.limits, base.flags, plan_names
    )
    t2 = time.perf_counter()
    _check_cover(base, adoption, coords, label)
    moves = ge.diff(base.units, base.micro, adoption.micro)
    bad = adoption.bad_grids
    meta = {
        "kind": "adopted",
        "name": name or f"adopted {Path(label).name}",
        "moves": len(moves),
        "edited": bad,
        "adopted_from": Path(label).name,
    }
    named = replace(base, layers={**base.layers, "grids": _grid_names(base, adoption, grids_wgs)})
    comment = comment or (
        f"adopted {Path(label).name}: {int((adoption.report['units'] > 0).sum())} grids, "
        f"{len(bad)} breaking the rules"
    )
    timings: dict[str, float] = {}
    if any(m.before[:15] != m.after[:15] for m in moves):
        result = editor.commit(
            named,
            adoption.micro,
            moves,
            set(),
            meta,
            who,
            comment,
            False,
            timings,
            adoption.flags,
        )
    else:  # every grid kept its units: the names (and flags) are all that can differ
        result = editor.commit(
            named, base.micro, [], set(), meta, who, comment, True, timings, adoption.flags
        )
        found = ge.check(base.units, base.micro, base.limits, adoption.flags)
        version = editor.save_version(
            named,
            base.micro,
            {"grids": named.layers["grids"]},
            set(),
            meta,
            found,
            who,
            comment,
        )
        result = replace(result, version=version, saved=True)
    t3 = time.perf_counter()
    out = Adopted(
        result=result,
        adoption=adoption,
        source=label,
        findings=read.findings,
        bad=bad,
        timings={"read": t1 - t0, "assign": t2 - t1, "save": t3 - t2},
    )
    if complete:
        # dedicated grids lie outside the household bands: completion must not absorb them
        held = sorted(
            c
            for c in adoption.grid_codes()
            if adoption.flags.flag.get(c) == "dedicated" and c not in bad
        )
        done = editor.complete(plan_id, result.version.version, locks=held, grids=bad, who=who)
        adopted = editor.state(plan_id, result.version.version)
        after = editor.state(plan_id, done.version.version)
        names = dict(zip(after.layers["grids"]["code"], after.layers["grids"]["name"], strict=True))
        for code, n in adoption.names.items():
            names.setdefault(code, n)
        out.completed = done
        out.changes = changed_grids(adopted.units, adopted.micro, after.micro, names)
        out.timings["complete"] = time.perf_counter() - t3
    return out


def _check_shift(base: PlanState, metric: gpd.GeoDataFrame, coords: str, label: str) -> None:
    """Refuse a layer that fits the buildings far better shifted back from GCJ-02 or BD-09
    than as given: its coordinates are a Chinese map's, not WGS84."""
    if coords != "wgs84":
        return
    as_given = fit(base.units, base.metric, metric.geometry.to_numpy())
    if as_given >= SHIFT_FIT:
        return
    wgs = metric.to_crs(4326).geometry.to_numpy()
    for name in ("gcj02", "bd09"):
        back = gpd.GeoSeries(unshift(wgs, name), crs=4326).to_crs(base.crs).to_numpy()
        shifted = fit(base.units, base.metric, back)
        if shifted > max(SHIFT_FIT, as_given + 0.1):
            raise InputError(
                f"its grids fit the buildings poorly as WGS84 ({as_given:.0%} of the "
                f"buildings' area inside their grid) but well as {name.upper()} "
                f"({shifted:.0%}): it comes from a Chinese map; give coords {name}. "
                "Nothing was saved.",
                label,
            )


def _check_cover(base: PlanState, adoption: Adoption, coords: str, label: str) -> None:
    """Refuse a file whose grids hold too little of the plan: it lies elsewhere."""
    hh = base.units.households
    outside = np.isin(base.units.codes, adoption.outside["unit"].to_numpy())
    total = float(hh.sum()) or 1.0
    share = 1 - float(hh[outside].sum()) / total if hh.sum() > 0 else 1 - outside.mean()
    if share < MIN_COVER:
        hint = (
            " If the file is from AMap or Tencent (GCJ-02) or Baidu (BD-09), say so with "
            "coords gcj02 or bd09."
            if coords == "wgs84"
            else ""
        )
        raise InputError(
            f"its grids hold only {share:.0%} of the plan's households "
            f"(at least {MIN_COVER:.0%} needed): is it the same district, and is its "
            f"CRS right?{hint} Nothing was saved.",
            label,
        )
