"""``wangge changes``: what changed between two versions of a stored plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import app, fail, out, stored
from wangge.errors import WanggeError


@app.command()
def changes(
    plan_id: Annotated[str, typer.Option("--plan-id", help="The stored plan")],
    a: Annotated[int, typer.Argument(help="The earlier version", min=1)],
    b: Annotated[
        int | None, typer.Argument(help="The later version (default: the latest)", min=1)
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="GeoPackage path or postgresql+psycopg:// URL (default: settings)"),
    ] = None,
    map_path: Annotated[
        Path | None, typer.Option("--map", help="Write the change map (HTML, opens offline)")
    ] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the change sheet (PDF)")] = None,
    geojson: Annotated[
        Path | None, typer.Option(help="Write the grids of both versions and the moved units")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="Write one row per grid and micro-grid code")
    ] = None,
) -> None:
    """Which grids and micro-grids were created, changed, retired or recounted between
    versions A and B, how many units and households moved; optionally as a map, a
    printable sheet, GeoJSON and CSV."""
    from wangge.changes import as_geojson
    from wangge.changes import changes as read_changes
    from wangge.editing import Editor

    try:
        st = stored(store)
        try:
            later = b or st.resolve(plan_id).version
            report = read_changes(Editor(st), plan_id, a, later)
        finally:
            st.close()
    except WanggeError as exc:
        fail(exc)
    table = Table(title=f"{plan_id}: version {a} → {later}")
    for column in ("level", "code", "status", "households", "units", "name"):
        table.add_column(column, justify="right" if column in ("households", "units") else "left")
    shown = report.codes[report.codes["status"] != "kept"]
    for row in shown.itertuples(index=False):
        table.add_row(
            row.level,
            row.code,
            row.status,
            f"{_num(row.households_a)} → {_num(row.households_b)}",
            f"{row.units_a} → {row.units_b}",
            escape(row.name_b or row.name_a),
        )
    if len(shown):
        out.print(table)
    written = []
    if geojson:
        geojson.write_text(json.dumps(as_geojson(report), ensure_ascii=False), encoding="utf-8")
        written.append(geojson)
    if csv:
        report.codes.to_csv(csv, index=False, encoding="utf-8-sig")
        written.append(csv)
    if map_path:
        from wangge.maps.change_map import write_change_map

        written.append(write_change_map(report, map_path, report.credit))
    if pdf:
        from wangge.maps.change_sheet import write_change_sheet

        written.append(write_change_sheet(report, pdf, report.credit))
    for path in written:
        out.print(f"wrote {path}")
    out.print(report.line())


def _num(value: float) -> str:
    return "–" if value != value else f"{value:,.0f}"
