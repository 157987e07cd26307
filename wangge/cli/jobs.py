"""``wangge overlay`` and ``coverage``: the risk register and walking distance on a plan."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from wangge.cli._app import app, fail
from wangge.cli.options import PLAN_ARG, RULES_OPT, UNITS_OPT
from wangge.cli.report import print_job
from wangge.errors import WanggeError


def _run_job(title: str, job, *args, **kwargs) -> None:
    """Run the overlay or coverage job, print its summary, exit 2 on a WanggeError."""
    start = time.perf_counter()
    try:
        result = job(*args, progress=sys.stderr.isatty(), **kwargs)
    except WanggeError as exc:
        fail(exc)
    print_job(title, result, time.perf_counter() - start)


def run_overlay(plan: Path, risks: Path, **kwargs) -> None:
    from wangge.overlay import overlay as job

    _run_job("wangge overlay: risk", job, plan, risks, **kwargs)


def run_coverage(plan: Path, **kwargs) -> None:
    from wangge.coverage import coverage as job

    _run_job("wangge coverage: walking distance to facilities", job, plan, **kwargs)


@app.command()
def overlay(
    plan: Annotated[Path, PLAN_ARG],
    risks: Annotated[Path, typer.Option(help="Risk register: CSV, XLSX or GeoJSON points")],
    zones: Annotated[Path | None, typer.Option(help="Risk zones: GeoJSON/GPKG polygons")] = None,
    facilities: Annotated[
        list[Path] | None, typer.Option(help="Facility file (type, capacity, area); repeatable")
    ] = None,
    vulnerable: Annotated[
        Path | None, typer.Option(help="Vulnerable-person counts per building or point")
    ] = None,
    rules: Annotated[Path | None, RULES_OPT] = None,
    units: Annotated[Path | None, UNITS_OPT] = None,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of CSV files (utf-8, gbk)")
    ] = "utf-8",
    gcj02: Annotated[
        bool, typer.Option(help="Table coordinates are GCJ-02 (AMap, Tencent)")
    ] = False,
) -> None:
    """Score a risk register (L×S or LEC, four colours) onto a plan: per-grid risk,
    exposure and Gi* hot spots; writes layers into plan.gpkg and risk maps beside it."""
    run_overlay(
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
    plan: Annotated[Path, PLAN_ARG],
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
    rules: Annotated[Path | None, RULES_OPT] = None,
    units: Annotated[Path | None, UNITS_OPT] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV files")] = "utf-8",
    gcj02: Annotated[bool, typer.Option(help="Table coordinates are GCJ-02")] = False,
) -> None:
    """Walking distance from every building to each facility type: coverage per grid,
    shelter load, the gaps layer and the k best new sites; writes gaps_map.html."""
    run_coverage(
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
