"""OGC API – Features Part 4 on the grids and micro-grids collections: create (POST),
replace (PUT), update (PATCH) and delete (DELETE) a feature, as QGIS and OWSLib send them.

What a write means in a plan made of units (which units a drawn geometry takes, where the
units of a deleted grid go, which properties may be written) is
:mod:`wangge.feature_edits`; each write is the editor's own operation, so the rule book,
territorial scopes, locks, audit log and versions are the editor's. A write that breaks a
rule is saved flagged, as the editor saves it, and its violations are in the answer.

- A write goes to the plan's latest version (``plan`` as the read routes take it; a
  ``version`` other than the latest is 409). QGIS sends its writes without the query of
  the address it was given, so its edits go to the server's default plan (``WANGGE_PLAN``).
- ``If-Match`` carries the ETag the feature was read with (``GET .../items/{code}``,
  :func:`wangge.api.collections.feature_tag`): a tag the feature no longer has is 412 and
  nothing is saved. It is optional (RFC 9110 lets a client write unconditionally, and
  QGIS sends none), unless the deployment sets ``WANGGE_REQUIRE_IF_MATCH``, which makes a
  write without it 428 (RFC 6585). Two writes racing past the check still meet the
  editor's version check (409).
- ``Content-Crs`` names the CRS of the geometry sent (CRS84 by default), one of those
  the collections offer, as QGIS sends it for a layer in EPSG:4490.
- ``OPTIONS`` answers ``Allow`` with the methods a collection's items take: QGIS asks it
  to learn whether a layer is editable (a collection that takes no writes answers 405).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
import shapely
import shapely.geometry
from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from shapely.errors import ShapelyError

from wangge.api.auth import PUBLIC, PlannerWho
from wangge.api.collections import ANSWERS, feature_tag
from wangge.api.deps import PlanQuery, StoreDep, VersionQuery, read_upload
from wangge.api.edits import EditOut, answer, get_editor
from wangge.api.errors import ErrorBody, UnsupportedMedia
from wangge.api.ogc import service_params
from wangge.api.ogc_crs import crs_named, from_crs
from wangge.api.plans import version_out
from wangge.data.store import Store, Version
from wangge.errors import InputError, VersionConflict, WanggeError
from wangge.feature_edits import LEVELS, Written, create, delete, redraw
from wangge.scopes import check_scope

router = APIRouter(tags=["OGC API – Features Part 4"])

#: Media types a written feature may come in (PATCH: a JSON merge patch of one).
MEDIA = ("application/geo+json", "application/json", "application/merge-patch+json")
#: What ``Allow`` says of a writable collection's items and of one of its features.
ALLOW_ITEMS = "GET, HEAD, POST, OPTIONS"
ALLOW_ITEM = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"


class PreconditionFailed(WanggeError):
    """``If-Match`` names a tag the feature no longer has (412)."""

    status_code = 412


class PreconditionRequired(WanggeError):
    """A write without ``If-Match`` where the deployment requires one (428)."""

    status_code = 428


WritableLayer = Annotated[
    Literal["grids", "microgrids"],
    Path(description="A collection that takes writes: grids or micro-grids (others are 405)"),
]
Code = Annotated[
    str, Path(max_length=64, description="The feature's code (15 digits a grid, 18 a micro-grid)")
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=2000,
        description="The feature's ETag as read (GET …/items/{code}); 412 when it changed since",
    ),
]
ContentCrs = Annotated[
    str | None,
    Header(
        alias="Content-Crs",
        max_length=200,
        description="The CRS of the geometry sent, as <URI> (default CRS84: lon,lat)",
    ),
]


class FeatureWritten(EditOut):
    """What a write did: the editor's answer for the version it saved (the moves of every
    step, when a name was set as well), the feature's code, and the units inside the
    geometry that another parent holds and that were left where they are."""

    plan: str
    code: str
    ignored: list[str]


_FEATURE = {
    "type": "object",
    "required": ["type", "geometry"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "geometry": {
            "type": "object",
            "description": "A Polygon or MultiPolygon: the units whose representative point "
            "lies in it are the feature's",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
                "coordinates": {"type": "array", "items": {"type": "array"}},
            },
        },
        "properties": {
            "type": "object",
            "description": "name is written; community (a new grid's) or grid (a new "
            "micro-grid's) picks the parent; every other property is derived and ignored",
            "properties": {
                "name": {"type": "string", "maxLength": 60},
                "community": {"type": "string", "pattern": "^[0-9]{12}$"},
                "grid": {"type": "string", "pattern": "^[0-9]{15}$"},
            },
        },
    },
}
#: A merge patch names any of the members (OpenAPI 3.0 allows no empty "required").
_PATCH = {k: v for k, v in _FEATURE.items() if k != "required"}


def _body(schema: dict[str, Any], media: tuple[str, ...]) -> dict[str, Any]:
    content = {m: {"schema": schema} for m in media}
    return {"requestBody": {"required": True, "content": content}}


WRITE_ERRORS = {
    **ANSWERS,
    400: {
        "model": ErrorBody,
        "description": "The body is no GeoJSON Feature, its geometry no polygon or holding "
        "no unit of the feature's parent, a name out of 1–60 characters, or a parameter "
        "this operation does not declare",
    },
    409: {
        "model": ErrorBody,
        "description": "The plan changed meanwhile, a version other than the latest was "
        "named, or a deleted feature's units have nowhere to go",
    },
    405: {
        "model": ErrorBody,
        "description": "The collection takes no writes (only grids and microgrids do); "
        "Allow names the methods it takes",
    },
    412: {"model": ErrorBody, "description": "If-Match names a tag the feature no longer has"},
    415: {"model": ErrorBody, "description": "The body is not GeoJSON"},
    428: {"model": ErrorBody, "description": "If-Match is required here and was not sent"},
}
WRITTEN = {"model": FeatureWritten, "description": "The write, saved as the plan's next version"}


def _target(request: Request, store: Store, plan: str | None, version: int | None) -> Version:
    """The version a write is based on: the plan's latest (409 for another ``version``)."""
    v = store.resolve(plan or request.app.state.settings.plan)
    if version is not None and version != v.version:
        raise VersionConflict(
            f"writes go to the latest version {v.version} of plan {v.plan_id!r}, not {version}",
            v.plan_id,
            where="version",
        )
    return v


def _check_tag(
    request: Request, store: Store, v: Version, layer: str, code: str, given: str | None
) -> None:
    """412 unless ``If-Match`` holds the feature's tag (or ``*``); 428 without one where
    the deployment requires it."""
    if given is None:
        if request.app.state.settings.require_if_match:
            raise PreconditionRequired(
                "send If-Match with the feature's ETag (GET the feature first)", where="If-Match"
            )
        return
    frame = store.item(v.plan_id, v.version, layer, code)
    tags = {t.strip() for t in given.split(",") if t.strip()}
    if "*" not in tags and feature_tag(frame, layer) not in tags:
        raise PreconditionFailed(
            f"{layer} {code} changed since it was read (If-Match names a tag it no longer has); "
            "read it again and redo the change; nothing was saved",
            where="If-Match",
        )


def _geometry(value: Any, content_crs: str | None):
    """The polygon a body gives, in WGS84 lon/lat; InputError naming what is wrong."""
    if not isinstance(value, dict):
        raise InputError("a grid or micro-grid needs a Polygon or MultiPolygon", where="geometry")
    try:
        geom = shapely.geometry.shape(value)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ShapelyError):
        raise InputError("the geometry is not valid GeoJSON", where="geometry") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InputError(
            f"a grid or micro-grid is a Polygon or MultiPolygon, not {geom.geom_type}"
            + (" (empty)" if geom.is_empty else ""),
            where="geometry",
        )
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InputError("the geometry has coordinates that are not numbers", where="geometry")
    crs = crs_named(content_crs.strip().strip("<>") if content_crs else None, "Content-Crs")
    geom = from_crs(np.array([geom], dtype=object), crs)[0]
    x0, y0, x1, y1 = geom.bounds
    if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        raise InputError(
            f"the geometry lies outside the world in {crs.uri} (latitude and longitude "
            "swapped? CRS84 is lon,lat; EPSG:4326 and 4490 are lat,lon)",
            where="geometry",
        )
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


async def _read(request: Request, content_crs: str | None, patch: bool):
    """The geometry (None when a PATCH gives none) and properties of the body."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in MEDIA and not media.endswith("+json"):
        raise UnsupportedMedia(
            f"send the feature as application/geo+json, not {media}", where="content-type"
        )
    data = await read_upload(request)
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise InputError("the body is not JSON", where="body") from None
    if not isinstance(body, dict):
        raise InputError("send one GeoJSON Feature, a JSON object", where="body")
    if not patch and body.get("type") != "Feature":
        raise InputError('send one GeoJSON Feature ("type": "Feature")', where="type")
    props = body.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise InputError("properties is an object", where="properties")
    geometry = None
    if not patch or "geometry" in body:
        geometry = _geometry(body.get("geometry"), content_crs)
    return geometry, props


def _answer(request: Request, v: Version, written: Written) -> FeatureWritten:
    """The editor's answer for what the write saved (moves of each step), or for the
    version it left as it was."""
    if written.results:
        outs = [answer(request, r) for r in written.results]
        body = outs[-1].model_dump()
        body["moved"] = [m for o in outs for m in o.moved]
        body["grids"] = next((o.grids for o in outs if o.grids), [])
    else:
        locks = sorted(v.meta.get("locks") or [])
        body = EditOut(
            version=version_out(v),
            saved=False,
            moved=[],
            violations=[],
            grids=[],
            locks=locks,
            timings={},
        ).model_dump()
    return FeatureWritten(**body, plan=v.plan_id, code=written.code, ignored=written.ignored)


def _parent(props: dict[str, Any], layer: str) -> str | None:
    key = LEVELS[layer][1]
    value = props.get(key)
    if value is None or value == "":
        return None
    return str(value)


@router.post(
    "/collections/{layer}/items",
    status_code=201,
    response_model=FeatureWritten,
    responses={
        **WRITE_ERRORS,
        201: {
            **WRITTEN,
            "headers": {
                "Location": {
                    "description": "The new feature (…/items/{code}; the plan is the one "
                    "written to, which a client names again with plan)",
                    "schema": {"type": "string"},
                }
            },
        },
    },
    openapi_extra=_body(_FEATURE, MEDIA[:2]),
)
async def create_item(
    request: Request,
    response: Response,
    store: StoreDep,
    who: PlannerWho,
    layer: WritableLayer,
    plan: PlanQuery = None,
    version: VersionQuery = None,
    content_crs: ContentCrs = None,
) -> FeatureWritten:
    """Create a grid (micro-grid) of the units of one community (grid) whose
    representative point lies in the geometry, under the lowest code its parent never gave
    out; ``name`` sets its name. Saved as the plan's next version, flagged where it breaks
    a rule."""
    geometry, props = await _read(request, content_crs, patch=False)
    v = _target(request, store, plan, version)
    editor = get_editor(request)

    def run() -> FeatureWritten:
        done = create(
            editor, v.plan_id, v.version, layer, geometry, props.get("name"),
            _parent(props, layer), who,
        )  # fmt: skip
        return _answer(request, v, done)

    out = await run_in_threadpool(run)
    root = str(request.url_for("landing")).rstrip("/")
    response.headers["Location"] = f"{root}/collections/{layer}/items/{out.code}"
    return out


async def _replace(
    request: Request,
    store: Store,
    who,
    layer: str,
    code: str,
    plan: str | None,
    version: int | None,
    if_match: str | None,
    content_crs: str | None,
    patch: bool,
) -> FeatureWritten:
    check_scope(who, {code}, "a write to")  # before If-Match: a refusal is no precondition
    geometry, props = await _read(request, content_crs, patch)
    if props.get("code") not in (None, "", code):
        raise InputError(
            f"the body's code {props['code']!r} is not {code}; a code is never changed",
            where="properties.code",
        )
    v = _target(request, store, plan, version)
    editor = get_editor(request)

    def run() -> FeatureWritten:
        _check_tag(request, store, v, layer, code, if_match)
        done = redraw(editor, v.plan_id, v.version, layer, code, geometry, props.get("name"), who)
        return _answer(request, v, done)

    return await run_in_threadpool(run)


@router.put(
    "/collections/{layer}/items/{code}",
    response_model=FeatureWritten,
    responses={**WRITE_ERRORS, 200: WRITTEN},
    openapi_extra=_body(_FEATURE, MEDIA[:2]),
)
async def replace_item(
    request: Request,
    store: StoreDep,
    who: PlannerWho,
    layer: WritableLayer,
    code: Code,
    plan: PlanQuery = None,
    version: VersionQuery = None,
    if_match: IfMatch = None,
    content_crs: ContentCrs = None,
) -> FeatureWritten:
    """Replace a grid (micro-grid): the units of its parent inside the geometry are its
    own, its units outside go to the neighbour of the same parent they share the longest
    boundary with; ``name`` renames it; derived properties are ignored."""
    return await _replace(
        request, store, who, layer, code, plan, version, if_match, content_crs, False
    )


@router.patch(
    "/collections/{layer}/items/{code}",
    response_model=FeatureWritten,
    responses={**WRITE_ERRORS, 200: WRITTEN},
    openapi_extra=_body(_PATCH, (MEDIA[2], *MEDIA[:2])),
)
async def update_item(
    request: Request,
    store: StoreDep,
    who: PlannerWho,
    layer: WritableLayer,
    code: Code,
    plan: PlanQuery = None,
    version: VersionQuery = None,
    if_match: IfMatch = None,
    content_crs: ContentCrs = None,
) -> FeatureWritten:
    """Update a grid (micro-grid) with a JSON merge patch: a ``geometry`` redraws it as
    PUT does, ``properties.name`` renames it; what the patch leaves out stays."""
    return await _replace(
        request, store, who, layer, code, plan, version, if_match, content_crs, True
    )


@router.delete(
    "/collections/{layer}/items/{code}",
    response_model=FeatureWritten,
    responses={**WRITE_ERRORS, 200: WRITTEN},
)
async def delete_item(
    request: Request,
    store: StoreDep,
    who: PlannerWho,
    layer: WritableLayer,
    code: Code,
    plan: PlanQuery = None,
    version: VersionQuery = None,
    if_match: IfMatch = None,
) -> FeatureWritten:
    """Delete a grid (micro-grid): each of its units goes to the neighbour of the same
    parent it shares the longest boundary with, and its code retires for good; 409 when a
    unit touches no such neighbour."""
    check_scope(who, {code}, "a write to")
    v = _target(request, store, plan, version)
    editor = get_editor(request)

    def run() -> FeatureWritten:
        _check_tag(request, store, v, layer, code, if_match)
        return _answer(request, v, delete(editor, v.plan_id, v.version, layer, code, who))

    return await run_in_threadpool(run)


#: What OPTIONS answers: no body, and Allow naming the methods. OPTIONS stays out of the
#: API description: what it answers depends on the collection (a read-only one is 405),
#: which one path template cannot say.
OPTIONS_OK = {
    204: {
        "description": "Allow names the methods",
        "headers": {"Allow": {"schema": {"type": "string"}}},
    },
    405: {
        "model": ErrorBody,
        "description": "The collection takes no writes: Allow names its methods",
    },
}


@router.options(
    "/collections/{layer}/items",
    status_code=204,
    response_class=Response,
    responses=OPTIONS_OK,
    dependencies=[PUBLIC, Depends(service_params)],
    include_in_schema=False,
)
def items_options(layer: WritableLayer) -> Response:
    """The methods the collection's items take (QGIS asks, to learn whether it may edit a
    layer; a collection that takes no writes is 405, as for any other method)."""
    return Response(status_code=204, headers={"Allow": ALLOW_ITEMS})


@router.options(
    "/collections/{layer}/items/{code}",
    status_code=204,
    response_class=Response,
    responses=OPTIONS_OK,
    dependencies=[PUBLIC, Depends(service_params)],
    include_in_schema=False,
)
def item_options(layer: WritableLayer, code: Code) -> Response:
    """The methods one feature takes."""
    return Response(status_code=204, headers={"Allow": ALLOW_ITEM})
