"""Plans and their versions: list them, and upload a plan that the validator accepts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from wangge.api.auth import READ, AdminWho
from wangge.api.deps import StoreDep, read_upload
from wangge.api.errors import ERRORS, ErrorBody
from wangge.api.limits import check_features
from wangge.data.store import Version
from wangge.importing import read_plan_bytes, save_plan

router = APIRouter(tags=["plans"])
PlanId = Annotated[str, Path(description="Plan id", max_length=64)]


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


@router.get("/plans", response_model=list[VersionOut], responses=ERRORS, dependencies=[READ])
def plans(store: StoreDep) -> list[VersionOut]:
    """Every plan with its latest version, newest first."""
    return [version_out(v) for v in store.plans()]


@router.get(
    "/plans/{plan_id}/versions",
    response_model=list[VersionOut],
    responses=ERRORS,
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
        409: {"model": ErrorBody, "description": "base_version is not the latest"},
        413: {"model": ErrorBody, "description": "Upload larger than the limit"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/geo+json": {"schema": {"type": "object"}},
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
    plan: Annotated[str, Query(description="Plan id to save under", max_length=64)],
    base_version: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="Version the upload replaces")
    ] = None,
    comment: Annotated[str, Query(max_length=2000)] = "",
) -> Saved:
    """Upload a plan (GeoPackage as written by ``wangge delineate``, or a GeoJSON
    FeatureCollection with a ``level`` per feature). It is validated first; errors come
    back as a list and nothing is saved."""
    data = await read_upload(request)
    source = f"upload to {plan}"
    layers, meta = await run_in_threadpool(read_plan_bytes, data, source)
    most = request.app.state.settings.max_upload_features
    check_features(sum(len(f) for f in layers.values()), most, source)
    version, violations = await run_in_threadpool(
        save_plan, store, layers, meta, source, plan, base_version, who.name, comment
    )
    return Saved(
        version=version_out(version),
        violations=[ViolationOut(**r) for r in violations.to_dict("records")],
    )
