"""The one MapLibre style of the basemap: roads by class with their names, water, green, rail
and the names of places (:mod:`wangge.data.basemap`).

The editor (``GET /basemap/style.json``), the four web maps (GeoJSON inlined in the page:
:mod:`wangge.maps.basemap_page`) and the viewer of an offline tile package draw the basemap
with the layers made here, so a road looks the same in all of them; only the source
differs (:func:`basemap_style_layers`). Roads widen with the zoom, from hairlines at the
district (z12) to streets with casings at one compound (z18), and each class keeps its
colour, so the main roads read at every zoom. The plan's layers are always drawn above.

Text needs no glyph server: the style has no ``glyphs`` URL, so MapLibre (5.x) draws every
character with the browser's own fonts (TinySDF), Chinese ones with the map's
``localIdeographFontFamily``. :data:`FONTS` names the fonts wangge's deployments have
(WenQuanYi Micro Hei is installed with chromium by ``scripts/ensure_services.sh``; Noto
Sans CJK, Microsoft YaHei and PingFang on the planners' own machines), falling back to
the system's sans-serif. Nothing is fetched, over the network or from a file.
"""

from __future__ import annotations

from typing import Any

from wangge.data.basemap import BASEMAP_LAYERS

#: The font stack of every label: the first a browser has draws it.
FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "sans-serif"]
#: The fonts MapLibre draws Chinese characters with (its ``localIdeographFontFamily``).
IDEOGRAPH_FONTS = ", ".join(f"'{f}'" if " " in f else f for f in FONTS)
#: The land colour under the basemap.
LAND = "#f2efe9"
WATER = "#a9d3e4"
GREEN = "#cfe6b8"
CASING = "#b9b0a2"

#: Each road class: its fill colour, its width in pixels at zooms 12, 14, 16 and 18, and the
#: zoom it appears at. The widths grow by about 1.6 per zoom, as streets do on screen.
ROADS: dict[str, tuple[str, tuple[float, float, float, float], float]] = {
    "motorway": ("#e9a06b", (2.2, 4.0, 9.0, 20.0), 8),
    "trunk": ("#f2b77a", (2.0, 3.6, 8.5, 19.0), 8),
    "primary": ("#fcd49b", (1.8, 3.2, 8.0, 18.0), 9),
    "secondary": ("#f6f3b0", (1.4, 2.6, 7.0, 16.0), 10),
    "tertiary": ("#ffffff", (1.0, 2.0, 6.0, 14.0), 11),
    "minor": ("#ffffff", (0.5, 1.2, 4.0, 10.0), 12),
    "service": ("#ffffff", (0.3, 0.6, 2.0, 6.0), 14),
}
#: Paths (footways, steps, pedestrian streets): a thin dashed line from this zoom.
PATH = ("#c88e80", 15)
#: Labels of places, by kind: the text colour.
PLACE_COLOURS = {
    "school": "#7a4a00",
    "hospital": "#b3261e",
    "compound": "#3b3b3b",
    "park": "#2f6b2f",
    "water": "#2a6493",
    "facility": "#545454",
    "building": "#6b6b6b",
}
#: Place kinds labelled from z14 (the rest from z15.5: facilities, named buildings).
MAJOR_PLACES = ("school", "hospital", "compound", "park", "water")


def _width(widths: tuple[float, float, float, float], extra: float = 0.0) -> list:
    stops: list[Any] = ["interpolate", ["exponential", 1.6], ["zoom"]]
    for z, w in zip((12, 14, 16, 18), widths, strict=True):
        stops += [z, round(w + extra, 2)]
    return stops


def _class_is(*classes: str) -> list:
    return ["match", ["get", "class"], list(classes), True, False]


def basemap_style_layers(source: str | None = None) -> list[dict[str, Any]]:
    """The basemap's MapLibre layers, beneath first.

    Parameters
    ----------
    source
        The vector source holding the basemap layers (served tiles or a package): each
        layer reads its ``source-layer`` from it. None for GeoJSON sources named after the
        layers themselves (the web maps).

    Returns
    -------
    list of dict
        Areas, waterways, rail, road casings and fills by class, then the labels: road and
        waterway names along their lines and the names of places, better-ranked first.
    """
    areas, lines, roads, places = BASEMAP_LAYERS
    out: list[dict[str, Any]] = [
        _fill("basemap-water", areas, ["==", ["get", "kind"], "water"], WATER, 1.0),
        _fill("basemap-green", areas, ["==", ["get", "kind"], "green"], GREEN, 0.9),
        _fill("basemap-school", areas, ["==", ["get", "kind"], "school"], "#efe3cf", 0.8),
        _fill("basemap-hospital", areas, ["==", ["get", "kind"], "hospital"], "#f5dcdc", 0.8),
        {
            "id": "basemap-waterway",
            "type": "line",
            "source": lines,
            "filter": ["==", ["get", "class"], "waterway"],
            "paint": {"line-color": WATER, "line-width": _width((1.0, 2.0, 4.0, 8.0))},
        },
        {
            "id": "basemap-rail",
            "type": "line",
            "source": lines,
            "filter": ["==", ["get", "class"], "railway"],
            "paint": {
                "line-color": "#8f8f8f",
                "line-width": _width((1.0, 1.5, 2.5, 3.5)),
                "line-dasharray": [3, 2],
            },
        },
        {
            "id": "basemap-path",
            "type": "line",
            "source": roads,
            "minzoom": PATH[1],
            "filter": _class_is("path"),
            "paint": {"line-color": PATH[0], "line-width": 1.2, "line-dasharray": [2, 1.5]},
        },
    ]
    # casings first (all classes), then fills from minor to motorway, so a junction shows
    # the bigger road on top
    for cls, (_, widths, minzoom) in reversed(ROADS.items()):
        out.append(
            {
                "id": f"basemap-road-{cls}-casing",
                "type": "line",
                "source": roads,
                "minzoom": max(minzoom, 13),
                "filter": _class_is(cls),
                "layout": {"line-cap": "round", "line-join": "round"},
                "paint": {"line-color": CASING, "line-width": _width(widths, 1.5)},
            }
        )
    for cls, (colour, widths, minzoom) in reversed(ROADS.items()):
        out.append(
            {
                "id": f"basemap-road-{cls}",
                "type": "line",
                "source": roads,
                "minzoom": minzoom,
                "filter": _class_is(cls),
                "layout": {"line-cap": "round", "line-join": "round"},
                # below z13 a white street on the light land would vanish: grey until then
                "paint": {
                    "line-color": ["step", ["zoom"], "#c4bcb0", 13, colour]
                    if colour == "#ffffff"
                    else colour,
                    "line-width": _width(widths),
                },
            }
        )
    return [_sourced(layer, source) for layer in out + _labels(lines, roads, places)]


def _labels(lines: str, roads: str, places: str) -> list[dict[str, Any]]:
    halo = {"text-halo-color": "#ffffff", "text-halo-width": 1.6}
    major = ["motorway", "trunk", "primary", "secondary", "tertiary"]
    return [
        {
            "id": "basemap-waterway-label",
            "type": "symbol",
            "source": lines,
            "minzoom": 14,
            "filter": ["all", ["==", ["get", "class"], "waterway"], ["has", "name"]],
            "layout": {
                **_text(11, 13),
                "symbol-placement": "line",
                "symbol-spacing": 300,
            },
            "paint": {"text-color": PLACE_COLOURS["water"], **halo},
        },
        _road_label("basemap-road-label-major", roads, major, 13, halo),
        _road_label("basemap-road-label-minor", roads, ["minor", "service"], 15, halo),
        _road_label("basemap-road-label-path", roads, ["path"], 16, halo),
        _places("basemap-place-major", places, MAJOR_PLACES, 14, halo),
        _places("basemap-place-minor", places, ("facility", "building"), 15.5, halo),
    ]


def _road_label(name: str, layer: str, classes: list, minzoom: float, halo: dict) -> dict:
    return {
        "id": name,
        "type": "symbol",
        "source": layer,
        "minzoom": minzoom,
        "filter": ["all", ["has", "name"], _class_is(*classes)],
        "layout": {**_text(10.5, 13.5), "symbol-placement": "line", "symbol-spacing": 250},
        "paint": {"text-color": "#333333", **halo},
    }


def _text(small: float, large: float) -> dict[str, Any]:
    return {
        "text-field": ["get", "name"],
        "text-font": FONTS,
        "text-size": ["interpolate", ["linear"], ["zoom"], 13, small, 18, large],
        "text-max-width": 8,
    }


def _places(
    name: str, layer: str, kinds: tuple[str, ...], minzoom: float, halo: dict
) -> dict[str, Any]:
    colours: list[Any] = ["match", ["get", "kind"]]
    for kind in kinds:
        colours += [kind, PLACE_COLOURS[kind]]
    colours.append("#545454")
    return {
        "id": name,
        "type": "symbol",
        "source": layer,
        "minzoom": minzoom,
        "filter": ["match", ["get", "kind"], list(kinds), True, False],
        "layout": {**_text(11, 13), "symbol-sort-key": ["get", "rank"], "text-padding": 4},
        "paint": {"text-color": colours, **halo},
    }


def _fill(name: str, layer: str, where: list, colour: str, opacity: float) -> dict[str, Any]:
    return {
        "id": name,
        "type": "fill",
        "source": layer,
        "filter": where,
        "paint": {"fill-color": colour, "fill-opacity": opacity},
    }


def _sourced(layer: dict[str, Any], source: str | None) -> dict[str, Any]:
    """``layer`` reading its source layer from ``source`` (None: a GeoJSON source of that
    name)."""
    if source is None:
        return layer
    return {**layer, "source": source, "source-layer": layer["source"]}


def basemap_style(
    tiles: str, bounds: list[float], attribution: str, name: str = "wangge basemap"
) -> dict[str, Any]:
    """A whole MapLibre style (version 8) of the basemap served as vector tiles.

    Parameters
    ----------
    tiles
        The tile URL template (``…/basemap/{z}/{x}/{y}.mvt?plan=…``).
    bounds
        ``[west, south, east, north]`` of the basemap (WGS84).
    attribution
        The source's attribution (HTML): OpenStreetMap's, with its link, where OSM was read.
    name
        The style's name.
    """
    return {
        "version": 8,
        "name": name,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2],
        "zoom": 14,
        "sources": {
            "basemap": {
                "type": "vector",
                "tiles": [tiles],
                "bounds": bounds,
                "minzoom": 0,
                "maxzoom": 18,
                "attribution": attribution,
            }
        },
        "layers": [
            {"id": "basemap-land", "type": "background", "paint": {"background-color": LAND}},
            *basemap_style_layers("basemap"),
        ],
    }
