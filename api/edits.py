"""Planner edits: move units, complete, restore, compare versions; each write a new version.

Every write names the version it is based on and gets 409 if that is no longer the
latest, so a stale edit is never a lost update. The answer carries the validator's
findings for the new assignment, the grids it changed, and the time each step took.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from wangge.api.auth import READ, PlannerWho, ReadWho
from wangge.api.bodies import Flag, VersionNumber, check_upload
from wangge.api.caps import upload_deadline
from wangge.api.deps import StoreDep, read_upload
from wangge.api.errors import ERRORS, JSON_BODY, ErrorBody
from wangge.api.plans import UPLOAD_INVALID, PlanId, VersionOut, link, saved_links, version_out
from wangge.api.tiles import get_tiler
from wangge.data.userfiles import MAX_HOUSEHOLDS
from wangge.editing import Editor, EditResult
from wangge.errors import InputError

router = APIRouter(tags=["edits"])
CONFLICT = {409: {"model": ErrorBody, "description": "base_version is not the latest"}}
#: What every write answers: the new version (201), linked to the next write based on it.
WRITTEN = {
    **ERRORS,
    **JSON_BODY,
    **CONFLICT,
    201: {
        "description": "The new version (with dry_run, the check of the base version)",
        "links": saved_links("/version"),
    },
}
Code = Annotated[str, Field(min_length=1, max_length=40)]
#: A grid's or a micro-grid's code (15 or 18 digits).
GRID_OR_MICRO = r"^[0-9]{15}([0-9]{3})?$"


class MoveIn(BaseModel):
    unit: Code = Field(description="Unit id (the `code` of the units layer)")
    to: Code = Field(description="Grid code (15 digits) or micro-grid code (18 digits)")


class EditIn(BaseModel):
    base_version: VersionNumber
    moves: list[MoveIn] = Field(default_factory=list, max_length=10_000)
    locks: list[Code] | None = Field(
        default=None, max_length=10_000, description="Locked grids after the edit"
    )
    comment: str = Field(default="", max_length=2000)
    name: str = Field(default="", max_length=200, description="Name the new version")
    dry_run: Flag = Field(default=False, description="Check only; save nothing")


class CompleteIn(BaseModel):
    base_version: VersionNumber
    locks: list[Code] | None = Field(default=None, max_length=10_000)
    grids: list[Code] | None = Field(
        default=None, max_length=10_000, description="Edited grids (default: since last)"
    )
    comment: str = Field(default="", max_length=2000)


class RestoreIn(BaseModel):
    base_version: VersionNumber
    version: VersionNumber = Field(description="The version to bring back")
    comment: str = Field(default="", max_length=2000)


class RebalanceIn(BaseModel):
    base_version: VersionNumber
    by: Literal["unit", "building"] = Field(
        default="unit", description="Whether `households` is keyed by unit code or building id"
    )
    # keys unconstrained: OpenAPI 3.0 has no propertyNames (a key the plan lacks is 422)
    households: dict[str, Annotated[float, Field(ge=0, le=MAX_HOUSEHOLDS, strict=True)]] = Field(
        max_length=200_000,
        description="New households by unit (or building); units not named keep theirs",
    )
    dry_run: Flag = Field(default=True, description="Check and report only (the default)")
    comment: str = Field(default="", max_length=2000)


class EditOut(BaseModel):
    version: VersionOut
    saved: bool
    moved: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    grids: list[dict[str, Any]]
    locks: list[str]
    timings: dict[str, float]
    tiles: dict[str, Any] = Field(default_factory=dict)
    completion: dict[str, Any] = Field(default_factory=dict)
    rebalance: dict[str, Any] | None = None


def get_editor(request: Request) -> Editor:
    state = request.app.state
    editor = getattr(state, "editor", None)
    if editor is None or editor.store is not state.store:
        editor = Editor(state.store)
        state.editor = editor
    return editor


async def run_and_answer(request: Request, job, *args) -> EditOut:
    """Run an editor job (an edit, completion, restore, renaming) in the threadpool and
    answer it there too: carrying the tiles after a save reads the store, which must not
    hold up the event loop."""
    return await run_in_threadpool(lambda: answer(request, job(*args)))


def answer(request: Request, result: EditResult) -> EditOut:
    tiles: dict[str, Any] = {}
    if result.saved:
        try:
            tiles = refresh_tiles(request, result)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            # the version is committed: an error now would tell the planner it was not.
            # Tiles not carried are rendered again when asked for, so only time is lost.
            tiles = {"carried": False, "reason": type(exc).__name__}
    return EditOut(
        version=version_out(result.version),
        saved=result.saved,
        moved=[{"unit": m.unit, "from": m.before, "to": m.after} for m in result.moves],
        violations=result.violations,
        grids=result.grids,
        locks=result.locks,
        timings=result.timings,
        tiles=tiles,
        completion=result.extra,
    )


def refresh_tiles(request: Request, result: EditResult) -> dict[str, Any]:
    """Carry the cached tiles of rewritten layers to the new version, but for those a
    changed feature touches; report how many of each."""
    tiler = get_tiler(request)
    v = result.version
    tiler.saw(v.plan_id, v.version)
    base = v.meta.get("base")
    if base is None:
        return {}
    old = tiler.store.layer_infos(v.plan_id, base)
    out = {}
    for info in tiler.store.layer_infos(v.plan_id, v.version).values():
        if info.name not in old or info.span(v.version) == old[info.name].span(base):
            continue  # a new layer, or one kept: its tiles are cached under its span
        carried, dropped = tiler.cache.carry(
            v.plan_id,
            info.name,
            old[info.name].span(base),
            info.span(v.version),
            result.touched.get(info.name, []),
        )
        out[info.name] = {"carried": carried, "dropped": dropped}
    return out


@router.get(
    "/plans/{plan_id}/state",
    responses={
        **ERRORS,
        200: {
            "description": "The version's limits, grids, communities and violations",
            "links": {
                "edit": link(
                    "edits_plans__plan_id__edits_post",
                    "Move units, based on this version",
                    {"base_version": "$response.body#/version"},
                    plan_id="$response.body#/plan",
                ),
                "complete": link(
                    "complete_plans__plan_id__complete_post",
                    "Complete, based on this version",
                    {"base_version": "$response.body#/version"},
                    plan_id="$response.body#/plan",
                ),
                "names": link(
                    "names_plans__plan_id__names_post",
                    "Rename grids, based on this version",
                    {"base_version": "$response.body#/version"},
                    plan_id="$response.body#/plan",
                ),
            },
        },
    },
    dependencies=[READ],
)
def state(
    request: Request,
    store: StoreDep,
    who: ReadWho,
    plan_id: PlanId,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Version (default: the latest)")
    ] = None,
    street: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{9}$",
            description="One street's code: its grids and communities only, read without"
            " the rest of a city (the violations stay the whole version's)",
        ),
    ] = None,
) -> dict[str, Any]:
    """What the editor shows: limits, households per grid with neighbours and locks,
    communities and the violations of the version (the latest by default), or of one
    ``street``. Each grid says whether the caller may change it (``writable``: a
    planner's territory, all for an admin, none for a viewer or an anonymous reader)."""
    out = get_editor(request).overview(plan_id, version, street)
    may_write = who is not None and who.at_least("planner")
    for grid in out["grids"]:
        grid["writable"] = may_write and who.covers(grid["code"])
    return out


@router.post(
    "/plans/{plan_id}/edits",
    response_model=EditOut,
    status_code=201,
    responses=WRITTEN,
)
async def edits(request: Request, who: PlannerWho, plan_id: PlanId, body: EditIn) -> EditOut:
    """Move units to a neighbouring grid (or a given micro-grid), set locks, or name the
    version (``moves: []`` with ``name``). The new assignment is checked and saved as
    the next version; ``dry_run`` checks without saving."""
    return await run_and_answer(
        request,
        get_editor(request).edit,
        plan_id,
        body.base_version,
        [(m.unit, m.to) for m in body.moves],
        body.locks,
        who,
        body.comment,
        body.name,
        body.dry_run,
    )


@router.post(
    "/plans/{plan_id}/complete",
    response_model=EditOut,
    status_code=201,
    responses=WRITTEN,
)
async def complete(request: Request, who: PlannerWho, plan_id: PlanId, body: CompleteIn) -> EditOut:
    """Hold the edited grids as drawn and re-solve their unlocked neighbours until the
    plan is valid again (up to three rings out); report what moved."""
    return await run_and_answer(
        request,
        get_editor(request).complete,
        plan_id,
        body.base_version,
        body.locks,
        body.grids,
        who,
        body.comment,
    )


@router.post(
    "/plans/{plan_id}/restore",
    response_model=EditOut,
    status_code=201,
    responses=WRITTEN,
)
async def restore(request: Request, who: PlannerWho, plan_id: PlanId, body: RestoreIn) -> EditOut:
    """A new version with the assignment and locks of an earlier one."""
    return await run_and_answer(
        request,
        get_editor(request).restore,
        plan_id,
        body.base_version,
        body.version,
        who,
        body.comment,
    )


@router.post(
    "/plans/{plan_id}/rebalance",
    response_model=EditOut,
    status_code=201,
    responses=WRITTEN,
)
async def rebalance(
    request: Request, who: PlannerWho, plan_id: PlanId, body: RebalanceIn
) -> EditOut:
    """Give the version new households and bring every grid that left its band back into
    it with the fewest changes (whole micro-grids to a neighbour of the same community
    first, then merges and divisions); every other grid keeps its units and code, and a
    retired code is never given out again. A dry run unless ``dry_run`` is false."""
    from wangge.rebalancing import households_for, rebalance_version

    editor = get_editor(request)

    def run():
        state = editor.state(plan_id, body.base_version)
        keys = pd.Series(list(body.households), dtype=object)
        counts = pd.Series(list(body.households.values()), dtype=float)
        new = households_for(state, keys, counts, body.by, "the request body")
        return rebalance_version(
            editor, plan_id, body.base_version, new, who, body.comment, body.dry_run
        )

    def run_and_report() -> EditOut:
        done = run()
        out = answer(request, done.edit)
        out.rebalance, out.completion = done.edit.extra, {}
        return out

    return await run_in_threadpool(run_and_report)


#: An OSM extract's suffix by its first bytes: XML, gzip, bzip2; else a PBF.
EXTRACT_MAGIC = (
    (b"<?xml", ".osm"),
    (b"<osm", ".osm"),
    (b"\x1f\x8b", ".osm.gz"),
    (b"BZh", ".osm.bz2"),
)


def _extract_suffix(data: bytes, filename: str | None) -> str:
    """The suffix an uploaded extract is read by: its name's, else its first bytes'."""
    if filename:
        from wangge.extract_households import OSM_SUFFIXES

        name = filename.lower()
        suffix = next((s for s in OSM_SUFFIXES if name.endswith(s)), None)
        if suffix is None:
            raise InputError(
                f"{filename}: not an OSM extract; send .osm, .osm.gz, .osm.bz2 or .osm.pbf",
                filename,
                where="filename",
            )
        return suffix
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return next((s for magic, s in EXTRACT_MAGIC if head.startswith(magic)), ".osm.pbf")


@router.post(
    "/plans/{plan_id}/rebalance/extract",
    response_model=EditOut,
    status_code=201,
    responses={**WRITTEN, **UPLOAD_INVALID},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/xml": {"schema": {"type": "string"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def rebalance_extract(
    request: Request,
    who: PlannerWho,
    plan_id: PlanId,
    base_version: Annotated[int, Query(ge=1, le=2**31 - 1, description="409 unless the latest")],
    dry_run: Annotated[bool, Query(description="Check and report only (the default)")] = True,
    filename: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^.*\.([oO][sS][mM]|[oO][sS][mM]\.([gG][zZ]|[bB][zZ]2|[pP][bB][fF])|[pP][bB][fF])$",
            description="The file's name (.osm, .osm.gz, .osm.bz2, .osm.pbf); else sniffed",
        ),
    ] = None,
    comment: Annotated[str, Query(max_length=2000)] = "",
) -> EditOut:
    """Rebalance with the district's new OSM extract as the new data (the body: OSM XML,
    gzipped or bzipped, or PBF): unchanged buildings keep their households, new and changed
    ones are estimated, gone ones have none, and a road that divides a block the plan did
    not follow splits the compound it crosses; then as ``POST /plans/{id}/rebalance``. A
    dry run unless ``dry_run`` is false. An extract holding under half of the plan's
    buildings is refused (422)."""
    from wangge.extract_households import households_from_extract
    from wangge.rebalancing import rebalance_version

    deadline = upload_deadline(request)
    data = await read_upload(request)
    source = filename or f"extract for {plan_id}"
    await check_upload(request, data, source)
    editor = get_editor(request)

    def run_and_report() -> EditOut:
        with tempfile.TemporaryDirectory() as tmp:
            path = FilePath(tmp) / f"extract{_extract_suffix(data, filename)}"
            path.write_bytes(data)
            state = editor.state(plan_id, base_version)
            new = households_from_extract(path, state)
        if not dry_run:
            deadline.claim()  # the rebalance writes: left to finish once begun
        done = rebalance_version(editor, plan_id, base_version, new, who, comment, dry_run)
        out = answer(request, done.edit)
        out.rebalance, out.completion = {**done.edit.extra, "notes": new.notes}, {}
        return out

    return await run_in_threadpool(run_and_report)


@router.get("/plans/{plan_id}/versions/{a}/diff/{b}", responses=ERRORS, dependencies=[READ])
def diff(
    request: Request,
    plan_id: PlanId,
    a: Annotated[int, Path(ge=1, le=2**31 - 1)],
    b: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> dict[str, Any]:
    """The units whose micro-grid differs between versions ``a`` and ``b``, and the
    grids that changed."""
    moved = get_editor(request).diff(plan_id, a, b)
    grids = sorted({m["from"][:15] for m in moved} | {m["to"][:15] for m in moved})
    return {"plan": plan_id, "a": a, "b": b, "count": len(moved), "moved": moved, "grids": grids}


@router.get(
    "/plans/{plan_id}/versions/{a}/changes/{b}",
    responses={
        **ERRORS,
        200: {
            "content": {"application/geo+json": {}},
            "description": "The grids of both versions with their status, and the moved units",
        },
    },
    dependencies=[READ],
)
def changes(
    request: Request,
    plan_id: PlanId,
    a: Annotated[int, Path(ge=1, le=2**31 - 1)],
    b: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """The change report of versions ``a`` → ``b`` as GeoJSON: every grid of ``a``
    (``side: before``) and of ``b`` (``side: after``) with its ``status`` (created,
    changed, retired, recounted, kept) and households, every unit that moved (``side:
    moved``, with ``from`` and ``to``), and the counts in ``summary``."""
    from wangge.changes import as_geojson
    from wangge.changes import changes as read_changes

    report = read_changes(get_editor(request), plan_id, a, b)
    body = json.dumps(as_geojson(report), ensure_ascii=False, allow_nan=False)
    return Response(body, media_type="application/geo+json")
