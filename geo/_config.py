"""Layered TOML configuration: bundled defaults with a user's file on top."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any


def merge(base: dict, over: dict) -> dict:
    """Deep-merge ``over`` into a copy of ``base``."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """A user's TOML file; :class:`wangge.errors.InputError` naming it when missing or bad."""
    from wangge.errors import InputError

    path = Path(path)
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise InputError("file not found", path) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"is not valid TOML: {exc}", path) from exc


def load_default(default: str) -> dict[str, Any]:
    """The bundled ``geo/<default>`` TOML."""
    return tomllib.loads(resources.files("wangge.geo").joinpath(default).read_text("utf-8"))


def load_layered(default: str, path: str | Path | None) -> dict[str, Any]:
    """The bundled ``geo/<default>`` merged with the user's TOML at ``path``, if given.

    Raises :class:`wangge.errors.InputError` naming the user's file when it is missing or
    not valid TOML.
    """
    raw = load_default(default)
    return raw if path is None else merge(raw, read_toml(path))
