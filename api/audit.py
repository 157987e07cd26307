"""Who is calling (``/me``) and what every account did (the audit log, for admins)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from wangge.api.auth import AdminWho, ViewerWho
from wangge.api.deps import PLAN_ID, StoreDep
from wangge.api.errors import ERRORS

router = APIRouter(tags=["access"])


class Me(BaseModel):
    name: str
    role: str
    scopes: list[str]
    expires_at: str | None = None


class AuditEntry(BaseModel):
    seq: int
    at: str
    account: str
    action: str
    plan_id: str | None = None
    version: int | None = None
    base_version: int | None = None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    count: int
    entries: list[AuditEntry]


@router.get("/me", response_model=Me, responses=ERRORS)
def me(who: ViewerWho) -> Me:
    """The account the API key stands for: its name, role and the code prefixes it may
    change (an admin's scope is everything)."""
    return Me(name=who.name, role=who.role, scopes=list(who.scopes), expires_at=who.expires_at)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "The audit log"}},
)
def audit(
    store: StoreDep,
    who: AdminWho,
    plan: Annotated[
        str | None, Query(max_length=64, pattern=PLAN_ID, description="One plan's entries")
    ] = None,
    account: Annotated[
        str | None,
        # no control character (a NUL is no text to PostgreSQL): never an account's name
        Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]{1,64}$", description="One account's"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    f: Annotated[Literal["json", "csv"], Query(description="json, or csv to export")] = "json",
) -> Any:
    """The append-only audit log, oldest first: who wrote, when, what (plan, version, the
    units and grids it changed) and from which base. ``f=csv`` exports it."""
    log = store.book.log(plan)
    if account is not None:
        log = log[log["account"] == account]
    total = len(log)
    log = log.iloc[offset : offset + limit]
    if f == "csv":
        return Response(
            log.to_csv(index=False).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="wangge-audit.csv"'},
        )
    entries = [
        AuditEntry(**{**row, "detail": json.loads(row["detail"])})
        for row in log.astype(object).where(log.notna(), None).to_dict("records")
    ]
    return AuditPage(count=total, entries=entries)
