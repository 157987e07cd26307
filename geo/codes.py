"""Hierarchical unit codes in the style of DB11/T 2157-2023, numbered in reading order."""

from __future__ import annotations

import itertools
import re

import geopandas as gpd
import numpy as np

#: Digits per level: district (GB/T 2260), street, community, grid, micro-grid.
WIDTHS = {"district": 6, "street": 3, "community": 3, "grid": 3, "microgrid": 3}
LENGTHS = {"street": 9, "community": 12, "grid": 15, "microgrid": 18}
LEVELS = ("street", "community", "grid", "microgrid")


def reading_order(geoms: gpd.GeoSeries) -> np.ndarray:
    """Order sibling units west→east in rows, rows north→south (行优先, 自北向南).

    Rows are as tall as a typical sibling (the square root of the median area), so that
    units of one row are numbered left to right before the next row begins.

    Returns
    -------
    numpy.ndarray
        Positions of ``geoms`` in numbering order.
    """
    if len(geoms) == 0:
        return np.array([], dtype=int)
    pts = geoms.representative_point()
    band = max(float(np.sqrt(np.median(geoms.area.to_numpy()))), 1e-9)
    row = np.floor((pts.y.max() - pts.y.to_numpy()) / band)
    return np.lexsort((pts.x.to_numpy(), row))


def child_codes(parent: str, n: int, level: str) -> list[str]:
    """Codes ``parent + 001 … parent + n`` for ``n`` children at ``level``."""
    width = WIDTHS[level]
    if n >= 10**width:
        raise ValueError(f"{n} {level}s do not fit in {width} digits under {parent}")
    return [f"{parent}{i:0{width}d}" for i in range(1, n + 1)]


def iter_free_codes(parent: str, taken: set[str], level: str = "grid", start: int = 1):
    """Codes ``parent + start …`` at ``level`` in order, skipping those in ``taken``."""
    width = WIDTHS[level]
    for i in range(start, 10**width):
        code = f"{parent}{i:0{width}d}"
        if code not in taken:
            yield code


def free_codes(parent: str, n: int, level: str, taken: set[str], start: int = 1) -> list[str]:
    """``n`` codes ``parent + start …`` at ``level`` in order, skipping those in ``taken``."""
    out = list(itertools.islice(iter_free_codes(parent, taken, level, start), n))
    if len(out) < n:
        raise ValueError(f"more {level}s than fit in {WIDTHS[level]} digits under {parent}")
    return out


def check_code(code: str, level: str, parent: str | None) -> str | None:
    """Return what is wrong with ``code`` at ``level`` (None if it is well formed)."""
    if not isinstance(code, str) or not re.fullmatch(r"\d+", code or ""):
        return f"code {code!r} is not all digits"
    if len(code) != LENGTHS[level]:
        return f"code {code} has {len(code)} digits; a {level} code has {LENGTHS[level]}"
    if code[-WIDTHS[level] :] == "0" * WIDTHS[level]:
        return f"code {code} ends in {'0' * WIDTHS[level]}; numbering starts at 1"
    if parent is not None and not code.startswith(parent):
        return f"code {code} does not start with its parent's code {parent}"
    return None
