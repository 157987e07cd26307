"""A self-contained HTML map of a plan: grids coloured by households, drawn as inline SVG.

No script, tile or font is fetched: the file opens the same on an intranet with no
internet. Interactive maps (Leaflet/MapLibre, vendored) come with the editor.
"""

from __future__ import annotations

import html
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"
#: Sequential colours (light → dark) for households, one per class.
PALETTE = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")


def _path(geom: shapely.Geometry, tx) -> str:
    out = []
    for poly in shapely.get_parts(geom):
        for ring in [poly.exterior, *poly.interiors]:
            xy = tx(np.asarray(ring.coords))
            out.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + "Z")
    return "".join(out)


def grid_map_html(
    layers: dict[str, gpd.GeoDataFrame], title: str, lo: float, hi: float, width: int = 1100
) -> str:
    """Render grids (fill by households against the band), micro-grids and communities.

    Parameters
    ----------
    layers
        ``grids``, ``microgrids`` and ``communities`` in one metric CRS.
    title
        Heading of the page.
    lo, hi
        The grid band, marked in the legend.
    """
    grids = layers["grids"]
    x0, y0, x1, y1 = grids.total_bounds
    scale = width / max(x1 - x0, 1e-9)
    height = int((y1 - y0) * scale) + 1

    def tx(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - x0) * scale, (y1 - xy[:, 1]) * scale])

    edges = [0, lo, 0.5 * (lo + hi), hi, hi * 1.5]
    classes = np.clip(
        np.searchsorted(edges, grids["households"].to_numpy(), side="right") - 1,
        0,
        len(PALETTE) - 1,
    )
    shapes = []
    for (code, hh, flag), cls, geom in zip(
        grids[["code", "households", "flag"]].itertuples(index=False),
        classes,
        grids.geometry,
        strict=True,
    ):
        tip = html.escape(f"网格 grid {code}: {hh:g} 户 households {flag}")
        shapes.append(
            f'<path d="{_path(geom, tx)}" fill="{PALETTE[cls]}" stroke="#444" '
            f'stroke-width="1"><title>{tip}</title></path>'
        )
    for geom in layers["microgrids"].geometry:
        shapes.append(f'<path d="{_path(geom, tx)}" fill="none" stroke="#999" stroke-width="0.3"/>')
    for geom in layers["communities"].geometry:
        shapes.append(
            f'<path d="{_path(geom, tx)}" fill="none" stroke="#08306b" stroke-width="2.5"/>'
        )
    labels = [
        f"&lt; {lo:g}",
        f"{lo:g}–{0.5 * (lo + hi):g}",
        f"{0.5 * (lo + hi):g}–{hi:g}",
        f"{hi:g}–{1.5 * hi:g}",
        f"&gt; {1.5 * hi:g}",
    ]
    legend = "".join(
        f'<div><span style="background:{c}"></span>{t}</div>'
        for c, t in zip(PALETTE, labels, strict=True)
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:sans-serif;margin:12px}} svg{{border:1px solid #ccc;background:#fafafa}}
.legend span{{display:inline-block;width:18px;height:12px;margin-right:6px;border:1px solid #666}}
.legend{{float:right;margin-left:16px;font-size:13px}} .attr{{font-size:12px;color:#555}}
</style></head><body>
<h2>{html.escape(title)}</h2>
<div class="legend"><b>户数 / households per grid</b>{legend}
<div>— 社区 community boundary</div><div>┈ 微网格 micro-grid</div></div>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
 viewBox="0 0 {width} {height}">{"".join(shapes)}</svg>
<p class="attr">Map data {ATTRIBUTION} · 地图数据 © OpenStreetMap 贡献者</p>
</body></html>"""


def write_grid_map(
    path: str | Path, layers: dict[str, gpd.GeoDataFrame], title: str, lo: float, hi: float
) -> Path:
    """Write :func:`grid_map_html` to ``path``."""
    path = Path(path)
    path.write_text(grid_map_html(layers, title, lo, hi), "utf-8")
    return path
