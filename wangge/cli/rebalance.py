"""``wangge rebalance``: bring a stored plan's drifted grids back into their band."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import app, fail, out, stored
from wangge.cli.report import plan_verdict
from wangge.errors import WanggeError


@app.command()
def rebalance(
    plan_id: Annotated[str, typer.Option("--plan-id", help="The stored plan to rebalance")],
    households: Annotated[
        Path | None,
        typer.Argument(
            help="New households: a table (CSV, XLSX) with a unit column (unit, unit_code, "
            "code) and a households column; any household file ingest reads, by building "
            "id or by location (CSV, XLSX, GeoJSON, GPKG, zipped SHP); or a new OSM extract "
            "of the district (.osm, .osm.gz, .osm.bz2, .osm.pbf: unchanged buildings keep "
            "their households, new or changed ones are estimated, gone ones have none). "
            "Without it, the version's own households (as edits left them)"
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="GeoPackage path or postgresql+psycopg:// URL (default: settings)"),
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="The version to start from (default: the latest)")
    ] = None,
    save: Annotated[
        bool,
        typer.Option("--save", help="Save the result as the next version (default: a dry run)"),
    ] = False,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of a CSV file (utf-8, gbk, gb18030)")
    ] = "utf-8",
    households_config: Annotated[
        Path | None,
        typer.Option(help="Household model TOML for a new OSM extract (default: the built-in)"),
    ] = None,
    author: Annotated[str, typer.Option(help="Who rebalances")] = "",
    comment: Annotated[str, typer.Option(help="Why")] = "",
) -> None:
    """Give a plan version its new households and bring every grid that left its band back
    into it with the fewest changes: whole micro-grids move to a neighbour of the same
    community first, then grids merge or divide; every other grid keeps its units and
    code, and a retired code is never given out again. A dry run unless --save."""
    from wangge.editing import Editor
    from wangge.rebalancing import read_households, rebalance_version

    t0 = time.perf_counter()
    try:
        st = stored(store)
        try:
            editor = Editor(st)
            base = version or st.resolve(plan_id).version
            new = None
            if households is not None:
                new = read_households(
                    households, editor.state(plan_id, base), encoding, households_config
                )
                for note, n in new.notes.items():
                    out.print(f"{escape(str(households))}: {escape(note)}: {n}")
            done = rebalance_version(
                editor, plan_id, base, new, author or None, comment, dry_run=not save
            )
        finally:
            st.close()
    except WanggeError as exc:
        fail(exc)
    r = done.repairs
    steps = Table(title=f"Repairs of {plan_id} version {base}")
    steps.add_column("#", justify="right")
    steps.add_column("repair")
    for i, step in enumerate(r.steps, 1):
        steps.add_row(str(i), escape(step))
    out.print(steps)
    for code, why in r.unrepaired.items():
        out.print(f"[yellow]not repaired[/] {code}: {escape(why)}")
    saved = (
        f"saved as version {done.edit.version.version}"
        if done.edit.saved
        else "dry run: nothing saved (--save saves it)"
    )
    out.print(
        f"households {done.households_before:,.0f} → {done.households_after:,.0f}; "
        f"{len(r.out_before)} grids out of band; {len(r.changed)} grids changed "
        f"({len(r.created)} new, {len(r.retired)} retired), {len(r.micro_changed)} more with "
        f"micro-grids divided again; {len(r.moves)} units moved; {saved} "
        f"in {time.perf_counter() - t0:.2f} s"
    )
    errors = sum(1 for v in done.edit.violations if v.get("severity") == "error")
    plan_verdict(errors, f"the rebalanced {plan_id}")
