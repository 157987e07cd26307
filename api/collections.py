"""OGC API Features-style collections: list layers, page through items, fetch one by code."""

from __future__ import annotations

import json
from typing import Annotated, Any

import geopandas as gpd
import shapely
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from wangge.api.auth import READ
from wangge.api.deps import BboxDep, StoreDep, VersionDep
from wangge.api.errors import ERRORS
from wangge.errors import InputError

router = APIRouter(tags=["collections"], dependencies=[READ])
GEOJSON = "application/geo+json"
LayerName = Annotated[str, Path(description="Layer name, e.g. grids", max_length=64)]


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Collection(BaseModel):
    id: str
    title: str
    itemCount: int
    geometryType: str | None
    extent: dict[str, Any] | None
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
    links: list[Link] = []


ATTRIBUTION = "Map data © OpenStreetMap contributors, ODbL 1.0"


def feature_json(frame: gpd.GeoDataFrame, properties: list[str] | None = None) -> list[str]:
    """One GeoJSON Feature string per row; ``code`` is the feature id."""
    cols = [c for c in frame.columns if c != frame.geometry.name]
    if properties is not None:
        cols = [c for c in cols if c in properties or c == "code"]
    geoms = frame.geometry.to_numpy()
    geo_text = shapely.to_geojson(geoms)
    records = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict("records")
    out = []
    for rec, geom, text in zip(records, geoms, geo_text, strict=True):
        fid = rec.get("code")
        head = '{"type":"Feature",'
        if fid is not None:
            head += f'"id":{json.dumps(fid, ensure_ascii=False)},'
        body = json.dumps(rec, ensure_ascii=False, default=_default)
        geometry = "null" if geom is None else text
        out.append(f'{head}"geometry":{geometry},"properties":{body}}}')
    return out


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _link(request: Request, rel: str, **params: Any) -> Link:
    url = request.url.include_query_params(**params) if params else request.url
    return Link(href=str(url), rel=rel, type=GEOJSON)


@router.get("/collections", response_model=Collections, responses=ERRORS)
def collections(request: Request, store: StoreDep, v: VersionDep) -> Collections:
    """The layers of the plan version being served."""
    base = str(request.base_url).rstrip("/")
    out = []
    for info in store.layers(v.plan_id, v.version):
        props = list(info.columns)
        extent = {"spatial": {"bbox": [list(info.bbox)], "crs": "OGC:CRS84"}} if info.bbox else None
        items = f"{base}/collections/{info.name}/items"
        out.append(
            Collection(
                id=info.name,
                title=info.name,
                itemCount=info.count,
                geometryType=info.geometry_type,
                extent=extent,
                properties=props,
                links=[Link(href=items, rel="items", type=GEOJSON)],
            )
        )
    return Collections(
        plan=v.plan_id,
        version=v.version,
        collections=out,
        links=[Link(href=str(request.url), rel="self", type="application/json")],
        attribution=ATTRIBUTION,
    )


@router.get(
    "/collections/{layer}/items",
    response_model=FeatureCollection,
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}}},
)
def items(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    bbox: BboxDep,
    layer: LayerName,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Features per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Features to skip")] = 0,
    properties: Annotated[
        str | None,
        Query(description="Comma-separated properties to return (code always)", max_length=2000),
    ] = None,
) -> Response:
    """A page of a layer's features, in code order, optionally within ``bbox``."""
    limit = min(limit, request.app.state.settings.max_limit)
    info = store._check_layer(v.plan_id, v.version, layer)
    wanted = None
    if properties is not None:
        wanted = [p.strip() for p in properties.split(",") if p.strip()]
        unknown = sorted(set(wanted) - set(info.columns))
        if unknown:
            raise InputError(
                f"unknown properties {', '.join(unknown)}; {layer} has: {', '.join(info.columns)}",
                where="properties",
            )
    page = store.query(v.plan_id, v.version, layer, bbox=bbox, limit=limit, offset=offset)
    feats = feature_json(page.frame, wanted)
    links = [_link(request, "self")]
    if offset + len(feats) < page.number_matched:
        links.append(_link(request, "next", offset=offset + limit, limit=limit))
    if offset > 0:
        links.append(_link(request, "prev", offset=max(0, offset - limit), limit=limit))
    head = {
        "type": "FeatureCollection",
        "numberMatched": page.number_matched,
        "numberReturned": len(feats),
        "plan": v.plan_id,
        "version": v.version,
        "links": [link.model_dump(exclude_none=True) for link in links],
        "attribution": ATTRIBUTION,
    }
    text = json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[' + ",".join(feats) + "]}"
    return Response(text, media_type=GEOJSON)


@router.get(
    "/collections/{layer}/items/{code}",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "A GeoJSON Feature"}},
)
def item(
    store: StoreDep,
    v: VersionDep,
    layer: LayerName,
    code: Annotated[str, Path(max_length=64, description="The unit's code")],
) -> Response:
    """One feature by its code."""
    frame = store.item(v.plan_id, v.version, layer, code)
    return Response(feature_json(frame.iloc[:1])[0], media_type=GEOJSON)
