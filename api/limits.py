"""Caps a shared deployment needs, each refused with a clear 4xx naming the setting.

The settings (``WANGGE_*``, api/settings.py) and where each is enforced:

- ``MAX_UPLOAD_MB``: the body of an upload (deps.read_upload), 413;
- ``MAX_UPLOAD_FEATURES``: features in a plan, grid-layer or roster upload, 413;
- ``MAX_LIMIT``: a page of items (collections), 422 above it;
- ``MAX_BBOX_KM2``: the area of a ``bbox`` (deps.parse_bbox), 413;
- ``MAX_BATCH``: points in one coverage batch, 413;
- the tile zoom range 0…22 (tiles), 422;
- ``REQUEST_TIMEOUT_S``: a read that takes longer is answered 413 (:class:`ReadTimeout`);
- ``STATEMENT_TIMEOUT_MS``: PostgreSQL cancels a statement past it, 413 (errors.py).
"""

from __future__ import annotations

import asyncio
import math

from wangge.api.errors import error_response
from wangge.errors import TooLarge

#: Kilometres per degree of latitude (and of longitude at the equator), WGS84 mean.
KM_PER_DEGREE = 111.2


def bbox_km2(bbox: tuple[float, float, float, float]) -> float:
    """The area of a lon/lat box in km² (cosine of the middle latitude; enough for a cap)."""
    x0, y0, x1, y1 = bbox
    mid = math.radians((y0 + y1) / 2)
    return (x1 - x0) * KM_PER_DEGREE * math.cos(mid) * (y1 - y0) * KM_PER_DEGREE


def check_bbox(bbox: tuple[float, float, float, float], most_km2: float) -> None:
    """Refuse (413) a bbox larger than ``most_km2``."""
    area = bbox_km2(bbox)
    if area > most_km2:
        raise TooLarge(
            f"the bbox covers {area:,.0f} km²; the limit is {most_km2:,.0f} km² "
            "(WANGGE_MAX_BBOX_KM2): ask for a smaller area",
            where="bbox",
        )


def check_features(count: int, most: int, what: str) -> None:
    """Refuse (413) an upload of more than ``most`` features."""
    if count > most:
        raise TooLarge(
            f"{what} holds {count:,} features; an upload holds at most {most:,} "
            "(WANGGE_MAX_UPLOAD_FEATURES)",
            where="body",
        )


class HeadAsGet:
    """ASGI middleware: HEAD is answered wherever GET is (RFC 9110 9.3.2), with the GET's
    status and headers and no body; load balancers and link checkers ask with it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class ReadTimeout:
    """ASGI middleware: a GET or HEAD that has not started its answer within ``seconds``
    is answered 413. Writes are left to finish: a write cut off mid-way could commit after
    its caller was told it failed (its own base-version check and the database's statement
    timeout bound it instead)."""

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not self.seconds:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message):
            nonlocal started
            started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracked))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done:
            task.result()
            return
        if started:  # the answer is on its way: let it finish
            await task
            return
        task.cancel()
        response = error_response(
            413,
            f"the request takes longer than the limit of {self.seconds:g} s "
            "(WANGGE_REQUEST_TIMEOUT_S); ask for less (a smaller bbox, page or batch)",
            where=scope.get("path"),
        )
        await response(scope, receive, send)
