"""The ``wangge`` command line: one subcommand per job, each with --help."""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wangge.errors import WanggeError

app = typer.Typer(
    name="wangge",
    help="网格 wangge: grid governance GIS — ingest OSM, delineate grids, overlay risks, "
    "find coverage gaps, serve and export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# a long path stays on one line, whole; into a file or pipe (a log, CI) tables get room
# for their figures instead of a terminal's 80 columns, which cut "6,617–6,617" to "6,6…"
_LOG_WIDTH = 160
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _LOG_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else _LOG_WIDTH)

DEMO_OSM = Path(str(resources.files("wangge.data").joinpath("demo", "nanjing-xinjiekou.osm")))


def _show_version(value: bool) -> None:
    if value:
        from wangge import __version__

        out.print(f"wangge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """网格 wangge: grid governance GIS — ingest OSM, delineate grids, overlay risks, find
    coverage gaps, serve and export."""


def _fail(exc: WanggeError) -> None:
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _print_ingest(result, target: Path, seconds: float) -> None:
    from wangge.data.osm import ATTRIBUTION

    table = Table(title="wangge ingest: summary", show_header=False)
    for key, value in result.summary.items():
        table.add_row(key, escape(f"{value:,}" if isinstance(value, int) else str(value)))
    out.print(table)
    rules = Table(title="How each building's residential use was decided (first rule that applies)")
    rules.add_column("rule")
    rules.add_column("buildings", justify="right")
    rules.add_column("households", justify="right")
    for rule, row in result.rules.iterrows():
        rules.add_row(rule, f"{row['buildings']:,}", f"{row['households']:,}")
    out.print(rules)
    if result.notes:
        notes = Table(title="Repairs and warnings")
        notes.add_column("what")
        notes.add_column("count", justify="right")
        for key, value in sorted(result.notes.items()):
            notes.add_row(key, f"{value:,}")
        out.print(notes)
    _print_given(result.tables)
    out.print(f"wrote [bold]{escape(str(target))}[/] in {seconds:.2f} s")
    out.print(f"OSM data {ATTRIBUTION}", style="dim")


def _print_given(tables: dict) -> None:
    """What was noticed in the user's files, and the calibration to known totals."""
    found = tables.get("findings")
    if found is not None and len(found):
        table = Table(title="Findings in the given files (all kept in the findings table)")
        for col in ("file", "kind", "count", "first"):
            table.add_column(col)
        for (source, kind), group in found.groupby(["source", "kind"], sort=False):
            first = group.iloc[0]
            where = first["code"] or first["name"] or ""
            table.add_row(
                escape(str(source)),
                kind,
                str(len(group)),
                escape(f"{where}: {first['detail']}" if where else str(first["detail"])),
            )
        out.print(table)
    cal = tables.get("calibration")
    if cal is not None and len(cal):
        table = Table(title="Calibration to known totals (estimated buildings scaled)")
        for col in ("unit", "known", "covered", "estimate → calibrated", "factor", "finding"):
            table.add_column(col)
        for row in cal.itertuples():
            table.add_row(
                escape(f"{row.level} {row.code or ''} {row.name or ''}".strip()),
                escape(str(row.known)),
                f"{float(row.coverage):.0%}",
                f"{float(row.estimated_before):,.0f} → {float(row.estimated_after):,.0f}",
                "" if row.factor != row.factor else f"{float(row.factor):.3f}",
                escape(str(row.finding or "")),
            )
        out.print(table)


def _run_ingest(source: Path, out_dir: Path, **kwargs) -> None:
    from wangge.ingest import ingest as run
    from wangge.ingest import write_units

    start = time.perf_counter()
    try:
        result = run(source, progress=sys.stderr.isatty(), **kwargs)
        target = write_units(result, out_dir)
    except WanggeError as exc:
        _fail(exc)
    _print_ingest(result, target, time.perf_counter() - start)


# The inputs of a district, shared by `wangge ingest` and `wangge delineate`.
SourceArg = Annotated[
    Path | None,
    typer.Argument(
        help="OSM file (.osm, .osm.gz, .osm.bz2, .osm.pbf) for roads, land use and facilities "
        "(and buildings unless --buildings); may be left out with --buildings"
    ),
]
BoundaryOpt = Annotated[
    Path | None, typer.Option(help="Study-area polygon (GeoJSON, GPKG or zipped SHP)")
]
StreetsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Given streets (街道): GeoJSON, GPKG, zipped SHP or CSV with WKT; code 代码/编码/"
        "code, name 名称/name; kept exactly as given"
    ),
]
CommunitiesOpt = Annotated[
    Path | None,
    typer.Option(
        help="Given communities (社区), as --streets; 12-digit codes also give the streets; "
        "户数/人口 columns calibrate the household estimate"
    ),
]


def _coords_option(files: str):
    """The ``--…-coords`` option of one kind of user file (GCJ-02 and BD-09 are shifted)."""
    return Annotated[str, typer.Option(help=f"Coordinates of {files}: wgs84, gcj02 or bd09")]


BoundaryCoordsOpt = _coords_option("the street/community files")
BoundaryCrsOpt = Annotated[
    str | None,
    typer.Option(
        help="CRS of street/community files that declare none or a wrong one (a CSV in "
        "metres): EPSG:4490, EPSG:4549…"
    ),
]
BuildingsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Buildings from another source (3D-building layer, commercial map): GeoJSON, "
        "GPKG, zipped SHP, CSV with WKT or lon/lat; floors 层数/Floor, height 高度, use 用途, "
        "户数; replaces the OSM buildings"
    ),
]
BuildingsCoordsOpt = _coords_option("the building file")
BuildingsCrsOpt = Annotated[
    str | None,
    typer.Option(
        "--buildings-crs",
        help="CRS of a building file that declares none or a wrong one (a CSV or Shapefile "
        "in metres): EPSG:4548 (CM 117°E), EPSG:4549 (CM 120°E)…",
    ),
]
HouseholdsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Real household counts: CSV/XLSX with building_id or lon/lat, or "
        "GeoJSON/GPKG/zipped SHP"
    ),
]
HouseholdsConfigOpt = Annotated[
    Path | None, typer.Option(help="TOML overriding the household model parameters")
]
EncodingOpt = Annotated[str, typer.Option(help="Text encoding of CSV inputs (utf-8, gbk)")]
Gcj02Opt = Annotated[bool, typer.Option("--gcj02", help="The households file's lon/lat are GCJ-02")]


@app.command()
def ingest(
    source: SourceArg = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for units.gpkg")] = Path("out"),
    boundary: BoundaryOpt = None,
    streets: StreetsOpt = None,
    communities: CommunitiesOpt = None,
    boundary_coords: BoundaryCoordsOpt = "wgs84",
    boundary_crs: BoundaryCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_coords: BuildingsCoordsOpt = "wgs84",
    buildings_crs: BuildingsCrsOpt = None,
    households: HouseholdsOpt = None,
    households_config: HouseholdsConfigOpt = None,
    encoding: EncodingOpt = "utf-8",
    gcj02: Gcj02Opt = False,
) -> None:
    """Read an OSM file (and/or a building file) into buildings, households, blocks and
    roads, inside the given streets and communities; write DIR/units.gpkg."""
    _run_ingest(
        source,
        out_dir,
        boundary=boundary,
        streets=streets,
        communities=communities,
        boundary_coords=boundary_coords,
        boundary_crs=boundary_crs,
        buildings=buildings,
        buildings_coords=buildings_coords,
        buildings_crs=buildings_crs,
        households=households,
        households_config=households_config,
        encoding=encoding,
        gcj02=gcj02,
    )


def _print_plan(result, violations, target: Path, seconds: float) -> None:
    from wangge.data.osm import ATTRIBUTION

    table = Table(title="wangge delineate: plan")
    cols = (
        "level",
        "units",
        "households min–max",
        "mean |dev| %",
        "mean PP",
        "road share",
        "flagged",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "level" else "right")

    def shown(value: float, fmt: str) -> str:
        return "–" if value != value else format(value, fmt)  # no nan in a summary

    for name in ("streets", "communities", "grids", "microgrids"):
        f = result.layers[name]
        basic = f[f["flag"] != "dedicated"]  # dedicated grids are outside the bands by rule
        dedicated = len(f) - len(basic)
        table.add_row(
            name + (f" (+{dedicated} dedicated)" if dedicated else ""),
            f"{len(basic):,}",
            f"{basic['households'].min():,.0f}–{basic['households'].max():,.0f}"
            if len(basic)
            else "–",
            shown(basic["deviation_pct"].abs().mean(), ".1f"),
            shown(basic["polsby_popper"].mean(), ".2f"),
            shown(basic["road_share"].mean(), ".0%"),
            f"{(basic['flag'] != '').sum():,}",
        )
    n_vertical = len(result.layers["vertical_microgrids"])
    table.add_row("vertical micro-grid records", f"{n_vertical:,}", *[""] * 5)
    out.print(table)
    _print_feasibility(result.feasibility)
    _print_given({k: result.layers.get(k) for k in ("findings", "calibration")})
    _print_violations(violations)
    out.print(
        f"wrote [bold]{escape(str(target))}[/], GeoJSON per level and map.html in {seconds:.2f} s"
    )
    out.print(f"OSM data {ATTRIBUTION}", style="dim")


def _print_feasibility(found) -> None:
    if found is None or found.empty:
        out.print("feasibility: every building and compound fits the limits as it stands")
        return
    table = Table(title="feasibility (checked before solving)")
    for col in ("kind", "finding", "units", "action", "example"):
        table.add_column(col)
    found = found.assign(limit=found["finding"].str.split(" > ").str[-1])
    for (kind, limit), group in found.groupby(["kind", "limit"], sort=False):
        first = group.sort_values("households", ascending=False).iloc[0]
        table.add_row(
            kind,
            escape(f"> {limit}"),
            str(len(group)),
            escape(first["action"]),
            escape(f"{first['unit']} ({first['households']:g})"),
        )
    out.print(table)


def _print_violations(violations) -> None:
    if violations.empty:
        out.print("validation: no violations")
        return
    counts = violations.groupby(["check", "severity"]).size()
    table = Table(title="validation")
    for col in ("check", "severity", "count", "first"):
        table.add_column(col)
    for (check, severity), n in counts.items():
        first = violations[(violations["check"] == check) & (violations["severity"] == severity)]
        row = first.iloc[0]
        table.add_row(check, severity, str(n), escape(f"{row['code']}: {row['reason']}"))
    out.print(table)


def _run_delineate(source: Path, out_dir: Path, **kwargs) -> None:
    from wangge.delineate import delineate as run
    from wangge.delineate import write_plan
    from wangge.geo.validate import validate as check

    start = time.perf_counter()
    try:
        result = run(source, progress=sys.stderr.isatty(), **kwargs)
        violations = check(result.layers, result.limits)
        target = write_plan(result, violations, out_dir)
    except WanggeError as exc:
        _fail(exc)
    _print_plan(result, violations, target, time.perf_counter() - start)
    for note in result.notes:
        err.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)


@app.command()
def delineate(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="OSM file, or a units.gpkg from wangge ingest; may be left out with --buildings"
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for plan.gpkg")] = Path("out"),
    config: Annotated[Path | None, typer.Option(help="TOML overriding limits.toml")] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="A city's rule set from limits.toml: tongxiang, zhoushan"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: same seed, same plan")] = None,
    district_code: Annotated[
        str | None,
        typer.Option(help="6-digit district code (GB/T 2260); else from the given codes"),
    ] = None,
    sites: Annotated[
        Path | None,
        typer.Option(
            help="Dedicated sites (专属网格: campuses, hospitals, enterprises...): polygons, "
            "besides those found in OSM land use"
        ),
    ] = None,
    sites_coords: _coords_option("the sites file") = "wgs84",
    boundary: BoundaryOpt = None,
    streets: StreetsOpt = None,
    communities: CommunitiesOpt = None,
    boundary_coords: BoundaryCoordsOpt = "wgs84",
    boundary_crs: BoundaryCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_coords: BuildingsCoordsOpt = "wgs84",
    buildings_crs: BuildingsCrsOpt = None,
    households: HouseholdsOpt = None,
    households_config: HouseholdsConfigOpt = None,
    encoding: EncodingOpt = "utf-8",
    gcj02: Gcj02Opt = False,
) -> None:
    """Draw streets, communities, grids and micro-grids (inside the given streets and
    communities, where given); write DIR/plan.gpkg and map.html."""
    inputs = {
        "boundary": boundary,
        "streets": streets,
        "communities": communities,
        "boundary_coords": boundary_coords,
        "boundary_crs": boundary_crs,
        "buildings": buildings,
        "buildings_coords": buildings_coords,
        "buildings_crs": buildings_crs,
        "households": households,
        "households_config": households_config,
        "encoding": encoding,
        "gcj02": gcj02,
    }
    defaults = {"boundary_coords": "wgs84", "buildings_coords": "wgs84", "encoding": "utf-8"}
    chosen = {k: v for k, v in inputs.items() if v and v != defaults.get(k)}
    if source is not None and source.suffix.lower() == ".gpkg" and chosen:
        _fail(
            WanggeError(
                f"{', '.join('--' + k.replace('_', '-') for k in chosen)} apply when "
                "delineating from an OSM or building file; a units.gpkg already holds them",
                source,
            )
        )
    _run_delineate(
        source,
        out_dir,
        config=config,
        preset=preset,
        seed=seed,
        district_code=district_code,
        sites=sites,
        sites_coords=sites_coords,
        **{k: v for k, v in inputs.items() if k in chosen},
    )


@app.command()
def validate(
    plan: Annotated[Path, typer.Argument(help="A plan.gpkg written by wangge delineate")],
) -> None:
    """Check a plan's polygons; exit 1 if any violation is an error."""
    from wangge.delineate import read_plan
    from wangge.geo.validate import validate as check

    try:
        layers, limits = read_plan(plan)
    except WanggeError as exc:
        _fail(exc)
    violations = check(layers, limits)
    _print_violations(violations)
    if (violations["severity"] == "error").any():
        raise typer.Exit(code=1)


def _print_job(title: str, result, seconds: float) -> None:
    from wangge.data.osm import ATTRIBUTION

    table = Table(title=title, show_header=False)
    for key, value in result.summary.items():
        table.add_row(escape(key), escape(f"{value:,}" if isinstance(value, int) else str(value)))
    out.print(table)
    written = ", ".join(str(p) for p in result.maps)
    out.print(
        f"added {', '.join(result.layers)} to plan.gpkg; maps: {escape(written)} in {seconds:.2f} s"
    )
    if result.summary.get("sample data") == "yes":
        out.print(
            "[bold yellow]样例数据 SAMPLE DATA[/]: the risk register and extra facilities "
            "are generated samples (data/samples.py), not real records"
        )
    out.print(f"OSM data {ATTRIBUTION}", style="dim")


def _run_job(title: str, job, *args, **kwargs) -> None:
    """Run the overlay or coverage job, print its summary, exit 2 on a WanggeError."""
    start = time.perf_counter()
    try:
        result = job(*args, progress=sys.stderr.isatty(), **kwargs)
    except WanggeError as exc:
        _fail(exc)
    _print_job(title, result, time.perf_counter() - start)


def _run_overlay(plan: Path, risks: Path, **kwargs) -> None:
    from wangge.overlay import overlay as job

    _run_job("wangge overlay: risk", job, plan, risks, **kwargs)


def _run_coverage(plan: Path, **kwargs) -> None:
    from wangge.overlay import coverage as job

    _run_job("wangge coverage: walking distance to facilities", job, plan, **kwargs)


_PLAN_ARG = typer.Argument(help="A plan directory or plan.gpkg (wangge delineate)")
_UNITS_OPT = typer.Option(help="units.gpkg or the OSM file (default: units.gpkg beside the plan)")
_RULES_OPT = typer.Option(help="TOML overriding geo/rules.toml")


@app.command()
def overlay(
    plan: Annotated[Path, _PLAN_ARG],
    risks: Annotated[Path, typer.Option(help="Risk register: CSV, XLSX or GeoJSON points")],
    zones: Annotated[Path | None, typer.Option(help="Risk zones: GeoJSON/GPKG polygons")] = None,
    facilities: Annotated[
        list[Path] | None, typer.Option(help="Facility file (type, capacity, area); repeatable")
    ] = None,
    vulnerable: Annotated[
        Path | None, typer.Option(help="Vulnerable-person counts per building or point")
    ] = None,
    rules: Annotated[Path | None, _RULES_OPT] = None,
    units: Annotated[Path | None, _UNITS_OPT] = None,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of CSV files (utf-8, gbk)")
    ] = "utf-8",
    gcj02: Annotated[
        bool, typer.Option(help="Table coordinates are GCJ-02 (AMap, Tencent)")
    ] = False,
) -> None:
    """Score a risk register (L×S or LEC, four colours) onto a plan: per-grid risk,
    exposure and Gi* hot spots; writes layers into plan.gpkg and risk maps beside it."""
    _run_overlay(
        plan,
        risks,
        zones=zones,
        facilities=facilities,
        vulnerable=vulnerable,
        rules_path=rules,
        units=units,
        encoding=encoding,
        gcj02=gcj02,
    )


@app.command()
def coverage(
    plan: Annotated[Path, _PLAN_ARG],
    type: Annotated[
        list[str] | None, typer.Option("--type", help="Facility type to analyse; repeatable")
    ] = None,
    facilities: Annotated[
        list[Path] | None, typer.Option(help="Extra facility file; repeatable")
    ] = None,
    candidates: Annotated[
        Path | None, typer.Option(help="Candidate sites (default: block centroids)")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Sites to suggest per type")] = 5,
    rules: Annotated[Path | None, _RULES_OPT] = None,
    units: Annotated[Path | None, _UNITS_OPT] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV files")] = "utf-8",
    gcj02: Annotated[bool, typer.Option(help="Table coordinates are GCJ-02")] = False,
) -> None:
    """Walking distance from every building to each facility type: coverage per grid,
    shelter load, the gaps layer and the k best new sites; writes gaps_map.html."""
    _run_coverage(
        plan,
        types=type,
        facilities=facilities,
        candidates=candidates,
        k=k,
        rules_path=rules,
        units=units,
        encoding=encoding,
        gcj02=gcj02,
    )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory")] = Path("out/demo"),
    store: Annotated[
        str | None, typer.Option(help="Store to import the plan into (default: out/wangge.gpkg)")
    ] = None,
) -> None:
    """Run the main job on the bundled Nanjing demo (© OpenStreetMap contributors, ODbL):
    ingest, delineate, overlay a SAMPLE risk register and sample facilities, measure
    coverage, and import the plan into the store that `wangge serve` serves."""
    from wangge.data.samples import write_samples

    _run_ingest(DEMO_OSM, out_dir)
    _run_delineate(out_dir / "units.gpkg", out_dir, district_code="320102")  # 玄武区
    samples = write_samples(out_dir, seed=0)
    names = ", ".join(p.name for p in samples.values())
    out.print(f"wrote sample data (样例数据, seed 0): {escape(names)}")
    _run_overlay(
        out_dir,
        samples["risks"],
        zones=samples["zones"],
        facilities=[samples["facilities"]],
        vulnerable=samples["vulnerable"],
    )
    _run_coverage(out_dir)
    _run_import(out_dir / "plan.gpkg", store, "demo", "wangge demo", "bundled demo plan")
    _demo_admin(store)


def _demo_admin(store: str | None) -> None:
    """On a store with no active account, make the demo's admin and print its key once, so
    that the editor can be signed into with no further step."""
    from wangge.data.accounts import make_account, new_key

    st = _book(store)
    try:
        if any(a.active() for a in st.book.all()):
            return
        key = new_key()
        st.book.add(make_account("demo-admin", "admin"), key)
    finally:
        st.close()
    out.print(
        "made the account [bold]demo-admin[/] (admin) on this fresh store; its API key, "
        "shown once (sign in to /editor with it, or send `Authorization: Bearer KEY`):"
    )
    out.print(key, highlight=False, soft_wrap=True)


def _settings(store: str | None):
    """Settings from the environment, with ``--store`` on top when given."""
    from wangge.api.settings import Settings

    return Settings(store=store) if store else Settings()


def _store_target(store: str | None) -> str:
    return _settings(store).store_target()


def _stored(store: str | None):
    """Open a store that must already hold plans: a GeoPackage path that does not exist is
    an error naming it, rather than a new empty store left behind by a read."""
    from wangge.data.store import open_store
    from wangge.errors import InputError

    target = _store_target(store)
    if not target.startswith(("postgresql", "postgres://")) and not Path(target).exists():
        raise InputError(
            "no store here: `wangge demo` makes one, `wangge import PLAN` fills one, and "
            "--store (or WANGGE_STORE) names another",
            target,
        )
    return open_store(target)


def _run_import(path: Path, store: str | None, plan_id: str, author: str, comment: str) -> None:
    from wangge.data.gpkg_store import read_plan_file
    from wangge.data.store import open_store
    from wangge.importing import PlanInvalid, save_plan

    target = _store_target(store)
    if path.is_dir():
        path = path / "plan.gpkg"
    try:
        layers, meta = read_plan_file(path)
        st = open_store(target)
        try:
            version, violations = save_plan(
                st, layers, meta, str(path), plan_id, None, author, comment
            )
        finally:
            st.close()
    except PlanInvalid as exc:
        for row in exc.violations[:20]:
            err.print(escape(f"  {row['level']} {row['code']}: {row['check']}: {row['reason']}"))
        _fail(exc)
    except WanggeError as exc:
        _fail(exc)
    out.print(
        f"imported [bold]{escape(str(path))}[/] as plan [bold]{plan_id}[/] version "
        f"{version.version} into {escape(target)} ({len(violations)} warnings)"
    )


@app.command(name="import")
def import_(
    plan: Annotated[Path, typer.Argument(help="A plan directory or plan.gpkg (wangge delineate)")],
    store: Annotated[
        str | None,
        typer.Option(help="GeoPackage path or postgresql+psycopg:// URL (default: settings)"),
    ] = None,
    plan_id: Annotated[str, typer.Option("--plan-id", help="Plan id to save under")] = "demo",
    author: Annotated[str, typer.Option(help="Who imports it")] = "",
    comment: Annotated[str, typer.Option(help="Why")] = "",
) -> None:
    """Validate a plan and save it into a store as the plan's next version."""
    _run_import(plan, store, plan_id, author, comment)


@app.command()
def serve(
    store: Annotated[
        str | None,
        typer.Option(help="GeoPackage path or postgresql+psycopg:// URL (env WANGGE_STORE)"),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    public_reads: Annotated[
        bool,
        typer.Option(
            "--public-reads", help="Let callers without a key read (env WANGGE_PUBLIC_READS)"
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (docs at /docs) from a store. Every route but /healthz and the
    editor's page needs an API key (`wangge users add`), unless reads are made public."""
    import uvicorn

    from wangge.api.app import create_app
    from wangge.data.store import open_store

    settings = _settings(store)
    try:
        opened = open_store(
            settings.store_target(), settings.statement_timeout_ms, settings.db_pool
        )
    except WanggeError as exc:
        _fail(exc)
    if public_reads:
        settings = settings.model_copy(update={"public_reads": True})
    out.print(f"serving {escape(settings.store_target())} on http://{host}:{port} (docs: /docs)")
    if not any(a.active() for a in opened.book.all()):
        err.print(
            "[bold]no account yet[/]: every route but /healthz and /editor needs an API key. "
            "Make the first admin with\n  wangge users add NAME --role admin"
            + (f" --store {escape(store)}" if store else "")
            + "\nand sign in to /editor with the key it prints."
        )
    out.print(
        "reads are "
        + ("open to anyone (WANGGE_PUBLIC_READS)" if settings.public_reads else "signed in only")
    )
    try:
        uvicorn.run(create_app(settings, opened), host=host, port=port, log_level="info")
    finally:
        opened.close()


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help="Layer, e.g. grids")],
    out_file: Annotated[Path, typer.Option("--out", help="File to write")],
    format: Annotated[str, typer.Option(help="geojson, gpkg or shp (zipped)")] = "geojson",
    crs: Annotated[str, typer.Option(help="EPSG:4326, EPSG:4490, EPSG:4547…, GCJ02")] = "EPSG:4326",
    encoding: Annotated[str, typer.Option(help="UTF-8 or GBK (Shapefile)")] = "UTF-8",
    store: Annotated[str | None, typer.Option(help="Store (default: settings)")] = None,
    plan_id: Annotated[str | None, typer.Option("--plan-id", help="Plan (default newest)")] = None,
    version: Annotated[int | None, typer.Option(help="Version (default latest)")] = None,
) -> None:
    """Write one layer of a stored plan as GeoJSON, GeoPackage or a zipped Shapefile."""
    from wangge.data.exports import export_layer

    try:
        st = _stored(store)
        try:
            v = st.resolve(plan_id, version)
            frame = st.query(v.plan_id, v.version, layer).frame
            result = export_layer(frame, layer, format, crs, encoding)
        finally:
            st.close()
    except WanggeError as exc:
        _fail(exc)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(result.content)
    out.print(f"wrote {escape(str(out_file))} ({len(result.content):,} bytes, {crs}, {format})")


@app.command()
def adopt(
    grid_file: Annotated[
        Path, typer.Argument(help="Existing grid layer: GeoJSON, GeoPackage, zipped Shapefile")
    ],
    plan_id: Annotated[str, typer.Option("--plan-id", help="The stored plan to adopt it into")],
    store: Annotated[
        str | None,
        typer.Option(help="GeoPackage path or postgresql+psycopg:// URL (default: settings)"),
    ] = None,
    coords: Annotated[str, typer.Option(help="wgs84 (also CGCS2000), gcj02 or bd09")] = "wgs84",
    encoding: Annotated[str, typer.Option(help="Attribute encoding if the file does not say")] = (
        "utf-8"
    ),
    crs: Annotated[str | None, typer.Option(help="CRS of a file that declares none")] = None,
    complete: Annotated[
        bool, typer.Option("--complete", help="Re-solve the grids that break the rules")
    ] = False,
    author: Annotated[str, typer.Option(help="Who adopts it")] = "",
    comment: Annotated[str, typer.Option(help="Why")] = "",
) -> None:
    """Bring a city's existing grid layer onto a plan's buildings as a new version, keeping
    its codes and names; report each grid's households and violations, and with
    --complete re-solve the grids that break the rules and list the grids that changed."""
    import pandas as pd

    from wangge.existing import adopt as run_adopt

    t0 = time.perf_counter()
    try:
        st = _stored(store)
        try:
            done = run_adopt(
                st,
                plan_id,
                grid_file,
                coords=coords,
                encoding=encoding,
                crs=crs,
                who=author or None,
                comment=comment,
                complete=complete,
            )
        finally:
            st.close()
    except WanggeError as exc:
        _fail(exc)
    _print_given({"findings": done.findings.assign(source=str(grid_file))})
    report = done.adoption.report
    table = Table(title=f"Grids of {escape(str(grid_file))} adopted into {plan_id}")
    for col in ("feature", "code", "name", "households", "units", "code kept", "violations"):
        table.add_column(col, justify="right" if col in ("households", "units") else "left")
    for r in report.itertuples():
        kept = "yes" if r.code_kept else escape(str(r.code_note))
        if r.source == "plan":
            kept = escape(str(r.code_note))
        table.add_row(
            "" if pd.isna(r.feature) else str(r.feature),
            escape(str(r.code or "")),
            escape(str(r.name or "")),
            f"{r.households:,.0f}",
            f"{r.units:,}",
            kept,
            escape(r.violations) if r.violations else "",
            style="red" if any(s.startswith("error") for s in r.violations.split("; ")) else None,
        )
    out.print(table)
    s = done.summary()
    out.print(
        f"saved version {s['version']} of {plan_id} (adopted): {s['grids_adopted']} grids, "
        f"{s['codes_kept']} codes kept, {s['renumbered']} renumbered, "
        f"{s['units_outside']} units outside every grid, {s['grids_flagged']} grids breaking "
        f"the rules: {', '.join(done.bad) or 'none'}"
    )
    if done.completed is not None:
        changes = Table(title=f"Grids completion changed (version {s['completed_version']})")
        for col in ("code", "name", "status", "units in", "units out", "households"):
            changes.add_column(col)
        for r in done.changes.itertuples():
            changes.add_row(
                r.code,
                escape(str(r.name)),
                r.status,
                str(r.units_in),
                str(r.units_out),
                f"{r.households_before:,.0f} → {r.households_after:,.0f}",
            )
        out.print(changes)
        out.print(
            f"completion re-solved {len(done.completed.extra['resolved'])} grids, changed "
            f"{s['grids_changed']}; errors {done.completed.extra['errors_before']} → "
            f"{s['errors_after']}"
        )
    out.print(f"done in {time.perf_counter() - t0:.2f} s")


users = typer.Typer(
    help="Accounts: roles (viewer, planner, admin) and the code prefixes a planner may change.",
    no_args_is_help=True,
)
app.add_typer(users, name="users")
StoreOpt = Annotated[
    str | None, typer.Option(help="Store path or database URL (default: WANGGE_ settings)")
]


def _book(store: str | None):
    from wangge.data.store import open_store

    return open_store(_store_target(store))


@users.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Account name (a person or a system)")],
    role: Annotated[str, typer.Option(help="viewer, planner or admin")] = "planner",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="Code prefix the account may change (street or community); repeat"),
    ] = None,
    expires_days: Annotated[
        float | None, typer.Option(help="Days until the key stops working (default: never)")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Create an account and print its API key, once: only its digest is stored."""
    from wangge.data.accounts import make_account, new_key

    try:
        account = make_account(name, role, scope or [], expires_days)
        key = new_key()
        st = _book(store)
        try:
            st.book.add(account, key)
        finally:
            st.close()
    except WanggeError as exc:
        _fail(exc)
    where = ", ".join(account.scopes) or ("everywhere" if role == "admin" else "nowhere")
    out.print(f"account [bold]{escape(name)}[/] ({role}; may change: {escape(where)})")
    out.print("API key (shown once; send it as `Authorization: Bearer KEY`):")
    out.print(key, highlight=False, soft_wrap=True)


@users.command("list")
def users_list(store: StoreOpt = None) -> None:
    """List the accounts with their roles, scopes, expiry and revocation (never keys)."""
    try:
        st = _book(store)
        try:
            accounts = st.book.all()
        finally:
            st.close()
    except WanggeError as exc:
        _fail(exc)
    table = Table(title="accounts")
    for col in ("name", "role", "scopes", "created", "expires", "status"):
        table.add_column(col)
    for a in accounts:
        status = "revoked" if a.revoked_at else ("active" if a.active() else "expired")
        table.add_row(
            escape(a.name),
            a.role,
            ", ".join(a.scopes) or ("all" if a.role == "admin" else ""),
            a.created_at[:19],
            (a.expires_at or "")[:19],
            status,
        )
    out.print(table)


@users.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="Account name")], store: StoreOpt = None
) -> None:
    """Revoke an account's key from now on."""
    try:
        st = _book(store)
        try:
            account = st.book.revoke(name)
        finally:
            st.close()
    except WanggeError as exc:
        _fail(exc)
    out.print(f"revoked {escape(account.name)} at {account.revoked_at[:19]}")


from wangge.cli_city import city, city_coverage  # noqa: E402 -- it uses the options above
from wangge.cli_print import print_maps  # noqa: E402

app.command()(city)
app.command(name="city-coverage")(city_coverage)
app.command(name="print")(print_maps)


def main() -> None:
    """The console entry point: the app, with a last guard so that a bug in wangge ends in
    one plain line (exit 3) instead of a traceback; ``WANGGE_DEBUG=1`` shows the traceback.
    Bad input never reaches this guard: it is a WanggeError naming the file (exit 2)."""
    import os

    try:
        app()
    except Exception as exc:
        if os.environ.get("WANGGE_DEBUG"):
            raise
        args = " ".join(sys.argv[1:])
        err.print(
            f"[bold red]error:[/] wangge stopped on an unexpected {type(exc).__name__} "
            f"({escape(str(exc)[:300])}) while running `wangge {escape(args)}`. This is a bug "
            "in wangge, not a fault of your data: rerun with WANGGE_DEBUG=1 for the details "
            "and report them.",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(3) from None
