"""``wangge print``: notice-board maps (公示图) of a plan, a PDF and a PNG per community."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import StoreOpt, account_of_key, app, fail, out, stored
from wangge.errors import InputError, WanggeError


@app.command(name="print")
def print_maps(
    plan: Annotated[
        Path | None,
        typer.Argument(
            help="A plan directory or plan.gpkg (wangge delineate, wangge demo); "
            "default: a plan in the store"
        ),
    ] = None,
    store: StoreOpt = None,
    plan_id: Annotated[
        str | None, typer.Option("--plan-id", help="Stored plan (default newest)")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Version (default latest)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the files")] = Path(
        "out/print"
    ),
    community: Annotated[
        str | None, typer.Option(help="Print this community (12-digit code) only")
    ] = None,
    per: Annotated[
        str, typer.Option(help="community, or grid: a sheet per grid as well")
    ] = "community",
    with_roster: Annotated[
        bool,
        typer.Option(
            "--with-roster",
            help="Add the grid staff (role, name, phone) from the store's roster, as posted "
            "on a notice board; without it no name or phone is printed",
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            help="With --with-roster: an API key; only the staff of grids its account "
            "may see are printed (default: all, as the store's holder)"
        ),
    ] = None,
) -> None:
    """Print notice-board maps (公示图): a PDF and a PNG (A4, 200 dpi) per community, with
    its grids' codes and names, a legend, a scale bar, the plan's version and the
    OpenStreetMap attribution; files are named <code>-<name>.pdf/.png."""
    from wangge.printing import sheets, write_sheets

    start = time.perf_counter()
    try:
        if per not in ("community", "grid"):
            raise InputError("is community or grid", where="--per")
        if key is not None and not with_roster:
            raise InputError("a key decides whose staff are printed: add --with-roster", "--key")
        printing, staff, note = _read(plan, store, plan_id, version, with_roster, key)
        chosen = sheets(printing, community, per == "grid", staff, note)
        written = write_sheets(chosen, out_dir, progress=sys.stderr.isatty())
    except WanggeError as exc:
        fail(exc)
    _summary(written, out_dir, printing.source, time.perf_counter() - start)


def _read(plan, store, plan_id, version, with_roster: bool, key: str | None):
    """The plan, and the roster callable and its note (None, "" without a roster)."""
    from wangge.data.plan import read_plan, read_stored
    from wangge.printing import LAYERS, print_plan, roster_rows

    if plan is not None:
        options = (("--store", store), ("--plan-id", plan_id), ("--version", version))
        given = [flag for flag, value in options if value is not None]
        if given:
            raise InputError(
                f"{', '.join(given)} choose a plan in a store; give either those or a "
                "plan.gpkg, not both",
                plan,
            )
        if with_roster:
            raise InputError(
                "--with-roster: the roster (names and phones of the grid staff) lives in the "
                "store, not in a plan.gpkg; print the plan from the store instead "
                "(`wangge import` it, then --store/--plan-id)",
                plan,
            )
        return print_plan(read_plan(plan, required=LAYERS)), None, ""
    st = stored(store)
    try:
        stored_plan = read_stored(st, plan_id, version)
        printing, pid = print_plan(stored_plan), stored_plan.version.plan_id
        if not with_roster:
            return printing, None, ""
        covers, note = None, "全部人员 all staff (as the store's holder)"
        if key is not None:
            account = account_of_key(st, key)
            from wangge.data.privacy import Reader

            covers = Reader.of(account).sees_staff  # the staff class's one rule
            note = f"仅账号 {account.name} 辖区 only the territory of account {account.name}"
        return printing, roster_rows(st.roster.table(pid, covers=covers)), note
    finally:
        st.close()


def _summary(written, out_dir: Path, source: str, seconds: float) -> None:
    table = Table(title=f"wangge print: {escape(source)}")
    table.add_column("files (.pdf and .png)", overflow="fold")
    for col in ("level", "parts", "staff", "labels off map"):
        table.add_column(col, justify="left" if col == "level" else "right")
    for p in written:
        table.add_row(
            escape(p.pdf.stem),
            p.level,
            str(p.parts),
            "–" if p.staff is None else str(p.staff),
            str(p.labels_off) if p.labels_off else "",
        )
    out.print(table)
    out.print(
        f"wrote {2 * len(written)} files into [bold]{escape(str(out_dir))}[/] in {seconds:.1f} s"
    )
