"""Which street, community, grid and micro-grid cover a point, one at a time or in batches."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StrictStr

from wangge.api.auth import READ, ReadWho
from wangge.api.bodies import Lat, Lon, WholeNumber, inline_schema
from wangge.api.deps import StoreDep, VersionDep
from wangge.api.errors import ERRORS, ErrorBody, UnsupportedMedia
from wangge.api.roster import StaffOut, visible_staff
from wangge.data import privacy
from wangge.errors import InputError, NotFound, TooLarge
from wangge.geo.crs import from_crs_coords

router = APIRouter(tags=["coverage"], dependencies=[READ])
PointCrs = Literal["EPSG:4326", "EPSG:4490", "GCJ02"]
LEVEL_NAMES = ("street", "community", "grid", "microgrid")
_LON = r"-?(180(\.0{1,8})?|(1[0-7][0-9]|[0-9]{1,2})(\.[0-9]{1,8})?)"
_LAT = r"-?(90(\.0{1,8})?|[0-8]?[0-9](\.[0-9]{1,8})?)"
#: A CSV batch as its schema describes it: an ``id,lon,lat`` header and a point a row
#: (the reader also takes other column orders and names: lng, x, 经度; y, 纬度).
POINTS_CSV = rf"^id,lon,lat\r?\n([A-Za-z0-9_-]{{0,36}},{_LON},{_LAT}\r?\n)*$"


class Unit(BaseModel):
    code: str
    name: str | None = None
    households: float | None = None
    staff: list[StaffOut] | None = Field(
        default=None,
        description="Who runs this grid or micro-grid: only for an account whose territory "
        "holds it",
    )


class PointCoverage(BaseModel):
    plan: str
    version: int
    lon: float = Field(description="WGS84 longitude used for the lookup")
    lat: float = Field(description="WGS84 latitude used for the lookup")
    street: Unit
    community: Unit
    grid: Unit
    microgrid: Unit


class PointIn(BaseModel):
    # a JSON true is no id 1, a false or "32.04" no latitude (api/bodies.py)
    id: StrictStr | WholeNumber | None = None
    lon: Lon
    lat: Lat


class PointsIn(BaseModel):
    crs: PointCrs = "EPSG:4326"
    points: list[PointIn]


class PointOut(BaseModel):
    id: str | int | None = None
    lon: float
    lat: float
    inside: bool
    street_code: str | None = None
    community_code: str | None = None
    grid_code: str | None = None
    microgrid_code: str | None = None


class PointsOut(BaseModel):
    plan: str
    version: int
    count: int
    inside: int
    results: list[PointOut]
    staff: dict[str, list[StaffOut]] = Field(
        default_factory=dict,
        description="Who runs each grid and micro-grid found, for those in the caller's territory",
    )


def _to_wgs84(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    if crs == "EPSG:4326":
        return lon, lat
    x, y = from_crs_coords(lon, lat, crs)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


#: The plan layer of each level, whose column classes (data/privacy.py) a lookup keeps.
LEVEL_LAYERS = dict(
    zip(LEVEL_NAMES, ("streets", "communities", "grids", "microgrids"), strict=True)
)


def unit_of(row, level: str, reader: privacy.Reader) -> Unit:
    """The ``level`` unit of a row of :meth:`Store.cover` (or ``units_of``), its names and
    households as ``reader`` may see them (data/privacy.py)."""
    code = row[f"{level}_code"]

    def get(attr):
        value = row.get(f"{level}_{attr}")
        if privacy.class_of(LEVEL_LAYERS[level], attr) != privacy.PUBLIC and not reader.sees(code):
            return None
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else value

    return Unit(code=code, name=get("name"), households=get("households"))


@router.get(
    "/coverage/point",
    response_model=PointCoverage,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "Outside the study area"}},
)
def point(
    store: StoreDep,
    who: ReadWho,
    v: VersionDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude")],
    crs: Annotated[PointCrs, Query(description="CRS of lon/lat")] = "EPSG:4326",
) -> PointCoverage:
    """The units covering one point, with their names and households, and for a caller
    whose territory holds them, the people who run the grid and micro-grid."""
    wlon, wlat = _to_wgs84(np.array([lon]), np.array([lat]), crs)
    found = store.cover(v.plan_id, v.version, wlon, wlat)
    row = found.iloc[0]
    if not row["inside"]:
        raise NotFound(
            f"point ({lon:.6f}, {lat:.6f}) {crs} is outside the study area of plan "
            f"{v.plan_id} version {v.version}",
            where="lon,lat",
        )
    units = {level: unit_of(row, level, privacy.Reader.of(who)) for level in LEVEL_NAMES}
    codes = [units["grid"].code, units["microgrid"].code]
    for code, people in visible_staff(store, v.plan_id, codes, who).items():
        units["grid" if len(code) == 15 else "microgrid"].staff = people
    return PointCoverage(
        plan=v.plan_id, version=v.version, lon=float(wlon[0]), lat=float(wlat[0]), **units
    )


#: Names of a CSV batch's id column, so a city system can join the answers back.
ID_COLUMNS = ("id", "编号", "序号", "代码", "编码", "name", "名称")


def _csv_text(body: bytes, content_type: str) -> str:
    """A CSV body as text: in its declared charset, else UTF-8, else GBK (GB18030), as
    Excel in China saves; a body in none of them is refused, never read as mojibake."""
    charset = next(
        (p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";")[1:]
         if p.strip().lower().startswith("charset=")),
        None,
    )  # fmt: skip
    for enc in [charset] if charset else ["utf-8-sig", "gb18030"]:
        try:
            return body.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    raise InputError(
        f"the CSV is not in {charset or 'UTF-8 or GBK'}; say its charset in Content-Type "
        "(text/csv; charset=gbk)",
        "points.csv",
    )


def _read_csv(text: str) -> tuple[list, np.ndarray, np.ndarray, str]:
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    lon_key = next(
        (fields[k] for k in ("lon", "lng", "longitude", "x", "经度") if k in fields), None
    )
    lat_key = next((fields[k] for k in ("lat", "latitude", "y", "纬度") if k in fields), None)
    if lon_key is None or lat_key is None:
        raise InputError("the CSV needs lon and lat columns", "points.csv", where="header")
    id_key = next((fields[k] for k in ID_COLUMNS if k in fields), None)
    ids, lon, lat = [], [], []
    for n, row in enumerate(reader, start=2):
        try:
            x, y = float(row[lon_key]), float(row[lat_key])
        except (TypeError, ValueError) as exc:
            raise InputError("lon and lat must be numbers", "points.csv", f"row {n}") from exc
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            raise InputError("lon/lat out of range (swapped?)", "points.csv", f"row {n}")
        ids.append(row.get(id_key) if id_key else None)
        lon.append(x)
        lat.append(y)
    return ids, np.array(lon, float), np.array(lat, float), "EPSG:4326"


@router.post(
    "/coverage/points",
    response_model=PointsOut,
    responses={
        **ERRORS,
        200: {"content": {"text/csv": {}}},
        415: {"model": ErrorBody, "description": "The body is neither JSON nor CSV"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": inline_schema(PointsIn)},
                "text/csv": {
                    "schema": {"type": "string", "pattern": POINTS_CSV},
                    "example": "id,lon,lat\n1,118.78,32.04\n",
                },
            },
            "required": True,
        }
    },
)
async def points(
    request: Request,
    store: StoreDep,
    who: ReadWho,
    v: VersionDep,
    crs: Annotated[PointCrs | None, Query(description="CRS of a CSV batch")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="Response format")] = "json",
) -> Response:
    """Look up to ``max_batch`` points at once, sent as JSON or as CSV (id,lon,lat). In
    JSON, ``staff`` lists the people of the grids and micro-grids found that lie in the
    caller's territory; the CSV answer carries codes only."""
    limit = request.app.state.settings.max_batch
    body = await request.body()
    if len(body) > limit * 200 + 10_000:
        raise TooLarge(f"the batch is larger than {limit:,} points allow", where="body")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype in ("text/csv", "text/plain"):
        text = _csv_text(body, request.headers.get("content-type", ""))
        ids, lon, lat, _ = _read_csv(text.removeprefix("\ufeff"))
        point_crs = crs or "EPSG:4326"
    elif ctype == "application/json":
        try:
            parsed = PointsIn.model_validate_json(body)
        except ValueError as exc:
            raise InputError(f"not a valid points batch: {str(exc)[:300]}", where="body") from exc
        ids = [p.id for p in parsed.points]
        lon = np.array([p.lon for p in parsed.points], dtype=float)
        lat = np.array([p.lat for p in parsed.points], dtype=float)
        point_crs = crs or parsed.crs
    else:
        raise UnsupportedMedia(f"send JSON or CSV, not {ctype}", where="content-type")
    if len(lon) > limit:
        raise TooLarge(f"{len(lon):,} points; a batch holds at most {limit:,}", where="points")
    wlon, wlat = _to_wgs84(lon, lat, point_crs)
    found = (
        await run_in_threadpool(store.cover, v.plan_id, v.version, wlon, wlat) if len(lon) else None
    )
    cols = [f"{lvl}_code" for lvl in LEVEL_NAMES]
    frame = pd.DataFrame({"id": ids, "lon": lon, "lat": lat})
    if found is not None:
        frame["inside"] = found["inside"].to_numpy()
        for c in cols:
            frame[c] = found[c].replace("", None).to_numpy()
    else:
        frame["inside"] = pd.Series(dtype=bool)
        for c in cols:
            frame[c] = pd.Series(dtype=object)
    if format == "csv":
        return Response(frame.to_csv(index=False), media_type="text/csv")
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    found_codes = sorted(
        set(frame.get("grid_code", pd.Series(dtype=object)).dropna())
        | set(frame.get("microgrid_code", pd.Series(dtype=object)).dropna())
    )
    staff = await run_in_threadpool(visible_staff, store, v.plan_id, found_codes, who)
    out = {
        "plan": v.plan_id,
        "version": v.version,
        "count": len(frame),
        "inside": int(frame["inside"].sum()) if len(frame) else 0,
        "results": records,
        "staff": {c: [p.model_dump() for p in people] for c, people in staff.items() if people},
    }
    return Response(json.dumps(out, ensure_ascii=False), media_type="application/json")
