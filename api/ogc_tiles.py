"""OGC API – Tiles (Part 1: core, tileset, tilesets list, geodata and dataset tilesets, MVT)
over the plan's vector tiles, in WebMercatorQuad and CGCS2000Quad, with TileJSON.

- ``/tileMatrixSets`` and ``/tileMatrixSets/{id}``: the two tile grids of
  :mod:`wangge.maps.tile_grids` as OGC 2D TMS 2.0 JSON documents;
- ``/collections/{layer}/tiles``: a collection's tilesets, one per grid; each tileset
  (``/collections/{layer}/tiles/{tileMatrixSetId}``) gives its CRS, its
  ``tileMatrixSetLimits`` (the tiles the collection's extent meets, level by level), its
  one layer and its fields, and a templated link to its tiles,
  ``…/{tileMatrix}/{tileRow}/{tileCol}``; ``?f=tilejson`` gives TileJSON 3.0 instead;
- ``/tiles``, ``/tiles/{tileMatrixSetId}`` and its tiles: the dataset tileset, one MVT
  layer per tiled plan layer.

A tile is cut where the grid puts it (a CGCS2000Quad tile holds EPSG:4490 lon/lat in its
4096 units, not a Web Mercator tile moved) by the code that serves ``/tiles/{layer}/…``
(:func:`wangge.api.tiles.layer_tile`: the same cache, the stores' tile query, public
fields only, one answer for every caller), and answered as those are (ETag, 304,
``Cache-Control: private`` behind a key). TileJSON describes XYZ Web Mercator tiles (it has
no CRS), so only WebMercatorQuad tilesets offer it; a CGCS2000Quad client reads the
tileset and the tile matrix set.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from wangge.api.auth import PUBLIC, READ
from wangge.api.collections import ANSWERS, TITLES, LayerName, _collection, offered
from wangge.api.deps import PlanQuery, StoreDep, VersionDep, VersionQuery
from wangge.api.errors import ErrorBody
from wangge.api.ogc import JSON, link
from wangge.api.ogc_crs import CRS84
from wangge.api.tiles import (
    MAX_ZOOM,
    MVT,
    get_tiler,
    joined,
    layer_tile,
    tile_response,
    tilejson_doc,
    vector_layer,
)
from wangge.data.osm import credit_of
from wangge.data.store import LayerInfo, Store, Version
from wangge.data.tiles import TILE_FIELDS, tile_fields
from wangge.errors import InputError, NotFound
from wangge.maps.tile_grids import GRIDS, TILE_CELLS, TileGrid

TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
TILEJSON = "application/vnd.mapbox.tile+json"
#: The levels tiles are served at in either grid (the XYZ route's zooms).
TOP_LEVEL = MAX_ZOOM

tiles = APIRouter(tags=["OGC API – Tiles"], dependencies=[READ])
schemes = APIRouter(tags=["OGC API – Tiles"], dependencies=[PUBLIC])  # definitions, no data

GridId = Annotated[
    str,
    Path(
        max_length=40,
        description="Tile matrix set: WebMercatorQuad (EPSG:3857) or CGCS2000Quad (EPSG:4490)",
    ),
]
Level = Annotated[int, Path(ge=0, le=TOP_LEVEL, description="Tile matrix (level)")]
Row = Annotated[int, Path(ge=0, le=2**TOP_LEVEL - 1, description="Tile row, from the north")]
Col = Annotated[int, Path(ge=0, le=2 ** (TOP_LEVEL + 1) - 1, description="Tile column")]
MetaFormat = Annotated[
    Literal["json", "tilejson"] | None,
    Query(description="json (the OGC tileset, the default) or tilejson (WebMercatorQuad only)"),
]
TileFormat = Annotated[Literal["mvt"] | None, Query(description="mvt, the only tile format")]
TILE_ANSWERS = {
    **ANSWERS,
    200: {"content": {MVT: {}}, "description": "A Mapbox Vector Tile (empty when bare)"},
    304: {"description": "The tile is unchanged (If-None-Match)"},
    404: {
        "model": ErrorBody,
        "description": "Unknown plan, version, collection or tile matrix set, or a tile "
        "outside the tile matrix or the tileset's limits",
    },
}


def grid_of(tms: str) -> TileGrid:
    if tms not in GRIDS:
        raise NotFound(
            f"no tile matrix set {tms!r}; these are: {', '.join(GRIDS)}", where="tileMatrixSetId"
        )
    return GRIDS[tms]


# tile matrix sets --------------------------------------------------------------------------


def tms_document(request: Request, grid: TileGrid) -> dict[str, Any]:
    """The grid as an OGC 2D TMS 2.0 JSON document (points in the CRS's axis order), with
    the TMS 1.0 members beside them for clients that read only those."""
    origin = [grid.top, grid.left] if grid.lat_first else [grid.left, grid.top]
    doc: dict[str, Any] = {"id": grid.id, "title": grid.title}
    if grid.uri:
        doc["uri"] = grid.uri
    doc |= {"crs": grid.crs, "orderedAxes": list(grid.axes)}
    if grid.well_known_scale_set:
        doc["wellKnownScaleSet"] = grid.well_known_scale_set
    doc["tileMatrices"] = [
        {
            "id": str(z),
            "scaleDenominator": grid.scale_denominator(z),
            "cellSize": grid.cell_size(z),
            "cornerOfOrigin": "topLeft",
            "pointOfOrigin": origin,
            "tileWidth": TILE_CELLS,
            "tileHeight": TILE_CELLS,
            "matrixWidth": grid.matrix(z)[0],
            "matrixHeight": grid.matrix(z)[1],
        }
        for z in range(grid.levels)
    ]
    # the same in TMS 1.0's words (17-083r2), which is all GDAL 3.6 reads
    doc |= {"type": "TileMatrixSetType", "identifier": grid.id, "supportedCRS": grid.crs}
    doc["tileMatrix"] = [
        {
            "type": "TileMatrixType",
            "identifier": m["id"],
            "scaleDenominator": m["scaleDenominator"],
            "topLeftCorner": origin,
            **{k: m[k] for k in ("tileWidth", "tileHeight", "matrixWidth", "matrixHeight")},
        }
        for m in doc["tileMatrices"]
    ]
    doc["links"] = _dump([link(request, f"/tileMatrixSets/{grid.id}", "self", JSON, grid.title)])
    return doc


@schemes.get("/tileMatrixSets", responses=ANSWERS)
def tile_matrix_sets(request: Request) -> dict[str, Any]:
    """The tile matrix sets tiles are served in."""
    return {
        "tileMatrixSets": [
            {
                "id": g.id,
                "title": g.title,
                **({"uri": g.uri} if g.uri else {}),
                "crs": g.crs,
                "links": _dump(
                    [link(request, f"/tileMatrixSets/{g.id}", TILING_SCHEME, JSON, g.title)]
                ),
            }
            for g in GRIDS.values()
        ],
        "links": _dump([link(request, "/tileMatrixSets", "self", JSON, "Tile matrix sets")]),
    }


@schemes.get("/tileMatrixSets/{tileMatrixSetId}", responses=ANSWERS)
def tile_matrix_set(request: Request, tileMatrixSetId: GridId) -> dict[str, Any]:
    """A tile matrix set: its CRS, and each level's origin, cell size, scale and size."""
    return tms_document(request, grid_of(tileMatrixSetId))


# tilesets ---------------------------------------------------------------------------------


def limits(grid: TileGrid, bbox: tuple[float, ...] | None) -> list[dict[str, Any]]:
    """The tiles of each served level that the WGS84 ``bbox`` meets."""
    if not bbox:
        return []
    out = []
    for z in range(TOP_LEVEL + 1):
        c0, r0, c1, r1 = grid.tiles_over(z, bbox)
        out.append(
            {"tileMatrix": str(z), "minTileRow": r0, "maxTileRow": r1, "minTileCol": c0}
            | {"maxTileCol": c1}
        )
    return out


def _union(infos: list[LayerInfo]) -> tuple[float, ...] | None:
    boxes = [i.bbox for i in infos if i.bbox]
    if not boxes:
        return None
    return tuple(f(b[k] for b in boxes) for k, f in enumerate((min, min, max, max)))


_JSON_TYPE = {"int": "integer", "float": "number", "bool": "boolean", "text": "string"}
_DIMENSION = {"Point": 0, "LineString": 1, "Polygon": 2}


def _layer(store: Store, v: Version, info: LayerInfo) -> dict[str, Any]:
    """A tileset's ``layers`` entry: the MVT layer, its geometry dimension and fields."""
    dtypes = store.dtypes(v.plan_id, v.version, info.name)
    fields = tile_fields(info.name, info.columns, dtypes)  # public columns only
    out: dict[str, Any] = {
        "id": info.name,
        "title": TITLES.get(info.name, (info.name,))[0],
        "dataType": "vector",
        "minTileMatrix": "0",
        "maxTileMatrix": str(TOP_LEVEL),
        "propertiesSchema": {
            "type": "object",
            "properties": {c: {"type": _JSON_TYPE[k]} for c, k in fields},
        },
    }
    dimension = _DIMENSION.get((info.geometry_type or "").removeprefix("Multi"))
    if dimension is not None:
        out["geometryDimension"] = dimension
    return out


def tileset(
    request: Request,
    store: Store,
    v: Version,
    grid: TileGrid,
    base: str,
    title: str,
    infos: list[LayerInfo],
    data: str,
) -> dict[str, Any]:
    """The tileset at ``base`` (``…/tiles/{grid}``) of ``infos``, whose data is at
    ``data`` (a collection, or the collections)."""
    bbox = _union(infos)
    links = [
        link(request, base, "self", JSON, title),
        link(request, f"/tileMatrixSets/{grid.id}", TILING_SCHEME, JSON, grid.title),
        link(request, data, GEODATA if data != "/collections" else "data", JSON),
    ]
    if grid.id == "WebMercatorQuad":
        links.append(link(request, base, "alternate", TILEJSON, "TileJSON", f="tilejson"))
    template = link(request, base + "/{tileMatrix}/{tileRow}/{tileCol}", "item", MVT, "Tiles")
    doc: dict[str, Any] = {
        "title": f"{title} ({grid.id})",
        "dataType": "vector",
        "crs": grid.crs,
        "tileMatrixSetURI": grid.uri
        or str(request.url_for("tile_matrix_set", tileMatrixSetId=grid.id)),
        "tileMatrixSetLimits": limits(grid, bbox),
        "layers": [_layer(store, v, i) for i in infos],
        "attribution": credit_of(v.meta),
    }
    if bbox:
        doc["boundingBox"] = {
            "lowerLeft": list(bbox[:2]),
            "upperRight": list(bbox[2:]),
            "crs": CRS84,
        }
        centre = [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
        doc["centerPoint"] = {"coordinates": centre, "crs": CRS84, "tileMatrix": "14"}
    doc["links"] = [*_dump(links), _templated(template)]
    return doc


def _dump(links: list) -> list[dict[str, Any]]:
    return [x.model_dump(exclude_none=True) for x in links]


def _templated(item) -> dict[str, Any]:
    """A templated link: its braces as written (URL building escapes them)."""
    out = item.model_dump(exclude_none=True)
    out["href"] = out["href"].replace("%7B", "{").replace("%7D", "}")
    out["templated"] = True
    return out


def tileset_list(request: Request, base: str, title: str) -> dict[str, Any]:
    """The tilesets of one collection, or of the dataset, one per grid."""
    return {
        "links": _dump([link(request, base, "self", JSON, title)]),
        "tilesets": [
            {
                "title": f"{title} ({g.id})",
                "dataType": "vector",
                "crs": g.crs,
                "tileMatrixSetURI": g.uri
                or str(request.url_for("tile_matrix_set", tileMatrixSetId=g.id)),
                "links": _dump(
                    [
                        link(request, f"{base}/{g.id}", "self", JSON, f"{title} ({g.id})"),
                        link(request, f"/tileMatrixSets/{g.id}", TILING_SCHEME, JSON, g.title),
                    ]
                ),
            }
            for g in GRIDS.values()
        ],
    }


def tiled_collection(request: Request, store: Store, v: Version, cid: str) -> LayerInfo:
    """The layer behind collection ``cid`` if it is served as tiles; NotFound otherwise."""
    col = offered(request, store, v).get(cid)
    if col is None or col.dimension is not None:
        _collection(request, store, v, cid)  # the 404 naming the collections there are
        raise NotFound(
            f"collection {cid!r} has no tiles of its own; its layer {col.info.name!r} is "
            "a layer of the dataset's tiles, /tiles",
            where="layer",
        )
    if col.info.name not in TILE_FIELDS or not col.info.geometry_type:
        raise NotFound(f"collection {cid!r} is not served as tiles", where="layer")
    return col.info


def _tilejson(request: Request, store: Store, v: Version, base: str, infos, name: str) -> dict:
    url = link(request, base + "/{z}/{y}/{x}", "item", MVT)
    layers = [vector_layer(store, v, i) for i in infos]
    features = sum(i.count for i in infos)
    return tilejson_doc(v, name, _templated(url)["href"], layers, _union(infos), features)


def _metadata(request, store, v, grid, base, title, infos, data, f) -> Response:
    if f == "tilejson":
        if grid.id != "WebMercatorQuad":
            raise InputError(
                "TileJSON describes XYZ Web Mercator tiles only; take f=tilejson from the "
                f"WebMercatorQuad tileset, or read this tileset ({grid.id}) as JSON",
                where="f",
            )
        return JSONResponse(_tilejson(request, store, v, base, infos, f"{v.plan_id} {title}"))
    return JSONResponse(tileset(request, store, v, grid, base, title, infos, data))


@tiles.get("/collections/{layer}/tiles", responses=ANSWERS)
def collection_tilesets(
    request: Request, store: StoreDep, v: VersionDep, layer: LayerName
) -> dict[str, Any]:
    """A collection's vector tilesets, one per tile matrix set."""
    tiled_collection(request, store, v, layer)
    return tileset_list(request, f"/collections/{layer}/tiles", f"{layer} tiles")


@tiles.get(
    "/collections/{layer}/tiles/{tileMatrixSetId}",
    responses={**ANSWERS, 200: {"content": {JSON: {}, TILEJSON: {}}}},
)
def collection_tileset(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    layer: LayerName,
    tileMatrixSetId: GridId,
    f: MetaFormat = None,
) -> Response:
    """A collection's tileset in one tile matrix set: CRS, limits, its layer and fields,
    and the template of its tiles; TileJSON with ``f=tilejson``."""
    grid = grid_of(tileMatrixSetId)
    info = tiled_collection(request, store, v, layer)
    base = f"/collections/{layer}/tiles/{grid.id}"
    title = TITLES.get(info.name, (layer,))[0]
    return _metadata(request, store, v, grid, base, title, [info], f"/collections/{layer}", f)


@tiles.get("/tiles", responses=ANSWERS)
def dataset_tilesets(request: Request, plan: PlanQuery = None, version: VersionQuery = None):
    """The dataset's vector tilesets, one per tile matrix set (``tilesets``, ``links``), and
    the layers served as tiles, each with its TileJSON link (``layers``)."""
    tiler = get_tiler(request)
    v = tiler.store.resolve(tiler.plan_id(request, plan), version)
    base = str(request.base_url).rstrip("/")
    return {
        "plan": v.plan_id,
        "version": v.version,
        "layers": [
            {
                "id": i.name,
                "features": i.count,
                "tilejson": f"{base}/tiles/{i.name}.json?plan={v.plan_id}",
            }
            for i in tiler.tiled_layers(v.plan_id, v.version)
        ],
        "cache": tiler.cache.stats(),
        **tileset_list(request, "/tiles", "The plan's tiles"),
    }


@tiles.get(
    "/tiles/{tileMatrixSetId}", responses={**ANSWERS, 200: {"content": {JSON: {}, TILEJSON: {}}}}
)
def dataset_tileset(
    request: Request,
    v: VersionDep,
    tileMatrixSetId: GridId,
    f: MetaFormat = None,
) -> Response:
    """The dataset's tileset in one tile matrix set: one MVT layer per tiled plan layer."""
    grid = grid_of(tileMatrixSetId)
    tiler = get_tiler(request)
    infos = tiler.tiled_layers(v.plan_id, v.version)
    base = f"/tiles/{grid.id}"
    return _metadata(
        request, tiler.store, v, grid, base, "The plan's tiles", infos, "/collections", f
    )


def _check(grid: TileGrid, z: int, row: int, col: int, bbox) -> None:
    """404 for a tile outside the matrix or the tileset's limits (OGC API – Tiles)."""
    try:
        grid.check(z, col, row)
    except ValueError as e:
        raise NotFound(str(e), where="tile") from None
    if bbox:
        c0, r0, c1, r1 = grid.tiles_over(z, bbox)
        if not (c0 <= col <= c1 and r0 <= row <= r1):
            raise NotFound(
                f"tile {z}/{row}/{col} (level/row/column) is outside this tileset's limits: "
                f"rows {r0}–{r1}, columns {c0}–{c1}",
                where="tile",
            )


@tiles.get(
    "/collections/{layer}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    responses=TILE_ANSWERS,
    response_class=Response,
)
async def collection_tile(
    request: Request,
    layer: LayerName,
    tileMatrixSetId: GridId,
    tileMatrix: Level,
    tileRow: Row,
    tileCol: Col,
    plan: PlanQuery = None,
    version: VersionQuery = None,
    f: TileFormat = None,
) -> Response:
    """One vector tile of a collection in a tile matrix set: one MVT layer named after the
    layer, codes and counts only, geometry in the set's CRS."""
    grid = grid_of(tileMatrixSetId)
    tiler = get_tiler(request)
    plan_id = tiler.plan_id(request, plan)
    number = version if version is not None else tiler.latest(plan_id)
    info = tiler.store.layer_infos(plan_id, number).get(layer)
    if info is None or info.geometry_type in (None, "Geometry") or info.name not in TILE_FIELDS:
        v = tiler.store.resolve(plan_id, number)  # NotFound naming the plan or version
        info = tiled_collection(request, request.app.state.store, v, layer)
    _check(grid, tileMatrix, tileRow, tileCol, info.bbox)
    found = await layer_tile(
        request, tiler, plan_id, number, info, tileMatrix, tileCol, tileRow, grid
    )
    return tile_response(request, *found, pinned=version is not None)


@tiles.get(
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    responses=TILE_ANSWERS,
    response_class=Response,
)
async def dataset_tile(
    request: Request,
    tileMatrixSetId: GridId,
    tileMatrix: Level,
    tileRow: Row,
    tileCol: Col,
    plan: PlanQuery = None,
    version: VersionQuery = None,
    f: TileFormat = None,
) -> Response:
    """One tile of the dataset in a tile matrix set: an MVT layer per tiled plan layer."""
    grid = grid_of(tileMatrixSetId)
    tiler = get_tiler(request)
    plan_id = tiler.plan_id(request, plan)
    number = version if version is not None else tiler.latest(plan_id)
    infos = tiler.tiled_layers(plan_id, number)
    if not infos:
        tiler.store.resolve(plan_id, number)  # NotFound naming the plan or version
    _check(grid, tileMatrix, tileRow, tileCol, _union(infos))
    parts = [
        await layer_tile(request, tiler, plan_id, number, i, tileMatrix, tileCol, tileRow, grid)
        for i in infos
    ]
    return tile_response(request, *joined(parts), pinned=version is not None)


router = APIRouter()
router.include_router(schemes)
router.include_router(tiles)
