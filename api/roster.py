"""Names and people: planners name their grids and micro-grids and list who runs them.

Names are plan attributes (a new version, like any edit). The people (网格长, 专职网格员,
兼职网格员, 网格指导员, 微网格长) with their phones are kept apart, in the roster, and
reach only callers whose territory holds the grid: never tiles, exports, logs or errors.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from wangge.api.auth import PlannerWho, ViewerWho
from wangge.api.bodies import VersionNumber, check_upload
from wangge.api.caps import upload_deadline
from wangge.api.deps import StoreDep, read_upload
from wangge.api.edits import GRID_OR_MICRO, WRITTEN, EditOut, get_editor, run_and_answer
from wangge.api.errors import ERRORS, JSON_BODY, ErrorBody
from wangge.api.plans import UPLOAD_INVALID, PlanId
from wangge.data.accounts import Account, audit_entry
from wangge.data.privacy import Reader
from wangge.data.roster import ROLES, Staff
from wangge.errors import NotFound

router = APIRouter(tags=["roster"])
GridCode = Annotated[
    str,
    Path(description="Grid (15 digits) or micro-grid (18) code", pattern=GRID_OR_MICRO),
]


def _spans(categories: tuple[str, ...]) -> str:
    """A regex character-class body matching every character of these Unicode categories."""
    chars = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in categories]
    spans: list[list[int]] = []
    for c in chars:
        if spans and spans[-1][1] == c - 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in spans)


#: A name as a grid's rename takes it: some text besides spaces, no character below U+0020.
GRID_NAME = r"^[^\x00-\x1f]*[^\s\x00-\x1f][^\x00-\x1f]*$"
_CONTROL = _spans(("Cc", "Cf"))
#: A person's name as the roster takes it: some text besides spaces, no control or format
#: character (data/roster.py clean_name).
STAFF_NAME = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
_MOBILE = r"(\+?86|0086)?1[3-9][0-9]{9}"
_LANDLINE = r"0(10|2[0-9]|[3-9][0-9]{2})-?[2-9][0-9]{6,7}(-[0-9]{1,6})?"
#: A phone as the roster takes it (data/roster.py normalise_phone, in its plainest
#: written form): a mobile, 1[3-9] and nine digits after +86, 86 or 0086 if any; or a
#: landline, its area code as the national plan has it (010 and 02x three digits, every
#: other four), an optional '-', seven or eight digits not starting with 0 or 1, and an
#: extension of up to six digits after '-'.
PHONE = rf"({_MOBILE}|{_LANDLINE})"


def _roles(level: str) -> str:
    return "|".join(
        x for key, (label, at) in ROLES.items() if at == level for x in (key, re.escape(label))
    )


_CELL = rf"[^,\"{_CONTROL}]"
#: The CSV a roster import reads: a header naming the four columns, then one person a row
#: (a grid's code with a grid's role, or a micro-grid's with 微网格长, by key or label; a
#: name; a phone). Whether each code is a grid of the plan in the caller's territory, and
#: holds one 网格长, is for the import to say (422, 403).
ROSTER_CSV = (
    r"^\uFEFF?(code|编码),(role|职务),(name|姓名),(phone|电话)\r?\n"
    rf"(([0-9]{{15}},({_roles('grid')})|[0-9]{{18}},({_roles('microgrid')})),"
    rf"{_CELL}{{0,39}}[^,\"\s{_CONTROL}],{PHONE}\r?\n)+$"
)


class StaffIn(BaseModel):
    role: str = Field(
        json_schema_extra={"enum": [*ROLES, *(label for label, _ in ROLES.values())]},
        description="grid_head 网格长, full_time 专职网格员, part_time 兼职网格员, "
        "instructor 网格指导员 (on grids), microgrid_head 微网格长 (on micro-grids)",
    )
    name: str = Field(min_length=1, max_length=40, pattern=STAFF_NAME)
    phone: str = Field(
        max_length=40,
        pattern=rf"^{PHONE}$",
        description="A mobile (1[3-9] and 9 digits, +86 allowed) or a landline with its "
        "area code and an extension after '-'",
    )


class StaffOut(BaseModel):
    role: str
    role_zh: str
    name: str
    phone: str


class RosterIn(BaseModel):
    staff: list[StaffIn] = Field(max_length=50, description="The people, in order ([] clears)")


class RosterRow(StaffOut):
    code: str
    level: str


class RosterOut(BaseModel):
    plan: str
    count: int
    rows: list[RosterRow]


class ImportOut(BaseModel):
    plan: str
    codes: list[str]
    rows: int
    staff: int
    replaced: int


class NamesIn(BaseModel):
    base_version: VersionNumber
    names: dict[
        Annotated[str, Field(pattern=GRID_OR_MICRO)],
        Annotated[str, Field(min_length=1, max_length=60, pattern=GRID_NAME)],
    ] = Field(
        max_length=10_000,
        description="New name by grid or micro-grid code",
        json_schema_extra={"additionalProperties": False},
    )
    comment: str = Field(default="", max_length=2000)


def staff_out(person: Staff) -> StaffOut:
    return StaffOut(role=person.role, role_zh=person.label, name=person.name, phone=person.phone)


def visible_staff(store, plan_id: str, codes: list[str], who: Account | None) -> dict:
    """The staff of ``codes`` the caller may see (data/privacy.py ``Reader.sees_staff``):
    those of codes in its territory, to an account; nothing to an anonymous caller."""
    reader = Reader.of(who)
    mine = [c for c in codes if c and reader.sees_staff(c)]
    if not mine:
        return {}
    return {
        c: [staff_out(p) for p in people] for c, people in store.roster.get(plan_id, mine).items()
    }


def _known(request: Request, plan_id: str) -> set[str]:
    state = get_editor(request).state(plan_id)
    return set(state.layers["grids"]["code"]) | set(state.layers["microgrids"]["code"])


@router.post(
    "/plans/{plan_id}/names",
    response_model=EditOut,
    status_code=201,
    responses=WRITTEN,
)
async def names(request: Request, who: PlannerWho, plan_id: PlanId, body: NamesIn) -> EditOut:
    """Rename grids and micro-grids inside the caller's territory, as the next version."""
    editor = get_editor(request)
    return await run_and_answer(
        request, editor.rename, plan_id, body.base_version, body.names, who, body.comment
    )


@router.get("/plans/{plan_id}/roster", response_model=RosterOut, responses=ERRORS)
def roster(store: StoreDep, who: ViewerWho, plan_id: PlanId) -> RosterOut:
    """The people of the grids and micro-grids in the caller's territory (an admin's is
    every grid)."""
    store.resolve(plan_id)
    table = store.roster.table(plan_id, covers=Reader.of(who).sees_staff)
    rows = [
        RosterRow(
            code=r["code"],
            level=r["level"],
            role=r["role"],
            role_zh=r["role_zh"],
            name=r["name"],
            phone=r["phone"],
        )
        for r in table.to_dict("records")
    ]
    return RosterOut(plan=plan_id, count=len(rows), rows=rows)


@router.post(
    "/plans/{plan_id}/roster/import",
    response_model=ImportOut,
    status_code=201,
    responses={**ERRORS, **UPLOAD_INVALID},
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string", "pattern": ROSTER_CSV}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
            "required": True,
        }
    },
)
async def import_roster(
    request: Request,
    store: StoreDep,
    who: PlannerWho,
    plan_id: PlanId,
    filename: Annotated[
        str,
        Query(
            max_length=200,
            pattern=r"^.*\.([cC][sS][vV]|[tT][xX][tT]|[xX][lL][sS][xX])$",
            description="roster.csv or .xlsx",
        ),
    ] = "roster.csv",
    encoding: Annotated[
        Literal["utf-8", "gbk"] | None, Query(description="A CSV's encoding (default: detect)")
    ] = None,
) -> ImportOut:
    """Replace the people of every code a roster file names (CSV in UTF-8 or GBK, or XLSX;
    columns 编码/code, 职务/role, 姓名/name, 电话/phone), all or nothing: a row outside the
    caller's territory refuses the file (403), a bad row is named with its column (422).
    A workbook is checked for size, expansion, cells and rows before it is opened (413),
    and the import is answered 413 past WANGGE_REQUEST_TIMEOUT_S until it writes."""
    deadline = upload_deadline(request)
    data = await read_upload(request)
    await check_upload(request, data, filename, xlsx=filename.lower().endswith(".xlsx"))
    known = await run_in_threadpool(_known, request, plan_id)
    entry = audit_entry(who.name, "roster import", plan_id, None, file=filename)
    done = await run_in_threadpool(
        store.roster.import_file,
        plan_id,
        data,
        filename,
        known,
        who.covers,
        who.name,
        encoding,
        entry,
        request.app.state.settings.max_upload_features,
        deadline.claim,
    )
    return ImportOut(
        plan=plan_id,
        codes=list(done.codes),
        rows=done.rows,
        staff=done.staff,
        replaced=done.replaced,
    )


@router.put(
    "/plans/{plan_id}/roster/{code}",
    response_model=list[StaffOut],
    responses={
        **ERRORS,
        **JSON_BODY,
        405: {
            "model": ErrorBody,
            "description": "The code is `import`: that path takes POST (see Allow)",
        },
    },
)
async def set_staff(
    request: Request,
    store: StoreDep,
    who: PlannerWho,
    plan_id: PlanId,
    code: GridCode,
    body: RosterIn,
) -> list[StaffOut]:
    """Replace the people of one grid or micro-grid of the caller's territory."""
    from wangge.scopes import check_scope

    check_scope(who, [code], "the roster of")
    if code not in await run_in_threadpool(_known, request, plan_id):
        raise NotFound(f"no grid or micro-grid {code} in the latest version", plan_id, "code")
    people = [Staff(p.role, p.name, p.phone) for p in body.staff]
    entry = audit_entry(
        who.name,
        "roster",
        plan_id,
        None,
        codes=[code],
        staff=len(people),
        roles=sorted({p.role for p in people}),
    )
    await run_in_threadpool(store.roster.set, plan_id, code, people, who.name, entry)
    return [staff_out(p) for p in people]
