"""Text on a notice-board map: grid labels that never overlap, and tables that fit a panel.

Labels are placed one grid at a time, largest first, each at its visual centre (the pole
of inaccessibility of its largest part). A label is tried in three forms, longest first
(name and code, the code alone, the last three digits of the code), each at font sizes
from large to small, and kept at the first form and size whose rendered extent lies inside
its grid and clear of every label already placed (and of the scale bar and north arrow).
Failing that, the short form goes at the centre if it is clear there, else beside the grid
on a leader line, else it is left off the map (every code stays in the sheet's table).
Extents are measured by the renderer, not estimated, so "clear" means clear on paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from matplotlib.transforms import Bbox
from shapely.ops import polylabel

#: Font sizes (points) a label is tried at, largest first.
LABEL_SIZES = (9.0, 8.0, 7.0, 6.0, 5.0)
#: Font sizes a panel table is tried at, largest first.
TABLE_SIZES = (8.0, 7.5, 7.0, 6.5, 6.0, 5.5, 5.0, 4.5)


@dataclass(frozen=True)
class Label:
    """Where one unit's label went: its text and size, the point it names (map
    coordinates), where the text sits, and its extent on the figure (display pixels).
    ``box`` is None for a label left off the map."""

    code: str
    text: str
    size: float
    anchor: tuple[float, float]
    at: tuple[float, float]
    leader: bool
    box: Bbox | None


def _centre(geom) -> shapely.Point:
    """The visual centre of a (multi)polygon: the pole of its largest part."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return geom.representative_point()
    big = max(parts, key=lambda p: p.area)
    try:
        return polylabel(big, tolerance=max(np.sqrt(big.area) / 200, 0.5))
    except Exception:  # a degenerate ring: fall back to a point surely inside
        return big.representative_point()


def _within(box: Bbox, frame: Bbox) -> bool:
    return frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)


def _clear(box: Bbox, taken: list[Bbox]) -> bool:
    return not any(box.overlaps(t) for t in taken)


def place_labels(ax, units, reserved: list[Bbox], zorder: float = 8) -> list[Label]:
    """Label each unit of ``units`` (GeoDataFrame with ``code``, ``name`` and geometry in
    the axes' data coordinates) without overlaps; see the module docstring.

    Parameters
    ----------
    ax
        The map axes, its limits and position final.
    units
        The units to label.
    reserved
        Extents (display pixels) no label may cover: the scale bar, the north arrow.

    Returns
    -------
    list of Label
        One per unit, in the order of ``units``.
    """
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    frame = ax.get_window_extent(renderer)
    taken = list(reserved)
    order = np.argsort(-units.geometry.area.to_numpy(), kind="stable")
    found: dict[int, Label] = {}
    halo = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6}
    for i in order:
        row = units.iloc[i]
        code, geom = str(row["code"]), row.geometry
        if geom is None or geom.is_empty:
            continue
        name = str(row.get("name") or "").strip()
        centre = _centre(geom)
        anchor = (centre.x, centre.y)
        forms = ([f"{name}\n{code}"] if name else []) + [code, code[-3:]]
        text = ax.text(*anchor, "", ha="center", va="center", zorder=zorder, bbox=halo)
        text.set_multialignment("center")

        def extent(s: str, size: float, at: tuple[float, float], text=text) -> Bbox:
            text.set_text(s)
            text.set_fontsize(size)
            text.set_position(at)
            return text.get_window_extent(renderer).expanded(1.04, 1.08)

        def inside(box: Bbox, geom=geom) -> bool:
            (x0, y0), (x1, y1) = to_data.transform([[box.x0, box.y0], [box.x1, box.y1]])
            return geom.contains(shapely.box(x0, y0, x1, y1))

        placed = None
        for s in forms:
            for size in LABEL_SIZES:
                box = extent(s, size, anchor)
                if _clear(box, taken) and inside(box):
                    placed = Label(code, s, size, anchor, anchor, False, box)
                    break
            if placed:
                break
        short, small = forms[-1], LABEL_SIZES[-2]
        if placed is None:
            box = extent(short, small, anchor)
            if _clear(box, taken) and _within(box, frame):
                placed = Label(code, short, small, anchor, anchor, False, box)
        if placed is None:
            placed = _leader(code, geom, anchor, short, small, extent, taken, frame, to_data)
        if placed is None:
            text.remove()
            found[i] = Label(code, short, small, anchor, anchor, False, None)
            continue
        extent(placed.text, placed.size, placed.at)
        if placed.leader:
            ax.plot(*zip(anchor, placed.at, strict=True), color="#444", lw=0.5, zorder=zorder - 1)
        taken.append(placed.box)
        found[i] = placed
    return [found[i] for i in range(len(units)) if i in found]


def _leader(code, geom, anchor, short, size, extent, taken, frame, to_data) -> Label | None:
    """The short label beside the unit, on the first clear spot of rings around it."""
    box = extent(short, size, anchor)
    x0, x1 = to_data.transform([[box.x0, box.y0], [box.x1, box.y0]])[:, 0]
    step = max(abs(x1 - x0), np.sqrt(max(geom.area, 1.0)) / 2)
    for ring in (1.2, 2.0, 3.0):
        for angle in np.radians([45, 135, 225, 315, 90, 270, 0, 180]):
            at = (anchor[0] + ring * step * np.cos(angle), anchor[1] + ring * step * np.sin(angle))
            box = extent(short, size, at)
            if _within(box, frame) and _clear(box, taken):
                return Label(code, short, size, anchor, at, True, box)
    return None


@dataclass(frozen=True)
class Table:
    """A table for the side panel: a title, column headers, rows of text, and per column
    ``"left"`` or ``"right"`` alignment; ``note`` is a line under the title."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    align: tuple[str, ...]
    note: str = ""


def _width(renderer, text: str, size: float, prop) -> float:
    """The rendered width of ``text`` in inches."""
    p = prop.copy()
    p.set_size(size)
    w, _, _ = renderer.get_text_width_height_descent(text, p, ismath=False)
    return w / renderer.points_to_pixels(72.0)


def flow_tables(fig, box: tuple[float, float, float, float], tables: list[Table], prop) -> int:
    """Write ``tables`` into ``box`` (x0, y0, width, height in inches from the figure's
    lower left) in as many columns as fit, at the largest size of :data:`TABLE_SIZES`
    at which they all fit; at the smallest, rows past the end are cut and counted.

    Returns
    -------
    int
        How many rows were left out (0 when everything fits).
    """
    renderer = fig.canvas.get_renderer()
    x0, y0, width, height = box
    base = 10.0
    cells = []  # per table: widths of each column at the base size
    for t in tables:
        cols = [[t.header[c]] + [r[c] for r in t.rows] for c in range(len(t.header))]
        cells.append([max(_width(renderer, s, base, prop) for s in col) for col in cols])
    titles = [
        max(_width(renderer, t.title, base, prop), _width(renderer, t.note, base, prop))
        for t in tables
    ]

    def lines(t: Table) -> int:
        return 1 + bool(t.note) + 1 + len(t.rows)

    def layout(size: float):
        k = size / base
        pad = 0.9 * size / 72
        col_w = max(
            max(sum(w) * k + pad * (len(w) - 1), tw * k)
            for w, tw in zip(cells, titles, strict=True)
        )
        line = 1.45 * size / 72
        ncols = max(1, int((width + 0.2) // (col_w + 0.2)))
        capacity = ncols * int(height // line)
        if col_w > width:
            capacity = 0  # too wide at this size: try a smaller one
        need = sum(lines(t) for t in tables) + (len(tables) - 1)
        return ncols, capacity, need, line, col_w, pad

    for size in TABLE_SIZES:
        ncols, capacity, need, line, col_w, pad = layout(size)
        if capacity >= need:
            break
    dropped = 0
    if capacity < need:
        capacity = ncols * int(height // line)
        dropped = need - capacity + 1
        cut = []
        left = dropped
        for t in reversed(tables):
            take = min(left, len(t.rows))
            left -= take
            cut.insert(0, Table(t.title, t.header, t.rows[: len(t.rows) - take], t.align, t.note))
        tables = cut
        dropped -= left
    k = size / base
    per_col = max(int(height // line), 1)
    slot = [0]

    def put(cells_of: list[str] | str, widths: list[float] | None, align, **style) -> None:
        col, row = divmod(slot[0], per_col)
        if col >= ncols:
            return
        x = x0 + col * (col_w + 0.2)
        y = y0 + height - row * line
        slot[0] += 1
        if widths is None:
            fig.text(
                x, y, cells_of, transform=fig.dpi_scale_trans, va="top", fontsize=size, **style
            )
            return
        for s, w, a in zip(cells_of, widths, align, strict=True):
            at = x + w if a == "right" else x
            fig.text(
                at, y, s, transform=fig.dpi_scale_trans, va="top", ha=a, fontsize=size, **style
            )
            x += w + pad

    for n, (t, w) in enumerate(zip(tables, cells, strict=True)):
        if n:
            slot[0] += 1
        widths = [c * k for c in w]
        put(t.title, None, None, color="#000")
        if t.note:
            put(t.note, None, None, color="#555")
        put(list(t.header), widths, t.align, color="#555")
        for r in t.rows:
            put(list(r), widths, t.align)
    if dropped:
        put(f"… 另有 {dropped} 行未列出 / {dropped} more rows not shown", None, None, color="#a00")
    return dropped
