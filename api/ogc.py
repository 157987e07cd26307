"""OGC API – Features (Parts 1 and 2): the landing page, conformance and the API
description, and what every OGC route shares: links, the choice of JSON or HTML, and one
geometry type per collection.

A client starts at ``/`` and follows its links: ``/api`` (the OpenAPI document, given as
OpenAPI 3.0, as the oas30 conformance class asks), ``/conformance`` and ``/collections``
(:mod:`wangge.api.collections`; the CRSs are in :mod:`wangge.api.ogc_crs`). Each feature
of a layer is served with the layer's one geometry type: a layer that mixes single and
multi parts (an edited plan's grids are Polygon and MultiPolygon) is served all multi,
so GDAL and QGIS, which learn the type from the first page, do not find it unknown. A
layer that mixes dimensions (``gaps``: buildings as points, grids and communities as
polygons) is no collection: each dimension present is one, named ``<layer>-points``,
``<layer>-lines`` or ``<layer>-areas`` (layer names hold no "-"), and a request for the
layer's own name answers 404 naming them.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

import numpy as np
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from wangge.api import html
from wangge.api.auth import PUBLIC, SECRET_PARAMS
from wangge.api.deps import PlanQuery, VersionQuery
from wangge.api.errors import ERRORS, ogc_path
from wangge.api.negotiate import vary
from wangge.errors import InputError

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    # Part 4 on the grids and micro-grids (api/ogc_edits.py)
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]


#: OGC API – Tiles (api/ogc_tiles.py) and the 2D TMS 2.0 documents it serves.
CONFORMANCE += [
    *(
        f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{c}"
        for c in ("core", "tileset", "tilesets-list", "geodata-tilesets", "dataset-tilesets")
    ),
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    *(
        f"http://www.opengis.net/spec/tms/2.0/conf/{c}"
        for c in ("tilematrixset", "json-tilematrixset", "tilesetmetadata", "json-tilesetmetadata")
    ),
]
#: Link relations to a resource's vector tilesets and to the tile matrix sets.
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"


#: Single-part type ids of shapely (Point 0, LineString 1, Polygon 3) by the multi type
#: that holds them, and the function that wraps each.
_MULTI = {
    "MultiPoint": (0, shapely.multipoints),
    "MultiLineString": (1, shapely.multilinestrings),
    "MultiPolygon": (3, shapely.multipolygons),
}


#: The id suffix of each dimension's collection when a layer mixes them (points 0, lines
#: 1, areas 2), and the multi type that holds each dimension's features.
PARTS = {0: "points", 1: "lines", 2: "areas"}
_MULTI_OF = {0: "MultiPoint", 1: "MultiLineString", 2: "MultiPolygon"}
_DIMENSION_OF = {"Point": 0, "LineString": 1, "Polygon": 2}
_DIMENSION_OF |= {multi: d for d, multi in _MULTI_OF.items()}


def part_id(layer: str, dimension: int) -> str:
    """The id of the collection of a mixed layer's features of one dimension."""
    return f"{layer}-{PARTS[dimension]}"


def dimension_type(names: set[str]) -> str:
    """One geometry type for features of one dimension of the ``names`` types: theirs when
    they agree, else the multi type (Point and MultiPoint are MultiPoint); Geometry with
    a GeometryCollection among them."""
    if len(names) == 1:
        return next(iter(names))
    dims = {_DIMENSION_OF.get(n) for n in names}
    if len(dims) == 1 and None not in dims:
        return _MULTI_OF[dims.pop()]
    return "Geometry"


def promote(geoms: np.ndarray, geometry_type: str | None) -> np.ndarray:
    """Single parts as one-part multis where the layer's type is a multi type (a layer that
    mixes Polygon and MultiPolygon is MultiPolygon; see ``merge_geometry_types``)."""
    if geometry_type not in _MULTI:
        return geoms
    single, wrap = _MULTI[geometry_type]
    mask = shapely.get_type_id(geoms) == single
    if not mask.any():
        return geoms
    out = np.array(geoms, dtype=object)
    out[mask] = wrap(out[mask][:, np.newaxis])
    return out


Format = Annotated[
    Literal["json", "html"] | None,
    Query(
        description="json (the default) or html; without it, an Accept header that prefers "
        "text/html gets html"
    ),
]


def wants_html(request: Request, f: str | None) -> bool:
    """HTML when ``f=html``, or without ``f`` when Accept ranks text/html above JSON (the
    answer then varies by Accept, and says so)."""
    if f is not None:
        return f == "html"
    vary(request, "Accept")
    best = {"html": 0.0, "json": 0.0}
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.strip().lower()
        kind = "html" if media in (HTML, "application/xhtml+xml") else None
        if media in (JSON, GEOJSON) or media.endswith("+json"):
            kind = "json"
        if kind:
            best[kind] = max(best[kind], q)
    return best["html"] > 0 and best["html"] > best["json"]


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


def plan_params(request: Request) -> dict[str, str]:
    """The plan and version the request named, carried into every link it answers with."""
    return {k: request.query_params[k] for k in ("plan", "version") if k in request.query_params}


def link(request: Request, path: str, rel: str, media: str, title: str | None = None, **q) -> Link:
    """A link to ``path`` on this server, keeping the request's plan and version."""
    url = request.url_for("landing").include_query_params(**plan_params(request), **q)
    url = url.replace(path=url.path.rstrip("/") + path)
    return Link(href=str(url), rel=rel, type=media, title=title)


def self_links(request: Request, media: str, html_too: bool = True) -> list[Link]:
    """``self`` in JSON and ``alternate`` in HTML (or the reverse for an HTML answer)."""
    out = [Link(href=str(request.url.include_query_params(f="json")), rel="self", type=media)]
    if html_too:
        alt = request.url.include_query_params(f="html")
        out.append(Link(href=str(alt), rel="alternate", type=HTML, title="as HTML"))
    return out


# query parameters: those the API definition declares, and no others ----------------------


def _declared(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


def declared_params(route: APIRoute) -> set[str]:
    """The query parameters a route declares, through its dependencies: what its OpenAPI
    description lists (a walk of a few nodes, so not cached)."""
    return _declared(route.dependant)


class UnknownParameter(InputError):
    """Query parameters an OGC API route refuses (400 there, by errors._status): ``where``
    names them, and ``violations`` each, as FastAPI's own parameter errors are."""

    def __init__(self, names: list[str], problem: str, hint: str = ""):
        super().__init__(problem + hint, where=", ".join(names))
        self.violations = [{"where": n, "problem": problem} for n in names]


def _shown(name: str) -> str:
    return name if len(name) <= 40 else name[:40] + "…"


def known_params(request: Request) -> None:
    """Refuse (400) a query parameter an OGC API route does not declare, or one given
    twice (OGC API – Features /req/core/query-param-unknown): a misspelt ``bbox`` must not
    answer the whole layer, and what the links of an answer carry on is what was checked.
    The error names the parameters, never their values. Other routes are not OGC API's
    and keep FastAPI's leniency."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not ogc_path(request):
        return
    allowed = declared_params(route)
    given = [_shown(name) for name, _ in request.query_params.multi_items()]
    unknown = sorted({n for n in given if n not in allowed})
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        hint = ""
        if any(n.strip().lower() in SECRET_PARAMS for n in unknown):
            hint = "; an API key goes in a header (Authorization: Bearer KEY or X-API-Key)"
        raise UnknownParameter(
            unknown, f"not a query parameter of {route.path}, which takes {takes}", hint
        )
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise UnknownParameter(twice, "given more than once; give each parameter once")


KNOWN_PARAMS = Depends(known_params)


def service_params(plan: PlanQuery = None, version: VersionQuery = None) -> None:
    """``plan`` and ``version`` on the service's own pages: the landing page carries them
    into its links to the collections; conformance and the API description take them
    because clients (OWSLib, GDAL) carry the landing page's query to every request."""


# routes: the landing page, conformance and the API description -------------------------

router = APIRouter(tags=["OGC API"], dependencies=[PUBLIC, Depends(service_params)])
TITLE = "wangge 网格 API"
DESCRIPTION = (
    "Streets, communities, grids and micro-grids of grid-governance plans (网格化管理), "
    "with their risk and facility-coverage layers, as OGC API – Features collections "
    "and OGC API – Tiles vector tiles (WebMercatorQuad and CGCS2000Quad)."
)


#: The one error the service's own pages can give: an ``f`` that is neither json nor html.
INVALID = ERRORS[422]


class Landing(BaseModel):
    title: str
    description: str
    links: list[Link]
    attribution: str | None = None


class Conformance(BaseModel):
    conformsTo: list[str]


@router.get("/", response_model=Landing, name="landing", responses={200: html.OK, 422: INVALID})
def landing(request: Request, f: Format = None) -> Response:
    """The landing page: what this service is and where its parts are."""
    links = [
        *self_links(request, JSON),
        link(request, "/api", "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
        link(request, "/docs", "service-doc", HTML, "The API documentation"),
        link(request, "/conformance", "conformance", JSON, "Conformance classes"),
        link(request, "/collections", "data", JSON, "The plan's layers"),
        link(request, "/tiles", TILESETS_VECTOR, JSON, "The plan's vector tiles"),
        link(request, "/tileMatrixSets", TILING_SCHEMES, JSON, "Tile matrix sets"),
    ]
    body = Landing(title=TITLE, description=DESCRIPTION, links=links)
    if wants_html(request, f):
        return HTMLResponse(html.landing(body.model_dump()))
    return JSONResponse(body.model_dump(exclude_none=True))


@router.get("/conformance", response_model=Conformance, responses={200: html.OK, 422: INVALID})
def conformance(request: Request, f: Format = None) -> Response:
    """The OGC API conformance classes this service implements."""
    if wants_html(request, f):
        return HTMLResponse(html.conformance(CONFORMANCE))
    return JSONResponse({"conformsTo": CONFORMANCE})


class OpenAPIResponse(JSONResponse):
    media_type = OPENAPI


#: The API description's errors: JSON, which FastAPI would otherwise file under the route's
#: OpenAPI media type.
API_ERRORS = {
    400: {
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        "description": "A query parameter this operation does not declare, or an invalid "
        "plan or version: OGC API – Features answers 400, not 422",
    }
}


@router.get(
    "/api",
    response_class=OpenAPIResponse,
    responses={200: {"description": "OpenAPI"}, **API_ERRORS},
)
def api(request: Request) -> Response:
    """This API's definition as an OpenAPI 3.0 document (``/openapi.json`` has it as 3.1)."""
    doc = getattr(request.app.state, "openapi_30", None)
    if doc is None:
        doc = request.app.state.openapi_30 = openapi_30(request.app.openapi())
    return OpenAPIResponse(doc)


def openapi_30(doc: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's OpenAPI 3.1 document rewritten as 3.0: nullable for null types, enum for
    const, items for prefixItems, example for a schema's examples; no info.summary."""
    out = copy.deepcopy(doc)
    out["openapi"] = "3.0.3"
    summary = out["info"].pop("summary", None)
    if summary:
        out["info"]["description"] = f"{summary}\n\n{out['info'].get('description', '')}"
    _schemas_30(out)
    return out


def _schemas_30(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _schemas_30(item)
        return
    if not isinstance(node, dict):
        return
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            del node[key]
            node["nullable"] = True
            if len(rest) == 1 and "$ref" not in rest[0]:
                node.update({k: v for k, v in rest[0].items() if k not in node})
            elif len(rest) == 1:
                node["allOf"] = rest
            elif rest:
                node[key] = rest
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        node["nullable"] = len(types) < len(node["type"]) or node.get("nullable", False)
        node["type"] = types[0] if len(types) == 1 else node["type"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "prefixItems" in node:
        parts = node.pop("prefixItems")
        node["items"] = parts[0] if all(p == parts[0] for p in parts) else {"anyOf": parts}
    if "patternProperties" in node:  # keys by pattern: 3.0 can only say what values are
        patterns = list(node.pop("patternProperties").values())
        node["additionalProperties"] = patterns[0] if len(patterns) == 1 else {"anyOf": patterns}
    if isinstance(node.get("examples"), list) and ("type" in node or "anyOf" in node):
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    for value in node.values():
        _schemas_30(value)
