"""Adopt a city's existing grid layer (an upload) as a new version of a plan, and complete it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from wangge.api.auth import ADMIN, AdminWho
from wangge.api.bodies import GridCollection, check_upload, inline_schema
from wangge.api.caps import check_features, upload_deadline
from wangge.api.deps import StoreDep, read_upload
from wangge.api.edits import CONFLICT, get_editor, refresh_tiles
from wangge.api.errors import ERRORS
from wangge.api.plans import UPLOAD_INVALID, PlanId, VersionOut, version_links, version_out
from wangge.errors import InputError
from wangge.existing import adopt as run_adopt

router = APIRouter(tags=["edits"], dependencies=[ADMIN])

#: File suffix by the upload's first bytes (a zip is a zipped Shapefile).
MAGIC = ((b"PK\x03\x04", ".zip"), (b"SQLite format 3\x00", ".gpkg"))
SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".csv")


class AdoptOut(BaseModel):
    version: VersionOut
    summary: dict[str, Any]
    grids: list[dict[str, Any]] = Field(description="One row per grid: the adoption report")
    outside: list[dict[str, Any]] = Field(description="Units outside every grid of the file")
    violations: list[dict[str, Any]]
    flagged: list[str] = Field(description="Grids breaking the rules (completion's grids)")
    findings: list[dict[str, Any]]
    completion: dict[str, Any] = Field(default_factory=dict)
    changed: list[dict[str, Any]] = Field(
        default_factory=list, description="Grids completion changed, vs the adopted version"
    )
    timings: dict[str, float]


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or not len(frame):
        return []
    return json.loads(frame.to_json(orient="records", force_ascii=False))


def _feature_count(path: Path) -> int:
    """Features in an uploaded layer, read from its header (0 when unreadable: the reader
    then names the problem)."""
    import pyogrio

    try:
        return int(pyogrio.read_info(path)["features"])
    except Exception:
        return 0


def _suffix(data: bytes, filename: str | None) -> str:
    if filename:
        suffix = Path(filename).suffix.lower()
        if suffix not in SUFFIXES:
            raise InputError(
                f"unsupported file type {suffix or '(none)'}; send one of {', '.join(SUFFIXES)}",
                filename,
                where="filename",
            )
        return suffix
    for magic, suffix in MAGIC:
        if data.startswith(magic):
            return suffix
    return ".geojson"


@router.post(
    "/plans/{plan_id}/adopt",
    response_model=AdoptOut,
    status_code=201,
    responses={
        **ERRORS,
        **UPLOAD_INVALID,
        **CONFLICT,
        201: {"description": "The adopted version", "links": version_links("/version")},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/geo+json": {"schema": inline_schema(GridCollection)},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                "application/geopackage+sqlite3": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
            "required": True,
        }
    },
)
async def adopt(
    request: Request,
    store: StoreDep,
    who: AdminWho,
    plan_id: PlanId,
    base_version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="409 unless this is the latest")
    ] = None,
    filename: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^.*\.([gG][eE][oO][jJ][sS][oO][nN]|[jJ][sS][oO][nN]|[gG][pP][kK][gG]"
            r"|[zZ][iI][pP]|[cC][sS][vV])$",
            description="The file's name (its type: .geojson, .json, .gpkg, .zip or .csv); "
            "else sniffed",
        ),
    ] = None,
    coords: Annotated[
        str,
        Query(
            max_length=10,
            pattern=r"^([wW][gG][sS]84|[gG][cC][jJ]-?02|[bB][dD]-?09)$",
            description="wgs84, gcj02 or bd09",
        ),
    ] = "wgs84",
    encoding: Annotated[
        str,
        Query(
            max_length=20,
            description="Attribute encoding, e.g. utf-8, gbk or gb18030 (any Python codec)",
            json_schema_extra={"enum": ["utf-8", "gbk", "gb18030"]},
        ),
    ] = "utf-8",
    complete: Annotated[bool, Query(description="Re-solve the grids breaking the rules")] = False,
    comment: Annotated[str, Query(max_length=2000)] = "",
) -> AdoptOut:
    """Bring an existing grid layer (GeoJSON, GeoPackage or zipped Shapefile, as a city's
    platform exports it) onto the plan's buildings as its next version, keeping the grids'
    codes and names. Each building goes to the grid holding most of it; micro-grids are
    solved inside each grid. The answer reports every grid (households, units, whether its
    code was kept, violations); with ``complete`` the grids breaking the rules and their
    neighbours are re-solved as a further version and the grids that changed are listed.
    Bad input names the file and feature, and saves nothing."""
    deadline = upload_deadline(request)
    data = await read_upload(request)
    source = filename or f"upload to {plan_id}"
    await check_upload(request, data, source)  # sizes and expansion before GDAL opens it
    store.resolve(plan_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"grids{_suffix(data, filename)}"
        path.write_bytes(data)
        most = request.app.state.settings.max_upload_features
        check_features(await run_in_threadpool(_feature_count, path), most, source)
        deadline.claim()  # the adoption solves and writes: left to finish once begun
        done = await run_in_threadpool(
            run_adopt,
            store,
            plan_id,
            path,
            coords=coords,
            encoding=encoding,
            who=who,
            comment=comment,
            base_version=base_version,
            complete=complete,
            editor=get_editor(request),
            source=source,
        )
    refresh_tiles(request, done.result)
    completion: dict[str, Any] = {}
    if done.completed is not None:
        refresh_tiles(request, done.completed)
        completion = {"version": version_out(done.completed.version), **done.completed.extra}
    return AdoptOut(
        version=version_out(done.result.version),
        summary=done.summary(),
        grids=_records(done.adoption.report),
        outside=_records(done.adoption.outside),
        violations=done.result.violations,
        flagged=done.bad,
        findings=_records(done.findings),
        completion=completion,
        changed=_records(done.changes),
        timings={k: round(v * 1000, 1) for k, v in done.timings.items()},
    )
