"""The ``wangge`` Typer app, its consoles, and the store and failure helpers of every command."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

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


def fail(exc: WanggeError) -> None:
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def load_settings(store: str | None):
    """Settings from the environment, with ``--store`` on top when given."""
    from wangge.api.settings import Settings

    return Settings(store=store) if store else Settings()


def store_target(store: str | None) -> str:
    return load_settings(store).store_target()


def stored(store: str | None):
    """Open a store that must already hold plans: a GeoPackage path that does not exist is
    an error naming it, rather than a new empty store left behind by a read."""
    from wangge.data.store import open_store
    from wangge.errors import InputError

    target = store_target(store)
    if not target.startswith(("postgresql", "postgres://")) and not Path(target).exists():
        raise InputError(
            "no store here: `wangge demo` makes one, `wangge import PLAN` fills one, and "
            "--store (or WANGGE_STORE) names another",
            target,
        )
    return open_store(target)


def account_of_key(st, key: str):
    """The account of the API key a command was given (``--key``): the one rule for
    every command that reads as a key's holder would (exports, printed sheets)."""
    from wangge.errors import Unauthenticated

    account = st.book.find(key.strip())
    if account is None:
        raise Unauthenticated("the API key is unknown, revoked or expired", where="--key")
    return account


StoreOpt = Annotated[
    str | None, typer.Option(help="Store path or database URL (default: WANGGE_ settings)")
]


def open_book(store: str | None):
    from wangge.data.store import open_store

    return open_store(store_target(store))
