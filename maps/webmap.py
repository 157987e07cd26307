"""The shared parts of wangge's web maps: an offline folium map, its layers, legend and page.

Every map is one HTML file made with folium (Leaflet) that opens the same on an intranet with
no internet. Nothing is fetched: folium's CDN scripts and stylesheets are dropped, Leaflet is
inlined from the copy vendored in ``maps/static/vendor`` (the images its stylesheet names
become ``data:`` URIs), there is no basemap tile layer, and :func:`page` refuses a page that
would still load a script, a stylesheet or an image from elsewhere (:func:`check_offline`).
The only addresses left are links, such as the OpenStreetMap copyright page in the
attribution.

Layers are GeoJSON in EPSG:4326, simplified by 5 cm and rounded to 6 decimals (about 0.1 m),
written as compact UTF-8 JSON, with only the properties their tooltip shows (escaped here,
once); folium writes each distinct style once with the ids of its features. Layers lie in
panes by role (:data:`PANES`), so ticking one off and on again keeps the stacking.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element
from folium.utilities import JsCode

from wangge.data.osm import ATTRIBUTION as OSM_CREDIT
from wangge.data.osm import ATTRIBUTION_ZH, uses_osm

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"
OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"
SAMPLE_BANNER = (
    "样例数据 SAMPLE DATA — 风险点/设施为生成的样例，不是真实记录 / "
    "risk points and facilities are generated samples, not real records"
)
#: OpenStreetMap's attribution line: English with the link, then Chinese.
ATTRIBUTION_HTML = (
    f'Map data {ATTRIBUTION} (<a href="{OSM_COPYRIGHT}">{OSM_COPYRIGHT}</a>) · {ATTRIBUTION_ZH}'
)


def credit_html(credit: str) -> str:
    """The attribution line of a page for a plan's credit (:func:`data.osm.attribution`):
    OpenStreetMap's with its link where the plan used OSM, the user's files by name."""
    parts = [
        ATTRIBUTION_HTML if uses_osm(part) else html.escape(part) for part in credit.split("; ")
    ]
    return " · ".join(parts)


VENDOR = Path(__file__).parent / "static" / "vendor"
#: Decimals kept of a longitude or latitude: 1e-6 degree is about 0.1 m.
PRECISION = 6
#: Douglas-Peucker tolerance in degrees (about 5 cm, below the rounding): it drops the
#: near-collinear vertices that unions of blocks leave along straight edges (half of a
#: grid's, most of a community's) and moves no boundary by anything that shows.
SIMPLIFY = 5e-7
#: The plain background where a basemap would be.
BACKGROUND = "#f4f4f0"
#: Map panes by role, bottom to top, with their z-index (Leaflet's own overlay pane, where
#: the grids lie, is 400). A layer ticked off and on again goes back into its pane, not on
#: top of everything, so points stay above the polygons that would hide them and take
#: their tooltips. The panes let the mouse through; interactive paths take it back.
PANES = {"image": 390, "upper": 410, "lines": 420, "points": 430}

CSS = (
    f"body{{font-family:sans-serif}} .leaflet-container{{background:{BACKGROUND}}}"
    + """
.wg-title{position:absolute;top:8px;left:50%;transform:translateX(-50%);z-index:1000;
max-width:70%;text-align:center;pointer-events:none}
.wg-title h1{display:inline-block;margin:0;padding:4px 12px;font-size:17px;
background:rgba(255,255,255,.9);border:1px solid #bbb;border-radius:4px}
.wg-banner{margin-top:4px;background:#fff3cd;border:2px solid #d39e00;color:#6b4e00;
padding:4px 10px;font-weight:bold;font-size:13px;pointer-events:auto}
.wg-legend{position:absolute;left:10px;bottom:56px;z-index:1000;background:rgba(255,255,255,.94);
border:1px solid #999;border-radius:4px;padding:6px 10px;font-size:12px;max-height:60%;
max-width:360px;overflow:auto;box-shadow:0 1px 4px rgba(0,0,0,.25)}
.wg-legend summary{font-weight:bold;cursor:pointer}
.wg-legend h4{margin:8px 0 3px;font-size:12px} .wg-legend div{margin:2px 0}
.wg-legend svg{vertical-align:middle;margin-right:6px}
.wg-legend table{border-collapse:collapse;margin:4px 0;font-size:11px}
.wg-legend td,.wg-legend th{border:1px solid #bbb;padding:1px 5px;text-align:right}
.wg-legend td:first-child,.wg-legend th:first-child{text-align:left}
.wg-defs{position:absolute;width:0;height:0;overflow:hidden}
.wg-attribution{position:absolute;right:0;bottom:0;z-index:1000;font-size:12px;color:#333;
background:rgba(255,255,255,.85);padding:1px 6px;line-height:1.4}
.wg-tip{font-size:12px} .wg-tip th{text-align:left;padding-right:8px;color:#444}
.leaflet-control-layers-expanded{font-size:12px;max-height:70vh;overflow:auto}
"""
)

#: Tags whose ``src``/``href`` a browser fetches by itself (an ``<a href>`` is only a link).
_FETCHING = re.compile(
    r"<(?:script|link|img|iframe|source|embed|object|audio|video|track|image|use)\b[^>]*?"
    r"\b(?:src|href|data|srcset|xlink:href)\s*=\s*(?![\"']?\s*(?:data:|#))",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"url\(\s*(?![\"']?\s*(?:data:|#))", re.IGNORECASE)
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.IGNORECASE | re.DOTALL)


class OfflineError(RuntimeError):
    """A rendered map still names something the browser would fetch from elsewhere."""


# --- values and features --------------------------------------------------------------------


def has_sample(*frames) -> bool:
    """True when any frame has a ``sample`` column with a true value."""
    for f in frames:
        if f is None or "sample" not in f or not len(f):
            continue
        if pd.Series(f["sample"]).fillna(False).astype(bool).any():
            return True
    return False


def fmt(v, spec: str = "g", missing: str = "–") -> str:
    """Format a number, or ``missing`` for None/NaN."""
    try:
        if v is None or pd.isna(v):
            return missing
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def text(v) -> str:
    """A value as plain text: ``""`` for None and NaN."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    return str(v)


def true(v) -> bool:
    """A flag read from a record: NaN and None are false."""
    return False if v is None or (not isinstance(v, str) and pd.isna(v)) else bool(v)


def records(frame: gpd.GeoDataFrame | None) -> list[dict]:
    """The attributes of each row (no geometry); none for a missing or empty frame."""
    if frame is None or not len(frame):
        return []
    return frame.drop(columns=frame.geometry.name).to_dict("records")


def lonlat(frame: gpd.GeoDataFrame) -> np.ndarray:
    """The geometries of ``frame`` in EPSG:4326, simplified by :data:`SIMPLIFY` and rounded
    to :data:`PRECISION` decimals."""
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    geoms = shapely.simplify(frame.geometry.to_numpy(), SIMPLIFY, preserve_topology=True)
    return shapely.transform(geoms, lambda xy: np.round(xy, PRECISION), include_z=False)


def _value(v):
    """A property as JSON: strings escaped for the tooltip's HTML, None and NaN as ``""``."""
    if isinstance(v, str):
        return html.escape(v)
    if v is None or pd.isna(v):
        return ""
    return v.item() if isinstance(v, np.generic) else v


def features(frame: gpd.GeoDataFrame | None, props: Iterable[dict] | None = None) -> dict:
    """A GeoJSON FeatureCollection of ``frame`` in EPSG:4326 for a folium layer.

    Parameters
    ----------
    frame
        Any CRS; rows without a geometry are left out.
    props
        One dict of properties per row of ``frame``: only what the layer's tooltip shows.
        Strings are HTML-escaped, since tooltips show them as HTML; None and NaN become
        ``""``.

    Returns
    -------
    dict
        The FeatureCollection. Each feature's ``id`` is its row's position in ``frame``
        (as a string), which :func:`geojson` uses to find the row's style.
    """
    if frame is None or not len(frame):
        return {"type": "FeatureCollection", "features": []}
    props = list(props) if props is not None else [{} for _ in range(len(frame))]
    out = []
    for i, (geom, p) in enumerate(zip(lonlat(frame), props, strict=True)):
        if geom is None or geom.is_empty:
            continue
        clean = {k: _value(v) for k, v in p.items()}
        out.append(
            {
                "type": "Feature",
                "id": str(i),
                "properties": clean,
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    return {"type": "FeatureCollection", "features": out}


def bounds(*frames) -> tuple[float, float, float, float] | None:
    """``(west, south, east, north)`` of every non-empty frame in EPSG:4326, or None."""
    boxes = []
    for f in frames:
        if f is None or not len(f) or f.geometry.isna().all() or f.geometry.is_empty.all():
            continue
        b = (f.to_crs(4326) if f.crs is not None else f).total_bounds
        if np.isfinite(b).all():
            boxes.append(b)
    if not boxes:
        return None
    b = np.vstack(boxes)
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


# --- the map and its layers -----------------------------------------------------------------


def new_map(*frames) -> folium.Map:
    """A folium map with no tiles and no CDN links, fitted to the extent of ``frames``."""
    box = bounds(*frames) or (-0.01, -0.01, 0.01, 0.01)
    west, south, east, north = (float(v) for v in box)
    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=15,
        tiles=None,
        control_scale=True,
        max_zoom=22,
        zoom_snap=0.25,
        # the attribution is a fixed element of the page (see finish): Leaflet's control
        # would register a listener on every path added, a tenth of a large map's drawing
        attribution_control=False,
    )
    # folium's defaults fetch Leaflet, jQuery, Bootstrap and fonts from CDNs: none is used
    # here, and Leaflet itself is inlined by finish()
    m.default_js = []
    m.default_css = []
    for role, z in PANES.items():
        folium.map.CustomPane(pane(role), z_index=z).add_to(m)
    m.fit_bounds(
        [[south, west], [north, east]], padding_top_left=(10, 50), padding_bottom_right=(10, 10)
    )
    return m


def pane(role: str) -> str:
    """The name of the map pane of ``role`` (see :data:`PANES`)."""
    if role not in PANES:
        raise ValueError(f"unknown pane {role!r}; use one of {', '.join(PANES)}")
    return f"wg-{role}"


def geojson(
    collection: dict,
    name: str,
    style: dict | Sequence[dict],
    tooltip: Sequence[tuple[str, str]] = (),
    radius: float | None = None,
    show: bool = True,
    control: bool = True,
    interactive: bool = True,
    canvas: bool = False,
    role: str | None = None,
) -> folium.GeoJson:
    """A GeoJSON layer: styled per feature, with a tooltip table, points as circle markers.

    Parameters
    ----------
    collection
        A FeatureCollection from :func:`features`.
    name
        The layer's name in the layer control.
    style
        A Leaflet path style for every feature, or one per row of the frame the collection
        was made of (they may set ``radius`` for points). folium writes each distinct style
        once, with the ids of the features that have it.
    tooltip
        ``(property, label)`` pairs shown on hover, in order.
    radius
        Radius in pixels of the circle marker drawn for each point.
    show, control
        Shown on opening; listed in the layer control.
    interactive
        False for a layer that only draws (no tooltip, lets the mouse through).
    canvas
        Draw on a canvas of its own instead of the map's SVG: much faster for thousands of
        shapes that only draw. Only for the bottom layer, added before any SVG layer: a
        canvas above the SVG would take the mouse from it.
    role
        The pane (:data:`PANES`) of a layer that lies above the grids; None for Leaflet's
        overlay pane.
    """
    fixed = isinstance(style, dict)
    styles = [style] if fixed else list(style)
    every = {} if interactive else {"interactive": False}
    if role is not None:
        every["pane"] = pane(role)

    def pick(feature: dict) -> dict:
        # folium builds a point's circle marker from the style (its CircleMarker drops
        # ``interactive`` and ``pane``), a polygon from the layer's options: both get them
        return {**styles[0 if fixed else int(feature["id"])], **every}

    tip = None
    if tooltip and collection["features"]:
        tip = folium.GeoJsonTooltip(
            fields=[f for f, _ in tooltip],
            aliases=[a for _, a in tooltip],
            sticky=True,
            class_name="wg-tip",
        )
    options = {**every, **({"renderer": JsCode("L.canvas()")} if canvas else {})}
    return folium.GeoJson(
        collection,
        name=name,
        style_function=pick,
        tooltip=tip,
        marker=folium.CircleMarker(radius=radius, fill=True) if radius else None,
        show=show,
        control=control,
        **options,
    )


def outlines(frame: gpd.GeoDataFrame | None, name: str, colour: str, show: bool = True):
    """The grids as unfilled outlines whose tooltip gives code, name and households.

    The fill is there but transparent, so that the tooltip shows anywhere inside a grid.
    """
    props = [
        {
            "code": text(r.get("code")),
            "name": text(r.get("name")),
            "hh": f"{fmt(r.get('households'))} 户",
        }
        for r in records(frame)
    ]
    style = {"color": colour, "weight": 1, "fill": True, "fillColor": "#ffffff", "fillOpacity": 0}
    tip = [("code", "网格 grid"), ("name", "名称 name"), ("hh", "户数 households")]
    return geojson(features(frame, props), name, style, tip, show=show)


# --- legend pieces --------------------------------------------------------------------------


def _icon(inner: str, width: int = 22, height: int = 14) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-hidden="true">{inner}</svg>'
    )


def swatch_rect(
    fill: str, stroke: str = "#444", dash: str | None = None, opacity: float = 1, width=1
) -> str:
    """A legend square: ``fill`` (``none`` for an outline), ``stroke`` and a dash array."""
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return _icon(
        f'<rect x="2" y="2" width="18" height="10" fill="{fill}" fill-opacity="{opacity:g}" '
        f'stroke="{stroke}" stroke-width="{width:g}"{d}/>'
    )


def swatch_hatch(colour: str) -> str:
    """A legend square hatched with diagonal lines of ``colour``."""
    lines = "".join(
        f'<line x1="{x}" y1="12" x2="{x + 10}" y2="2" stroke="{colour}" stroke-width="1.6"/>'
        for x in (2, 6, 10)
    )
    return _icon(f'{lines}<rect x="2" y="2" width="18" height="10" fill="none" stroke="{colour}"/>')


def swatch_circle(
    fill: str, stroke: str = "#222", r: float = 5, opacity: float = 1, width=1, dash=None
) -> str:
    """A legend circle marker of radius ``r`` pixels."""
    d = f' stroke-dasharray="{dash}"' if dash else ""
    size = max(14, int(2 * r + 4))
    return _icon(
        f'<circle cx="{size / 2:g}" cy="{size / 2:g}" r="{r:g}" fill="{fill}" '
        f'fill-opacity="{opacity:g}" stroke="{stroke}" stroke-width="{width:g}"{d}/>',
        width=max(22, size),
        height=size,
    )


def legend_block(title: str, items: Iterable[tuple[str, str]]) -> str:
    """A titled legend section; ``items`` are ``(swatch_html, label)`` pairs (label escaped)."""
    rows = "".join(f"<div>{sw}{html.escape(label)}</div>" for sw, label in items)
    return f"<h4>{html.escape(title)}</h4>{rows}"


def hatch_pattern(pid: str, colour: str, spacing: float = 7.0, width: float = 2.0) -> str:
    """An SVG ``<pattern>`` of diagonal lines; a layer fills with it by ``fillColor: url(#pid)``.

    Leaflet draws every path into one SVG of the page, and a ``url(#id)`` fill finds a
    pattern anywhere in the document, so the patterns sit in a hidden SVG of their own.
    """
    s = f"{spacing:g}"
    return (
        f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="{s}" height="{s}" '
        f'patternTransform="rotate(45)"><rect width="{s}" height="{s}" fill="{colour}" '
        f'fill-opacity="0.12"/><line x1="0" y1="0" x2="0" y2="{s}" stroke="{colour}" '
        f'stroke-width="{width:g}"/></pattern>'
    )


# --- the page -------------------------------------------------------------------------------


@cache
def _leaflet() -> tuple[str, str]:
    """Leaflet's script and stylesheet from the vendored copy, its images as ``data:`` URIs."""
    js = (VENDOR / "leaflet.js").read_text("utf-8").replace("</script", "<\\/script")
    css = (VENDOR / "leaflet.css").read_text("utf-8")

    def inline(match: re.Match) -> str:
        image = VENDOR / "images" / match.group(1)
        if not image.is_file():
            return "none"  # marker-icon.png: only for default markers, which wangge never draws
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\(\s*['\"]?images/([\w.-]+)['\"]?\s*\)", inline, css)
    return js, css


@contextmanager
def _compact_json() -> Iterator[None]:
    """While a page renders, folium's templates write JSON compactly and in UTF-8.

    folium embeds each layer's GeoJSON with jinja's ``tojson`` filter, which by default puts
    a space after every comma and colon and writes each Chinese character as a 6-byte
    ``\\u`` escape: a third of a plan map's size. The filter still escapes ``<``, ``>``,
    ``&`` and ``'``, so the JSON stays safe inside the page's ``<script>``.
    """
    policies = folium.Map._template.environment.policies
    before = policies["json.dumps_kwargs"]
    policies["json.dumps_kwargs"] = {**before, "separators": (",", ":"), "ensure_ascii": False}
    try:
        yield
    finally:
        policies["json.dumps_kwargs"] = before


def js_literal(value) -> str:
    """``value`` as a JavaScript literal (JSON) safe inside a ``<script>`` element."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def check_offline(document: str) -> None:
    """Raise :class:`OfflineError` if ``document`` would fetch anything: a script, stylesheet,
    image or frame with a non-``data:`` address, or a stylesheet ``url(...)``/``@import``."""
    bad = [m.group(0)[:120] for m in _FETCHING.finditer(document)]
    for style in _STYLE.findall(document):
        bad += [style[m.start() : m.start() + 80] for m in _CSS_URL.finditer(style)]
        if "@import" in style:
            bad.append("@import")
    if bad:
        raise OfflineError(f"the map would load from elsewhere: {bad[:3]}")


def finish(
    m: folium.Map,
    title: str,
    legend_html: str,
    sample: bool = False,
    defs: str = "",
    credit: str = OSM_CREDIT,
    basemap: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> folium.Map:
    """Complete ``m`` once every layer is on it: Leaflet inlined, the title, the sample banner
    (when ``sample``), the legend, the attribution, the layer control and the basemap.

    Parameters
    ----------
    m
        A map from :func:`new_map` with its layers.
    title
        The page's title and heading.
    legend_html
        The legend's body (see :func:`legend_block`), in Chinese and English.
    sample
        Whether the map shows sample data (:func:`has_sample`): a banner says so.
    defs
        SVG definitions the layers' fills name, such as :func:`hatch_pattern`.
    credit
        The credit of the data shown (:func:`credit_html`): the plan's.
    basemap
        The plan's basemap layers (:func:`wangge.maps.basemap_page.basemap_of`), drawn
        beneath every layer (:func:`wangge.maps.basemap_page.add_basemap`); none: the plain
        :data:`BACKGROUND`.

    Returns
    -------
    folium.Map
        ``m``, for :func:`page` or :func:`save`.
    """
    js, css = _leaflet()
    root = m.get_root()
    root.title = html.escape(title)
    root.header.add_child(
        Element(f"<style>{css}</style><style>{CSS}</style><script>{js}</script>"),
        name="wangge_leaflet",
    )
    banner = (
        f'<div class="wg-banner" role="alert">{html.escape(SAMPLE_BANNER)}</div>' if sample else ""
    )
    hidden = f'<svg class="wg-defs" aria-hidden="true"><defs>{defs}</defs></svg>' if defs else ""
    root.html.add_child(
        Element(
            f'<div class="wg-title"><h1>{html.escape(title)}</h1>{banner}</div>'
            f'<div class="wg-legend" id="legend"><details open><summary>图例 Legend</summary>'
            f"{legend_html}</details></div>"
            f'<div class="wg-attribution" id="attribution">Leaflet | {credit_html(credit)}</div>'
            f"{hidden}"
        ),
        name="wangge_page",
    )
    folium.LayerControl(collapsed=False).add_to(m)
    if basemap:
        # imported here: the basemap page builds on this module's helpers
        from wangge.maps.basemap_page import add_basemap

        add_basemap(m, basemap)
    return m


def page(m: folium.Map) -> str:
    """The HTML page of a finished map (:func:`finish`), checked by :func:`check_offline`."""
    with _compact_json():
        out = m.get_root().render()
    check_offline(out)
    return out


def save(path: str | Path, m: folium.Map) -> Path:
    """Write the page of a finished map to ``path`` and return it."""
    path = Path(path)
    path.write_text(page(m), "utf-8")
    return path
