"""The basemap under a web map: MapLibre, inlined, drawn beneath the Leaflet page.

The four web maps (plan, risk, heatmap, coverage gaps) are single HTML files opened from
disk on intranets, with no tile server behind them. Their basemap is the plan's own
(:mod:`wangge.data.basemap`), drawn by the style the editor and the tile packages use
(:func:`wangge.maps.basemap_style.basemap_style_layers`) so a road looks the same
everywhere: a MapLibre map fills the Leaflet map's box beneath its panes, reads the basemap
layers as GeoJSON sources held in the page, and follows every pan and zoom of the Leaflet
map (MapLibre's zoom is Leaflet's less one: 512-pixel tiles against 256). Leaflet keeps
the grids, the risk layers, tooltips and the layer switch on top; MapLibre places the road
and place names along their lines and drops those that collide, which Leaflet cannot.

Why MapLibre and not Leaflet vectors: one style for every map, labels that follow roads
and make room for each other, and text drawn with the browser's own fonts (no glyph URL,
:mod:`wangge.maps.basemap_style`). Its script (1 MB) and the basemap's GeoJSON ride in the
page gzipped and base64-encoded (a quarter of the size), and the browser's own
``DecompressionStream`` unpacks them: nothing is fetched, from the network or from a file.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from functools import cache

import folium
import geopandas as gpd
import shapely
from branca.element import Element

from wangge.data.basemap import BASEMAP_FIELDS, BASEMAP_LAYERS
from wangge.maps.basemap_style import IDEOGRAPH_FONTS, LAND, basemap_style_layers
from wangge.maps.webmap import VENDOR, js_literal, lonlat

#: The box MapLibre draws in: the Leaflet map's own, beneath its panes, letting the mouse
#: through to them.
CSS = ".wg-basemap{position:absolute;inset:0;z-index:0;pointer-events:none}"

#: Builds the MapLibre map under the Leaflet map ``LMAP`` and keeps it in step. Sets
#: ``window.wgBasemap`` (the MapLibre map, ``drawn`` once it has drawn, ``error``) for
#: a test to read.
_SCRIPT = """
window.wgBasemap = {map: null, drawn: false, error: null};
// after the page's own script has made the Leaflet map
document.addEventListener("DOMContentLoaded", async () => {
  const lmap = LMAP;
  const state = window.wgBasemap;
  const unzip = async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  };
  try {
    if (!window.maplibregl) {
      const script = document.createElement("script");
      script.text = await unzip(GL);
      document.head.appendChild(script);
    }
    const data = JSON.parse(await unzip(DATA));
    const style = {version: 8, sources: {}, layers: [
      {id: "basemap-land", type: "background", paint: {"background-color": LAND}},
    ]};
    for (const [name, collection] of Object.entries(data)) {
      style.sources[name] = {type: "geojson", data: collection};
    }
    style.layers.push(...LAYERS.filter((layer) => layer.source in style.sources));
    const box = document.createElement("div");
    box.className = "wg-basemap";
    lmap.getContainer().prepend(box);
    const at = () => {
      const c = lmap.getCenter();
      return {center: [c.lng, c.lat], zoom: lmap.getZoom() - 1};
    };
    const gl = new maplibregl.Map({
      container: box, style, ...at(), interactive: false, attributionControl: false,
      fadeDuration: 0, localIdeographFontFamily: FONTS, preserveDrawingBuffer: true,
    });
    state.map = gl;
    lmap.on("move zoom viewreset", () => gl.jumpTo(at()));
    lmap.on("zoomanim", (e) => gl.easeTo({
      center: [e.center.lng, e.center.lat], zoom: e.zoom - 1, duration: 250,
    }));
    lmap.on("resize", () => { gl.resize(); gl.jumpTo(at()); });
    gl.once("idle", () => { state.drawn = true; });
  } catch (e) {
    state.error = String(e);
  }
});
"""


def basemap_of(layers: Mapping) -> dict[str, gpd.GeoDataFrame]:
    """The basemap layers among ``layers`` (a dict of frames, a plan's metric layers, or
    a :class:`wangge.data.plan.Plan`), beneath first; none when the plan has no basemap."""
    out = {}
    for name in BASEMAP_LAYERS:
        frame = layers.get(name)
        if frame is not None and len(frame):
            out[name] = frame
    return out


@cache
def _maplibre() -> str:
    """The vendored MapLibre GL JS, gzipped and base64-encoded."""
    data = (VENDOR / "maplibre-gl.js").read_bytes()
    return base64.b64encode(gzip.compress(data, 9, mtime=0)).decode("ascii")


def _packed(basemap: Mapping[str, gpd.GeoDataFrame]) -> str:
    """The basemap layers as GeoJSON (the attributes the style reads, as they are: text
    here is drawn, not read as HTML), gzipped and base64-encoded."""
    collections = {}
    for name, frame in basemap.items():
        keep = [c for c in BASEMAP_FIELDS[name] if c in frame]
        rows = frame[keep].astype(object).where(frame[keep].notna(), None).to_dict("records")
        collections[name] = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {k: _plain(v) for k, v in row.items() if v is not None},
                    "geometry": shapely.geometry.mapping(geom),
                }
                for geom, row in zip(lonlat(frame), rows, strict=True)
                if geom is not None and not geom.is_empty
            ],
        }
    text = json.dumps(collections, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(gzip.compress(text.encode("utf-8"), 9, mtime=0)).decode("ascii")


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def add_basemap(m: folium.Map, basemap: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Put the basemap under the finished Leaflet map ``m`` (nothing when it is empty)."""
    if not basemap:
        return
    consts = {
        "GL": _maplibre(),
        "DATA": _packed(basemap),
        "LAYERS": basemap_style_layers(None),
        "LAND": LAND,
        "FONTS": IDEOGRAPH_FONTS,
    }
    code = "".join(f"const {k} = {js_literal(v)};\n" for k, v in consts.items())
    root = m.get_root()
    root.header.add_child(Element(f"<style>{CSS}</style>"), name="wangge_basemap_css")
    script = code + _SCRIPT.replace("LMAP", m.get_name())
    # a block of its own: the constants stay out of the page's global names
    root.script.add_child(Element(f"{{\n{script}}}\n"), name="wangge_basemap")
