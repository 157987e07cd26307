"""OGC API – Features collections: the plan's layers, one layer, a page of its features
and one feature by code, as JSON (GeoJSON for features) or HTML, in any offered CRS.

A collection is a layer, or, where a layer mixes geometry dimensions, the layer's features
of one dimension (``gaps-points``, ``gaps-areas``; the rule is in :mod:`wangge.api.ogc`):
the store is asked for that dimension only, so counts, extents and pages are the
collection's own. Such a layer's features without geometry are in none of its collections.

The service's own pages (landing, conformance, the API description), links, formats and
geometry types are in :mod:`wangge.api.ogc`; the CRSs and ``bbox-crs`` in
:mod:`wangge.api.ogc_crs`; the HTML pages in :mod:`wangge.api.html`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import shapely
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from wangge.api import html
from wangge.api.auth import READ
from wangge.api.deps import StoreDep, VersionDep
from wangge.api.errors import ERRORS, ErrorBody
from wangge.api.ogc import (
    GEOJSON,
    HTML,
    JSON,
    PARTS,
    TILESETS_VECTOR,
    Format,
    Link,
    dimension_type,
    link,
    part_id,
    promote,
    self_links,
    wants_html,
)
from wangge.api.ogc_crs import (
    CRS84,
    OFFERED,
    STORAGE_CRS,
    BoxDep,
    CrsQuery,
    OutputCrs,
    crs_named,
    to_crs,
)
from wangge.data.osm import credit_of
from wangge.data.store import LayerInfo, Store, Version, feature_id_column, now
from wangge.data.tiles import TILE_FIELDS
from wangge.errors import InputError, NotFound

__all__ = ["GEOJSON", "feature_json", "router"]

router = APIRouter(tags=["collections"], dependencies=[READ])
LayerName = Annotated[
    str,
    Path(
        description="Collection id: a layer's name, e.g. grids, or one dimension of a layer "
        "that mixes them, e.g. gaps-points or gaps-areas",
        max_length=72,
    ),
]
#: What every collection route may answer besides 200 (a CRS not offered is 400).
ANSWERS = {
    **ERRORS,
    400: {
        "model": ErrorBody,
        "description": "An invalid parameter value (a bbox, limit, f, properties, or a crs "
        "the service does not offer), or a query parameter the operation does not declare "
        "or gives twice: OGC API – Features answers 400, not 422",
    },
}
CONTENT_CRS = {
    "Content-Crs": {
        "description": "The CRS of the geometries, as <URI>",
        "schema": {"type": "string"},
    }
}
#: A page of features: GeoJSON, or HTML with f=html (errors stay JSON).
PAGE_CONTENT = {
    GEOJSON: {"schema": {"$ref": "#/components/schemas/FeatureCollection"}},
    **html.OK["content"],
}
#: Titles and descriptions of the layers a plan holds (others are titled by their name).
TITLES = {
    "streets": ("街道 Streets", "Sub-district (街道) boundaries and their codes"),
    "communities": ("社区 Communities", "Community (社区) boundaries, inside their street"),
    "grids": ("网格 Grids", "Basic and dedicated grids (网格), 300–500 households each"),
    "microgrids": ("微网格 Micro-grids", "Micro-grids (微网格) of about 25 households"),
    "units": ("单元 Units", "The atomic units (blocks, compounds, buildings) grids are made of"),
    "buildings": ("楼栋 Buildings", "Buildings with their estimated or given households"),
    "study_area": ("研究区 Study area", "The district or study area the plan covers"),
    "risk_points": ("风险点 Risk points", "Risk points of the register, scored L×S or LEC"),
    "risk_zones": ("风险区 Risk zones", "Risk zones such as flood or landslide areas"),
    "grid_risk": ("网格风险 Grid risk", "Per grid: risk counts, score and exposure"),
    "facilities": ("设施 Facilities", "Shared facilities (shelters, clinics, AEDs, ...)"),
    "grid_coverage": ("网格覆盖 Grid coverage", "Per grid: facility coverage"),
    "gaps": ("覆盖缺口 Coverage gaps", "Households and grids beyond reach of a facility"),
}


class Collection(BaseModel):
    id: str
    title: str
    description: str
    itemType: str = "feature"
    itemCount: int
    geometryType: str | None = None
    extent: dict[str, Any] | None = None
    crs: list[str]
    storageCrs: str
    properties: list[str]
    links: list[Link]


class Collections(BaseModel):
    plan: str
    version: int
    collections: list[Collection]
    links: list[Link]
    attribution: str


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection with OGC API Features paging members."""

    type: str = "FeatureCollection"
    features: list[dict[str, Any]]
    numberMatched: int | None = None
    numberReturned: int | None = None
    timeStamp: str | None = None
    links: list[Link] = []


def feature_json(
    frame: gpd.GeoDataFrame,
    properties: list[str] | None = None,
    geoms: np.ndarray | None = None,
    layer: str = "",
) -> list[str]:
    """One GeoJSON Feature string per row; ``code`` is the feature id, or the layer's id
    column (data/store.FEATURE_IDS). ``geoms`` replaces the frame's geometries (the same
    ones moved to another CRS)."""
    cols = [c for c in frame.columns if c != frame.geometry.name]
    id_col = feature_id_column(layer, cols) or "code"
    if properties is not None:
        cols = [c for c in cols if c in properties or c == id_col]
    if geoms is None:
        geoms = frame.geometry.to_numpy()
    geo_text = shapely.to_geojson(geoms)
    records = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict("records")
    out = []
    for rec, geom, text in zip(records, geoms, geo_text, strict=True):
        fid = rec.get(id_col)
        head = '{"type":"Feature",'
        if fid is not None:
            head += f'"id":{json.dumps(fid, ensure_ascii=False)},'
        body = json.dumps(rec, ensure_ascii=False, default=_default)
        geometry = "null" if geom is None else text
        out.append(f'{head}"geometry":{geometry},"properties":{body}}}')
    return out


def feature_tag(frame: gpd.GeoDataFrame, layer: str) -> str:
    """The strong ETag of the feature in ``frame``'s first row: a hash of its stored
    geometry and properties (its GeoJSON in CRS84). It changes when, and only when, the
    feature does, whichever version serves it, and it is the same in every CRS and format
    it is answered in (the feature's state, not the bytes): a write's ``If-Match`` is
    compared with it (:mod:`wangge.api.ogc_edits`)."""
    text = feature_json(frame.iloc[:1], None, None, layer)[0]
    return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Offered:
    """One collection: a layer, or the features of one dimension of a layer that mixes
    them (``dimension``, which the store filters by). ``info`` is the layer's, with the
    count, geometry type and bbox of what the collection holds."""

    id: str
    info: LayerInfo
    dimension: int | None = None


_TYPE_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint")
_TYPE_NAMES += ("MultiLineString", "MultiPolygon", "GeometryCollection")


def _by_dimension(store: Store, v: Version, info: LayerInfo) -> list[Offered]:
    """The collections of a layer whose stored type is Geometry (its features disagree):
    one per dimension present, or the layer itself, with the one type that holds all its
    features, when they only disagree on single or multi parts."""
    geoms = store.query(v.plan_id, v.version, info.name).frame.geometry.to_numpy()
    dims = shapely.get_dimensions(geoms)  # -1 for none
    present = sorted(set(dims[dims >= 0].tolist()))
    if len(present) == 1:
        return [Offered(info.name, replace(info, geometry_type=_type_of(geoms[dims >= 0])))]
    out = []
    for d in present:
        mine = geoms[dims == d]
        bbox = tuple(float(x) for x in shapely.total_bounds(mine))
        part = replace(info, count=len(mine), geometry_type=_type_of(mine), bbox=bbox)
        out.append(Offered(part_id(info.name, d), part, d))
    return out


def _type_of(geoms: np.ndarray) -> str:
    return dimension_type({_TYPE_NAMES[t] for t in shapely.get_type_id(geoms).tolist()})


def offered(request: Request, store: Store, v: Version) -> dict[str, Offered]:
    """The collections of a plan version by id, in layer order; a layer that mixes
    dimensions is read once per version (a saved version never changes)."""
    cache = getattr(request.app.state, "ogc_collections", None)
    if cache is None:
        cache = request.app.state.ogc_collections = {}
    # an anonymous reader's view lists fewer columns (data/privacy.py): it has
    # collections of its own
    key = (store.url, getattr(store, "view_key", "full"), v.plan_id, v.version)
    found = cache.get(key)
    if found is None:
        found = {}
        for info in store.layer_infos(v.plan_id, v.version).values():
            parts = [Offered(info.name, info)]
            if info.geometry_type == "Geometry":
                parts = _by_dimension(store, v, info)
            found |= {part.id: part for part in parts}
        if len(cache) >= 64:
            cache.pop(next(iter(cache)), None)
        cache[key] = found
    return found


def _collection(request: Request, store: Store, v: Version, cid: str) -> Offered:
    """The collection ``cid``; NotFound naming the collections a mixed layer is served as
    when ``cid`` is that layer, or every collection otherwise."""
    found = offered(request, store, v)
    if cid in found:
        return found[cid]
    parts = [p.id for p in found.values() if p.info.name == cid]
    if parts:
        raise NotFound(
            f"{cid!r} mixes geometry dimensions: its features are the collections "
            f"{' and '.join(parts)}",
            where="layer",
        )
    raise NotFound(f"no collection {cid!r}; this plan has: {', '.join(found)}", where="layer")


def _describe(request: Request, col: Offered) -> Collection:
    info = col.info
    title, text = TITLES.get(info.name, (info.name, f"The plan's {info.name} layer"))
    if col.dimension is not None:
        part = PARTS[col.dimension]
        title, text = f"{title} ({part})", f"{text}: its {part} (the layer mixes dimensions)"
    base = f"/collections/{col.id}"
    extent = None
    if info.bbox:
        extent = {"spatial": {"bbox": [list(info.bbox)], "crs": CRS84}}
    return Collection(
        id=col.id,
        title=title,
        description=text,
        itemCount=info.count,
        geometryType=info.geometry_type,
        extent=extent,
        crs=list(OFFERED),
        storageCrs=STORAGE_CRS,
        properties=list(info.columns),
        links=[
            link(request, base, "self", JSON, title),
            link(request, base, "alternate", HTML, f"{title} as HTML", f="html"),
            link(request, f"{base}/items", "items", GEOJSON, f"{title}: features"),
            link(request, f"{base}/items", "items", HTML, f"{title}: features as HTML", f="html"),
            *_tile_links(request, col),
        ],
    )


def _tile_links(request: Request, col: Offered) -> list[Link]:
    """The link to a collection's vector tilesets (api/ogc_tiles.py), where its layer is
    served as tiles: a layer of one dimension with tile fields."""
    if col.dimension is not None or col.info.name not in TILE_FIELDS or not col.info.geometry_type:
        return []
    return [link(request, f"/collections/{col.id}/tiles", TILESETS_VECTOR, JSON, "Vector tiles")]


@router.get("/collections", response_model=Collections, responses={**ERRORS, 200: html.OK})
def collections(request: Request, store: StoreDep, v: VersionDep, f: Format = None) -> Response:
    """The layers of the plan version being served."""
    body = Collections(
        plan=v.plan_id,
        version=v.version,
        collections=[_describe(request, col) for col in offered(request, store, v).values()],
        links=self_links(request, JSON),
        attribution=credit_of(v.meta),
    )
    if wants_html(request, f):
        return HTMLResponse(html.collections(body.model_dump()))
    return JSONResponse(body.model_dump(exclude_none=True))


@router.get("/collections/{layer}", response_model=Collection, responses={**ERRORS, 200: html.OK})
def collection(
    request: Request, store: StoreDep, v: VersionDep, layer: LayerName, f: Format = None
) -> Response:
    """One collection: its extent, CRSs, geometry type, properties and links to its
    features."""
    body = _describe(request, _collection(request, store, v, layer))
    if wants_html(request, f):
        return HTMLResponse(
            html.collection(body.model_dump(), v.plan_id, v.version, credit_of(v.meta))
        )
    return JSONResponse(body.model_dump(exclude_none=True))


def _geoms(frame: gpd.GeoDataFrame, info: LayerInfo, crs: OutputCrs) -> np.ndarray:
    return to_crs(promote(frame.geometry.to_numpy(), info.geometry_type), crs)


_INSTANT = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?"
)
#: An instant, or an interval with ``..`` for an open end (OGC API – Features, datetime).
DATETIME = rf"^({_INSTANT}|({_INSTANT}|\.\.)?/({_INSTANT}|\.\.)?)$"


def _page_links(
    request: Request, v: Version, offset: int, limit: int, shown: int, matched: int
) -> list:
    links = self_links(request, GEOJSON)
    # the next and previous pages are of this version, though a save makes a newer one
    pinned = {"plan": v.plan_id, "version": v.version, "limit": limit}
    if offset + shown < matched:
        url = request.url.include_query_params(offset=offset + limit, **pinned)
        links.append(Link(href=str(url), rel="next", type=GEOJSON))
    if offset > 0:
        url = request.url.include_query_params(offset=max(0, offset - limit), **pinned)
        links.append(Link(href=str(url), rel="prev", type=GEOJSON))
    layer = request.path_params["layer"]
    links.append(link(request, f"/collections/{layer}", "collection", JSON, layer))
    return links


@router.get(
    "/collections/{layer}/items",
    response_model=FeatureCollection,
    responses={**ANSWERS, 200: {"content": PAGE_CONTENT, "headers": CONTENT_CRS}},
)
def items(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    box: BoxDep,
    layer: LayerName,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=2**31 - 1,
            description="Features per page; above the server's page cap (WANGGE_MAX_LIMIT, "
            "10,000) the cap is used, as OGC API – Features asks, with a next link",
        ),
    ] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Features to skip")] = 0,
    properties: Annotated[
        str | None,
        Query(description="Comma-separated properties to return (code always)", max_length=2000),
    ] = None,
    crs: CrsQuery = None,
    f: Format = None,
    datetime: Annotated[
        str | None,
        Query(
            description="An RFC 3339 instant or interval (``..`` open), as OGC API – Features "
            "defines it; a plan's features carry no time of their own, so every feature of "
            "the version matches (pick the version with ``version``)",
            max_length=100,
            pattern=DATETIME,
        ),
    ] = None,
) -> Response:
    """A page of a collection's features, in code order, optionally within ``bbox``."""
    out_crs = crs_named(crs)
    limit = min(limit, request.app.state.settings.max_limit)
    col = _collection(request, store, v, layer)
    info = col.info
    wanted = None
    if properties is not None:
        wanted = [p.strip() for p in properties.split(",") if p.strip()]
        unknown = sorted(set(wanted) - set(info.columns))
        if unknown:
            raise InputError(
                f"unknown properties {', '.join(unknown)}; {layer} has: {', '.join(info.columns)}",
                where="properties",
            )
    lonlat, outline = box if box else (None, None)
    ask = {"bbox": lonlat, "dimension": col.dimension}
    if outline is None:
        page = store.query(v.plan_id, v.version, info.name, limit=limit, offset=offset, **ask)
        frame, matched = page.frame, page.number_matched
    else:  # a projected bbox: filter by its own outline, then page
        frame = store.query(v.plan_id, v.version, info.name, **ask).frame
        frame = frame[shapely.intersects(frame.geometry.to_numpy(), outline)]
        frame, matched = frame.iloc[offset : offset + limit], len(frame)
    geoms = _geoms(frame, info, out_crs)
    links = _page_links(request, v, offset, limit, len(frame), matched)
    if wants_html(request, f):
        return HTMLResponse(
            html.items(layer, frame, wanted, links, matched, offset, out_crs.uri, credit_of(v.meta))
        )
    feats = feature_json(frame, wanted, geoms, info.name)
    head = {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": len(feats),
        "timeStamp": now(),
        "plan": v.plan_id,
        "version": v.version,
        "links": [x.model_dump(exclude_none=True) for x in links],
        "attribution": credit_of(v.meta),
    }
    text = json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[' + ",".join(feats) + "]}"
    return Response(text, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs.uri}>"})


@router.get(
    "/collections/{layer}/items/{code}",
    responses={
        **ANSWERS,
        200: {
            "content": {GEOJSON: {}, **html.OK["content"]},
            "description": "A GeoJSON Feature",
            "headers": {
                **CONTENT_CRS,
                "ETag": {
                    "description": "The feature's strong tag: send it as If-Match with a "
                    "write (OGC API – Features Part 4), or as If-None-Match for a 304",
                    "schema": {"type": "string"},
                },
            },
        },
        304: {"description": "The feature is as the If-None-Match tag says"},
    },
)
def item(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    layer: LayerName,
    code: Annotated[
        str,
        Path(
            max_length=64,
            description="The feature's id: a unit's code, or its layer's own id "
            "(building_id, risk_id, facility_id, gap_id…)",
        ),
    ],
    crs: CrsQuery = None,
    f: Format = None,
) -> Response:
    """One feature by its code."""
    out_crs = crs_named(crs)
    col = _collection(request, store, v, layer)
    info = col.info
    frame = store.item(v.plan_id, v.version, info.name, code, col.dimension).iloc[:1]
    tag = feature_tag(frame, info.name)
    if tag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": tag})
    links = [
        *self_links(request, GEOJSON),
        link(request, f"/collections/{layer}", "collection", JSON, layer),
    ]
    if wants_html(request, f):
        return HTMLResponse(
            html.item(layer, frame, links, credit_of(v.meta)), headers={"ETag": tag}
        )
    text = feature_json(frame, None, _geoms(frame, info, out_crs), info.name)[0]
    dumped = json.dumps([x.model_dump(exclude_none=True) for x in links], ensure_ascii=False)
    text = f'{text[:-1]},"links":{dumped}}}'
    headers = {"Content-Crs": f"<{out_crs.uri}>", "ETag": tag}
    return Response(text, media_type=GEOJSON, headers=headers)
