"""``wangge city``: a whole city, street by street, on Dask distributed (wangge/city.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import StoreOpt, app, err, fail, out, store_target
from wangge.cli.options import (
    BoundaryCoordsOpt,
    BoundaryCrsOpt,
    CommunitiesOpt,
    EncodingOpt,
    StreetsOpt,
)
from wangge.cli.report import plan_verdict
from wangge.errors import WanggeError


@app.command()
def city(
    source: Annotated[
        Path,
        typer.Argument(
            help="The city: a units.gpkg from `wangge ingest --streets`, or an OSM file "
            "with --streets/--communities"
        ),
    ],
    plan: Annotated[
        str, typer.Option("--plan", help="The city plan's id; a rerun with it resumes")
    ] = "city",
    store: StoreOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local worker processes, one thread each (default: one per core); "
            "0 runs every street in this process"
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="A running Dask scheduler, tcp://HOST:PORT, instead of local workers"),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the per-street cuts go (default city-runs/PLAN); with --scheduler, "
            "a path every worker can read"
        ),
    ] = None,
    streets: StreetsOpt = None,
    communities: CommunitiesOpt = None,
    boundary_coords: BoundaryCoordsOpt = "wgs84",
    boundary_crs: BoundaryCrsOpt = None,
    encoding: EncodingOpt = "utf-8",
    config: Annotated[Path | None, typer.Option(help="TOML overriding limits.toml")] = None,
    preset: Annotated[
        str | None, typer.Option(help="A city's rule set from limits.toml: tongxiang, zhoushan")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: same seed, same plan")] = None,
    district_code: Annotated[
        str | None, typer.Option(help="6-digit district code; else from the given codes")
    ] = None,
    author: Annotated[str, typer.Option(help="Who runs it (for the audit log)")] = "",
) -> None:
    """Delineate a whole city: each given street is one task on Dask distributed; every
    street is written to the store, and the city becomes the plan's next version. Streets
    already done on the same inputs are skipped, so rerunning resumes a stopped run."""
    from wangge.city import run_city

    target = store_target(store)
    start = time.perf_counter()
    try:
        result = run_city(
            source,
            target,
            plan,
            streets=streets,
            communities=communities,
            boundary_coords=boundary_coords,
            boundary_crs=boundary_crs,
            encoding=encoding,
            run_dir=run_dir,
            workers=workers,
            scheduler=scheduler,
            config=config,
            seed=seed,
            preset=preset,
            district_code=district_code,
            author=author,
            progress=sys.stderr.isatty(),
        )
    except WanggeError as exc:
        fail(exc)
    _print_city(result, target, time.perf_counter() - start)
    if result.version is None:
        raise typer.Exit(1)
    errors = sum(int(s.figures.get("errors") or 0) for s in result.streets if s.state == "done")
    plan_verdict(errors, f"the city plan {plan} (version {result.version})")


def _print_city(result, target: str, seconds: float) -> None:
    rows = result.streets
    done = [s for s in rows if s.state == "done"]
    hh = sum(int(s.figures.get("households") or 0) for s in done)
    grids = sum(int(s.figures.get("grids") or 0) for s in done)
    flagged = sum(int(s.figures.get("flagged") or 0) for s in done)
    errors = sum(int(s.figures.get("errors") or 0) for s in done)
    peak = max((s.figures.get("peak_rss_mb") or 0 for s in rows), default=0)
    table = Table(title=f"city {result.run_id}", show_header=False)
    table.add_row(
        "streets",
        f"{len(rows)}: {len(result.ran)} run now, {len(result.skipped)} "
        f"already done on the same inputs, {len(result.failed)} not done",
    )
    table.add_row("households", f"{hh:,}")
    table.add_row("grids", f"{grids:,} ({flagged} flagged)")
    table.add_row("error-level violations", str(errors))
    table.add_row("peak memory of a worker", f"{peak:,.0f} MB")
    table.add_row(
        "time",
        f"{seconds:.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()) + ")",
    )
    out.print(table)
    for note in result.notes:
        err.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    for s in result.failed:
        err.print(
            f"[bold red]street {s.street} {s.state}:[/] {escape(s.error or 'not run')}",
            highlight=False,
            soft_wrap=True,
        )
    if result.version is None:
        err.print(
            "[bold red]the city plan was not saved:[/] the streets above are not done. Fix "
            "their input and run the same command again: the streets already done are kept.",
            soft_wrap=True,
        )
        return
    out.print(
        f"saved plan [bold]{result.run_id}[/] version {result.version.version} into "
        f"{escape(target)}; serve it with `wangge serve` (tiles, lookups, editor)",
        soft_wrap=True,
    )


@app.command(name="city-coverage")
def city_coverage(
    plan: Annotated[str, typer.Argument(help="The city plan's id in the store")],
    units: Annotated[
        Path,
        typer.Option(
            help="The city's units.gpkg (`wangge ingest --streets`): its walking network "
            "and OSM facilities"
        ),
    ],
    facilities: Annotated[
        list[Path] | None,
        typer.Option("--facilities", help="Facility files (CSV/XLSX/GeoJSON), repeatable"),
    ] = None,
    store: StoreOpt = None,
    workers: Annotated[int | None, typer.Option(help="Local workers; 0: this process")] = None,
    scheduler: Annotated[str | None, typer.Option(help="tcp://HOST:PORT of a scheduler")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where the per-street cuts go")] = None,
    rules: Annotated[Path | None, typer.Option(help="TOML overriding rules.toml")] = None,
    gcj02: Annotated[bool, typer.Option(help="Facility coordinates are GCJ-02")] = False,
    encoding: EncodingOpt = "utf-8",
    author: Annotated[str, typer.Option(help="Who runs it (for the audit log)")] = "",
) -> None:
    """Walking coverage of a city plan, street by street on Dask with a halo of the longest
    reach, saved as the plan's next version (facilities, access, grid_coverage)."""
    from wangge.city_overlay import city_coverage as run

    target = store_target(store)
    try:
        result = run(
            target,
            plan,
            units,
            facilities=facilities,
            rules_path=rules,
            encoding=encoding,
            gcj02=gcj02,
            run_dir=run_dir,
            workers=workers,
            scheduler=scheduler,
            save=True,
            author=author,
            progress=sys.stderr.isatty(),
        )
    except WanggeError as exc:
        fail(exc)
    table = Table(title=f"coverage of city {plan}", show_header=False)
    for key, value in result.summary.items():
        table.add_row(str(key), escape(str(value)))
    out.print(table)
    out.print(
        f"saved plan [bold]{plan}[/] version {result.version.version} into {escape(target)}",
        soft_wrap=True,
    )
