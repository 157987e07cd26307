"""Shared pieces of the offline HTML maps: projection to SVG, shapes, legends, the page.

Every map is one HTML file with inline SVG. Nothing is fetched: no script, tile, font or
image comes from elsewhere, so a page opens the same on an intranet with no internet. The
only address in a page is the text of the OpenStreetMap copyright link.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"
OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"
SAMPLE_BANNER = (
    "样例数据 SAMPLE DATA — 风险点/设施为生成的样例，不是真实记录 / "
    "risk points and facilities are generated samples, not real records"
)

CSS = """
body{font-family:sans-serif;margin:12px} svg{border:1px solid #ccc;background:#fafafa}
.legend span{display:inline-block;width:18px;height:12px;margin-right:6px;border:1px solid #666}
.legend{float:right;margin-left:16px;font-size:13px} .attr{font-size:12px;color:#555}
.legend svg{border:none;background:none;vertical-align:middle;margin-right:6px}
.legend h4{margin:10px 0 4px} .legend div{margin:2px 0}
.banner{background:#fff3cd;border:2px solid #d39e00;color:#6b4e00;padding:6px 10px;
font-weight:bold;margin:6px 0}
table.summary{border-collapse:collapse;font-size:13px;margin:8px 0}
table.summary td,table.summary th{border:1px solid #bbb;padding:2px 8px;text-align:right}
table.summary td:first-child,table.summary th:first-child{text-align:left}
"""


@dataclass(frozen=True)
class Viewport:
    """Maps metric coordinates (y up) to SVG pixels (y down) at one scale.

    Attributes
    ----------
    x0, y1
        The metric coordinates of the viewport's top-left corner (after padding).
    scale
        Pixels per metre.
    width, height
        Size of the SVG in pixels.
    """

    x0: float
    y1: float
    scale: float
    width: int
    height: int

    @classmethod
    def fit(cls, bounds: Iterable[float], width: int = 1100, pad: float = 0.0) -> Viewport:
        """The viewport ``width`` pixels wide that shows ``bounds`` with ``pad`` pixels around.

        Parameters
        ----------
        bounds
            ``(xmin, ymin, xmax, ymax)`` in metres.
        width
            Width of the SVG in pixels; the height follows from the bounds.
        pad
            Margin in pixels on each side, so that thick outlines at the edge show whole.
        """
        x0, y0, x1, y1 = (float(v) for v in bounds)
        scale = (width - 2 * pad) / max(x1 - x0, 1e-9)
        height = int((y1 - y0) * scale + 2 * pad) + 1
        return cls(
            x0=x0 - pad / scale, y1=y1 + pad / scale, scale=scale, width=width, height=height
        )

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """Project an ``(n, 2)`` array of metric coordinates to pixels."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.column_stack(
            [(xy[:, 0] - self.x0) * self.scale, (self.y1 - xy[:, 1]) * self.scale]
        )

    def svg_open(self) -> str:
        """The opening ``<svg>`` tag of this viewport."""
        w, h = self.width, self.height
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"\n'
            f' viewBox="0 0 {w} {h}">'
        )


def union_bounds(*frames) -> tuple[float, float, float, float]:
    """The bounds of every non-empty geometry in ``frames`` (GeoDataFrames or None)."""
    boxes = [
        f.total_bounds
        for f in frames
        if f is not None and len(f) and not f.geometry.is_empty.all() and f.geometry.notna().any()
    ]
    boxes = [b for b in boxes if np.isfinite(b).all()]
    if not boxes:
        return (0.0, 0.0, 1.0, 1.0)
    b = np.vstack(boxes)
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def path_d(geom: shapely.Geometry, vp: Viewport) -> str:
    """The SVG path data of a (multi)polygon: one closed sub-path per ring."""
    out = []
    if geom is None:
        return ""
    for poly in shapely.get_parts(geom):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            xy = vp(np.asarray(ring.coords))
            out.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + "Z")
    return "".join(out)


def anchor(geom: shapely.Geometry, vp: Viewport) -> tuple[float, float] | None:
    """Pixel position of a point, or of a representative point of any other geometry."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type != "Point":
        geom = shapely.point_on_surface(geom)
    ((x, y),) = vp(np.asarray(geom.coords))
    return float(x), float(y)


def attrs(**kw) -> str:
    """HTML attributes from keywords (``_`` becomes ``-``, a trailing ``_`` is dropped)."""
    parts = []
    for k, v in kw.items():
        if v is None:
            continue
        name = k.rstrip("_").replace("_", "-")
        parts.append(f'{name}="{html.escape(str(v))}"')
    return " ".join(parts)


def tip(text: str) -> str:
    """A ``<title>`` tooltip (escaped)."""
    return f"<title>{html.escape(text)}</title>"


def polygon(geom: shapely.Geometry, vp: Viewport, title: str | None = None, **kw) -> str:
    """A ``<path>`` of a polygon with attributes ``kw`` and an optional tooltip."""
    d = path_d(geom, vp)
    if not d:
        return ""
    inner = tip(title) if title else ""
    return f'<path d="{d}" {attrs(**kw)}>{inner}</path>'


def marker(
    x: float, y: float, r: float, shape: str = "circle", title: str | None = None, **kw
) -> str:
    """A point marker centred on ``(x, y)``: ``circle``, ``square``, ``diamond`` or ``triangle``."""
    inner = tip(title) if title else ""
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {attrs(**kw)}>{inner}</circle>'
    if shape == "square":
        return (
            f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" '
            f"{attrs(**kw)}>{inner}</rect>"
        )
    if shape == "diamond":
        pts = [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    elif shape == "triangle":
        pts = [(x, y - r), (x + 0.9 * r, y + 0.6 * r), (x - 0.9 * r, y + 0.6 * r)]
    else:
        raise ValueError(f"unknown marker shape {shape!r}")
    p = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
    return f'<polygon points="{p}" {attrs(**kw)}>{inner}</polygon>'


def hatch_pattern(pid: str, colour: str, spacing: float = 7.0, width: float = 2.0) -> str:
    """A ``<pattern>`` of diagonal lines, to fill with ``fill="url(#pid)"``."""
    s = f"{spacing:g}"
    return (
        f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="{s}" height="{s}" '
        f'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="{s}" '
        f'stroke="{colour}" stroke-width="{width:g}"/></pattern>'
    )


def swatch(inner: str, width: int = 22, height: int = 14) -> str:
    """A small inline SVG for a legend entry; ``inner`` is drawn in a 22×14 box."""
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 22 14" '
        f'aria-hidden="true">{inner}</svg>'
    )


def swatch_rect(fill: str, stroke: str = "#444", dash: str | None = None, **kw) -> str:
    """A legend square: ``fill``, ``stroke`` and an optional dash array."""
    a = attrs(fill=fill, stroke=stroke, stroke_dasharray=dash, **kw)
    return swatch(f'<rect x="2" y="2" width="18" height="10" {a}/>')


def swatch_hatch(colour: str, stroke: str | None = None) -> str:
    """A legend square hatched with diagonal lines of ``colour``."""
    lines = "".join(
        f'<line x1="{x}" y1="12" x2="{x + 10}" y2="2" stroke="{colour}" stroke-width="1.6"/>'
        for x in (2, 6, 10)
    )
    return swatch(
        f'{lines}<rect x="2" y="2" width="18" height="10" fill="none" stroke="{stroke or colour}"/>'
    )


def swatch_marker(shape: str = "circle", r: float = 5.0, **kw) -> str:
    """A legend entry showing one point marker."""
    return swatch(marker(11, 7, r, shape, **kw))


def legend_block(title: str, items: Iterable[tuple[str, str]]) -> str:
    """A titled legend section; ``items`` are ``(swatch_html, label)`` pairs (label escaped)."""
    rows = "".join(f"<div>{sw}{html.escape(label)}</div>" for sw, label in items)
    return f"<h4>{html.escape(title)}</h4>{rows}"


def has_sample(*frames) -> bool:
    """True when any frame has a ``sample`` column with a true value."""
    for f in frames:
        if f is None or "sample" not in f or not len(f):
            continue
        if pd.Series(f["sample"]).fillna(False).astype(bool).any():
            return True
    return False


def sample_banner(*frames) -> str:
    """The sample-data banner when any of ``frames`` holds sample rows, else ``""``."""
    if not has_sample(*frames):
        return ""
    return f'<div class="banner" role="alert">{html.escape(SAMPLE_BANNER)}</div>'


def footer() -> str:
    """The attribution line every map carries (English and Chinese)."""
    return (
        f'<p class="attr">Map data {ATTRIBUTION} (<a href="{OSM_COPYRIGHT}">'
        f"{OSM_COPYRIGHT}</a>) · 地图数据 © OpenStreetMap 贡献者，ODbL 1.0</p>"
    )


def page(title: str, body: str, script: str = "", css: str = "") -> str:
    """The HTML page: head with inline CSS, the heading, ``body``, the footer, inline JS."""
    js = f"\n<script>{script}</script>" if script else ""
    t = html.escape(title)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{t}</title>
<style>{CSS}{css}</style></head><body>
<h2>{t}</h2>
{body}
{footer()}{js}
</body></html>"""


def png_data_uri(rgba: np.ndarray) -> str:
    """A ``data:`` URI of an ``(h, w, 4)`` uint8 RGBA image encoded as PNG (no libraries)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    raw = np.hstack([np.zeros((h, 1), np.uint8), rgba.reshape(h, w * 4)]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fmt(v, spec: str = "g", missing: str = "–") -> str:
    """Format a number, or ``missing`` for None/NaN."""
    try:
        if v is None or pd.isna(v):
            return missing
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)
