"""A self-contained HTML map of a plan: grids coloured by households, drawn as inline SVG.

No script, tile or font is fetched: the file opens the same on an intranet with no
internet. Interactive maps (Leaflet/MapLibre, vendored) come with the editor.
"""

from __future__ import annotations

import html
from pathlib import Path

import geopandas as gpd
import numpy as np

from wangge.maps._svg import ATTRIBUTION, Viewport, page, path_d

__all__ = ["ATTRIBUTION", "PALETTE", "grid_map_html", "write_grid_map"]

#: Sequential colours (light → dark) for households, one per class.
PALETTE = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")
#: Dedicated grids (专属网格) stand apart: outside the household bands by rule.
DEDICATED = "#9fb1e0"


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
    vp = Viewport.fit(grids.total_bounds, width)
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
        kind = "专属网格 dedicated grid" if flag == "dedicated" else "网格 grid"
        tip = html.escape(f"{kind} {code}: {hh:g} 户 households {flag}")
        fill = DEDICATED if flag == "dedicated" else PALETTE[cls]
        shapes.append(
            f'<path d="{path_d(geom, vp)}" fill="{fill}" stroke="#444" '
            f'stroke-width="1"><title>{tip}</title></path>'
        )
    for geom in layers["microgrids"].geometry:
        shapes.append(
            f'<path d="{path_d(geom, vp)}" fill="none" stroke="#999" stroke-width="0.3"/>'
        )
    for geom in layers["communities"].geometry:
        shapes.append(
            f'<path d="{path_d(geom, vp)}" fill="none" stroke="#08306b" stroke-width="2.5"/>'
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
    body = f"""<div class="legend"><b>户数 / households per grid</b>{legend}
<div><span style="background:{DEDICATED}"></span>专属网格 dedicated grid</div>
<div>— 社区 community boundary</div><div>┈ 微网格 micro-grid</div></div>
{vp.svg_open()}{"".join(shapes)}</svg>"""
    return page(title, body)


def write_grid_map(
    path: str | Path, layers: dict[str, gpd.GeoDataFrame], title: str, lo: float, hi: float
) -> Path:
    """Write :func:`grid_map_html` to ``path``."""
    path = Path(path)
    path.write_text(grid_map_html(layers, title, lo, hi), "utf-8")
    return path
