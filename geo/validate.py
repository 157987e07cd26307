"""Small named checks on a plan's polygons; each returns the violations it finds.

A check takes the plan's layers (metric CRS) and the limits and returns a list of
:class:`Violation`, each naming the offending unit's code. :func:`validate` composes
them; the CLI, the API and the editor reuse them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo.codes import check_code
from wangge.geo.limits import Limits

POLYGON_LAYERS = ("streets", "communities", "grids", "microgrids")
LEVEL_OF = {
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "microgrids": "microgrid",
}
#: The contiguity warning, shared with the live edit check (geo/assignment.py).
PIECES = "in {n} pieces (an island or exclave, 飞地)"
PARENT = {"communities": "streets", "grids": "communities", "microgrids": "grids"}


@dataclass(frozen=True)
class Violation:
    """One broken rule: where, which check, how bad, and why."""

    level: str
    code: str
    check: str
    severity: str  # "error" or "warning"
    reason: str


Layers = dict[str, gpd.GeoDataFrame]
Check = Callable[[Layers, Limits], list[Violation]]


def _tol(area: float) -> float:
    """Area tolerance for cover and overlap: 1 m² or a millionth of the area."""
    return max(1.0, 1e-6 * area)


def codes(layers: Layers, limits: Limits) -> list[Violation]:
    """Codes are well formed, unique, and start with the parent's code."""
    out = []
    for name in POLYGON_LAYERS:
        frame = layers[name]
        level = LEVEL_OF[name]
        for code, parent in zip(frame["code"], frame["parent_code"], strict=True):
            problem = check_code(code, level, parent)
            if problem:
                out.append(Violation(level, str(code), "code", "error", problem))
        for code in frame.loc[frame["code"].duplicated(), "code"]:
            out.append(Violation(level, code, "code", "error", f"code {code} is used twice"))
        if name == "streets":
            # a given street keeps the district its own code names
            given = frame["flag"].eq("given") if "flag" in frame else False
            bad = (frame["parent_code"] != limits.district_code) & ~given
            for code in frame.loc[bad, "code"]:
                out.append(
                    Violation(
                        level,
                        code,
                        "code",
                        "error",
                        f"street is not under district {limits.district_code}",
                    )
                )
    return out


def nesting(layers: Layers, limits: Limits) -> list[Violation]:
    """Each unit lies inside the parent its code names."""
    out = []
    for name, parent_name in PARENT.items():
        child, parent = layers[name], layers[parent_name].set_index("code")
        level = LEVEL_OF[name]
        known = child["parent_code"].isin(parent.index)
        for code, pc in child.loc[~known, ["code", "parent_code"]].itertuples(index=False):
            out.append(
                Violation(
                    level, code, "nesting", "error", f"parent {pc} does not exist in {parent_name}"
                )
            )
        c = child[known]
        pg = parent.geometry.reindex(c["parent_code"]).to_numpy()
        cg = c.geometry.to_numpy()
        # nothing of a child its parent covers lies outside it: the overlay for the rest
        outside = np.zeros(len(c))
        rest = ~shapely.covers(pg, cg)
        outside[rest] = shapely.area(shapely.difference(cg[rest], pg[rest]))
        for code, pc, a in zip(c["code"], c["parent_code"], outside, strict=True):
            if a > _tol(0):
                out.append(
                    Violation(
                        level, code, "nesting", "error", f"{a:.1f} m² lies outside its parent {pc}"
                    )
                )
    return out


def cover(layers: Layers, limits: Limits) -> list[Violation]:
    """Children tile their parent: their union equals it, within tolerance (无缝拼接)."""
    out = []
    pairs = [("streets", None), *((n, p) for n, p in PARENT.items())]
    for name, parent_name in pairs:
        child = layers[name]
        level = LEVEL_OF[name]
        if parent_name is None:
            if "study_area" not in layers:
                continue
            # the streets together tile the study area, whichever districts they name
            child = child.assign(parent_code=limits.district_code)
            targets = {limits.district_code: layers["study_area"].geometry.union_all()}
        else:
            targets = dict(
                zip(layers[parent_name]["code"], layers[parent_name].geometry, strict=True)
            )
        for pc in sorted(set(targets) - set(child["parent_code"])):
            reason = f"{pc} has no {name} at all"
            out.append(Violation(level, str(pc), "cover", "error", reason))
        for pc, group in child.groupby("parent_code"):
            if pc not in targets:
                continue
            union = shapely.union_all(group.geometry.to_numpy())
            gap = shapely.area(shapely.difference(targets[pc], union))
            if gap > _tol(targets[pc].area):
                out.append(
                    Violation(
                        level,
                        str(pc),
                        "cover",
                        "error",
                        f"the {name} under {pc} leave {gap:.1f} m² uncovered",
                    )
                )
    return out


def overlap(layers: Layers, limits: Limits) -> list[Violation]:
    """Units of one level do not overlap."""
    out = []
    for name in POLYGON_LAYERS:
        frame = layers[name]
        geoms = frame.geometry.to_numpy()
        a, b = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
        keep = a < b
        area = shapely.area(shapely.intersection(geoms[a[keep]], geoms[b[keep]]))
        for i, j, x in zip(a[keep], b[keep], area, strict=True):
            if x > _tol(0):
                out.append(
                    Violation(
                        LEVEL_OF[name],
                        frame["code"].iat[i],
                        "overlap",
                        "error",
                        f"overlaps {frame['code'].iat[j]} by {x:.1f} m²",
                    )
                )
    return out


def contiguity(layers: Layers, limits: Limits) -> list[Violation]:
    """Each unit is one piece; an island is reported (the geography may force it)."""
    out = []
    for name in POLYGON_LAYERS:
        frame = layers[name]
        parts = shapely.get_num_geometries(frame.geometry.to_numpy())
        for code, n in zip(frame["code"], parts, strict=True):
            if n > 1:
                out.append(
                    Violation(LEVEL_OF[name], code, "contiguity", "warning", PIECES.format(n=n))
                )
    return out


def size_violations(level: str, table: pd.DataFrame, limits: Limits) -> list[Violation]:
    """The size rule of one level (streets by area, communities by households and people,
    grids and micro-grids by their household band), on a table of its units.

    This is the one statement of the rule: the polygon validator (:func:`limits_check`)
    and the live edit check (:func:`wangge.geo.assignment.check`) both call it.

    Parameters
    ----------
    level
        ``street``, ``community``, ``grid`` or ``microgrid``.
    table
        One row per unit, indexed by code, with ``households``, ``population``,
        ``area_km2``, ``flag``, ``note`` and ``records`` (micro-grid records a polygon
        holds: a vertical micro-grid is one polygon with several).

    Returns
    -------
    list of Violation
        An error for each unit outside its limits; a warning instead for a given unit
        (reported, never redrawn) and for a flagged one (a tower or compound that no cut
        can bring into the band). The reason states the unit's figures as they are now,
        so a note made while solving can never contradict them.
    """
    out = []
    rows = zip(
        table.index,
        table["households"].to_numpy(float),
        table["population"].to_numpy(float),
        table["area_km2"].to_numpy(float),
        table["flag"].fillna("").to_numpy(),
        table["note"].fillna("").to_numpy(),
        table["records"].to_numpy(),
        strict=True,
    )
    for code, hh, pop, km2, flag, note, records in rows:
        broken = []
        if level == "street" and km2 > limits.street_max_km2:
            broken.append(f"{km2:.2f} km² > {limits.street_max_km2:g} km²")
        elif level == "community":
            if hh > limits.community.hi:
                broken.append(f"{hh:g} households > {limits.community.hi:g}")
            if pop > limits.community_max_population:
                broken.append(f"{pop:g} people > {limits.community_max_population:g}")
        elif level in ("grid", "microgrid") and flag != "dedicated":  # 专属网格: no band
            band = getattr(limits, level)
            per = hh / max(int(records), 1)
            if per < band.lo:
                broken.append(f"{per:g} households < {band.lo:g}")
            elif per > band.hi:
                broken.append(f"{per:g} households > {band.hi:g}")
        for reason in broken:
            if flag == "given":
                out.append(
                    Violation(level, str(code), "limits", "warning", f"given {level}: {reason}")
                )
            elif flag:
                why = f"{flag}: {reason}" + (f" ({note})" if note else "")
                out.append(Violation(level, str(code), "limits", "warning", why))
            else:
                out.append(Violation(level, str(code), "limits", "error", reason))
    return out


def size_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A polygon layer as :func:`size_violations` reads it (records counted from
    ``record_codes``; absent columns as their defaults)."""
    n = len(frame)
    records = (
        frame["record_codes"].fillna("").astype(str).str.count(",").to_numpy() + 1
        if "record_codes" in frame
        else np.ones(n, dtype=int)
    )
    blank = pd.Series([""] * n, index=frame.index)
    return pd.DataFrame(
        {
            "households": frame["households"].to_numpy(float),
            "population": frame["population"].to_numpy(float)
            if "population" in frame
            else np.zeros(n),
            "area_km2": frame["area_km2"].to_numpy(float),
            "flag": frame.get("flag", blank).fillna("").to_numpy(),
            "note": frame.get("note", blank).fillna("").to_numpy(),
            "records": records,
        },
        index=pd.Index(frame["code"].astype(str).to_numpy(), name="code"),
    )


def limits_check(layers: Layers, limits: Limits) -> list[Violation]:
    """Households, population and area within each level's limits (:func:`size_violations`)."""
    out = []
    for name in POLYGON_LAYERS:
        out.extend(size_violations(LEVEL_OF[name], size_table(layers[name]), limits))
    return out


def buildings_whole(layers: Layers, limits: Limits) -> list[Violation]:
    """Every building has one micro-grid and lies in it (楼栋 never split)."""
    out = []
    b = layers["buildings"]
    micro = layers["microgrids"].set_index("code").geometry
    micro = micro[~micro.index.duplicated()]  # a code used twice is the code check's error
    missing = b["microgrid_code"].isna() | ~b["microgrid_code"].isin(micro.index)
    for bid in b.loc[missing, "building_id"]:
        out.append(Violation("building", bid, "atomic", "error", "in no micro-grid"))
    ok = b[~missing]
    inside = shapely.area(
        shapely.intersection(ok.geometry.to_numpy(), micro.reindex(ok["microgrid_code"]).to_numpy())
    )
    share = inside / np.maximum(ok.area.to_numpy(), 1e-9)
    for bid, code, s in zip(ok["building_id"], ok["microgrid_code"], share, strict=True):
        if s < 0.99:
            out.append(
                Violation(
                    "building",
                    bid,
                    "atomic",
                    "warning",
                    f"only {s:.0%} inside its micro-grid {code} (the footprint "
                    "overlaps another building or crosses a street)",
                )
            )
    return out


def compounds_whole(layers: Layers, limits: Limits) -> list[Violation]:
    """A compound (小区) small enough for one grid lies in one grid."""
    out = []
    b = layers["buildings"]
    if "compound_id" not in b:
        return out
    has = b[b["compound_id"].notna() & b["microgrid_code"].notna()]
    return split_compounds(
        has["compound_id"].astype(str).to_numpy(),
        has["microgrid_code"].str[:15].to_numpy(),
        has["households"].to_numpy(dtype=float),
        limits,
    )


def split_compounds(
    compounds: np.ndarray, grids: np.ndarray, households: np.ndarray, limits: Limits
) -> list[Violation]:
    """A warning for each compound small enough for one grid that lies in several.

    Parameters
    ----------
    compounds, grids, households
        Per building (or unit): its compound id, its grid code and its households.
    """
    out = []
    frame = pd.DataFrame({"compound": compounds, "grid": grids, "households": households})
    for cid, group in frame.groupby("compound", sort=True):
        found = sorted(group["grid"].unique())
        hh = group["households"].sum()
        if len(found) > 1 and hh <= limits.grid.hi:
            out.append(
                Violation(
                    "compound",
                    str(cid),
                    "compound",
                    "warning",
                    f"{hh:g} households fit one grid but lie in {len(found)}: {', '.join(found)}",
                )
            )
    return out


def household_sums(layers: Layers, limits: Limits) -> list[Violation]:
    """Every household is counted once: each unit's households equal the sum of its
    children's, and each micro-grid's equal the sum of its buildings' (where the plan has
    buildings). A difference is an error naming the unit and both figures."""
    out = []
    for name, parent_name in PARENT.items():
        child, parent = layers[name], layers[parent_name]
        sums = child.groupby("parent_code")["households"].sum()
        have = parent.set_index("code")["households"]
        got = sums.reindex(have.index).fillna(0)
        for code in have.index[(got - have).abs().to_numpy() > 0.5]:
            out.append(
                Violation(
                    LEVEL_OF[parent_name],
                    str(code),
                    "households",
                    "error",
                    f"holds {have[code]:g} households but its {name} hold {got[code]:g}",
                )
            )
    if "buildings" in layers and "households" in layers["buildings"]:
        b = layers["buildings"]
        micro = layers["microgrids"].set_index("code")["households"]
        micro = micro[~micro.index.duplicated()]
        sums = b.groupby("microgrid_code")["households"].sum().reindex(micro.index).fillna(0)
        for code in micro.index[(sums - micro).abs().to_numpy() > 0.5]:
            out.append(
                Violation(
                    "microgrid",
                    str(code),
                    "households",
                    "error",
                    f"holds {micro[code]:g} households but its buildings hold {sums[code]:g}",
                )
            )
        lost = b.loc[~b["microgrid_code"].isin(micro.index), "households"].sum()
        if lost > 0:
            out.append(
                Violation(
                    "plan",
                    "",
                    "households",
                    "error",
                    f"{lost:g} households of buildings are counted in no micro-grid",
                )
            )
    return out


CHECKS: dict[str, Check] = {
    "code": codes,
    "nesting": nesting,
    "cover": cover,
    "overlap": overlap,
    "contiguity": contiguity,
    "limits": limits_check,
    "atomic": buildings_whole,
    "compound": compounds_whole,
    "households": household_sums,
}


#: Layers a check needs beyond the four polygon levels; without them it is skipped.
NEEDS = {"atomic": ("buildings",), "compound": ("buildings",)}
#: Columns every polygon layer must carry, and those of one level only.
REQUIRED = ("code", "parent_code", "households")
REQUIRED_AT = {"communities": ("population",)}


def prepare(layers: Layers) -> tuple[Layers, list[Violation]]:
    """Check that a plan (perhaps uploaded) has what the checks read, and fill defaults.

    Returns the layers (with ``area_km2`` computed and ``flag``/``note`` empty where
    absent) and an error per missing layer or column, naming it.
    """
    out: list[Violation] = []
    ready = dict(layers)
    for name in POLYGON_LAYERS:
        if name not in layers:
            out.append(Violation(LEVEL_OF[name], "", "layers", "error", f"no {name} layer"))
            continue
        frame = layers[name].copy()
        for col in (*REQUIRED, *REQUIRED_AT.get(name, ())):
            if col not in frame:
                out.append(
                    Violation(LEVEL_OF[name], "", "layers", "error", f"{name} has no {col} column")
                )
        if "area_km2" not in frame:
            frame["area_km2"] = frame.geometry.area / 1e6
        for col in ("flag", "note"):
            frame[col] = frame[col].fillna("") if col in frame else ""
        if "code" in frame:
            frame["code"] = frame["code"].astype(str)
        ready[name] = frame
    return ready, out


def validate(layers: Layers, limits: Limits) -> pd.DataFrame:
    """Run every check; one row per violation (``level, code, check, severity, reason``).

    A plan missing a polygon level or a required column gets only those errors; a check
    whose extra layer is missing (``buildings``) is skipped with a warning, and without a
    ``study_area`` the streets are not checked against it.
    """
    layers, found = prepare(layers)
    if not found:
        for name, check in CHECKS.items():
            absent = [n for n in NEEDS.get(name, ()) if n not in layers]
            if absent:
                reason = f"skipped: no {', '.join(absent)} layer"
                found.append(Violation("plan", "", name, "warning", reason))
                continue
            found.extend(check(layers, limits))
    rows = [asdict(v) for v in found]
    return pd.DataFrame(rows, columns=["level", "code", "check", "severity", "reason"])
