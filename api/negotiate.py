"""What an answer depends on besides its address: its content coding, and the request
headers it was chosen by (``Vary``).

:class:`Compress` gzips every answer in a text media type (JSON, GeoJSON, HTML, CSV,
JavaScript, CSS, SVG) of at least :data:`MIN_BYTES` for a client that accepts gzip, and
leaves alone what is already encoded or is binary (vector tiles, GeoPackage, zip): a
GeoJSON page of units is about ten times smaller, and GDAL, QGIS, OWSLib and browsers
decode it without being told. The gzip representation is another representation, so it
gets its own strong ETag (RFC 9110 8.8.3: the tag with :data:`GZIP_TAG` appended), and a
client that sends that tag back in ``If-None-Match`` or ``If-Match`` is read as having sent
the route's own tag, so every route's validators (tiles, editor files, feature writes) work
on whichever representation the client holds.

A route that picks its answer by a request header says so with :func:`vary` (the OGC pages
choose HTML or JSON by ``Accept``); the middleware puts it in ``Vary``, beside
``Accept-Encoding`` on every answer that could have been compressed, so that a shared cache
never hands one client's representation to another.

brotli and zstd are not offered: no maintained package for them is a dependency, and
gzip is what every GIS client decodes.
"""

from __future__ import annotations

import zlib

import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request

#: Answers smaller than this are sent as they are: below a TCP segment or so, compressing
#: saves no round trip and costs the client a decoder.
MIN_BYTES = 1024
#: zlib's level: 6 is its default, within a few per cent of 9 on GeoJSON at about a third
#: of the time.
LEVEL = 6
#: Bodies at least this large are compressed in a worker thread, not the event loop (a
#: 2.6 MB page takes tens of milliseconds).
THREAD_BYTES = 64 * 1024
#: What the ETag of a gzip representation carries after the route's own tag.
GZIP_TAG = "-gzip"
#: Media types worth compressing besides ``text/*`` (JSON and XML types by suffix).
_TEXTUAL = {"application/json", "application/javascript", "application/xml", "image/svg+xml"}
#: Where a route's :func:`vary` headers wait for the middleware (``scope["state"]``).
VARY = "wangge_vary"


def vary(request: Request, *headers: str) -> None:
    """Note that this request's answer depends on ``headers`` (``Vary``)."""
    found = request.scope.setdefault("state", {}).setdefault(VARY, [])
    found.extend(h for h in headers if h not in found)


def compressible(media_type: str | None) -> bool:
    """Whether a body of this ``Content-Type`` is text that gzip shrinks."""
    media = (media_type or "").split(";")[0].strip().lower()
    return media.startswith("text/") or media in _TEXTUAL or media.endswith(("+json", "+xml"))


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (by name, x-gzip or ``*``, q > 0)."""
    ranks: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        key, _, value = params.strip().partition("=")
        if key.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        if name.strip():
            ranks[name.strip().lower()] = q
    q = ranks.get("gzip", ranks.get("x-gzip", ranks.get("*", 0.0)))
    return q > 0


def _tags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def _gzip_tag(tag: str) -> str:
    """The ETag of the gzip representation of the one tagged ``tag``."""
    if not tag.endswith('"') or tag.endswith(GZIP_TAG + '"'):
        return tag
    return tag[:-1] + GZIP_TAG + '"'


def _route_tag(tag: str) -> str:
    """The route's own tag, for one the client holds (a gzip representation's)."""
    return tag.replace(GZIP_TAG + '"', '"') if tag.endswith(GZIP_TAG + '"') else tag


def _merge_vary(headers: MutableHeaders, names: list[str]) -> None:
    have = _tags(headers.get("vary", ""))
    lower = {h.lower() for h in have}
    if "*" in lower:
        return
    for name in names:
        if name.lower() not in lower:
            have.append(name)
            lower.add(name.lower())
    if have:
        headers["Vary"] = ", ".join(have)


class Compress:
    """ASGI middleware: gzip for clients that accept it, ETags per representation and the
    ``Vary`` of negotiated answers (see the module's docstring).

    It sits inside :class:`wangge.api.caps.HeadAsGet`, so a HEAD gets the headers of the
    GET it stands for, with that GET's compressed ``Content-Length``.
    """

    def __init__(self, app, minimum: int = MIN_BYTES, level: int = LEVEL):
        self.app = app
        self.minimum = minimum
        self.level = level

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        headers = Headers(scope=scope)
        gzip_ok = accepts_gzip(headers.get("accept-encoding", ""))
        validators = [h for h in ("if-none-match", "if-match") if h in headers]
        held = {t.removeprefix("W/") for h in validators for t in _tags(headers[h])}
        held = {t for t in held if _route_tag(t) != t}  # the gzip tags the client holds
        if validators:
            scope = {**scope, "headers": _own_tags(scope["headers"])}
        answer = _Answer(self, send, state, gzip_ok, held)
        await self.app(scope, receive, answer.send)


def _own_tags(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Request headers with the gzip representation's tags in ``If-None-Match`` and
    ``If-Match`` read as the route's own. ``If-None-Match`` compares weakly (RFC 9110
    13.1.2), so its ``W/`` is dropped too, and a route may compare its tags as strings;
    ``If-Match`` compares strongly, so a weak tag there stays weak, and never matches."""
    out = []
    for name, value in raw:
        lower = name.lower()
        if lower in (b"if-none-match", b"if-match"):
            tags = _tags(value.decode("latin-1"))
            if lower == b"if-none-match":
                tags = [t.removeprefix("W/") for t in tags]
            value = ", ".join(_route_tag(t) for t in tags).encode("latin-1")
        out.append((name, value))
    return out


class _Answer:
    """One response on its way out: held at its start until the first body part tells
    whether it is worth compressing."""

    def __init__(self, owner: Compress, send, state: dict, gzip_ok: bool, held: set[str]):
        self.owner, self._send, self.state = owner, send, state
        self.gzip_ok, self.held = gzip_ok, held
        self.start: dict | None = None
        self.coder = None  # a zlib compressobj once streaming compressed

    async def send(self, message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            return
        if kind != "http.response.body":
            await self._send(message)
            return
        start, self.start = self.start, None
        if start is not None:
            await self._begin(start, message)
            return
        if self.coder is None:
            await self._send(message)
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        data = self.coder.compress(body) + (b"" if more else self.coder.flush())
        await self._send({"type": kind, "body": data, "more_body": more})

    async def _begin(self, start: dict, first: dict) -> None:
        """Send the held start and the first body part, compressed or as they are."""
        start = {**start, "headers": list(start.get("headers", ()))}
        headers = MutableHeaders(raw=start["headers"])
        names = list(self.state.get(VARY, ()))
        status = start["status"]
        body = first.get("body", b"")
        more = first.get("more_body", False)
        textual = compressible(headers.get("content-type"))
        plain = (
            status < 200
            or status in (204, 206, 304)
            or "content-encoding" in headers
            or "content-range" in headers
            or "no-transform" in headers.get("cache-control", "").lower()
        )
        if textual and not plain:
            names.append("Accept-Encoding")
        if status == 304 and self.held:  # the client holds the gzip form of this tag
            tag = headers.get("etag")
            if tag and _gzip_tag(tag) in self.held:
                headers["ETag"] = _gzip_tag(tag)
        _merge_vary(headers, names)
        small = not more and len(body) < self.owner.minimum
        if plain or not textual or not self.gzip_ok or small:
            await self._send(start)
            await self._send(first)
            return
        headers["Content-Encoding"] = "gzip"
        if "etag" in headers:
            headers["ETag"] = _gzip_tag(headers["etag"])
        if more:  # streamed: its length is not known until the end
            del headers["content-length"]
            self.coder = _coder(self.owner.level)
            body = self.coder.compress(body)
        else:
            body = await _gzip(body, self.owner.level)
            headers["Content-Length"] = str(len(body))
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body, "more_body": more})


def _coder(level: int):
    return zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: a gzip header


async def _gzip(body: bytes, level: int) -> bytes:
    """``body`` as one gzip member; a large one compressed in a worker thread."""

    def run() -> bytes:
        coder = _coder(level)
        return coder.compress(body) + coder.flush()

    if len(body) >= THREAD_BYTES:
        return await anyio.to_thread.run_sync(run)
    return run()
