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
out = Console()
err = Console(stderr=True)

DEMO_OSM = Path(str(resources.files("wangge.data").joinpath("demo", "nanjing-xinjiekou.osm")))


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
    out.print(f"wrote [bold]{escape(str(target))}[/] in {seconds:.2f} s")
    out.print(f"OSM data {ATTRIBUTION}", style="dim")


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


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="OSM file: .osm, .osm.bz2 or .osm.pbf")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for units.gpkg")],
    boundary: Annotated[
        Path | None, typer.Option(help="Study-area polygon (GeoJSON, GPKG or zipped SHP)")
    ] = None,
    households: Annotated[
        Path | None,
        typer.Option(
            help="Real household counts: CSV/XLSX with building_id or lon/lat, or "
            "GeoJSON/GPKG/zipped SHP"
        ),
    ] = None,
    households_config: Annotated[
        Path | None, typer.Option(help="TOML overriding the household model parameters")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV households file")] = "utf-8",
    gcj02: Annotated[
        bool, typer.Option("--gcj02", help="The households file's lon/lat are GCJ-02")
    ] = False,
) -> None:
    """Read an OSM file into buildings, households, blocks and roads; write DIR/units.gpkg."""
    _run_ingest(
        source,
        out_dir,
        boundary=boundary,
        households=households,
        households_config=households_config,
        encoding=encoding,
        gcj02=gcj02,
    )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory")] = Path("out/demo"),
) -> None:
    """Run the main job on the bundled Nanjing demo (© OpenStreetMap contributors, ODbL)."""
    _run_ingest(DEMO_OSM, out_dir)


def main() -> None:  # pragma: no cover - console entry point
    app()
