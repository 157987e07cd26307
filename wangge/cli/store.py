"""Commands on a store: ``import``, ``serve``, ``export``, ``adopt`` and ``users``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wangge.cli._app import (
    StoreOpt,
    account_of_key,
    app,
    err,
    fail,
    load_settings,
    open_book,
    out,
    store_target,
    stored,
)
from wangge.cli.report import plan_verdict, print_given
from wangge.errors import InputError, WanggeError


def run_import(path: Path, store: str | None, plan_id: str, author: str, comment: str) -> None:
    from wangge.data.plan import PLAN_POLYGONS, read_plan
    from wangge.data.store import open_store
    from wangge.importing import PlanInvalid, save_plan

    target = store_target(store)
    if path.is_dir():
        path = path / "plan.gpkg"
    try:
        plan = read_plan(path, required=PLAN_POLYGONS)
        st = open_store(target)
        try:
            version, violations = save_plan(st, plan, plan_id, None, author, comment)
        finally:
            st.close()
    except PlanInvalid as exc:
        for row in exc.violations[:20]:
            err.print(escape(f"  {row['level']} {row['code']}: {row['check']}: {row['reason']}"))
        fail(exc)
    except WanggeError as exc:
        fail(exc)
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
    run_import(plan, store, plan_id, author, comment)


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

    settings = load_settings(store)
    try:
        opened = open_store(
            settings.store_target(), settings.statement_timeout_ms, settings.db_pool
        )
    except WanggeError as exc:
        fail(exc)
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
    out_file: Annotated[Path, typer.Option("--out", help="File to write")],
    layer: Annotated[
        str | None,
        typer.Argument(
            help="Layer, e.g. grids; for a tile package, the layers to put in, comma-separated "
            "(default: every tiled layer)"
        ),
    ] = None,
    format: Annotated[
        str, typer.Option(help="geojson, gpkg, shp (zipped), or a tile package: pmtiles, mbtiles")
    ] = "geojson",
    crs: Annotated[str, typer.Option(help="EPSG:4326, EPSG:4490, EPSG:4547…, GCJ02")] = "EPSG:4326",
    encoding: Annotated[str, typer.Option(help="UTF-8 or GBK (Shapefile)")] = "UTF-8",
    store: Annotated[str | None, typer.Option(help="Store (default: settings)")] = None,
    plan_id: Annotated[str | None, typer.Option("--plan-id", help="Plan (default newest)")] = None,
    version: Annotated[int | None, typer.Option(help="Version (default latest)")] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="An API key: the file holds only what its account may read over the API, and "
            "a tile package only its territory (default: all, as the store's holder)"
        ),
    ] = None,
    min_zoom: Annotated[
        int | None, typer.Option(help="Tile package: lowest zoom (default 10, a district)")
    ] = None,
    max_zoom: Annotated[
        int | None, typer.Option(help="Tile package: highest zoom (default 17, one compound)")
    ] = None,
    viewer: Annotated[
        bool,
        typer.Option(
            "--viewer/--no-viewer",
            help="Tile package: write FILE.style.json and, for pmtiles, a viewer page (NAME.html) "
            "that opens the archive from a file, beside it",
        ),
    ] = True,
) -> None:
    """Write one layer of a stored plan as GeoJSON, GeoPackage or a zipped Shapefile, or
    the plan's tiles as an offline package (PMTiles or MBTiles) with its style and viewer."""
    from wangge.data.tile_packages import PACKAGE_FORMATS

    try:
        fmt = _export_format(format)
        if fmt in PACKAGE_FORMATS:
            _export_package(layer, out_file, fmt, store, plan_id, version, key, min_zoom, max_zoom)
            if viewer:
                _write_view(out_file)
            return
        for flag, value in (("--min-zoom", min_zoom), ("--max-zoom", max_zoom)):
            if value is not None:
                raise InputError("applies to tile packages (pmtiles, mbtiles) only", where=flag)
        if not layer:
            raise InputError("name the layer to export, e.g. `wangge export grids`", where="LAYER")
        size = _export_layer(layer, out_file, fmt, crs, encoding, store, plan_id, version, key)
    except WanggeError as exc:
        fail(exc)
    out.print(f"wrote {escape(str(out_file))} ({size:,} bytes, {crs}, {fmt})")


def _export_format(fmt: str) -> str:
    from wangge.data.exports import EXPORT_FORMATS
    from wangge.data.tile_packages import PACKAGE_FORMATS

    key = str(fmt).strip().lower()
    if key not in (*EXPORT_FORMATS, *PACKAGE_FORMATS):
        raise InputError(
            f"unknown export format {fmt!r}; use one of "
            f"{', '.join((*EXPORT_FORMATS, *PACKAGE_FORMATS))}",
            where="--format",
        )
    return key


def _reader(st, key: str | None):
    """Who the export is for: the store's holder (everything), or the account of ``key``."""
    from wangge.data.privacy import EVERYTHING, Reader

    if key is None:
        return EVERYTHING
    return Reader.of(account_of_key(st, key))


def _export_layer(layer, out_file, fmt, crs, encoding, store, plan_id, version, key) -> int:
    from wangge.data.exports import export_layer
    from wangge.data.privacy import apply

    st = stored(store)
    try:
        reader = _reader(st, key)
        v = st.resolve(plan_id, version)
        frame = apply(layer, st.query(v.plan_id, v.version, layer).frame, reader)
        result = export_layer(frame, layer, fmt, crs, encoding)
    finally:
        st.close()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(result.content)
    return len(result.content)


def _export_package(layer, out_file, fmt, store, plan_id, version, key, min_zoom, max_zoom):
    from wangge.data.tile_packages import DEFAULT_ZOOMS, write_package

    names = [n.strip() for n in layer.split(",") if n.strip()] if layer else None
    st = stored(store)
    try:
        done = write_package(
            st,
            out_file,
            fmt,
            plan_id,
            version,
            _reader(st, key),
            DEFAULT_ZOOMS[0] if min_zoom is None else min_zoom,
            DEFAULT_ZOOMS[1] if max_zoom is None else max_zoom,
            names,
        )
    finally:
        st.close()
    meta = done.metadata
    scope = meta["wangge"]["scope"]
    out.print(
        f"wrote {escape(str(done.path))} ({done.size:,} bytes, {fmt}, {done.tiles:,} tiles, "
        f"zooms {meta['minzoom']}–{meta['maxzoom']}) in {done.seconds:.1f} s: plan "
        f"{meta['wangge']['plan']} version {meta['wangge']['version']}, "
        + (f"territory {escape(', '.join(scope))}" if scope else "the whole plan")
    )
    out.print(
        "layers: " + ", ".join(f"{name} {n:,}" for name, n in done.features.items()),
        highlight=False,
    )


def _write_view(out_file: Path) -> None:
    """The style and viewer beside a package just written, from its own metadata."""
    from wangge.data.tile_packages import read_metadata
    from wangge.maps.package_view import write_view

    for path in write_view(out_file, read_metadata(out_file)):
        out.print(f"wrote {escape(str(path))}")


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
        st = stored(store)
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
        fail(exc)
    print_given({"findings": done.findings.assign(source=str(grid_file))})
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
    errors = s["errors_after"] if done.completed is not None else s["errors"]
    plan_verdict(int(errors or 0), f"version {s['completed_version'] or s['version']} of {plan_id}")


users = typer.Typer(
    help="Accounts: roles (viewer, planner, admin) and the code prefixes a planner may change.",
    no_args_is_help=True,
)
app.add_typer(users, name="users")


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
        st = open_book(store)
        try:
            st.book.add(account, key)
        finally:
            st.close()
    except WanggeError as exc:
        fail(exc)
    where = ", ".join(account.scopes) or ("everywhere" if role == "admin" else "nowhere")
    out.print(f"account [bold]{escape(name)}[/] ({role}; may change: {escape(where)})")
    out.print("API key (shown once; send it as `Authorization: Bearer KEY`):")
    out.print(key, highlight=False, soft_wrap=True)


@users.command("list")
def users_list(store: StoreOpt = None) -> None:
    """List the accounts with their roles, scopes, expiry and revocation (never keys)."""
    try:
        st = open_book(store)
        try:
            accounts = st.book.all()
        finally:
            st.close()
    except WanggeError as exc:
        fail(exc)
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
        st = open_book(store)
        try:
            account = st.book.revoke(name)
        finally:
            st.close()
    except WanggeError as exc:
        fail(exc)
    out.print(f"revoked {escape(account.name)} at {account.revoked_at[:19]}")
