"""The ``wangge`` command line: one subcommand per job, each with --help.

Each module registers its commands on the one app (``_app``); options shared by several
commands live in ``options``, what they print in ``report``."""

from __future__ import annotations

import sys

from rich.markup import escape

from wangge.cli import (  # noqa: F401 -- they register commands
    addresses,
    changes,
    city,
    demo,
    jobs,
    plan,
    printing,
    rebalance,
    store,
)
from wangge.cli._app import DEMO_OSM, app, err
from wangge.cli.demo import demo_admin

__all__ = ["DEMO_OSM", "app", "demo_admin", "main"]


def main() -> None:
    """The console entry point: the app, with a last guard so that a bug in wangge ends in
    one plain line (exit 3) instead of a traceback; ``WANGGE_DEBUG=1`` shows the traceback.
    Bad input never reaches this guard: it is a WanggeError naming the file (exit 2)."""
    import os

    try:
        app()
    except Exception as exc:
        if os.environ.get("WANGGE_DEBUG"):
            raise
        args = " ".join(sys.argv[1:])
        err.print(
            f"[bold red]error:[/] wangge stopped on an unexpected {type(exc).__name__} "
            f"({escape(str(exc)[:300])}) while running `wangge {escape(args)}`. This is a bug "
            "in wangge, not a fault of your data: rerun with WANGGE_DEBUG=1 for the details "
            "and report them.",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(3) from None
