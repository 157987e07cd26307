"""Scale estimated households so that each given unit's total matches its known figure.

Street offices know their communities' household and population totals (民政 registers, the
2020 census) even without a count per building. For a given unit carrying such a total,
the estimated buildings inside it are scaled by one factor so that the unit's total matches;
imported counts are never changed. The factor is ``(known − imported) ÷ estimated``.
Outside 0.5–2 (:data:`PLAUSIBLE`) it says more about the data than about the estimate
(buildings missing from the map, a unit of which the extract holds a sliver, levels guessed
far off): it is reported and NOT applied, unless the caller asks for it
(``--calibrate-outliers``). Rounding keeps whole households per building and the exact
total, by largest remainders.

A unit only partly covered by the building data is never scaled as if it were whole: its
known total is first prorated by the share of its area the data covers (the stated rule),
and the unit is reported as partly covered. Below :data:`MIN_COVERAGE` of its area covered,
it is not calibrated at all, and reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

#: Below this share of a unit's area covered by building data, its total is prorated.
WHOLE_COVERAGE = 0.95
#: Below this share, the unit is not calibrated at all.
MIN_COVERAGE = 0.25
#: A factor outside this range is flagged as a data finding.
PLAUSIBLE = (0.5, 2.0)

COLUMNS = [
    "level",
    "code",
    "name",
    "known",
    "coverage",
    "target",
    "imported",
    "estimated_before",
    "estimated_after",
    "factor",
    "finding",
]


def coverage_share(units: np.ndarray, extent: shapely.Geometry) -> np.ndarray:
    """Share of each unit's area (metric polygons) that lies inside the data ``extent``."""
    inside = shapely.area(shapely.intersection(units, extent))
    return inside / np.maximum(shapely.area(units), 1e-9)


def _scale_to(values: np.ndarray, target: int) -> np.ndarray:
    """Whole numbers proportional to ``values`` that add up to ``target`` exactly."""
    total = values.sum()
    if total <= 0 or target <= 0:
        return np.zeros(len(values), dtype=np.int64)
    raw = values * (target / total)
    out = np.floor(raw).astype(np.int64)
    short = int(target - out.sum())
    if short > 0:
        out[np.argsort(-(raw - out), kind="stable")[:short]] += 1
    return out


def calibrate(
    buildings: pd.DataFrame,
    unit_of: np.ndarray,
    units: pd.DataFrame,
    coverage: np.ndarray,
    level: str,
    persons: float,
    outliers: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scale the estimated buildings of each given unit to its known totals.

    Parameters
    ----------
    buildings
        With ``households``, ``population`` and ``estimated`` (imported counts have False).
    unit_of
        Row of ``units`` holding each building (-1 for none).
    units
        The given units with ``code``, ``name``, ``households`` and ``population`` (NaN
        where not known).
    coverage
        Share of each unit's area covered by the building data (:func:`coverage_share`).
    level
        ``street`` or ``community``, for the report.
    persons
        Persons per household, for population where no population total is known.
    outliers
        Apply factors outside :data:`PLAUSIBLE` too; by default they are reported with
        the estimate left as it is.

    Returns
    -------
    (buildings, report)
        A copy of ``buildings`` with calibrated ``households``, ``population`` and a
        ``household_source`` saying so; and one report row per unit with a known total
        (:data:`COLUMNS`).
    """
    out = buildings.copy()
    hh = out["households"].to_numpy(dtype=float).copy()
    pop = out["population"].to_numpy(dtype=float).copy()
    est = out["estimated"].to_numpy(dtype=bool)
    source = out["household_source"].astype(object).to_numpy().copy()
    rows = []
    for r in range(len(units)):
        known_hh = units["households"].iat[r] if "households" in units else np.nan
        known_pop = units["population"].iat[r] if "population" in units else np.nan
        if pd.isna(known_hh) and pd.isna(known_pop):
            continue
        mine = unit_of == r
        free = mine & est
        cov = float(coverage[r])
        row = {
            "level": level,
            "code": units["code"].iat[r] if "code" in units else None,
            "name": units["name"].iat[r] if "name" in units else None,
            "coverage": round(cov, 3),
            "imported": float(hh[mine & ~est].sum()),
            "estimated_before": float(hh[free].sum()),
        }
        use_hh = not pd.isna(known_hh)
        known = float(known_hh if use_hh else known_pop)
        row["known"] = f"{known:g} {'households' if use_hh else 'people'}"
        if cov < MIN_COVERAGE:
            row.update(factor=np.nan, target=np.nan, estimated_after=row["estimated_before"])
            row["finding"] = f"only {cov:.0%} of its area has building data: not calibrated"
            rows.append(row)
            continue
        prorate = cov if cov < WHOLE_COVERAGE else 1.0
        findings = []
        if prorate < 1.0:
            findings.append(f"partly covered ({cov:.0%} of its area): total prorated by area")
        if use_hh:
            target = round(known_hh * prorate)
            base = hh[free].sum()
            left = target - row["imported"]
        else:  # only people known: scale households by the same factor as people
            target = round(known_pop * prorate)
            base = pop[free].sum()
            left = target - pop[mine & ~est].sum()
        row["target"] = target
        if base <= 0 or left < 0:
            why = (
                "no estimated building to scale"
                if base <= 0
                else "imported counts alone exceed the known total"
            )
            row.update(factor=np.nan, estimated_after=row["estimated_before"], finding=why)
            rows.append(row)
            continue
        factor = left / base
        lo, hi = PLAUSIBLE
        if not lo <= factor <= hi:
            findings.append(
                f"factor {factor:.2f} outside {lo:g}–{hi:g}: buildings missing from the data, "
                "or levels guessed too " + ("low" if factor > hi else "high")
            )
            if not outliers:
                findings.append("not applied (--calibrate-outliers applies it)")
                row.update(
                    factor=round(factor, 4),
                    estimated_after=row["estimated_before"],
                    finding="; ".join(findings),
                )
                rows.append(row)
                continue
        if use_hh:
            hh[free] = _scale_to(hh[free], round(float(left)))
            if not pd.isna(known_pop):
                target_pop = round(known_pop * prorate)
                pop_left = target_pop - pop[mine & ~est].sum()
                pop[free] = _scale_to(hh[free], int(max(pop_left, 0)))
            else:
                pop[free] = np.round(hh[free] * persons)
        else:
            pop[free] = _scale_to(pop[free], round(float(left)))
            hh[free] = np.round(hh[free] * factor)
        label = row["code"] or row["name"] or f"row {r + 1}"
        source[free] = f"estimate × {factor:.3f} (calibrated to {level} {label})"
        row.update(
            factor=round(factor, 4),
            estimated_after=float(hh[free].sum()),
            finding="; ".join(findings),
        )
        rows.append(row)
    out["households"] = hh.astype(np.int64)
    out["population"] = pop.astype(np.int64)
    out["household_source"] = source
    return out, pd.DataFrame(rows, columns=COLUMNS)
