"""The MapLibre style of an offline tile package, and the page that opens one from a file.

Both are made from the package's own metadata (:mod:`wangge.data.tile_packages`), so that
any archive wangge wrote can be styled and viewed again without the store. The style
draws the plan as the web maps do (:mod:`wangge.maps.grid_map`'s household classes and
outlines, the risk levels' colours, :mod:`wangge.maps.gap_map`'s facilities and
buildings) over the basemap the archive holds, with the basemap's own style
(:mod:`wangge.maps.basemap_style`); layers the style does not draw (units, gaps,
coverage...) are still in the archive for a field app to style. Its labels (road and place
names) need no glyphs: with no ``glyphs`` URL MapLibre draws them with the browser's
fonts, so nothing is fetched.

The viewer is one HTML file with MapLibre GL and the pmtiles library inlined from the
copies vendored in ``maps/static/vendor`` (``scripts/vendor.sh``). A browser refuses
``fetch()`` of a ``file://`` address, so opened from a file the page asks for the
archive with a file chooser and reads it through ``pmtiles.FileSource`` (a File's
slices, never the network); served over HTTP beside the archive it opens it at once.
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from typing import Any

from wangge.geo.rules import LEVEL_COLOURS
from wangge.maps.basemap_style import IDEOGRAPH_FONTS, LAND, basemap_style_layers
from wangge.maps.gap_map import BUILDING, FACILITY
from wangge.maps.grid_map import COMMUNITY, DEDICATED, MICRO, PALETTE, STREET, household_classes
from wangge.maps.webmap import (
    BACKGROUND,
    SAMPLE_BANNER,
    VENDOR,
    check_offline,
    credit_html,
    js_literal,
)

#: The one source of the style: the package itself.
SOURCE = "wangge"
#: Roads as the editor draws them (maps/editor/mapview.js, COLOURS.road).
ROAD = "#c9c4b8"
#: Grid outlines as the plan map draws them (grid_map: colour #444, weight 1).
GRID_LINE = "#444444"


def package_style(metadata: dict[str, Any], url: str) -> dict[str, Any]:
    """A MapLibre style (version 8) drawing a package's layers with the web maps' colours.

    Parameters
    ----------
    metadata
        The package's metadata (``vector_layers``, ``bounds``, ``attribution`` and the
        ``wangge`` block with the grid band).
    url
        The source's address: ``pmtiles://NAME.pmtiles`` (relative to the page or style),
        or ``mbtiles://NAME`` for a tile server that serves MBTiles by name.

    Returns
    -------
    dict
        The style, ready for ``json.dumps``.
    """
    have = {layer["id"] for layer in metadata.get("vector_layers", [])}
    lo, hi = metadata.get("wangge", {}).get("grid_band", (300, 500))
    layers: list[dict[str, Any]] = [
        {
            "id": "background",
            "type": "background",
            "paint": {"background-color": LAND if "basemap_roads" in have else BACKGROUND},
        }
    ]
    specs = [*basemap_style_layers(SOURCE), *_layers(lo, hi)]
    if "basemap_roads" in have:  # the basemap's roads, with names, stand for the walk network
        specs = [s for s in specs if s["id"] != "roads"]
    for spec in specs:
        if spec["source-layer"] in have:
            layers.append({**spec, "source": SOURCE})
    centre = metadata.get("center", [0, 0, 14])
    return {
        "version": 8,
        "name": metadata.get("name", "wangge package"),
        "center": centre[:2],
        "zoom": centre[2],
        "sources": {
            SOURCE: {
                "type": "vector",
                "url": url,
                "attribution": credit_html(metadata.get("attribution", "")),
            }
        },
        "layers": layers,
    }


def _layers(lo: float, hi: float) -> list[dict[str, Any]]:
    """Every layer the style draws, beneath first (each kept only where the package has
    its source layer)."""
    edges = [lo, 0.5 * (lo + hi), hi, 1.5 * hi]  # household_classes' edges after 0
    households = ["to-number", ["get", "households"], 0]
    steps: list[Any] = ["step", households, PALETTE[0]]
    for edge, colour in zip(edges, PALETTE[1:], strict=True):
        steps += [edge, colour]
    level = ["match", ["get", "level"], *_pairs(LEVEL_COLOURS), "#bbbbbb"]
    colour = ["coalesce", ["get", "colour"], level]
    return [
        _line("roads", "network_edges", ROAD, 1.0),
        {
            "id": "buildings-fill",
            "type": "fill",
            "source-layer": "buildings",
            "minzoom": 14,
            "paint": {"fill-color": BUILDING, "fill-outline-color": "#b0b0b0"},
        },
        {
            "id": "grids-fill",
            "type": "fill",
            "source-layer": "grids",
            "paint": {
                "fill-color": ["case", ["==", ["get", "flag"], "dedicated"], DEDICATED, steps],
                "fill-opacity": 0.6,
            },
        },
        {
            "id": "risk-zones-fill",
            "type": "fill",
            "source-layer": "risk_zones",
            "paint": {"fill-color": colour, "fill-opacity": 0.25, "fill-outline-color": colour},
        },
        {**_line("microgrids-line", "microgrids", MICRO, 0.6), "minzoom": 14},
        _line("grids-line", "grids", GRID_LINE, 1.0),
        _line("communities-line", "communities", COMMUNITY, 2.5),
        _line("streets-line", "streets", STREET, 3.5),
        _circle("facilities", "facilities", FACILITY, 4),
        _circle("risk-points", "risk_points", colour, 5),
    ]


def _pairs(mapping: dict[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]


def _line(name: str, layer: str, colour: str, width: float) -> dict[str, Any]:
    return {
        "id": name,
        "type": "line",
        "source-layer": layer,
        "paint": {"line-color": colour, "line-width": width},
    }


def _circle(name: str, layer: str, colour: Any, radius: float) -> dict[str, Any]:
    return {
        "id": name,
        "type": "circle",
        "source-layer": layer,
        "paint": {
            "circle-color": colour,
            "circle-radius": radius,
            "circle-stroke-color": "#ffffff",
            "circle-stroke-width": 1,
        },
    }


@cache
def _vendored() -> tuple[str, str, str]:
    """MapLibre's script and stylesheet and the pmtiles script, from the vendored copies."""

    def script(name: str) -> str:
        return (VENDOR / name).read_text("utf-8").replace("</script", "<\\/script")

    css = (VENDOR / "maplibre-gl.css").read_text("utf-8")
    return script("maplibre-gl.js"), css, script("pmtiles.js")


#: The page's own look: the map fills it, a panel at the top left.
_CSS = """
html,body{margin:0;height:100%;font-family:sans-serif}
#map{position:absolute;inset:0}
.wg-panel{position:absolute;top:8px;left:8px;z-index:2;max-width:380px;font-size:13px;
background:rgba(255,255,255,.94);border:1px solid #999;border-radius:4px;padding:8px 10px;
box-shadow:0 1px 4px rgba(0,0,0,.25)}
.wg-panel h1{font-size:15px;margin:0 0 6px}
.wg-banner{margin:4px 0;background:#fff3cd;border:2px solid #d39e00;color:#6b4e00;
padding:4px 8px;font-weight:bold;font-size:12px}
.wg-status{margin:6px 0;color:#444}
.wg-legend div{margin:2px 0;font-size:12px}
.wg-legend i{display:inline-block;width:18px;height:11px;margin-right:6px;
border:1px solid #444;vertical-align:middle}
"""

#: The page's script: the map at once (with the credit), the archive from the file
#: chooser, or from beside the page when served over HTTP. ``window.wgViewer`` lets a test
#: see what it opened and when the map has drawn it.
_SCRIPT = """
const protocol = new pmtiles.Protocol();
maplibregl.addProtocol("pmtiles", protocol.tile);
const blank = {version: 8, sources: {}, layers: [STYLE.layers[0]]};
const map = new maplibregl.Map({
  container: "map", style: blank, bounds: BOUNDS, fitBoundsOptions: {padding: 20},
  attributionControl: false, fadeDuration: 0, preserveDrawingBuffer: true,
  localIdeographFontFamily: FONTS,
});
map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
map.addControl(new maplibregl.ScaleControl({unit: "metric"}), "top-right");
map.addControl(
  new maplibregl.AttributionControl({compact: false, customAttribution: CREDIT}), "bottom-right"
);
const status = document.getElementById("wg-status");
window.wgViewer = {map, opened: null, drawn: false, error: null};
function show(url, name) {
  const style = JSON.parse(JSON.stringify(STYLE));
  style.sources.wangge.url = url;
  window.wgViewer.drawn = false;
  map.setStyle(style);
  map.once("idle", () => {
    window.wgViewer.opened = name;
    window.wgViewer.drawn = true;
    status.textContent = "已打开 opened " + name;
  });
}
async function openFile(file) {
  try {
    const archive = new pmtiles.PMTiles(new pmtiles.FileSource(file));
    const header = await archive.getHeader();
    if (header.tileType !== 1) throw new Error("not a vector tile package");
    protocol.add(archive);
    show("pmtiles://" + file.name, file.name);
  } catch (e) {
    window.wgViewer.error = String(e);
    status.textContent = "无法打开 cannot open " + file.name + ": " + e;
  }
}
document.getElementById("wg-file").addEventListener("change", (event) => {
  if (event.target.files.length) openFile(event.target.files[0]);
});
if (location.protocol === "http:" || location.protocol === "https:") {
  show("pmtiles://" + new URL(ARCHIVE, location.href).href, ARCHIVE);
}
"""


def viewer_html(metadata: dict[str, Any], archive: str) -> str:
    """A self-contained page that opens the PMTiles archive ``archive`` (a file name) with
    the package's style: from a file chooser when opened as a file, or from beside the
    page when served over HTTP. It loads nothing from anywhere else
    (:func:`wangge.maps.webmap.check_offline`)."""
    js, css, pm = _vendored()
    style = package_style(metadata, f"pmtiles://{archive}")
    lo, hi = metadata.get("wangge", {}).get("grid_band", (300, 500))
    _, labels = household_classes([], lo, hi)
    legend = "".join(
        f'<div><i style="background:{c}"></i>{html.escape(label)} 户</div>'
        for c, label in zip(PALETTE, labels, strict=True)
    )
    legend += f'<div><i style="background:{DEDICATED}"></i>专属网格 dedicated grid</div>'
    sample = metadata.get("wangge", {}).get("sample")
    banner = f'<div class="wg-banner" role="alert">{html.escape(SAMPLE_BANNER)}</div>'
    title = html.escape(metadata.get("description") or metadata.get("name", "wangge"))
    data = {
        "STYLE": style,
        "BOUNDS": metadata["bounds"],
        "ARCHIVE": archive,
        "CREDIT": credit_html(metadata.get("attribution", "")),
        "FONTS": IDEOGRAPH_FONTS,
    }
    consts = "".join(f"const {k} = {js_literal(v)};\n" for k, v in data.items())
    page = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style><style>{_CSS}</style>
<script>{js}</script><script>{pm}</script>
</head><body>
<div id="map"></div>
<div class="wg-panel"><h1>{title}</h1>{banner if sample else ""}
<label>打开离线包 open the package <b>{html.escape(archive)}</b>:<br>
<input type="file" id="wg-file" accept=".pmtiles"></label>
<div class="wg-status" id="wg-status">选择上面的文件 choose the file above</div>
<details class="wg-legend" open><summary>户数 households per grid</summary>{legend}</details>
</div>
<script>
{consts}{_SCRIPT}</script>
</body></html>
"""
    check_offline(page)
    return page


def write_view(path: Path, metadata: dict[str, Any], viewer: bool = True) -> list[Path]:
    """Write the style (``demo.pmtiles.style.json`` beside ``demo.pmtiles``) and, for a
    PMTiles archive, the viewer page (``demo.html``) unless ``viewer`` is false; the paths
    written."""
    path = Path(path)
    pmtiles = path.suffix.lower() == ".pmtiles"
    url = f"pmtiles://{path.name}" if pmtiles else f"mbtiles://{path.stem}"
    style_path = path.with_name(f"{path.name}.style.json")
    style = json.dumps(package_style(metadata, url), ensure_ascii=False, indent=1)
    style_path.write_text(style, encoding="utf-8")
    written = [style_path]
    if viewer and pmtiles:
        page = path.with_name(f"{path.stem}.html")
        page.write_text(viewer_html(metadata, path.name), encoding="utf-8")
        written.append(page)
    return written
