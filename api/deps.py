"""Request parsing shared by the routers: the store as the caller may read it, the plan
version, bbox, paging and uploads."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query, Request

from wangge.api.auth import CallerDep
from wangge.api.caps import check_bbox
from wangge.data import privacy
from wangge.data.store import LayerInfo, Page, Store, Version
from wangge.errors import InputError, TooLarge


class ReaderView:
    """The store as one reader sees it: every frame of every layer passed through
    :func:`wangge.data.privacy.apply` (items, exports, registers, gaps, pages), and the
    columns it lists cut the same way; the rest is the store itself."""

    def __init__(self, store: Store, reader: privacy.Reader):
        self._store = store
        self.reader = reader
        #: What the layers' columns depend on, for caches of them (api/collections.offered).
        self.view_key = reader.key

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _info(self, info: LayerInfo) -> LayerInfo:
        return replace(info, columns=privacy.listed(info.name, info.columns, self.reader))

    def query(self, plan_id: str, version: int, layer: str, *args, **kwargs) -> Page:
        page = self._store.query(plan_id, version, layer, *args, **kwargs)
        return Page(privacy.apply(layer, page.frame, self.reader), page.number_matched)

    def item(self, plan_id: str, version: int, layer: str, *args, **kwargs):
        frame = self._store.item(plan_id, version, layer, *args, **kwargs)
        return privacy.apply(layer, frame, self.reader)

    def layers(self, plan_id: str, version: int) -> list[LayerInfo]:
        return [self._info(i) for i in self._store.layers(plan_id, version)]

    def layer_infos(self, plan_id: str, version: int) -> dict[str, LayerInfo]:
        return {n: self._info(i) for n, i in self._store.layer_infos(plan_id, version).items()}

    def dtypes(self, plan_id: str, version: int, layer: str) -> dict[str, str]:
        found = self._store.dtypes(plan_id, version, layer)
        shown = set(privacy.listed(layer, found, self.reader))
        return {c: t for c, t in found.items() if c in shown}


def get_reader(who: CallerDep) -> privacy.Reader:
    """Who reads, for :mod:`wangge.data.privacy`."""
    return privacy.Reader.of(who)


ReaderDep = Annotated[privacy.Reader, Depends(get_reader)]


def get_store(request: Request, reader: ReaderDep) -> Store:
    """The store as the caller may read it (:class:`ReaderView`); itself to an admin."""
    if reader.everything:
        return request.app.state.store
    return ReaderView(request.app.state.store, reader)  # type: ignore[return-value]


StoreDep = Annotated[Store, Depends(get_store)]


#: A plan id, as data/store.py allows them.
PLAN_ID = r"^[A-Za-z0-9_.-]{1,64}$"
#: The ``plan`` query parameter of every route that takes one: a NUL or any other
#: character no plan id has is refused by the schema, before a database sees it.
PlanQuery = Annotated[
    str | None,
    Query(
        description="Plan id (default: the configured plan, else the newest)",
        max_length=64,
        pattern=PLAN_ID,
    ),
]

#: The ``version`` query parameter of every route that takes one.
VersionQuery = Annotated[
    int | None, Query(description="Version (default: the latest)", ge=1, le=2**31 - 1)
]


def get_version(
    request: Request, store: StoreDep, plan: PlanQuery = None, version: VersionQuery = None
) -> Version:
    return store.resolve(plan or request.app.state.settings.plan, version)


VersionDep = Annotated[Version, Depends(get_version)]


def parse_bbox(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in WGS84",
            examples=["118.77,32.03,118.79,32.05"],
            max_length=200,
            pattern=r"^\s*[-+]?[0-9.eE+-]+(\s*,\s*[-+]?[0-9.eE+-]+){3}\s*$",
        ),
    ] = None,
) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    parts = bbox.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise InputError(
            "bbox must be four numbers: minLon,minLat,maxLon,maxLat", where="bbox"
        ) from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InputError("bbox must be four numbers: minLon,minLat,maxLon,maxLat", where="bbox")
    x0, y0, x1, y1 = values
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InputError(
            "bbox must have min ≤ max, longitudes in −180…180 and latitudes in −90…90",
            where="bbox",
        )
    # a client zoomed out (QGIS, GDAL's -spat) asks for far more than the plan covers: only
    # the part over the plan's extent counts against the cap, and is what is read
    x0, y0, x1, y1 = _over_plan(store, v, (x0, y0, x1, y1))
    check_bbox((x0, y0, x1, y1), request.app.state.settings.max_bbox_km2)
    return x0, y0, x1, y1


def _over_plan(
    store: Store, v: Version, box: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """``box`` cut to the extent of the version's layers (a point of it when they miss)."""
    extents = [i.bbox for i in store.layer_infos(v.plan_id, v.version).values() if i.bbox]
    if not extents:
        return box
    ex0, ey0 = min(e[0] for e in extents), min(e[1] for e in extents)
    ex1, ey1 = max(e[2] for e in extents), max(e[3] for e in extents)
    x0, y0 = min(max(box[0], ex0), ex1), min(max(box[1], ey0), ey1)
    x1, y1 = max(min(box[2], ex1), x0), max(min(box[3], ey1), y0)
    if box[2] < ex0 or box[0] > ex1 or box[3] < ey0 or box[1] > ey1:
        return box[0], box[1], box[0], box[1]  # misses the plan: an empty answer, no cap
    return x0, y0, x1, y1


BboxDep = Annotated[tuple[float, float, float, float] | None, Depends(parse_bbox)]


async def read_upload(request: Request) -> bytes:
    """The upload, refused beyond the configured size (as ``POST /plans`` does)."""
    limit = int(request.app.state.settings.max_upload_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"upload of {int(declared):,} bytes; the limit is {limit:,}", where="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"upload larger than the limit of {limit:,} bytes", where="body")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise InputError("the upload is empty", where="body")
    return data
