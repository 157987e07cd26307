"""Issue 12's "Done when" on every test city, with and without given boundaries.

The two real files (the bundled Nanjing demo and ../shared/data/beijing-cau.osm) are
delineated as they are, as JOSM saves them, gzip-compressed, and clipped into far-apart
clusters; with given communities (plain, with household totals, with a gap, an overlap
and a sliver, as a GBK zipped shapefile with no .cpg, shifted to GCJ-02), with given
streets only, and with a GCJ-02 building file carrying only ``Floor`` and ``height``. Each
case is delineated once (some through the ``wangge`` command, the rest through the
Python API) and every property is asserted on it: no traceback, no grid across a given
community, equal household sums at every level, no unflagged empty unit, unflagged
grids within the band, no error-level violation, calibrated totals met, and plain codes
and notes. A hypothesis test on seeded synthetic districts cut into given communities
checks that no grid crosses one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import hypothesis
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from cities_bounds import (
    beijing_communities,
    beijing_streets,
    demo_communities,
    demo_streets,
    write_layer,
)
from cities_buildings import demo_buildings_gcj02
from cities_osm import (
    BEIJING_OSM,
    DEMO_OSM,
    clustered_variant,
    default_windows,
    gz_variant,
    josm_variant,
    real_file,
)
from cities_synthetic import synthetic_district
from clitools import run
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from wangge.data.plan import read_plan
from wangge.delineate import delineate, delineate_units
from wangge.geo.limits import Limits, load_limits
from wangge.geo.validate import validate

OSM = {"nanjing": DEMO_OSM, "beijing": real_file(BEIJING_OSM)}
#: Known household totals (户数) of the given communities, in the builders' row order.
KNOWN_HOUSEHOLDS = {
    "nanjing": [2300, 2600, 2900, 2000, 1500, 2800, 2700, 2450],
    "beijing": [1800, 2500, 1300, 950, 1100, 900],
}
#: Boundary defects written into the "defects" community files (cities_bounds.add_defects).
DEFECTS = {"gap_m": 40, "overlap_m": 30, "sliver_m": 0.6}
LEVELS = ("streets", "communities", "grids", "microgrids")
PARENT = {"microgrids": "grids", "grids": "communities", "communities": "streets"}
#: Flags a unit may carry beyond the band without being made for its detachment.
SPECIAL = ("dedicated", "oversize", "vertical")


# ---------------------------------------------------------------------------------------
# the test cities


class Files:
    """The test cities' input files, written on first use into one session directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[tuple, Path] = {}

    def _once(self, key: tuple, make) -> Path:
        if key not in self._made:
            self._made[key] = make(self.root / "-".join(map(str, key)))
        return self._made[key]

    def osm(self, city: str, variant: str) -> Path:
        src = OSM[city]
        if variant == "osm":
            return src
        if variant == "josm":
            return self._once((city, "josm.osm"), lambda p: (josm_variant(src, p, seed=12), p)[1])
        if variant == "gz":
            return self._once((city, "city.osm.gz"), lambda p: gz_variant(src, p))
        if variant == "clustered":
            return self._once(
                (city, "clustered.osm"), lambda p: clustered_variant(src, p, default_windows(src))
            )
        raise ValueError(variant)

    def communities(self, city: str, kind: str) -> Path:
        src = OSM[city]
        write = {
            "plain": ("c.geojson", {}),
            "households": ("c-hh.geojson", {}),
            "defects": ("c-defects.geojson", {"defects": DEFECTS}),
            "gbk": ("c-gbk.zip", {"encoding": "gbk", "cpg": False}),
            "gcj02": ("c-gcj02.geojson", {"coords": "gcj02"}),
        }
        name, options = write[kind]

        def make(path: Path) -> Path:
            if city == "nanjing":
                hh = KNOWN_HOUSEHOLDS[city] if kind == "households" else None
                return demo_communities(src, path, households=hh, **options)
            if kind != "households":
                return beijing_communities(src, path, **options)
            plain = gpd.read_file(self.communities(city, "plain"))
            return write_layer(plain.assign(户数=KNOWN_HOUSEHOLDS[city]), path)

        return self._once((city, name), make)

    def streets(self, city: str) -> Path:
        build = demo_streets if city == "nanjing" else beijing_streets
        return self._once((city, "s.geojson"), lambda p: build(OSM[city], p))

    def buildings(self, city: str) -> Path:
        return self._once(
            (city, "buildings-gcj02.geojson"), lambda p: demo_buildings_gcj02(OSM[city], p)
        )


@dataclass(frozen=True)
class Case:
    """One delineation of a test city."""

    city: str
    source: str = "osm"  # osm, josm, gz, clustered, or none (a building file alone)
    communities: str | None = None  # plain, households, defects, gbk, gcj02
    streets: bool = False
    buildings: bool = False  # the city's buildings as a GCJ-02 file with Floor and height
    cli: bool = False
    district_code: str | None = None
    preset: str | None = None

    @property
    def id(self) -> str:
        parts = [self.city, self.source]
        if self.communities:
            parts.append(f"communities-{self.communities}")
        if self.streets:
            parts.append("streets")
        if self.buildings:
            parts.append("buildings-gcj02")
        if self.district_code:
            parts.append(self.district_code)
        if self.preset:
            parts.append(self.preset)
        if self.cli:
            parts.append("cli")
        return "-".join(parts)

    @property
    def code(self) -> str | None:
        """The district code passed: the case's own, else, with no given level to take one
        from, the city's (neither test city's OSM file names a single district)."""
        return self.district_code or (None if self.given else CITY_CODES[self.city])

    @property
    def given(self) -> str | None:
        """The finest given level: ``community``, ``street`` or None."""
        return "community" if self.communities else "street" if self.streets else None


#: The test cities' district codes (GB/T 2260): 玄武区, 海淀区.
CITY_CODES = {"nanjing": "320102", "beijing": "110108"}
CASES = [
    Case("nanjing"),
    Case("nanjing", "josm"),
    Case("nanjing", "gz", cli=True),
    Case("nanjing", "clustered"),
    Case("nanjing", buildings=True),
    Case("nanjing", communities="plain"),
    Case("nanjing", communities="households"),
    Case("nanjing", communities="defects"),
    Case("nanjing", communities="gbk", cli=True),
    Case("nanjing", communities="gcj02"),
    Case("nanjing", streets=True),
    Case("nanjing", "clustered", communities="plain"),
    Case("beijing"),
    Case("beijing", "josm", cli=True, district_code="110108"),
    Case("beijing", "gz"),
    Case("beijing", "clustered", cli=True),
    Case("beijing", communities="plain"),
    Case("beijing", communities="households"),
    Case("beijing", communities="defects"),
    Case("beijing", communities="gbk"),
    Case("beijing", communities="gcj02", cli=True),
    Case("beijing", streets=True),
    Case("beijing", "clustered", communities="plain"),
    Case("beijing", communities="households", preset="zhoushan"),
    Case("beijing", communities="plain", buildings=True),
    Case("beijing", "none", communities="plain", buildings=True),
]
BY_ID = {c.id: c for c in CASES}
PLAIN_NANJING = Case("nanjing").id


@dataclass
class Plan:
    """A delineated case: its metric layers, limits, notes and violations."""

    case: Case
    layers: dict[str, pd.DataFrame]
    limits: Limits
    notes: list[str]
    violations: pd.DataFrame
    seconds: float
    output: str = ""
    returncode: int = 0
    extra: dict = field(default_factory=dict)


def _inputs(case: Case, files: Files) -> tuple[Path | None, dict]:
    source = None if case.source == "none" else files.osm(case.city, case.source)
    options: dict = {}
    if case.communities:
        options["communities"] = files.communities(case.city, case.communities)
        if case.communities == "gcj02":
            options["boundary_coords"] = "gcj02"
    if case.streets:
        options["streets"] = files.streets(case.city)
    if case.buildings:
        options["buildings"] = files.buildings(case.city)
        options["buildings_coords"] = "gcj02"
    return source, options


def _run_api(case: Case, files: Files) -> Plan:
    source, options = _inputs(case, files)
    start = time.perf_counter()
    result = delineate(source, district_code=case.code, preset=case.preset, **options)
    seconds = time.perf_counter() - start
    violations = validate(result.layers, result.limits)
    return Plan(case, result.layers, result.limits, list(result.notes), violations, seconds)


def _run_cli(case: Case, files: Files, out: Path) -> Plan:
    source, options = _inputs(case, files)
    args = ["delineate", *([source] if source else []), "--out", out]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", value]
    if case.code:
        args += ["--district-code", case.code]
    if case.preset:
        args += ["--preset", case.preset]
    start = time.perf_counter()
    res = run(*args)
    seconds = time.perf_counter() - start
    output = res.stdout + res.stderr
    if res.returncode != 0:
        pytest.fail(f"wangge {' '.join(map(str, args))} exited {res.returncode}:\n{output}")
    path = out / "plan.gpkg"
    plan = read_plan(path)
    layers, limits = plan.metric_layers(), plan.limits
    crs = layers["grids"].crs
    have = {name for name, _ in pyogrio.list_layers(path)}
    for name in ("given_streets", "given_communities"):
        if name in have:
            layers[name] = gpd.read_file(path, layer=name, engine="pyogrio").to_crs(crs)
    for name in ("calibration", "findings", "vertical_microgrids"):
        if name in have:
            layers[name] = pyogrio.read_dataframe(path, layer=name)
    layers.setdefault("calibration", pd.DataFrame(columns=["level", "code", "coverage"]))
    notes = [
        line.split("note:", 1)[1].strip() for line in res.stderr.splitlines() if "note:" in line
    ]
    violations = validate(layers, limits)
    return Plan(case, layers, limits, notes, violations, seconds, output, res.returncode)


class Plans:
    """Each case delineated once, on first use; a failure is kept and raised again."""

    def __init__(self, files: Files, root: Path) -> None:
        self.files, self.root = files, root
        self._done: dict[str, Plan | BaseException] = {}

    def get(self, case: Case) -> Plan:
        if case.id not in self._done:
            try:
                if case.cli:
                    self._done[case.id] = _run_cli(case, self.files, self.root / case.id)
                else:
                    self._done[case.id] = _run_api(case, self.files)
            except BaseException as exc:
                self._done[case.id] = exc
        got = self._done[case.id]
        if isinstance(got, BaseException):
            raise got
        return got


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> Plans:
    for city, path in OSM.items():
        assert path.exists(), f"the {city} test city {path} is missing"
    files = Files(tmp_path_factory.mktemp("cities"))
    return Plans(files, tmp_path_factory.mktemp("plans"))


def _cases(keep=lambda c: True):
    chosen = [c for c in CASES if keep(c)]
    return pytest.mark.parametrize("case", chosen, ids=[c.id for c in chosen])


cases = _cases()
given_cases = _cases(lambda c: c.given is not None)
clustered_cases = _cases(lambda c: c.source == "clustered")


# ---------------------------------------------------------------------------------------
# helpers


def _zero(frame: pd.DataFrame) -> pd.Series:
    return frame["households"].fillna(0).abs() <= 0.5


def _flag(frame: pd.DataFrame) -> pd.Series:
    return frame["flag"].fillna("").astype(str)


def _given_layer(plan: Plan) -> tuple[str, gpd.GeoDataFrame]:
    """The finest given level's settled layer, as the plan keeps it, and the plan level."""
    if plan.case.given == "community":
        return "communities", plan.layers["given_communities"]
    return "streets", plan.layers["given_streets"]


def _best_share(units: np.ndarray, zones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each unit, the zone holding most of its area and that share of its area."""
    ui, zi = shapely.STRtree(zones).query(units, predicate="intersects")
    inter = shapely.area(shapely.intersection(units[ui], zones[zi]))
    best = np.full(len(units), -1)
    share = np.zeros(len(units))
    area = np.maximum(shapely.area(units), 1e-9)
    for u, z, a in zip(ui, zi, inter, strict=True):
        if a / area[u] > share[u]:
            share[u], best[u] = a / area[u], z
    return best, share


# ---------------------------------------------------------------------------------------
# the properties, case by case


@cases
def test_runs_without_traceback(plans, case):
    plan = plans.get(case)
    assert "Traceback" not in plan.output
    assert plan.returncode == 0
    for name in LEVELS:
        assert len(plan.layers[name]) > 0, f"no {name}"
    if case.cli:
        assert "plan.gpkg" in plan.output


@given_cases
def test_no_grid_crosses_a_given_unit(plans, case):
    """Each grid's area lies ≥ 99.9 % inside one given community (or street), the one its
    code names; each micro-grid too."""
    plan = plans.get(case)
    level, given = _given_layer(plan)
    zones = given.geometry.to_numpy()
    codes = given["code"].astype(str).to_numpy()
    bad = []
    for name in ("grids", "microgrids"):
        frame = plan.layers[name]
        best, share = _best_share(frame.geometry.to_numpy(), zones)
        width = 12 if level == "communities" else 9
        for code, z, s in zip(frame["code"], best, share, strict=True):
            if s < 0.999 or codes[z] != str(code)[:width]:
                bad.append(f"{name[:-1]} {code}: {s:.4%} in {codes[z] if z >= 0 else None}")
    assert not bad, f"{len(bad)} unit(s) cross a given {level[:-1]}: {bad[:8]}"


@given_cases
def test_given_units_kept_as_given(plans, case):
    """The plan's units of a given level are the given units: same codes, same land."""
    plan = plans.get(case)
    levels = [("streets", plan.layers["given_streets"])]
    if case.given == "community":
        levels.append(("communities", plan.layers["given_communities"]))
    for name, given in levels:
        mine = plan.layers[name].set_index("code").geometry
        theirs = given.set_index(given["code"].astype(str)).geometry
        assert sorted(mine.index.astype(str)) == sorted(theirs.index), name
        off = {}
        for code, geom in theirs.items():
            diff = shapely.symmetric_difference(mine[code], geom).area
            if diff > 1e-3 * geom.area:
                off[code] = f"{diff:.0f} m² of {geom.area:.0f} m²"
        assert not off, f"{name} redrawn: {off}"
    if case.communities == "gbk":
        names = set(plan.layers["communities"]["name"])
        assert all(isinstance(n, str) and n.endswith("社区") for n in names), names


@cases
def test_household_sums_equal_at_every_level(plans, case):
    plan = plans.get(case)
    b = plan.layers["buildings"]
    totals = {"buildings": float(b["households"].sum())}
    totals.update({name: float(plan.layers[name]["households"].sum()) for name in LEVELS})
    assert max(totals.values()) - min(totals.values()) <= 0.5, totals
    wrong = []
    for child, parent in PARENT.items():
        sums = plan.layers[child].groupby("parent_code")["households"].sum()
        have = plan.layers[parent].set_index("code")["households"]
        got = sums.reindex(have.index).fillna(0)
        for code in have.index[(got - have).abs().to_numpy() > 0.5]:
            wrong.append(f"{parent[:-1]} {code}: {have[code]:g} vs its {child} {got[code]:g}")
        orphans = set(sums.index) - set(have.index)
        assert not orphans, f"{child} with no {parent[:-1]}: {sorted(orphans)[:5]}"
    micro = plan.layers["microgrids"].set_index("code")["households"]
    per_micro = b.groupby("microgrid_code")["households"].sum().reindex(micro.index).fillna(0)
    for code in micro.index[(per_micro - micro).abs().to_numpy() > 0.5]:
        wrong.append(f"microgrid {code}: {micro[code]:g} vs its buildings {per_micro[code]:g}")
    lost = b.loc[~b["microgrid_code"].isin(micro.index), "households"].sum()
    assert lost <= 0.5, f"{lost:g} households of buildings lie in no micro-grid"
    assert not wrong, wrong[:10]


@cases
def test_no_unflagged_unit_is_empty(plans, case):
    plan = plans.get(case)
    empty = {
        name: list(frame.loc[_zero(frame) & (_flag(frame) == ""), "code"])
        for name in LEVELS
        if len(frame := plan.layers[name])
    }
    assert not any(empty.values()), empty
    if case.given is None:  # with nothing given, only a dedicated grid may hold no one
        made = [
            f"{name[:-1]} {code} ({flag or 'unflagged'})"
            for name in LEVELS[:3]
            for code, flag, zero in zip(
                plan.layers[name]["code"],
                _flag(plan.layers[name]),
                _zero(plan.layers[name]),
                strict=True,
            )
            if zero and flag != "dedicated"
        ]
        assert not made, made


@cases
def test_unflagged_grids_within_the_band(plans, case):
    plan = plans.get(case)
    band = load_limits(preset=case.preset).grid
    assert (band.lo, band.hi) == (300, 500)
    grids = plan.layers["grids"]
    plain = grids[_flag(grids) == ""]
    out = plain[(plain["households"] < band.lo) | (plain["households"] > band.hi)]
    assert out.empty, out[["code", "households"]].to_dict("records")
    if case == BY_ID[PLAIN_NANJING]:  # wave 1: every basic grid of the demo in the band
        basic = grids[_flag(grids) != "dedicated"]
        assert basic["households"].between(band.lo, band.hi).all(), basic[
            ["code", "households", "flag"]
        ].to_dict("records")


@cases
def test_no_error_level_violation(plans, case):
    v = plans.get(case).violations
    errors = v[v["severity"] == "error"]
    assert errors.empty, errors.to_string()


@cases
def test_calibrated_community_totals_match(plans, case):
    plan = plans.get(case)
    calibration = plan.layers.get("calibration")
    if case.communities != "households":
        assert calibration is None or len(calibration) == 0, "calibrated with no known totals"
        return
    given = gpd.read_file(plans.files.communities(case.city, "households"))
    known = dict(zip(given["代码"].astype(str), given["户数"], strict=True))
    table = calibration.set_index(calibration["code"].astype(str))
    assert set(table.index) == set(known), "every unit with a known total is reported"
    assert table["factor"].notna().any()
    communities = plan.layers["communities"].set_index(plan.layers["communities"]["code"])
    off = {}
    for code, total in known.items():
        coverage = float(table.loc[code, "coverage"])
        got = float(communities.loc[code, "households"])
        if "not applied" in str(table.loc[code, "finding"]):  # outside 0.5–2: reported only
            factor = float(table.loc[code, "factor"])
            assert not 0.5 <= factor <= 2, (code, factor)
            assert got == float(table.loc[code, "estimated_before"])
            continue
        if coverage >= 0.95 and abs(got - total) > 1:
            off[code] = f"plan {got:g}, given {total}, coverage {coverage:.3f}"
        elif coverage < 0.95:  # partly covered: prorated by the stated rule, never over
            assert got <= total + 1, f"{code}: {got:g} > {total} though only partly covered"
    assert not off, off
    assert sum(table["coverage"].astype(float) >= 0.95) >= 2, "too few whole units to test"


@cases
def test_codes_and_district_note(plans, case):
    plan = plans.get(case)
    grids = plan.layers["grids"]["code"].astype(str)
    assert plan.limits.district_code is not None  # named by the case or the given codes
    if case.code:
        assert grids.str.startswith(case.code).all()
        return
    _, given = _given_layer(plan)
    codes = set(given["code"].astype(str))
    width = 12 if case.given == "community" else 9
    assert grids.str[:width].isin(codes).all(), sorted(set(grids.str[:width]) - codes)
    assert (grids.str.len() == 15).all()
    micro = plan.layers["microgrids"]["code"].astype(str)
    assert (micro.str.len() == 18).all() and micro.str[:15].isin(set(grids)).all()


@clustered_cases
def test_clustered_units_are_not_made_for_detachment(plans, case):
    """A clipped extract of far-apart clusters gets the units its households need, no more:
    one street for a district under 20 km², no more communities or grids than the bands
    allow, and no empty unit except where a given boundary makes it so."""
    plan = plans.get(case)
    lim = plan.limits
    streets, communities, grids = (plan.layers[n] for n in LEVELS[:3])
    total = float(plan.layers["buildings"]["households"].sum())
    area_km2 = plan.layers["study_area"].area.sum() / 1e6
    if case.given is None:
        assert area_km2 < lim.street_max_km2
        assert len(streets) == 1, streets[["code", "households", "flag"]].to_dict("records")
        most = max(1, math.floor(total / lim.community.lo))
        least = math.ceil(total / lim.community.hi)
        assert least <= len(communities) <= most, (len(communities), total)
        empty = grids[_zero(grids) & (_flag(grids) != "dedicated")]
        assert empty.empty, empty[["code", "flag"]].to_dict("records")
    else:
        given = plan.layers["given_communities"]
        assert len(communities) == len(given)
        assert len(streets) == len(plan.layers["given_streets"])
        held = communities.set_index("code")["households"]
        # an empty grid is a dedicated one, or lies in a given community holding no one
        empty = grids[_zero(grids) & (_flag(grids) != "dedicated")]
        made = empty[empty["parent_code"].map(held).fillna(0) > 0.5]
        assert made.empty, made[["code", "parent_code", "flag", "note"]].to_dict("records")
    extra = []
    for code, hh in communities.set_index("code")["households"].items():
        mine = grids[grids["parent_code"] == code]
        special = int(_flag(mine).isin(SPECIAL).sum())
        room = max(1, math.ceil(hh / lim.grid.lo)) + special
        if len(mine) > room:
            extra.append(f"{code}: {len(mine)} grids for {hh:g} households")
    assert not extra, extra


def test_gcj02_building_file_matches_the_osm_run(plans):
    """The demo's buildings as a GCJ-02 file with only Floor and height, with the demo OSM
    for roads: households within 5 % of the OSM run, the same buildings, a valid plan."""
    osm = plans.get(BY_ID[PLAIN_NANJING])
    plan = plans.get(Case("nanjing", buildings=True))
    got = float(plan.layers["buildings"]["households"].sum())
    want = float(osm.layers["buildings"]["households"].sum())
    assert abs(got - want) <= 0.05 * want, f"{got:g} households vs {want:g} from OSM"
    assert abs(len(plan.layers["buildings"]) - len(osm.layers["buildings"])) <= 0.01 * len(
        osm.layers["buildings"]
    )
    for level in LEVELS:
        assert float(plan.layers[level]["households"].sum()) == pytest.approx(got, abs=0.5)
    errors = plan.violations[plan.violations["severity"] == "error"]
    assert errors.empty, errors.to_string()


# ---------------------------------------------------------------------------------------
# synthetic districts


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@hypothesis.given(
    households=st.integers(2000, 6000),
    seed=st.integers(0, 10_000),
    cuts=st.lists(
        st.tuples(
            st.floats(0.25, 0.75), st.floats(0.25, 0.75), st.floats(0.0, math.pi, exclude_max=True)
        ),
        min_size=1,
        max_size=2,
    ),
)
def test_synthetic_given_communities_are_never_crossed(households, seed, cuts):
    units, communities = synthetic_district(households, seed, cuts)
    assert 2 <= len(communities) <= 5
    district = str(communities["code"].iloc[0])[:6]  # the given codes name the district
    result = delineate_units(units, "EPSG:4549", load_limits(seed=seed, district_code=district))
    layers = result.layers
    total = float(units["buildings"]["households"].sum())
    for name in LEVELS:
        assert float(layers[name]["households"].sum()) == pytest.approx(total, abs=0.5), name
    for child, parent in PARENT.items():
        sums = layers[child].groupby("parent_code")["households"].sum()
        have = layers[parent].set_index("code")["households"]
        assert np.allclose(sums.reindex(have.index).fillna(0), have, atol=0.5), child
    assert sorted(layers["communities"]["code"]) == sorted(communities["code"])
    zones = communities.geometry.to_numpy()
    codes = communities["code"].to_numpy()
    grids = layers["grids"]
    best, share = _best_share(grids.geometry.to_numpy(), zones)
    crossing = [
        f"{code}: {s:.4%} in {codes[z]}"
        for code, z, s in zip(grids["code"], best, share, strict=True)
        if s < 0.999 or codes[z] != code[:12]
    ]
    assert not crossing, crossing
    plain = grids[_flag(grids) == ""]
    assert plain["households"].between(300, 500).all()
    empty = {
        n: list(f.loc[_zero(f) & (_flag(f) == ""), "code"])
        for n, f in layers.items()
        if n in LEVELS
    }
    assert not any(empty.values()), empty
    errors = validate(layers, result.limits)
    assert not (errors["severity"] == "error").any(), errors.to_string()
