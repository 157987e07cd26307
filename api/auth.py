"""Who calls, and what each route lets them do. Deny by default.

Every route declares one policy with ``dependencies=[...]``:

- :data:`PUBLIC`: anyone (health, the editor's page and assets, the API description);
- :data:`READ`: an account of any role, or anyone when the deployment sets
  ``WANGGE_PUBLIC_READS=true``;
- :data:`VIEWER`: an account of any role, whatever the public-reads setting (``/me``);
- :data:`PLANNER`: a planner or an admin; the territorial scope of each change is checked
  where the change is made (``wangge/editing.py``, the roster), not here;
- :data:`ADMIN`: an admin.

A route that declares none answers 403 whatever the caller (:func:`deny_undeclared`), and
the role × scope × route matrix test fails until it declares one. The credential is an API
key sent as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; a missing or unknown key
is 401, a known key without the role 403. HTTP Basic with the key as the password (any user
name) is taken too: it is what GIS clients can send whatever their version (GDAL's
``GDAL_HTTP_USERPWD``, a QGIS "Basic" authentication configuration).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi.utils import create_model_field
from starlette.routing import Route

from wangge.api.errors import ErrorBody
from wangge.data.accounts import Account
from wangge.errors import Forbidden, Unauthenticated

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key from `wangge users add`, as `Authorization: Bearer KEY`",
)
_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKey",
    description="The same API key in an `X-API-Key` header",
)
_basic = HTTPBasic(
    auto_error=False,
    scheme_name="basic",
    realm="wangge",
    description="The same API key as the password of HTTP Basic (any user name), for GIS "
    "clients: `ogr2ogr --config GDAL_HTTP_USERPWD key:KEY`, a QGIS Basic configuration",
)
#: Query parameters whose value is a secret: a client that puts its key in the address
#: (a GIS plugin, a shared link) must not have it written to the access log
#: (app.redact_url), nor echoed by an OGC route that refuses it (ogc.known_params). Keys
#: are read from headers only.
SECRET_PARAMS = frozenset(
    {"key", "api_key", "apikey", "api-key", "x-api-key", "token", "access_token", "password"}
    | {"secret", "auth", "authorization"}
)
#: Routes the framework itself adds; they describe the API and are public.
FRAMEWORK_PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Account | None:
    """The account the request's key stands for; None without a key.

    Raises
    ------
    Unauthenticated
        A key was sent, but it is unknown, revoked or expired.
    """
    if bearer is not None:
        key = bearer.credentials
    elif header:
        key = header
    else:
        key = basic.password if basic is not None else None
    if not key:
        return None
    account = request.app.state.store.book.find(key.strip())
    if account is None:
        raise Unauthenticated("the API key is unknown, revoked or expired", where="Authorization")
    request.state.account = account
    return account


CallerDep = Annotated[Account | None, Depends(caller)]


def _needs(role: str, anonymous_ok: bool = False):
    def policy(request: Request, who: CallerDep) -> Account | None:
        if who is None:
            if anonymous_ok and request.app.state.settings.public_reads:
                return None
            raise Unauthenticated(
                "this needs an API key (Authorization: Bearer KEY); "
                "an admin creates one with `wangge users add`",
                where="Authorization",
            )
        if not who.at_least(role):
            raise Forbidden(f"account {who.name!r} is a {who.role}; this needs the {role} role")
        return who

    policy.wangge_policy = "read" if anonymous_ok else role
    policy.__name__ = f"needs_{policy.wangge_policy}"
    return policy


def _public() -> None:
    return None


_public.wangge_policy = "public"

#: Policies, as dependencies a route lists; the same callable is cached per request, so an
#: endpoint may also take the account as a parameter (``who: ReadWho``).
needs_read = _needs("viewer", anonymous_ok=True)
needs_viewer = _needs("viewer")
needs_planner = _needs("planner")
needs_admin = _needs("admin")
PUBLIC = Depends(_public)
READ = Depends(needs_read)
VIEWER = Depends(needs_viewer)
PLANNER = Depends(needs_planner)
ADMIN = Depends(needs_admin)
ReadWho = Annotated[Account | None, READ]
ViewerWho = Annotated[Account, VIEWER]
PlannerWho = Annotated[Account, PLANNER]
AdminWho = Annotated[Account, ADMIN]

#: The answers every guarded route can give, for its OpenAPI description.
AUTH_ERRORS = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown, revoked or expired one"},
    403: {"model": ErrorBody, "description": "The account's role or scope does not allow this"},
}


def policy_of(route: APIRoute) -> str | None:
    """The policy a route declares (public, read, viewer, planner, admin), or None."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        found = getattr(dep.call, "wangge_policy", None)
        if found:
            return found
        stack.extend(dep.dependencies)
    return None


def _document(route: APIRoute) -> None:
    # as FastAPI does for the responses a route declares, so the schema names the body
    for status, doc in AUTH_ERRORS.items():
        if status in route.responses:
            continue
        route.responses[status] = doc
        fields = dict(route.response_fields or {})
        fields[status] = create_model_field(
            name=f"Response_{status}_{route.unique_id}", type_=ErrorBody, mode="serialization"
        )
        route.response_fields = fields


def keys_optional_when_reads_are_public(app: FastAPI) -> None:
    """With public reads, the OpenAPI document says a key is optional on the read routes
    (an empty security requirement beside the schemes), so that clients and fuzzers know
    what the server does. Done on this app's own document: the routes are shared by every
    app in the process, whatever its settings."""
    make = app.openapi

    def openapi() -> dict:
        fresh = app.openapi_schema is None
        doc = make()
        if fresh and app.state.settings.public_reads:
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    if isinstance(op, dict) and op.get("x-wangge-policy") == "read":
                        op["security"] = [*op.get("security", []), {}]
        return doc

    app.openapi = openapi


def api_routes(routes) -> list[APIRoute]:
    """Every APIRoute under ``routes``, through included routers."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.extend(api_routes(inner.routes))
        elif isinstance(route, APIRoute):
            out.append(route)
    return out


def enforce(request: Request) -> None:
    """Run before every route (an app-wide dependency): refuse a route that declares no
    policy, whoever calls."""
    route = request.scope.get("route")
    if route is None or policy_of(route) is None:
        raise Forbidden(
            "this route declares no access policy, so nobody may use it",
            where=request.url.path,
        )


def deny_undeclared(app: FastAPI) -> dict[str, str]:
    """Note each route's policy in its OpenAPI description (``x-wangge-policy``) and
    document 401/403 where they apply. Routes without one stay closed (:func:`enforce`).
    Returns ``{"METHOD path": policy}`` for every route, closed ones as ``"none"``."""
    seen: dict[str, str] = {}
    for route in api_routes(app.router.routes):
        found = policy_of(route) or "none"
        route.openapi_extra = {**(route.openapi_extra or {}), "x-wangge-policy": found}
        if found not in ("public", "none"):
            _document(route)
        for method in sorted(route.methods):
            seen[f"{method} {route.path}"] = found
    for route in app.router.routes:
        if isinstance(route, Route) and not isinstance(route, APIRoute):
            public = route.path in FRAMEWORK_PUBLIC
            for method in sorted(route.methods or ()):
                seen[f"{method} {route.path}"] = "public" if public else "none"
    app.openapi_schema = None
    return seen
