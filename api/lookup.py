"""Which building, micro-grid, grid, community and street an address names, one at a time
or in batches; and the import of a city's standard address table."""

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

from wangge.api.auth import READ, AdminWho, ReadWho, ViewerWho
from wangge.api.bodies import WholeNumber, check_upload, inline_schema
from wangge.api.coverage import LEVEL_NAMES, Unit, _csv_text, unit_of
from wangge.api.deps import StoreDep, VersionDep, read_upload
from wangge.api.errors import ERRORS, ErrorBody, UnsupportedMedia
from wangge.api.plans import UPLOAD_INVALID, PlanId
from wangge.api.roster import visible_staff
from wangge.data import privacy
from wangge.data.accounts import Account, audit_entry
from wangge.data.addresses import read_standard
from wangge.errors import InputError, TooLarge
from wangge.geocoding import ANSWER_COLUMNS, lookup

router = APIRouter(tags=["lookup"])
#: Headers naming the address column of a CSV batch (the id column: api/coverage.py's).
ADDRESS_COLUMNS = ("address", "地址", "q", "query", "标准地址", "详细地址", "text")
ID_COLUMNS = ("id", "编号", "序号", "代码", "编码")
MinScore = Annotated[
    float | None,
    Query(ge=50, le=100, description="Lowest fuzzy score that answers (default: the setting)"),
]


class AddressAnswer(BaseModel):
    plan: str
    version: int
    query: str
    status: Literal["matched", "no_match", "ambiguous"] = Field(
        description="no_match below the score, ambiguous where the best text names "
        "buildings in different micro-grids: never a guess"
    )
    score: float | None = Field(default=None, description="100 for an exact match")
    min_score: float
    matched: str | None = Field(
        default=None,
        description="The address or name matched; a standard address only for a caller "
        "whose territory holds the building",
    )
    kind: str | None = Field(default=None, description="address, building, compound or place")
    source: str | None = None
    building_id: str | None = None
    building_name: str | None = None
    lon: float | None = None
    lat: float | None = None
    rest: str | None = Field(default=None, description="What the match left over (2单元501室)")
    street: Unit | None = None
    community: Unit | None = None
    grid: Unit | None = None
    microgrid: Unit | None = None


class AddressIn(BaseModel):
    id: StrictStr | WholeNumber | None = None
    address: str = Field(min_length=1, max_length=200)


class AddressesIn(BaseModel):
    addresses: list[AddressIn]


class AddressesOut(BaseModel):
    plan: str
    version: int
    count: int
    matched: int
    min_score: float
    results: list[dict]
    staff: dict[str, list[dict]] = Field(
        default_factory=dict,
        description="Who runs each grid and micro-grid found, for those in the caller's territory",
    )


class AddressImportOut(BaseModel):
    plan: str
    source: str
    file: str
    rows: int
    replaced: int


class AddressSource(BaseModel):
    source: str
    file: str
    rows: int
    imported_at: str
    imported_by: str


def _min_score(request: Request, asked: float | None) -> float:
    return float(asked if asked is not None else request.app.state.settings.address_min_score)


def _shown(frame: pd.DataFrame, who: Account | None) -> pd.DataFrame:
    """``frame`` with each non-public matched text withheld from a reader outside the
    building's territory (a standard address is about one building: data/privacy.py)."""
    reader = privacy.Reader.of(who)
    public = frame["public"].fillna(False).astype(bool).to_numpy()
    sees = reader.covers(frame["microgrid_code"])
    frame = frame.copy()
    frame.loc[~(public | sees), "matched"] = None
    return frame.drop(columns="public")


@router.get(
    "/lookup/address",
    response_model=AddressAnswer,
    dependencies=[READ],
    responses=ERRORS,
)
def address(
    request: Request,
    store: StoreDep,
    who: ReadWho,
    v: VersionDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="An address or name")],
    min_score: MinScore = None,
) -> AddressAnswer:
    """The building or compound an address or place name matches (江苏省南京市玄武区中山路169号,
    金陵中学3栋2单元), with its score, its micro-grid, grid, community and street, and for
    a caller whose territory holds them the people who run the grid and micro-grid. Below
    the score the answer is ``no_match``, never a guess."""
    score = _min_score(request, min_score)
    row = _shown(lookup(store, v, [q], score), who).iloc[0].to_dict()
    out = AddressAnswer(
        plan=v.plan_id,
        version=v.version,
        min_score=score,
        **{k: row[k] for k in AddressAnswer.model_fields if k in row and k not in ("plan",)},
    )
    if row["microgrid_code"] is None:
        return out
    reader = privacy.Reader.of(who)
    units = {level: unit_of(row, level, reader) for level in LEVEL_NAMES}
    codes = [units["grid"].code, units["microgrid"].code]
    for code, people in visible_staff(store, v.plan_id, codes, who).items():
        units["grid" if len(code) == 15 else "microgrid"].staff = people
    return out.model_copy(update=units)


def _read_csv(text: str) -> tuple[list, list[str]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if not header:
        raise InputError("the CSV is empty", "addresses.csv", where="header")
    fields = {h.strip().lower(): i for i, h in reversed(list(enumerate(header)))}
    at = next((fields[k] for k in ADDRESS_COLUMNS if k in fields), None)
    if at is None:
        raise InputError(
            "the CSV needs an address column (address, 地址)", "addresses.csv", "header"
        )
    id_at = next((fields[k] for k in ID_COLUMNS if k in fields), None)
    ids, texts = [], []
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        text = cells[at].strip() if at < len(cells) else ""
        if len(text) > 200:
            raise InputError("an address is at most 200 characters", "addresses.csv", f"row {n}")
        ids.append(cells[id_at] if id_at is not None and id_at < len(cells) else None)
        texts.append(text)
    return ids, texts


@router.post(
    "/lookup/addresses",
    response_model=AddressesOut,
    dependencies=[READ],
    responses={
        **ERRORS,
        200: {"content": {"text/csv": {}}},
        415: {"model": ErrorBody, "description": "The body is neither JSON nor CSV"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": inline_schema(AddressesIn)},
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "id,address\n1,南京市玄武区中山路169号\n",
                },
            },
            "required": True,
        }
    },
)
async def addresses(
    request: Request,
    store: StoreDep,
    who: ReadWho,
    v: VersionDep,
    min_score: MinScore = None,
    format: Annotated[Literal["json", "csv"], Query(description="Response format")] = "json",
) -> Response:
    """Look up to ``max_batch`` addresses at once, sent as JSON or as CSV (id,address; UTF-8
    or GBK). In JSON, ``staff`` lists the people of the grids and micro-grids found that lie
    in the caller's territory; the CSV answer carries the building and codes only."""
    limit = request.app.state.settings.max_batch
    body = await request.body()
    if len(body) > limit * 400 + 10_000:
        raise TooLarge(f"the batch is larger than {limit:,} addresses allow", where="body")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype in ("text/csv", "text/plain"):
        text = _csv_text(body, request.headers.get("content-type", ""))
        ids, texts = _read_csv(text)
    elif ctype == "application/json":
        try:
            parsed = AddressesIn.model_validate_json(body)
        except ValueError as exc:
            raise InputError(f"not a valid address batch: {str(exc)[:300]}", where="body") from exc
        ids = [a.id for a in parsed.addresses]
        texts = [a.address for a in parsed.addresses]
    else:
        raise UnsupportedMedia(f"send JSON or CSV, not {ctype}", where="content-type")
    if len(texts) > limit:
        raise TooLarge(f"{len(texts):,} addresses; a batch holds at most {limit:,}", where="body")
    score = _min_score(request, min_score)
    found = await run_in_threadpool(lookup, store, v, texts, score)
    frame = _shown(found, who)[ANSWER_COLUMNS]
    frame.insert(0, "id", ids)
    if format == "csv":
        return Response(frame.to_csv(index=False), media_type="text/csv")
    codes = sorted(set(frame["grid_code"].dropna()) | set(frame["microgrid_code"].dropna()))
    staff = await run_in_threadpool(visible_staff, store, v.plan_id, codes, who)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    out = {
        "plan": v.plan_id,
        "version": v.version,
        "count": len(frame),
        "matched": int((frame["status"] == "matched").sum()),
        "min_score": score,
        "results": records,
        "staff": {c: [p.model_dump() for p in people] for c, people in staff.items() if people},
    }
    return Response(
        json.dumps(out, ensure_ascii=False, default=_plain), media_type="application/json"
    )


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


@router.post(
    "/plans/{plan_id}/addresses",
    response_model=AddressImportOut,
    status_code=201,
    responses={**ERRORS, **UPLOAD_INVALID},
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "地址,经度,纬度\n南京市玄武区中山路169号,118.7800,32.0500\n",
                }
            },
            "required": True,
        }
    },
)
async def import_addresses(
    request: Request,
    store: StoreDep,
    who: AdminWho,
    plan_id: PlanId,
    source: Annotated[
        str, Query(max_length=40, pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="Source name")
    ] = "standard",
    filename: Annotated[
        str, Query(max_length=200, pattern=r"^.*\.([cC][sS][vV]|[tT][xX][tT])$")
    ] = "addresses.csv",
    encoding: Annotated[
        Literal["utf-8", "gbk"] | None, Query(description="The CSV's encoding (default: detect)")
    ] = None,
) -> AddressImportOut:
    """Replace the plan's address entries of ``source`` with a standard address table (标准
    地址: CSV in UTF-8 or GBK; an address column, and a building id or lon/lat in WGS84), all
    or nothing: a bad row refuses the file naming its row (422), and nothing stored is lost.
    An admin's: the table serves every grid's lookups."""
    data = await read_upload(request)
    await check_upload(request, data, filename)
    store.resolve(plan_id)
    most = request.app.state.settings.max_upload_features
    entries = await run_in_threadpool(read_standard, data, filename, encoding, most)
    entry = audit_entry(who.name, "address import", plan_id, None, file=filename, source=source)
    done = await run_in_threadpool(
        store.addresses.replace, plan_id, source, entries, filename, who.name, entry
    )
    return AddressImportOut(
        plan=plan_id, source=done.source, file=filename, rows=done.rows, replaced=done.replaced
    )


@router.get("/plans/{plan_id}/addresses", response_model=list[AddressSource], responses=ERRORS)
def address_sources(store: StoreDep, who: ViewerWho, plan_id: PlanId) -> list[AddressSource]:
    """The address sources the plan's lookup reads (the OSM names, standard tables), with
    their files, rows and imports."""
    store.resolve(plan_id)
    table = store.addresses.sources(plan_id)
    return [AddressSource(**r) for r in table.drop(columns="token").to_dict("records")]
