"""The FastAPI application: routers by resource, the store opened once at start."""

from __future__ import annotations

import gc
import logging
import re
from contextlib import asynccontextmanager
from urllib.parse import unquote_plus

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from wangge import __version__
from wangge.api import (
    adopt,
    audit,
    basemap,
    collections,
    coverage,
    editor,
    edits,
    errors,
    exports,
    lookup,
    ogc,
    ogc_edits,
    ogc_tiles,
    plans,
    risk,
    roster,
    tiles,
)
from wangge.api.auth import (
    PUBLIC,
    SECRET_PARAMS,
    api_routes,
    deny_undeclared,
    enforce,
    keys_optional_when_reads_are_public,
)
from wangge.api.caps import HeadAsGet, ReadTimeout
from wangge.api.errors import ErrorBody
from wangge.api.negotiate import Compress
from wangge.api.ogc import KNOWN_PARAMS
from wangge.api.settings import Settings
from wangge.data.accounts import KEY_PREFIX
from wangge.data.store import Store, open_store


class Health(BaseModel):
    status: str
    store: str
    plans: int


REDACTED = "[redacted]"
#: A wangge API key wherever it stands in an address (data/accounts.py new_key: the
#: prefix and 43 URL-safe characters; a plan id such as wg_demo is too short to be one).
_KEY = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_\-]{32,}")


def redact_url(url: str) -> str:
    """``url`` (a path and query string, as uvicorn logs it) with the value of every
    :data:`SECRET_PARAMS` parameter, and every API key anywhere in it, replaced by
    :data:`REDACTED`."""
    path, sep, query = url.partition("?")
    if sep:
        pairs = []
        for pair in query.split("&"):
            name, eq, _ = pair.partition("=")
            if eq and unquote_plus(name).strip().lower() in SECRET_PARAMS:
                pair = f"{name}={REDACTED}"
            pairs.append(pair)
        url = f"{path}?{'&'.join(pairs)}"
    return _KEY.sub(KEY_PREFIX + REDACTED, url)


class RedactKeys(logging.Filter):
    """Rewrites the address of uvicorn's access log lines with :func:`redact_url` (the
    third argument of ``'%s - "%s %s HTTP/%s" %d'``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        elif isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        return True


def redact_access_log() -> None:
    """Put :class:`RedactKeys` on uvicorn's access logger, once (at app start, after
    uvicorn has configured its logging)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactKeys) for f in logger.filters):
        logger.addFilter(RedactKeys())


BAD_PARAMETER = {
    "model": ErrorBody,
    "description": "An invalid parameter value, or a query parameter this operation does not "
    "declare (or gives twice): OGC API – Features answers 400, not 422",
}


def _docs(request: Request) -> HTMLResponse:
    """Swagger UI for the API, from the copy vendored with the editor's assets: an intranet
    without internet access gets the docs too (and no online validator is asked)."""
    root = request.scope.get("root_path", "").rstrip("/")
    vendor = f"{root}/editor/static/vendor"
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title="wangge 网格 API",
        swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
        swagger_css_url=f"{vendor}/swagger-ui.css",
        swagger_favicon_url="data:,",
        swagger_ui_parameters={"validatorUrl": None},
    )


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the app. ``store`` (tests) or the settings' store target is used."""
    settings = settings or Settings()

    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        redact_access_log()
        own = store is None
        app.state.store = store or open_store(
            settings.store_target(), settings.statement_timeout_ms, settings.db_pool
        )
        if own:  # ready for the first tiles before the server says it is up
            await tiles.warm(app)
            # what starting made (~200,000 objects: pandas, shapely, numba, the app) is
            # left out of the cyclic GC from now on: a full pass over it paused whichever
            # request set it off for 0.1-0.5 s (a tipg process has a tenth of the objects)
            gc.freeze()
        try:
            yield
        finally:
            if own:
                app.state.store.close()

    app = FastAPI(
        title="wangge 网格 API",
        version=__version__,
        summary="Grid governance plans: collections, coverage lookups, exports.",
        description=(
            "Streets, communities, grids and micro-grids of a plan, served as OGC API – "
            "Features (Parts 1 and 2; start at `/`). Map data © OpenStreetMap contributors, "
            "ODbL 1.0."
        ),
        lifespan=lifespan,
        dependencies=[Depends(enforce), KNOWN_PARAMS],
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN: see _docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(ReadTimeout, seconds=settings.request_timeout_s)
    app.add_middleware(Compress)  # inside HeadAsGet: a HEAD gets its GET's encoded headers
    app.add_middleware(HeadAsGet)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # a city dashboard on its own origin: preflights answered, keys allowed
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                *("Authorization", "X-API-Key", "Content-Type", "If-None-Match"),
                *("If-Match", "Content-Crs"),  # OGC API – Features Part 4 writes
            ],
            expose_headers=["ETag", "Content-Crs", "Content-Disposition", "Retry-After", "Link"],
            max_age=600,
        )
    if store is not None:
        app.state.store = store
    errors.install(app)
    for module in (
        ogc,
        collections,
        ogc_edits,
        coverage,
        exports,
        plans,
        edits,
        adopt,
        risk,
        tiles,
        ogc_tiles,  # after tiles: /tiles/{layer}.json before /tiles/{tileMatrixSetId}
        basemap,
        editor,
        audit,
        roster,
        lookup,
    ):
        app.include_router(module.router)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
        dependencies=[PUBLIC],
        responses={503: {"model": ErrorBody, "description": "The store does not answer"}},
    )
    def healthz(request: Request) -> Health:
        """Ready when the store answers."""
        st = request.app.state.store
        return Health(status="ok", store=type(st).__name__, plans=len(st.plans()))

    app.add_route("/docs", _docs, include_in_schema=False)
    for route in api_routes(app.router.routes):  # OGC answers a bad parameter 400: say so
        if errors.ogc_route(route.path):
            route.responses.setdefault(400, BAD_PARAMETER)

    # deny by default: a route without a policy answers 403 to everyone
    app.state.policies = deny_undeclared(app)
    keys_optional_when_reads_are_public(app)
    return app
