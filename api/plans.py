"""Plans and their versions: list them, and upload a plan that the validator accepts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from wangge.api.auth import READ, AdminWho
from wangge.api.bodies import PlanCollection, check_json, check_upload, inline_schema
from wangge.api.caps import check_features, upload_deadline
from wangge.api.deps import PLAN_ID, StoreDep, read_upload
from wangge.api.errors import ERRORS, ErrorBody
from wangge.data.plan import read_plan_bytes
from wangge.data.store import Version
from wangge.importing import save_plan

router = APIRouter(tags=["plans"])
#: A plan id as the store accepts it (data/store.py check_plan_id).
PlanId = Annotated[str, Path(description="Plan id", max_length=64, pattern=PLAN_ID)]
#: A 422 for an upload: its envelope is in the schema, its content is the validator's.
UPLOAD_INVALID = {
    422: {
        "model": ErrorBody,
        "description": "A parameter is invalid, or the file is unreadable or not one the "
        "validator accepts (each problem named by file, row or feature); nothing is saved",
    }
}


# OpenAPI links: how an answer leads to the next call (plan -> versions -> state -> edits).
# Each names its target by the operationId FastAPI derives from the function and path;
# tests/test_api_schema.py checks that every target and parameter exists.
def link(operation: str, description: str, body: dict | None = None, **parameters: str) -> dict:
    """One OpenAPI link to ``operation`` with its parameters and request body fields as
    runtime expressions (``$response.body#/version/plan``)."""
    out: dict[str, Any] = {"operationId": operation, "description": description}
    if parameters:
        out["parameters"] = parameters
    if body:
        out["requestBody"] = body
    return out


def version_links(at: str) -> dict[str, dict]:
    """Links from an answer carrying a plan version at ``at`` (a JSON pointer into the body,
    such as ``/version``): its plan's versions, its state, and every write based on it."""
    plan, number = f"$response.body#{at}/plan", f"$response.body#{at}/version"
    based = {"base_version": number}
    return {
        "versions": link(
            "versions_plans__plan_id__versions_get", "The plan's versions", plan_id=plan
        ),
        "state": link(
            "state_plans__plan_id__state_get",
            "What the editor shows of this version",
            plan_id=plan,
            version=number,
        ),
        "edit": link(
            "edits_plans__plan_id__edits_post",
            "Move units, based on this version",
            based,
            plan_id=plan,
        ),
        "complete": link(
            "complete_plans__plan_id__complete_post",
            "Complete, based on this version",
            based,
            plan_id=plan,
        ),
        "restore": link(
            "restore_plans__plan_id__restore_post",
            "Bring this version back as the next",
            {**based, "version": number},
            plan_id=plan,
        ),
        "names": link(
            "names_plans__plan_id__names_post",
            "Rename grids, based on this version",
            based,
            plan_id=plan,
        ),
        "roster": link("roster_plans__plan_id__roster_get", "The plan's roster", plan_id=plan),
    }


def saved_links(at: str) -> dict[str, dict]:
    """:func:`version_links` for the answer to a write, and the diff against its base."""
    return {
        **version_links(at),
        "diff": link(
            "diff_plans__plan_id__versions__a__diff__b__get",
            "What changed from the version the write was based on",
            plan_id=f"$response.body#{at}/plan",
            a="$request.body#/base_version",
            b=f"$response.body#{at}/version",
        ),
    }


class VersionOut(BaseModel):
    plan: str
    version: int
    created_at: str
    author: str
    comment: str
    district_code: str | None = None
    name: str = ""
    kind: str = ""
    moves: int | None = None
    base: int | None = None


class ViolationOut(BaseModel):
    level: str
    code: str
    check: str
    severity: str
    reason: str


class Saved(BaseModel):
    version: VersionOut
    violations: list[ViolationOut]


def version_out(v: Version) -> VersionOut:
    return VersionOut(
        plan=v.plan_id,
        version=v.version,
        created_at=v.created_at,
        author=v.author,
        comment=v.comment,
        district_code=v.meta.get("district_code"),
        name=v.meta.get("name") or "",
        kind=v.meta.get("kind") or "import",
        moves=v.meta.get("moves"),
        base=v.meta.get("base"),
    )


@router.get(
    "/plans",
    response_model=list[VersionOut],
    responses={
        **ERRORS,
        200: {"description": "Every plan, newest first", "links": version_links("/0")},
    },
    dependencies=[READ],
)
def plans(store: StoreDep) -> list[VersionOut]:
    """Every plan with its latest version, newest first."""
    return [version_out(v) for v in store.plans()]


@router.get(
    "/plans/{plan_id}/versions",
    response_model=list[VersionOut],
    responses={
        **ERRORS,
        200: {
            "description": "The plan's versions, oldest first",
            "links": {
                "state": link(
                    "state_plans__plan_id__state_get",
                    "The first version's state",
                    plan_id="$request.path.plan_id",
                    version="$response.body#/0/version",
                ),
                "diff": link(
                    "diff_plans__plan_id__versions__a__diff__b__get",
                    "The first version against itself",
                    plan_id="$request.path.plan_id",
                    a="$response.body#/0/version",
                    b="$response.body#/0/version",
                ),
            },
        },
    },
    dependencies=[READ],
)
def versions(store: StoreDep, plan_id: PlanId) -> list[VersionOut]:
    """Every version of one plan, oldest first."""
    store.resolve(plan_id)
    return [version_out(v) for v in store.versions(plan_id)]


@router.post(
    "/plans",
    response_model=Saved,
    status_code=201,
    responses={
        **ERRORS,
        **UPLOAD_INVALID,
        201: {"description": "The plan's new version", "links": version_links("/version")},
        409: {"model": ErrorBody, "description": "base_version is not the latest"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/geo+json": {"schema": inline_schema(PlanCollection)},
                "application/geopackage+sqlite3": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
            "required": True,
        }
    },
)
async def upload(
    request: Request,
    store: StoreDep,
    who: AdminWho,
    plan: Annotated[
        str, Query(description="Plan id to save under", max_length=64, pattern=PLAN_ID)
    ],
    base_version: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="Version the upload replaces")
    ] = None,
    comment: Annotated[str, Query(max_length=2000)] = "",
) -> Saved:
    """Upload a plan (GeoPackage as written by ``wangge delineate``, or a GeoJSON
    FeatureCollection with a ``level`` per feature). It is validated first; errors come
    back as a list and nothing is saved. A GeoPackage is checked for size and content
    before it is read (413 beyond WANGGE_MAX_UPLOAD_MB or WANGGE_MAX_UPLOAD_FEATURES), and
    the upload is answered 413 past WANGGE_REQUEST_TIMEOUT_S until it is saved."""
    deadline = upload_deadline(request)
    data = await read_upload(request)
    source = f"upload to {plan}"
    await check_upload(request, data, source)
    if not data.startswith(b"SQLite format 3\x00"):
        await run_in_threadpool(check_json, PlanCollection, data, source)
    upload = await run_in_threadpool(read_plan_bytes, data, source)
    most = request.app.state.settings.max_upload_features
    check_features(sum(len(f) for f in upload.frames().values()), most, source)
    version, violations = await run_in_threadpool(
        save_plan, store, upload, plan, base_version, who.name, comment, deadline.claim
    )
    return Saved(
        version=version_out(version),
        violations=[ViolationOut(**r) for r in violations.to_dict("records")],
    )
