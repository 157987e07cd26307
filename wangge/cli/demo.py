"""``wangge demo``: the main job on the bundled Nanjing extract, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from wangge.cli._app import DEMO_OSM, app, open_book, out
from wangge.cli.addresses import import_addresses
from wangge.cli.jobs import run_coverage, run_overlay
from wangge.cli.plan import run_delineate, run_ingest
from wangge.cli.report import plan_verdict
from wangge.cli.store import run_import


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

    run_ingest(DEMO_OSM, out_dir)
    # the district code is the file's: its boundary ways put 835 of 1,277 buildings in 秦淮区
    errors = run_delineate(out_dir / "units.gpkg", out_dir)
    if errors:  # an invalid plan is never imported; stop here and say why
        plan_verdict(errors, f"the demo plan in {out_dir}")
    samples = write_samples(out_dir, seed=0)
    names = ", ".join(p.name for p in samples.values())
    out.print(f"wrote sample data (样例数据, seed 0): {escape(names)}")
    run_overlay(
        out_dir,
        samples["risks"],
        zones=samples["zones"],
        facilities=[samples["facilities"]],
        vulnerable=samples["vulnerable"],
    )
    run_coverage(out_dir)
    run_import(out_dir / "plan.gpkg", store, "demo", "wangge demo", "bundled demo plan")
    done = import_addresses(DEMO_OSM, store, "demo", "osm", None)  # GET /lookup/address
    out.print(f"imported {done.rows:,} OSM names and addresses for the address lookup")
    demo_admin(store)


def demo_admin(store: str | None) -> None:
    """On a store with no active account, make the demo's admin and print its key once, so
    that the editor can be signed into with no further step."""
    from wangge.data.accounts import make_account, new_key

    st = open_book(store)
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
