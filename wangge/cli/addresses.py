"""``wangge addresses``: import a standard address table or an OSM file's names into a
store, and look addresses up the way ``GET /lookup/address`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import StoreOpt, app, fail, out, stored
from wangge.errors import WanggeError

addresses = typer.Typer(
    help="Address to grid: the address table a plan's lookup reads, and lookups.",
    no_args_is_help=True,
)
app.add_typer(addresses, name="addresses")
PlanOpt = Annotated[str, typer.Option("--plan-id", help="The plan the addresses belong to")]


def import_addresses(
    path: Path, store: str | None, plan_id: str, source: str | None, encoding: str | None
):
    """Read ``path`` (an OSM file's names, or a standard address CSV) and replace the
    plan's entries of its source; the summary (:class:`wangge.data.addresses.ImportSummary`)."""
    from wangge.data.accounts import audit_entry
    from wangge.data.addresses import read_osm_names, read_standard
    from wangge.data.osm import OSM_SUFFIXES

    is_osm = path.name.lower().endswith(OSM_SUFFIXES)
    if is_osm:
        entries = read_osm_names(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            from wangge.errors import InputError

            raise InputError(f"cannot be read ({exc.strerror})", path) from None
        entries = read_standard(data, str(path), encoding)
    source = source or ("osm" if is_osm else "standard")
    st = stored(store)
    try:
        st.resolve(plan_id)
        entry = audit_entry("cli", "address import", plan_id, None, file=path.name, source=source)
        return st.addresses.replace(plan_id, source, entries, path.name, "cli", entry)
    finally:
        st.close()


@addresses.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A standard address CSV (UTF-8 or GBK) or OSM file")],
    plan_id: PlanOpt = "demo",
    source: Annotated[
        str | None, typer.Option(help="Source name it replaces (default: standard, or osm)")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="The CSV's encoding: utf-8 or gbk (default: detect)")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Replace a plan's addresses of one source with a file, all or nothing: a bad row
    stops the import naming the file and row, and nothing stored is lost."""
    try:
        done = import_addresses(path, store, plan_id, source, encoding)
    except WanggeError as exc:
        fail(exc)
    out.print(
        f"imported {done.rows:,} entries of [bold]{escape(path.name)}[/] as source "
        f"[bold]{escape(done.source)}[/] of plan {escape(plan_id)} ({done.replaced:,} replaced)"
    )


@addresses.command("lookup")
def lookup_(
    queries: Annotated[list[str], typer.Argument(help="Addresses or place names")],
    plan_id: PlanOpt = "demo",
    version: Annotated[int | None, typer.Option(help="Version (default: the latest)")] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Lowest fuzzy score that answers (default: 80)")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Look addresses up: the building matched, the score and its units."""
    from wangge.geocoding import lookup

    try:
        st = stored(store)
        try:
            v = st.resolve(plan_id, version)
            found = lookup(st, v, list(queries), min_score)
        finally:
            st.close()
    except WanggeError as exc:
        fail(exc)
    table = Table(title=f"{plan_id} version {v.version}")
    for col in ("query", "status", "score", "matched", "building", "microgrid", "rest"):
        table.add_column(col)
    for r in found.to_dict("records"):
        building = r["building_id"] and f"{r['building_id']} {r['building_name'] or ''}".strip()
        cells = [r["query"], r["status"], r["score"] and f"{r['score']:.0f}", r["matched"]]
        cells += [building, r["microgrid_code"], r["rest"]]
        table.add_row(*(escape(str(c)) if c is not None else "" for c in cells))
    out.print(table)
