"""One map from wangge's exception family to HTTP status and a JSON body, registered once.

Every error body is ``{"error": ..., "detail": ..., "where": ...}``: what went wrong in
words, the particulars (a list of violations, the parameters at fault), and the file,
parameter, row or feature at fault.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Route

from wangge.api.negotiate import vary
from wangge.errors import WanggeError
from wangge.maps.tile_grids import GRIDS

#: The second step of a dataset tileset's path: a tile matrix set, or its route's template.
_GRID_IDS = {*GRIDS, "{tileMatrixSetId}"}


class UnsupportedMedia(WanggeError):
    """A body in a media type the route does not read (415); an HTTP notion, so it lives
    with the API rather than in ``wangge.errors``."""

    status_code = 415


class ErrorBody(BaseModel):
    """The JSON body of every error response."""

    error: str
    detail: Any = None
    where: str | None = None


def error_response(
    status: int,
    error: str,
    detail: Any = None,
    where: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, detail=detail, where=where).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def ogc_path(request: Request) -> bool:
    """Whether the request is to an OGC API resource (:func:`ogc_route`)."""
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return ogc_route(path)


def ogc_route(path: str) -> bool:
    """Whether ``path`` (a request's, or a route's template) is an OGC API resource: the
    landing page, conformance, the API description, collections and their items and
    tiles, the tile matrix sets and the dataset's tilesets (``/tiles/{tileMatrixSetId}``
    and below; ``/tiles`` itself and the XYZ tiles are wangge's own)."""
    if path in ("/", "/conformance", "/api"):
        return True
    if path.startswith(("/collections", "/tileMatrixSets")):
        return True
    parts = path.split("/")
    return len(parts) > 2 and parts[1] == "tiles" and parts[2] in _GRID_IDS


def _status(request: Request, status: int) -> int:
    """OGC API – Features answers an invalid parameter value with 400
    (/req/core/query-param-invalid); the rest of the API says 422 for it."""
    return 400 if status == 422 and ogc_path(request) else status


def _wangge(request: Request, exc: WanggeError) -> JSONResponse:
    detail = getattr(exc, "violations", None)
    headers = {"WWW-Authenticate": _challenge(request)} if exc.status_code == 401 else None
    message = exc.message
    store = getattr(request.app.state, "store", None)
    if exc.source and exc.source == str(getattr(store, "url", None)):
        # the store's own path or URL is the server's business, not the caller's
        message = f"{exc.where}: {exc.problem}" if exc.where else exc.problem
    status = _status(request, exc.status_code)
    return error_response(status, message, detail, exc.where, headers)


def _challenge(request: Request) -> str:
    """A browser opening a page (Accept: text/html, ``f=html``) is asked for Basic, so it
    prompts for the key (as the password); scripts (the editor's fetch) get Bearer only,
    which prompts nothing."""
    vary(request, "Accept")
    bearer = 'Bearer realm="wangge"'
    page = request.query_params.get("f") == "html" or request.headers.get("accept", "").startswith(
        "text/html"
    )
    return f'{bearer}, Basic realm="wangge", charset="UTF-8"' if page else bearer


def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
        # a route matched by its path's shape alone (PUT /roster/{code} for /roster/import):
        # the path belongs to the routes whose parameters fit, so this method is not allowed
        allowed = allowed_methods(request)
        if allowed and request.method not in allowed:
            return error_response(
                405, "Method Not Allowed", None, request.url.path, {"Allow": ", ".join(allowed)}
            )
    media = _unsupported_media(request)
    if media is not None:
        return error_response(
            415, f"send the body as application/json, not {media}", None, "content-type"
        )
    problems = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body")]
        problems.append({"where": ".".join(loc), "problem": e.get("msg", "invalid")})
    where = problems[0]["where"] if problems else None
    text = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
    return error_response(_status(request, 422), text, problems, where)


def _unsupported_media(request: Request) -> str | None:
    """The request's media type when the route reads a JSON body and this is not JSON
    (FastAPI then leaves the body unparsed, and would call it an invalid object)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and "+json" in media):
        return None
    return media or "a body without a Content-Type"


def allowed_methods(request: Request) -> list[str]:
    """The methods the app serves at the request's path, for a 405's ``Allow``.

    Starlette names only the methods of the first route whose path matches, and a route
    whose path parameter would refuse the value (``/roster/import`` is no grid code) is not
    a match.
    """
    from wangge.api.auth import api_routes  # auth documents its answers with ErrorBody

    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    routes = api_routes(request.app.router.routes) + [
        r for r in request.app.router.routes if isinstance(r, Route)
    ]
    methods: set[str] = set()
    for route in routes:
        found = route.path_regex.match(path)
        if found is None:
            continue
        if isinstance(route, APIRoute):
            params = found.groupdict()
            fields = route.dependant.path_params
            if any(f.validate(params.get(f.alias), loc=("path",))[1] for f in fields):
                continue
        methods |= set(route.methods or ())
    return sorted(methods)


def _http(request: Request, exc: HTTPException) -> JSONResponse:
    # keep the headers a status needs (Allow on 405, naming every method of the path)
    headers = getattr(exc, "headers", None)
    allowed = allowed_methods(request) if exc.status_code == 405 else None
    if allowed:
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return error_response(exc.status_code, str(exc.detail), None, request.url.path, headers)


def _database(request: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL cancelled a statement past the configured statement_timeout
    if "statement timeout" in str(exc):
        return error_response(
            413,
            "the request asks for more than the database answers within its time limit "
            "(WANGGE_STATEMENT_TIMEOUT_MS); narrow the bbox, the page or the batch",
            None,
            request.url.path,
        )
    return error_response(503, "the database is unavailable; try again", None, None)


def _busy(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
    # the GeoPackage file is locked by another writer or reader for longer than we wait
    if "locked" in str(exc) or "busy" in str(exc):
        return error_response(
            503,
            "the store is busy with another write; try again",
            None,
            None,
            {"Retry-After": "1"},
        )
    return _unexpected(request, exc)


def _refused(request: Request, exc: DBAPIError) -> JSONResponse:
    # the PostGIS scope guard (data/postgis_store.py) refused a change the app let through
    if "wangge scope guard" in str(exc):
        return error_response(
            403, "the database refused a change outside the account's scope", None, "scope"
        )
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # a bug, not bad input: say so without leaking internals
    return error_response(500, f"internal error ({type(exc).__name__}); please report it")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(WanggeError, _wangge)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(DBAPIError, _refused)
    app.add_exception_handler(sqlite3.OperationalError, _busy)
    app.add_exception_handler(Exception, _unexpected)


#: Error responses to document on every route that can give them: every route reading the
#: store (the caller's key is looked up there too) may meet a statement timeout (413 on
#: PostGIS), a read timeout (413) or a database that does not answer (503).
ERRORS = {
    404: {"model": ErrorBody, "description": "Unknown plan, version, layer or code"},
    413: {
        "model": ErrorBody,
        "description": "More than the limits allow: a bbox, batch or upload above its cap, an "
        "uploaded file that expands beyond its limits (a zip bomb), or a request the database "
        "does not answer within WANGGE_STATEMENT_TIMEOUT_MS or WANGGE_REQUEST_TIMEOUT_S",
    },
    422: {"model": ErrorBody, "description": "A parameter or the input is invalid"},
    503: {"model": ErrorBody, "description": "The database is unavailable; try again"},
}
#: What a route reading a JSON body adds: a body that is not UTF-8 or not JSON at all.
JSON_BODY = {
    400: {"model": ErrorBody, "description": "The body cannot be read (not UTF-8)"},
    415: {"model": ErrorBody, "description": "The body is not sent as application/json"},
}
