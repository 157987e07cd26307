"""Caps a shared deployment needs, each refused with a clear 4xx naming the setting.

The settings (``WANGGE_*``, api/settings.py) and where each is enforced:

- ``MAX_UPLOAD_MB``: the body of an upload (deps.read_upload), 413;
- ``MAX_UPLOAD_FEATURES``: features in a plan, grid-layer or roster upload, 413;
- ``MAX_LIMIT``: a page of items (collections), 422 above it;
- ``MAX_BBOX_KM2``: the area of a ``bbox`` (deps.parse_bbox), 413;
- ``MAX_BATCH``: points in one coverage batch, 413;
- the tile zoom range 0…22 (tiles), 422;
- ``REQUEST_TIMEOUT_S``: a read, or an upload still being read and checked, that takes
  longer is answered 413 (:class:`ReadTimeout`, :func:`upload_deadline`);
- ``STATEMENT_TIMEOUT_MS``: PostgreSQL cancels a statement past it, 413 (errors.py).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

from starlette.requests import Request

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


class Deadline:
    """The time cap of one request, shared by :class:`ReadTimeout` and the route.

    A read (GET, HEAD) is capped from its start. A write is capped only while a route
    that reads an upload says so (:meth:`arm`), up to the moment it is about to write
    (:meth:`claim`): past the cap the caller is answered 413 and the write is never made;
    once the write has begun it is left to finish, as a write cut off mid-way could commit
    after its caller was told it failed. Python cannot stop the thread that parses an
    upload, so the work itself is bounded too: data/untrusted.py checks every file's size
    and expansion before a parser opens it.
    """

    def __init__(self, seconds: float, armed: bool):
        self.seconds = seconds
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._state = "armed" if armed else "open"

    def _late(self) -> bool:
        return bool(self.seconds) and time.monotonic() - self._start >= self.seconds

    def _refuse(self) -> TooLarge:
        return TooLarge(
            f"the upload took longer than the limit of {self.seconds:g} s "
            "(WANGGE_REQUEST_TIMEOUT_S) to read and check, and nothing was saved; send a "
            "smaller file",
            where="body",
        )

    def arm(self) -> Deadline:
        """Cap this request from now on (until :meth:`claim`), counting from its start;
        raises TooLarge when that time has passed already."""
        with self._lock:
            if self._state == "open":
                self._state = "armed"
            if self._state == "armed" and self._late():
                self._state = "expired"
            if self._state == "expired":
                raise self._refuse()
        return self

    def claim(self) -> None:
        """Called, from any thread, just before the request writes: the cap no longer
        applies; raises TooLarge when the time has passed (the caller may have been
        answered 413 already), and nothing is written."""
        with self._lock:
            if self._state == "armed" and self._late():
                self._state = "expired"
            if self._state == "expired":
                raise self._refuse()
            self._state = "writing"

    def expire(self) -> bool:
        """Whether the request may be answered 413 now (it is capped and not writing)."""
        with self._lock:
            if self._state == "armed":
                self._state = "expired"
                return True
            return False


#: Where :class:`ReadTimeout` keeps a request's :class:`Deadline` (``request.state``).
DEADLINE = "wangge_deadline"


def upload_deadline(request: Request) -> Deadline:
    """Arm the time cap of a route reading an upload; call :meth:`Deadline.claim` before
    writing. Without the middleware (no cap set), a deadline that never expires."""
    found = request.scope.get("state", {}).get(DEADLINE)
    if found is None:
        return Deadline(0, armed=False)
    return found.arm()


class ReadTimeout:
    """ASGI middleware: a request that has not started its answer within ``seconds`` is
    answered 413 while its :class:`Deadline` is armed: every GET and HEAD, and an upload
    until it writes. Other writes are left to finish (their own base-version check and the
    database's statement timeout bound them)."""

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.seconds:
            await self.app(scope, receive, send)
            return
        read = scope["method"] in ("GET", "HEAD")
        deadline = Deadline(self.seconds, armed=read)
        scope.setdefault("state", {})[DEADLINE] = deadline
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
        if started or not deadline.expire():  # answering, or writing: let it finish
            await task
            return
        task.cancel()
        ask = "ask for less (a smaller bbox, page or batch)" if read else "send a smaller file"
        response = error_response(
            413,
            f"the request takes longer than the limit of {self.seconds:g} s "
            f"(WANGGE_REQUEST_TIMEOUT_S); {ask}",
            where=scope.get("path"),
        )
        await response(scope, receive, send)
