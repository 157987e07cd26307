"""Vector tiles of every plan layer, with TileJSON, strong ETags and an in-memory cache.

A tile is cut by the store (ST_AsMVT in PostGIS, :mod:`wangge.maps.mvt` over an
in-memory spatial index on the GeoPackage store) once, then served from the cache. The
cache is keyed by the version that holds the layer's rows, so a layer an edit kept is
shared by both versions; for a layer the edit rewrote, the cached tiles that no changed
feature touches are carried over, and only the touched ones are cut again. The ETag is a
hash of the tile's bytes: it changes exactly when the tile does.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pyproj import Transformer

from wangge.api.auth import READ
from wangge.api.deps import PlanQuery
from wangge.api.errors import ERRORS, ErrorBody
from wangge.data.osm import credit_of
from wangge.data.store import LayerInfo, Store
from wangge.data.tiles import TILE_FIELDS, TileRequest, tile_fields, tilejson_type
from wangge.errors import NotFound
from wangge.maps.mvt import tile_bounds

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
        boxes = [_merc_box(b) for b in touched]
        carried = dropped = 0
        with self._lock:
            items = [
                (k, v)
                for k, v in self._tiles.items()
                if k[0] == plan_id and k[1] == old_source and k[2] == layer
            ]
        for key, (data, etag) in items:
            x0, y0, x1, y1 = _grown_bounds(*key[3:])
            if any(
                bx0 <= x1 and bx1 >= x0 and by0 <= y1 and by1 >= y0 for bx0, by0, bx1, by1 in boxes
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


def _grown_bounds(z: int, x: int, y: int, buffer: float = 64 / 4096) -> tuple:
    x0, y0, x1, y1 = tile_bounds(z, x, y)
    pad = (x1 - x0) * buffer
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)


def _merc_box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A WGS84 box in Web Mercator (lon/lat boxes stay boxes: both axes are monotonic)."""
    (x0, x1), (y0, y1) = _TO_MERCATOR.transform([b[0], b[2]], [b[1], b[3]])
    return x0, y0, x1, y1


class Tiler:
    """Resolves plan versions and layers quickly and serves tiles through the cache."""

    def __init__(self, store: Store, cache: TileCache, enabled: bool = True):
        self.store = store
        self.cache = cache
        self.enabled = enabled
        self._latest: dict[str, tuple[int, float]] = {}

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
        data = self.store.tile(plan_id, version, req)
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        if self.enabled:
            self.cache.put(key, data, etag)
        return data, etag


def get_tiler(request: Request) -> Tiler:
    state = request.app.state
    tiler = getattr(state, "tiler", None)
    if tiler is None or tiler.store is not state.store:
        settings = state.settings
        cache = TileCache(int(settings.tile_cache_mb * 1024 * 1024))
        tiler = Tiler(state.store, cache, enabled=settings.tile_cache_mb > 0)
        state.tiler = tiler
    return tiler


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
    number = version if version is not None else tiler.latest(plan_id)
    info = tiler.layer(plan_id, number, layer)
    key = (plan_id, info.span(number), layer, z, x, y)
    found = tiler.cached(key)
    if found is None:
        req = TileRequest(layer, z, x, y, max_features=request.app.state.settings.tile_max_features)
        found = await run_in_threadpool(tiler.render, key, plan_id, number, req)
    return tile_response(request, *found, pinned=version is not None)


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
    dtypes = tiler.store.dtypes(plan_id, v.version, layer)
    shown = tile_fields(layer, info.columns, dtypes)  # public columns only (data/privacy)
    fields = {c: tilejson_type(dtypes.get(c, "object")) for c, _ in shown}
    query = f"plan={plan_id}" + (f"&version={version}" if version is not None else "")
    base = str(request.base_url).rstrip("/")
    bounds = list(info.bbox) if info.bbox else [-180, -85.05, 180, 85.05]
    centre = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 14]
    return {
        "tilejson": "3.0.0",
        "name": f"{plan_id} {layer}",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt?{query}"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": centre,
        "attribution": credit_of(v.meta),
        "vector_layers": [{"id": layer, "fields": fields, "minzoom": 0, "maxzoom": MAX_ZOOM}],
        "wangge": {"plan": plan_id, "version": v.version, "features": info.count},
    }


@router.get("/tiles", responses=ERRORS)
def tile_layers(
    request: Request,
    plan: PlanQuery = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """The layers served as tiles, each with its TileJSON link."""
    tiler = get_tiler(request)
    v = tiler.store.resolve(tiler.plan_id(request, plan), version)
    base = str(request.base_url).rstrip("/")
    layers = tiler.tiled_layers(v.plan_id, v.version)
    return {
        "plan": v.plan_id,
        "version": v.version,
        "layers": [
            {
                "id": i.name,
                "features": i.count,
                "tilejson": f"{base}/tiles/{i.name}.json?plan={v.plan_id}",
            }
            for i in layers
        ],
        "cache": tiler.cache.stats(),
    }
