"""The planner's editor page and its static assets, served by wangge itself (no CDN).

``GET /editor`` answers the page; ``GET /editor/static/...`` its scripts and styles from
``maps/editor/`` and the MapLibre build vendored from npm into ``maps/static/vendor/``
(committed, and shipped in the package; ``bash scripts/vendor.sh --update`` refreshes it).
An install that lost the vendored build answers 503 and names the command to run.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

import wangge.maps
from wangge.api.auth import PUBLIC
from wangge.api.errors import ERRORS, error_response

router = APIRouter(tags=["editor"], dependencies=[PUBLIC])
JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}

#: The editor's own files (index.html, scripts, styles), beside the installed maps package.
EDITOR_DIR = Path(wangge.maps.__file__).resolve().parent / "editor"
#: What scripts/vendor.sh copies from npm (committed; shipped as package data).
VENDOR_DIR = Path(wangge.maps.__file__).resolve().parent / "static" / "vendor"
VENDOR_FILES = ("maplibre-gl.js", "maplibre-gl.css")
VENDOR_COMMAND = "bash scripts/vendor.sh --update"

#: Files served from the editor's folder, by suffix (package.json, node_modules are not).
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
NO_CACHE = "no-cache"

# ETags by (path, mtime, size): the files change only when redeployed or re-vendored
_etags: dict[tuple[str, int, int], str] = {}


def _etag(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    tag = _etags.get(key)
    if tag is None:
        tag = '"' + hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()[:20] + '"'
        _etags[key] = tag
    return tag


def _missing_vendor() -> list[str]:
    return [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]


def _not_modified(request: Request, tag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    return tag in {t.strip() for t in wanted.split(",")} or wanted.strip() == "*"


def _file_response(request: Request, path: Path, content_type: str) -> Response:
    tag = _etag(path)
    headers = {"ETag": tag, "Cache-Control": NO_CACHE}
    if _not_modified(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(path.read_bytes(), media_type=content_type, headers=headers)


@router.get(
    "/editor",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The editor page"},
        # errors are JSON, not the page's HTML: their content is spelled out, since FastAPI
        # would file a model under the route's text/html
        422: {"content": JSON_ERROR, "description": ERRORS[422]["description"]},
        503: {"content": JSON_ERROR, "description": "MapLibre is not vendored yet"},
    },
)
def editor_page(
    request: Request,
    plan: Annotated[
        str | None,
        Query(description="Plan id to open (default: the configured plan, else the newest)"),
    ] = None,
    lang: Annotated[
        str | None, Query(description="Interface language: zh (default) or en", max_length=8)
    ] = None,
) -> Response:
    """The planner's editor: select units on the map, move them to a neighbouring grid, lock
    grids, complete, undo, save and compare named versions. ``plan`` and ``lang`` are read
    by the page's script from the address."""
    missing = _missing_vendor()
    if missing:
        return error_response(
            503,
            f"the editor's MapLibre build is not vendored; run `{VENDOR_COMMAND}` "
            "in the repository and reload",
            {"missing": [str(VENDOR_DIR / name) for name in missing], "run": VENDOR_COMMAND},
            "maps/static/vendor",
        )
    index = EDITOR_DIR / "index.html"
    if not index.is_file():
        return error_response(
            503,
            f"the editor's files are not installed: no {index} "
            "(install wangge with its package data, or from the repository with pip install -e .)",
            None,
            "maps/editor",
        )
    root = request.scope.get("root_path", "").rstrip("/")
    page = index.read_text(encoding="utf-8")
    page = page.replace("__ROOT__", html.escape(root, quote=True))
    page = page.replace("__LANG__", "en" if lang == "en" else "zh-CN")
    return HTMLResponse(page, headers={"Cache-Control": NO_CACHE})


@router.get(
    "/editor/static/{path:path}",
    responses={**ERRORS, 200: {"description": "A script, style or image of the editor"}},
    include_in_schema=False,
)
def editor_static(request: Request, path: str) -> Response:
    """A file of the editor (``maps/editor/``) or of the vendored build (``vendor/...``)."""
    if path.startswith("vendor/"):
        base, name = VENDOR_DIR, path.removeprefix("vendor/")
    else:
        base, name = EDITOR_DIR, path
    target = (base / name).resolve()
    content_type = CONTENT_TYPES.get(target.suffix)
    inside = target.is_relative_to(base.resolve()) and "node_modules" not in target.parts
    if content_type is None or not inside or not target.is_file():
        hint = f"; run `{VENDOR_COMMAND}`" if base is VENDOR_DIR else ""
        return error_response(404, f"no editor file {path}{hint}", None, request.url.path)
    return _file_response(request, target, content_type)
