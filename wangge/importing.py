"""Bring a finished plan into a store: read it, check it, validate it, save a version.

Both ``wangge import`` and ``POST /plans`` come through here, so a plan is held to the
same rules whichever way it arrives.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from wangge.data.accounts import audit_entry, local_actor
from wangge.data.store import Store, Version, check_plan_id
from wangge.errors import InputError, WanggeError

#: A GeoJSON upload holds every level in one collection, told apart by this property.
LEVEL_LAYERS = {
    "street": "streets",
    "community": "communities",
    "grid": "grids",
    "microgrid": "microgrids",
    "building": "buildings",
    "study_area": "study_area",
}


class PlanInvalid(WanggeError):
    """A plan that the validator rejects; ``violations`` lists the errors."""

    status_code = 422

    def __init__(self, problem: str, violations: list[dict], source: str | None = None):
        super().__init__(problem, source)
        self.violations = violations


def read_plan_bytes(data: bytes, filename: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Layers and meta from an uploaded plan.gpkg or GeoJSON FeatureCollection."""
    from wangge.data.gpkg_store import read_plan_file

    if data[:16] == b"SQLite format 3\x00":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.gpkg"
            path.write_bytes(data)
            layers, meta = read_plan_file(path)
        return layers, meta
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
    return layers, meta


def check_geometries(layers: dict[str, pd.DataFrame], filename: str) -> None:
    """Empty, missing or invalid geometry is named by layer and code (or row)."""
    for name, frame in layers.items():
        if not isinstance(frame, gpd.GeoDataFrame):
            continue
        geoms = frame.geometry
        bad = geoms.isna() | geoms.is_empty | ~geoms.is_valid
        if bad.any():
            i = int(bad.to_numpy().argmax())
            code = frame["code"].iloc[i] if "code" in frame else f"row {i + 1}"
            why = "no geometry" if geoms.iloc[i] is None or geoms.iloc[i].is_empty else "invalid"
            raise InputError(f"{why} geometry ({int(bad.sum())} such)", filename, f"{name} {code}")


def save_plan(
    store: Store,
    layers: dict[str, pd.DataFrame],
    meta: dict[str, Any],
    filename: str,
    plan_id: str,
    base_version: int | None,
    author: str,
    comment: str,
) -> tuple[Version, pd.DataFrame]:
    """Validate a plan and, if it has no errors, save it as the plan's next version,
    with its audit log entry (``author``: the account, or the local user when empty).

    The violations found (warnings only, then) are saved with it as ``violations``.
    Raises :class:`PlanInvalid` listing the errors, and saves nothing, otherwise.
    """
    from wangge.delineate import metric_plan
    from wangge.geo.validate import validate

    check_plan_id(plan_id)
    layers = {k: v for k, v in layers.items() if k != "violations"}
    check_geometries(layers, filename)
    metric, limits = metric_plan(layers, meta, filename)
    violations = validate(metric, limits)
    errors = violations[violations["severity"] == "error"]
    if len(errors):
        raise PlanInvalid(
            f"the plan has {len(errors)} error(s); nothing was saved",
            errors.to_dict("records"),
            filename,
        )
    layers["violations"] = violations
    meta.setdefault("district_code", limits.district_code)
    meta.setdefault("limits_json", json.dumps(limits.raw, ensure_ascii=False))
    who = author or local_actor()
    entry = audit_entry(who, "import", plan_id, base_version, source=Path(filename).name)
    version = store.save(plan_id, layers, meta, base_version, who, comment, audit=entry)
    return version, violations
