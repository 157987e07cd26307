"""Vector tiles of every plan layer, with TileJSON, strong ETags and an in-memory cache.

A tile is cut by the store (ST_AsMVT in PostGIS, :mod:`wangge.maps.mvt` over an
in-memory spatial index on the GeoPackage store) once, then served from the cache. The
cache is keyed by the version that holds the layer's rows, so a layer an edit kept is
shared by both versions; for a layer the edit rewrote, the cached tiles that no changed
feature touches are carried over, and only the touched ones are cut again. The ETag is a
hash of the tile's bytes: it changes exactly when the tile does. A tile of another tile
matrix set (CGCS2000Quad) is cached beside the Web Mercator one (:func:`tile_key`); the
OGC API – Tiles routes and the listing of tiled layers, ``/tiles``, are
:mod:`wangge.api.ogc_tiles`'s.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from wangge.api.auth import READ
from wangge.api.deps import PlanQuery
from wangge.api.errors import ERRORS, ErrorBody
from wangge.data.osm import credit_of
from wangge.data.store import LayerInfo, Store, Version
from wangge.data.tiles import TILE_FIELDS, TileRequest, tile_fields, tilejson_type
from wangge.errors import NotFound
from wangge.maps.tile_grids import GRIDS, WEB_MERCATOR_QUAD, TileGrid

router = APIRouter(tags=["tiles"], dependencies=[READ])
MVT = "application/vnd.mapbox-vector-tile"
#: How long a worker trusts its idea of a plan's latest version (edits in this worker
#: update it at once; another worker's edit is seen within this time).
LATEST_TTL_S = 0.5
MAX_ZOOM = 22


class TileCache:
    """Encoded tiles by (plan, version holding the layer, layer, z, x, y), bounded in bytes."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.size = 0
        self._tiles: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> tuple[bytes, str] | None:
        with self._lock:
            found = self._tiles.get(key)
            if found is not None:
                self._tiles.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return found

    def put(self, key: tuple, data: bytes, etag: str) -> None:
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.size -= len(old[0])
            self._tiles[key] = (data, etag)
            self.size += len(data)
            while self.size > self.max_bytes and self._tiles:
                _, (gone, _) = self._tiles.popitem(last=False)
                self.size -= len(gone)

    def carry(
        self,
        plan_id: str,
        layer: str,
        old_source: tuple,
        new_source: tuple,
        touched: list[tuple[float, float, float, float]],
    ) -> tuple[int, int]:
        """Copy the cached tiles of a rewritten layer to its new version, except those a
        changed feature touches (WGS84 boxes). Returns (carried, dropped)."""
        boxes = {g.id: [g.from_lonlat(b) for b in touched] for g in GRIDS.values()}
        carried = dropped = 0
        with self._lock:
            items = [
                (k, v)
                for k, v in self._tiles.items()
                if k[0] == plan_id and k[1] == old_source and k[2] == layer
            ]
        for key, (data, etag) in items:
            grid = GRIDS[key[6]] if len(key) > 6 else WEB_MERCATOR_QUAD
            x0, y0, x1, y1 = _grown_bounds(grid, *key[3:6])
            if any(
                bx0 <= x1 and bx1 >= x0 and by0 <= y1 and by1 >= y0
                for bx0, by0, bx1, by1 in boxes[grid.id]
            ):
                dropped += 1
                continue
            self.put((plan_id, new_source, layer, *key[3:]), data, etag)
            carried += 1
        return carried, dropped

    def stats(self) -> dict[str, int]:
        return {
            "tiles": len(self._tiles),
            "bytes": self.size,
            "hits": self.hits,
            "misses": self.misses,
        }


def _grown_bounds(grid: TileGrid, z: int, x: int, y: int, buffer: float = 64 / 4096) -> tuple:
    x0, y0, x1, y1 = grid.bounds(z, x, y)
    pad = (x1 - x0) * buffer
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def tile_key(plan_id: str, span: tuple, layer: str, z: int, x: int, y: int, grid: TileGrid):
    """A tile's key in the cache: (plan, span of the layer's rows, layer, z, x, y), and the
    grid's id after them for a grid other than WebMercatorQuad."""
    key = (plan_id, span, layer, z, x, y)
    return key if grid is WEB_MERCATOR_QUAD else (*key, grid.id)


class Tiler:
    """Resolves plan versions and layers quickly and serves tiles through the cache."""

    def __init__(
        self, store: Store, cache: TileCache, enabled: bool = True, renders: int = 4
    ) -> None:
        self.store = store
        self.cache = cache
        self.enabled = enabled
        self._latest: dict[str, tuple[int, float]] = {}
        # tiles cut at once (Settings.tile_renders): a thread beyond them waits here, not
        # on a connection the store would have to open (and ready) for it
        self._renders = threading.BoundedSemaphore(max(renders, 1))

    def latest(self, plan_id: str) -> int:
        now = time.monotonic()
        seen = self._latest.get(plan_id)
        if seen and now - seen[1] < LATEST_TTL_S:
            return seen[0]
        number = self.store.latest(plan_id)
        if number is None:
            raise NotFound(f"no plan named {plan_id!r}", where="plan")
        self._latest[plan_id] = (number, now)
        return number

    async def latest_async(self, plan_id: str) -> int:
        """:meth:`latest` for an async route: the store is asked in a worker thread, and
        only once the remembered answer is stale, so the event loop never waits on it."""
        seen = self._latest.get(plan_id)
        if seen and time.monotonic() - seen[1] < LATEST_TTL_S:
            return seen[0]
        return await run_in_threadpool(self.latest, plan_id)

    def saw(self, plan_id: str, version: int) -> None:
        """A version this worker just saved is the latest from now on."""
        self._latest[plan_id] = (version, time.monotonic())

    def layer(self, plan_id: str, version: int, name: str) -> LayerInfo:
        infos = self.store.layer_infos(plan_id, version)
        if not infos:
            self.store.resolve(plan_id, version)  # NotFound naming what exists
        if name not in infos or name not in TILE_FIELDS or not infos[name].geometry_type:
            have = sorted(n for n, i in infos.items() if n in TILE_FIELDS and i.geometry_type)
            raise NotFound(
                f"no tiled layer {name!r} in this version; these are: {', '.join(have)}",
                where="layer",
            )
        return infos[name]

    def tiled_layers(self, plan_id: str, version: int) -> list[LayerInfo]:
        infos = self.store.layer_infos(plan_id, version).values()
        return [i for i in infos if i.name in TILE_FIELDS and i.geometry_type]

    def plan_id(self, request: Request, plan: str | None) -> str:
        if plan:
            return plan
        configured = request.app.state.settings.plan
        if configured:
            return configured
        return self.store.resolve().plan_id

    def cached(self, key: tuple) -> tuple[bytes, str] | None:
        return self.cache.get(key) if self.enabled else None

    def render(self, key: tuple, plan_id: str, version: int, req: TileRequest) -> tuple:
        with self._renders:
            data = self.store.tile(plan_id, version, req)
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        if self.enabled:
            self.cache.put(key, data, etag)
        return data, etag


def get_tiler(request: Request) -> Tiler:
    return tiler_of(request.app)


def tiler_of(app) -> Tiler:
    """The app's tiler, made on first use (again if the app's store was replaced)."""
    state = app.state
    tiler = getattr(state, "tiler", None)
    if tiler is None or tiler.store is not state.store:
        settings = state.settings
        cache = TileCache(int(settings.tile_cache_mb * 1024 * 1024))
        enabled = settings.tile_cache_mb > 0
        tiler = Tiler(state.store, cache, enabled=enabled, renders=settings.tile_renders)
        state.tiler = tiler
    return tiler


async def warm(app) -> int:
    """Ready a new server for its first tiles, before it reports ready: the plan it
    serves (``WANGGE_PLAN``, else the newest), its latest version and tiled layers; on
    PostGIS ``tile_renders`` connections for tiles with PostGIS, PROJ and each layer's
    tile statement loaded (data/pg_tiles.py); and one tile asked of the app itself, an
    empty one at z22, since FastAPI reads an endpoint's source file on its first request
    (for its error messages: ~5 ms). A first tile then costs what a cache miss does.
    Returns the connections readied (0 for a store with no plan yet)."""
    tiler = tiler_of(app)
    try:
        plan_id = app.state.settings.plan or tiler.store.resolve().plan_id
        number = tiler.latest(plan_id)
    except NotFound:
        return 0
    layers = [info.name for info in tiler.tiled_layers(plan_id, number)]
    renders = app.state.settings.tile_renders
    readied = await run_in_threadpool(tiler.store.warm_tiles, plan_id, number, layers, renders)
    if layers:
        await serve_once(app, f"/tiles/{layers[0]}/22/0/0.mvt", f"plan={plan_id}")
    return readied


async def serve_once(app, path: str, query: str = "") -> int:
    """Answer one GET of ``path`` in-process, with no socket; returns its status."""
    status = 0
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"accept-encoding", b"identity")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _check_tile(z: int, x: int, y: int) -> None:
    # 404, as OGC API Tiles asks: a tile beyond its zoom's matrix is no resource, and x < 2^z
    # is more than a parameter's schema can say
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise NotFound(f"tile {z}/{x}/{y} does not exist: x and y run 0–{n - 1}", where="tile")


def _matches(header: str | None, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 13.1.2): a proxy that compresses the tile
    (nginx gzip) hands the client a W/ form of the same tag."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return header.strip() == "*" or etag in tags


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    responses={
        **ERRORS,
        200: {"content": {MVT: {}}, "description": "A Mapbox Vector Tile (empty when bare)"},
        304: {"description": "The tile is unchanged (If-None-Match)"},
        404: {
            "model": ErrorBody,
            "description": "Unknown plan, version or layer, or no such tile at this zoom",
        },
    },
    response_class=Response,
)
async def tile(
    request: Request,
    layer: Annotated[str, Path(max_length=64)],
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1, description="Column, below 2^z")],
    y: Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1, description="Row, below 2^z")],
    plan: PlanQuery = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """One vector tile of a layer: one MVT layer named after it, attributes codes and
    counts only. With ``version`` the tile never changes (cached for a year); without,
    it is the latest version's, revalidated by its ETag."""
    _check_tile(z, x, y)
    tiler = get_tiler(request)
    plan_id = tiler.plan_id(request, plan)
    number = version if version is not None else await tiler.latest_async(plan_id)
    info = tiler.layer(plan_id, number, layer)
    found = await layer_tile(request, tiler, plan_id, number, info, z, x, y)
    return tile_response(request, *found, pinned=version is not None)


async def layer_tile(
    request: Request,
    tiler: Tiler,
    plan_id: str,
    number: int,
    info: LayerInfo,
    z: int,
    x: int,
    y: int,
    grid: TileGrid = WEB_MERCATOR_QUAD,
) -> tuple[bytes, str]:
    """One layer's tile ``z/x/y`` of ``grid`` and its ETag, from the cache or cut now."""
    key = tile_key(plan_id, info.span(number), info.name, z, x, y, grid)
    found = tiler.cached(key)
    if found is None:
        most = request.app.state.settings.tile_max_features
        req = TileRequest(info.name, z, x, y, max_features=most, grid=grid)
        found = await run_in_threadpool(tiler.render, key, plan_id, number, req)
    return found


def joined(parts: list[tuple[bytes, str]]) -> tuple[bytes, str]:
    """Several layers' tiles as one (MVT layers are a repeated field, so their bytes
    concatenate) with an ETag made of theirs."""
    data = b"".join(d for d, _ in parts)
    tags = "".join(e for _, e in parts).encode()
    return data, '"' + hashlib.blake2b(tags, digest_size=12).hexdigest() + '"'


def tile_response(request: Request, data: bytes, etag: str, pinned: bool) -> Response:
    """A tile's answer: 304 when ``If-None-Match`` names ``etag``; cached for a year when
    the URL pins its version, else revalidated."""
    # a tile behind a key is for its caller's cache only, never a shared one (a CDN or
    # proxy would hand it to callers without a key)
    scope = "public" if request.app.state.settings.public_reads else "private"
    headers = {
        "ETag": etag,
        "Cache-Control": f"{scope}, max-age=31536000, immutable"
        if pinned
        else f"{scope}, no-cache",
        # no Access-Control-Allow-Origin of its own: CORS is the app's (WANGGE_CORS_ORIGINS)
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


@router.get("/tiles/{layer}.json", responses=ERRORS)
def tilejson(
    request: Request,
    layer: Annotated[str, Path(max_length=64)],
    plan: PlanQuery = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """TileJSON 3.0.0 for a layer: the tile URL, its bounds and its fields."""
    tiler = get_tiler(request)
    plan_id = tiler.plan_id(request, plan)
    v = tiler.store.resolve(plan_id, version)
    info = tiler.layer(plan_id, v.version, layer)
    query = f"plan={plan_id}" + (f"&version={version}" if version is not None else "")
    base = str(request.base_url).rstrip("/")
    url = f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt?{query}"
    layers = [vector_layer(tiler.store, v, info)]
    return tilejson_doc(v, f"{plan_id} {layer}", url, layers, info.bbox, info.count)


def vector_layer(store: Store, v: Version, info: LayerInfo) -> dict[str, Any]:
    """A layer's TileJSON ``vector_layers`` entry: its public tile fields and their types."""
    dtypes = store.dtypes(v.plan_id, v.version, info.name)
    shown = tile_fields(info.name, info.columns, dtypes)  # public columns only (data/privacy)
    fields = {c: tilejson_type(dtypes.get(c, "object")) for c, _ in shown}
    return {"id": info.name, "fields": fields, "minzoom": 0, "maxzoom": MAX_ZOOM}


def tilejson_doc(
    v: Version,
    name: str,
    url: str,
    layers: list[dict[str, Any]],
    bbox: tuple[float, ...] | None,
    features: int,
) -> dict[str, Any]:
    """TileJSON 3.0.0 for XYZ (Web Mercator) tiles at ``url`` holding ``layers``."""
    bounds = list(bbox) if bbox else [-180, -85.05, 180, 85.05]
    centre = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 14]
    return {
        "tilejson": "3.0.0",
        "name": name,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": centre,
        "attribution": credit_of(v.meta),
        "vector_layers": layers,
        "wangge": {"plan": v.plan_id, "version": v.version, "features": features},
    }
