"""One map from wangge's exception family to HTTP status and a JSON body, registered once.

Every error body is ``{"error": ..., "detail": ..., "where": ...}``: what went wrong in
words, the particulars (a list of violations, the parameters at fault), and the file,
parameter, row or feature at fault.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from wangge.errors import WanggeError


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


def _wangge(request: Request, exc: WanggeError) -> JSONResponse:
    detail = getattr(exc, "violations", None)
    headers = {"WWW-Authenticate": 'Bearer realm="wangge"'} if exc.status_code == 401 else None
    return error_response(exc.status_code, exc.message, detail, exc.where, headers)


def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body")]
        problems.append({"where": ".".join(loc), "problem": e.get("msg", "invalid")})
    where = problems[0]["where"] if problems else None
    text = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
    return error_response(422, text, problems, where)


def _http(request: Request, exc: HTTPException) -> JSONResponse:
    # keep the headers a status needs (Allow on 405)
    headers = getattr(exc, "headers", None)
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
    app.add_exception_handler(Exception, _unexpected)


#: Error responses to document on every route that can give them.
ERRORS = {
    404: {"model": ErrorBody, "description": "Unknown plan, version, layer or code"},
    422: {"model": ErrorBody, "description": "A parameter or the input is invalid"},
}
