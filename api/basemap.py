"""The plan's basemap as one vector tile source with its MapLibre style.

``GET /basemap/{z}/{x}/{y}.mvt`` answers one tile holding every basemap layer of the
version (:data:`wangge.data.basemap.BASEMAP_LAYERS`: areas, lines, roads, places), and
``GET /basemap/style.json`` the style that draws it (:mod:`wangge.maps.basemap_style`),
which the editor puts under the plan and any MapLibre client (or QGIS) can open. Each
layer's tile is cut and cached by the route every layer's tiles come from
(:mod:`wangge.api.tiles`), on either store; a Tile message is its repeated ``layers``
field, so the basemap tile is those tiles' bytes one after the other. A plan stored before
the basemap existed has none: the routes answer 404 and say how to make one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from wangge.api.auth import READ
from wangge.api.deps import PlanQuery
from wangge.api.errors import ERRORS, ErrorBody
from wangge.api.tiles import (
    MAX_ZOOM,
    MVT,
    _check_tile,
    get_tiler,
    joined,
    layer_tile,
    tile_response,
)
from wangge.data.basemap import BASEMAP_LAYERS
from wangge.data.osm import credit_of
from wangge.errors import NotFound
from wangge.maps.basemap_style import basemap_style
from wangge.maps.webmap import credit_html

router = APIRouter(tags=["tiles"], dependencies=[READ])
VersionParam = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
NO_BASEMAP = {"model": ErrorBody, "description": "Unknown plan or version, or no basemap in it"}


def _layers(tiler, plan_id: str, number: int) -> list:
    """The basemap layers of a version (infos), beneath first; 404 when it has none."""
    infos = tiler.store.layer_infos(plan_id, number)
    if not infos:
        tiler.store.resolve(plan_id, number)  # NotFound naming what exists
    found = [infos[n] for n in BASEMAP_LAYERS if n in infos and infos[n].geometry_type]
    if not found:
        raise NotFound(
            f"plan {plan_id!r} version {number} has no basemap: it was stored before wangge "
            "kept one; delineate it again from its OSM file (or units.gpkg) and import it",
            where="plan",
        )
    return found


@router.get(
    "/basemap/{z}/{x}/{y}.mvt",
    responses={
        **ERRORS,
        200: {"content": {MVT: {}}, "description": "A Mapbox Vector Tile of the basemap"},
        304: {"description": "The tile is unchanged (If-None-Match)"},
        404: NO_BASEMAP,
    },
    response_class=Response,
)
async def basemap_tile(
    request: Request,
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1, description="Column, below 2^z")],
    y: Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1, description="Row, below 2^z")],
    plan: PlanQuery = None,
    version: VersionParam = None,
) -> Response:
    """One basemap tile: an MVT layer per basemap layer (``basemap_areas``,
    ``basemap_lines``, ``basemap_roads``, ``basemap_places``), names of roads and places
    included. With ``version`` it never changes (cached for a year)."""
    _check_tile(z, x, y)
    tiler = get_tiler(request)
    plan_id = tiler.plan_id(request, plan)
    number = version if version is not None else tiler.latest(plan_id)
    parts = [
        await layer_tile(request, tiler, plan_id, number, info, z, x, y)
        for info in _layers(tiler, plan_id, number)
    ]
    return tile_response(request, *joined(parts), pinned=version is not None)


@router.get("/basemap/style.json", responses={**ERRORS, 404: NO_BASEMAP})
def basemap_style_json(
    request: Request, plan: PlanQuery = None, version: VersionParam = None
) -> dict[str, Any]:
    """The basemap's MapLibre style (version 8): roads by class with their names, water,
    green, rail and place names, over the tiles of ``/basemap/{z}/{x}/{y}.mvt``. It has
    no ``glyphs`` URL: MapLibre draws the labels with the browser's own fonts."""
    tiler = get_tiler(request)
    plan_id = tiler.plan_id(request, plan)
    v = tiler.store.resolve(plan_id, version)
    infos = _layers(tiler, plan_id, v.version)
    boxes = [i.bbox for i in infos if i.bbox]
    bounds = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    query = f"plan={plan_id}" + (f"&version={version}" if version is not None else "")
    base = str(request.base_url).rstrip("/")
    return basemap_style(
        f"{base}/basemap/{{z}}/{{x}}/{{y}}.mvt?{query}",
        bounds,
        credit_html(credit_of(v.meta)),
        name=f"wangge basemap · {plan_id} v{v.version}",
    )
