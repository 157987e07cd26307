"""Bring a finished plan into a store: read it, check it, validate it, save a version.

Both ``wangge import`` and ``POST /plans`` come through here, so a plan is held to the
same rules whichever way it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd

from wangge.data.accounts import audit_entry, local_actor
from wangge.data.plan import Plan
from wangge.data.store import Store, Version, check_plan_id
from wangge.errors import InputError, WanggeError


class PlanInvalid(WanggeError):
    """A plan that the validator rejects; ``violations`` lists the errors."""

    status_code = 422

    def __init__(self, problem: str, violations: list[dict], source: str | None = None):
        super().__init__(problem, source)
        self.violations = violations


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


def check_columns(layers: dict[str, pd.DataFrame], filename: str) -> None:
    """Every street, community, grid and micro-grid has the columns the checks read
    (geo/validate.py ``REQUIRED``), its code and parent code a value and its households a
    number: an upload's feature without them is named by layer and feature (counting from
    1 in its layer), not met later as a crash. A layer missing altogether is the
    validator's to name."""
    from wangge.geo.validate import LEVEL_OF, REQUIRED

    for name, level in LEVEL_OF.items():
        frame = layers.get(name)
        if frame is None or not len(frame):
            continue
        for col in REQUIRED:
            if col not in frame:
                bad = pd.Series(True, index=frame.index)
                problem = f"has no {col}"
            elif col == "households":
                values = frame[col]
                bad = pd.to_numeric(values, errors="coerce").isna()
                problem = f"has no number in {col}"
            else:
                bad = frame[col].isna() | frame[col].astype(str).str.strip().isin(["", "nan"])
                problem = f"has no {col}"
            if bad.any():
                i = int(bad.to_numpy().argmax())
                code = frame["code"].iloc[i] if col != "code" and "code" in frame else None
                named = f" (code {code})" if code is not None and pd.notna(code) else ""
                more = int(bad.sum()) - 1
                raise InputError(
                    f"{level} feature {i + 1}{named} {problem}"
                    + (f", and {more} more" if more else "")
                    + f"; every {level} needs {', '.join(REQUIRED)}",
                    filename,
                    where=f"{name} feature {i + 1}",
                )


def save_plan(
    store: Store,
    plan: Plan,
    plan_id: str,
    base_version: int | None,
    author: str,
    comment: str,
    before_write: Callable[[], None] | None = None,
) -> tuple[Version, pd.DataFrame]:
    """Validate a plan and, if it has no errors, save it as the plan's next version,
    with its audit log entry (``author``: the account, or the local user when empty).

    The violations found (warnings only, then) are saved with it as ``violations``.
    Raises :class:`PlanInvalid` listing the errors, and saves nothing, otherwise.
    ``before_write`` is called just before the save (the API's time cap claims it, and
    raises there when the caller was answered 413 already).
    """
    from wangge.geo.validate import validate

    check_plan_id(plan_id)
    filename = plan.source
    layers, meta = plan.stored()
    layers = {k: v for k, v in layers.items() if k != "violations"}
    check_columns(layers, filename)
    check_geometries(layers, filename)
    limits = plan.limits
    violations = validate(plan.metric_layers(), limits)
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
    if before_write is not None:
        before_write()
    version = store.save(plan_id, layers, meta, base_version, who, comment, audit=entry)
    return version, violations
