"""Risk and facility coverage: grid risk, a community's risk register, gaps and new sites.

The layers come from ``wangge overlay`` and ``wangge coverage``, imported with the plan;
they are also served as collections and exports like every other layer.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from wangge.api.auth import READ
from wangge.api.collections import GEOJSON, feature_json
from wangge.api.deps import ReaderDep, StoreDep, VersionDep
from wangge.api.errors import ERRORS
from wangge.data import privacy
from wangge.data.osm import credit_of
from wangge.data.store import Store, Version
from wangge.errors import InputError, NotFound
from wangge.geo.rules import Rules, load_rules, rules_from_raw

router = APIRouter(tags=["risk and coverage"], dependencies=[READ])
#: The facility types of the bundled rules (geo/rules.toml), offered in the schema.
FACILITY_TYPES = list(load_rules().facilities)
CodeQuery = Annotated[
    str | None,
    Query(
        description="Street, community or grid code: only features inside it",
        pattern=r"^[0-9]{6,18}$",
    ),
]
SAMPLE_NOTE = "样例数据 SAMPLE DATA — generated, not real records"
#: Register columns, in order, with their Chinese headings.
REGISTER = {
    "risk_id": "编号",
    "kind_zh": "类型",
    "name": "名称",
    "category_zh": "风险类别",
    "address": "地址",
    "lon": "经度",
    "lat": "纬度",
    "method": "评估方法",
    "L": "L 可能性",
    "S": "S 严重性",
    "E": "E 暴露频率",
    "C": "C 后果",
    "score": "风险值",
    "level_zh": "风险等级",
    "responsible": "责任单位",
    "grid_code": "所属网格",
    "community_code": "所属社区",
    "note": "数据说明",
}


def _layer(store: Store, v: Version, name: str, hint: str) -> gpd.GeoDataFrame:
    have = {i.name for i in store.layers(v.plan_id, v.version)}
    if name not in have:
        raise NotFound(
            f"plan {v.plan_id!r} version {v.version} has no {name!r} layer; {hint}",
            where="plan",
        )
    return store.query(v.plan_id, v.version, name).frame


def _collection(frame: gpd.GeoDataFrame, v: Version, **extra) -> Response:
    head = {
        "type": "FeatureCollection",
        "plan": v.plan_id,
        "version": v.version,
        "numberReturned": len(frame),
        **extra,
        "attribution": credit_of(v.meta),
    }
    if "sample" in frame and frame["sample"].astype(bool).any():
        head["note"] = SAMPLE_NOTE
    feats = feature_json(frame)
    text = json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[' + ",".join(feats) + "]}"
    return Response(text, media_type=GEOJSON)


def _within(frame: pd.DataFrame, code: str | None, column: str) -> pd.DataFrame:
    if code is None:
        return frame
    return frame[frame[column].fillna("").astype(str).str.startswith(code)]


@router.get(
    "/risk/grids",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "Grids with risk"}},
)
def risk_grids(
    store: StoreDep,
    v: VersionDep,
    code: CodeQuery = None,
    level: Annotated[
        Literal["red", "orange", "yellow", "blue"] | None,
        Query(description="Only grids of this four-colour level"),
    ] = None,
) -> Response:
    """Every grid's four-colour risk level, counts by level, weighted score, households
    and vulnerable people exposed in risk zones, and its Gi* hot-spot class."""
    frame = _layer(store, v, "grid_risk", "run wangge overlay on the plan and import it")
    frame = _within(frame, code, "code")
    if level is not None:
        frame = frame[frame["level"] == level]
    return _collection(frame, v)


@router.get(
    "/risk/register",
    responses={
        **ERRORS,
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
            "description": "The community's risk register (风险清单)",
        },
    },
)
def risk_register(
    store: StoreDep,
    v: VersionDep,
    community: Annotated[
        str,
        Query(
            description="Community code (12 digits), or a street or grid code",
            pattern=r"^[0-9]{6,18}$",
        ),
    ],
    format: Annotated[Literal["csv", "xlsx"], Query(description="csv or xlsx")] = "csv",
) -> Response:
    """A community's risk register (风险清单): its risk points and zones, scored, with
    the responsible party, as CSV (UTF-8 with BOM, opens in Excel) or XLSX."""
    hint = "run wangge overlay on the plan and import it"
    points = _layer(store, v, "risk_points", hint)
    have = {i.name for i in store.layers(v.plan_id, v.version)}
    zones = store.query(v.plan_id, v.version, "risk_zones").frame if "risk_zones" in have else None
    table = register_table(points, zones, community)
    if not len(table):
        raise NotFound(f"no risk points or zones inside {community}", where="community")
    name = f"risk_register_{community}.{format}"
    if format == "csv":
        body = table.to_csv(index=False).encode("utf-8-sig")
        media = "text/csv; charset=utf-8"
    else:
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as xl:
            table.to_excel(xl, index=False, sheet_name="风险清单")
        body = buf.getvalue()
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def register_table(
    points: gpd.GeoDataFrame, zones: gpd.GeoDataFrame | None, code: str
) -> pd.DataFrame:
    """The register rows inside ``code`` with Chinese headings, highest risk first."""
    parts = []
    for frame, kind in ((points, "风险点"), (zones, "风险区")):
        if frame is None or not len(frame):
            continue
        f = _within(frame, code, "grid_code") if kind == "风险点" else _zones_in(frame, code)
        if not len(f):
            continue
        pts = f.geometry.representative_point()
        f["lon"], f["lat"] = pts.x.round(6), pts.y.round(6)
        f["kind_zh"] = kind if kind == "风险点" else (kind + " " + f["kind"].fillna("")).str.strip()
        f["community_code"] = f["grid_code"].astype(str).str[:12]
        f["note"] = f["sample"].astype(bool).map({True: SAMPLE_NOTE, False: ""})
        parts.append(pd.DataFrame(f.drop(columns=f.geometry.name)))
    if not parts:
        return pd.DataFrame(columns=list(REGISTER.values()))
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values("score", ascending=False, kind="stable")
    # an anonymous reader's layers lack the restricted columns (data/privacy.py): so
    # does its register
    public = privacy.public_columns("risk_points", REGISTER)
    shown = [c for c in REGISTER if c in table or c in public]
    return table.reindex(columns=shown).rename(columns=REGISTER)


def _zones_in(zones: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    """Zones touching any grid inside ``code`` (a zone is in every register it touches)."""
    touched = zones["grid_codes"].fillna("").astype(str).str.split(",")
    keep = touched.map(lambda codes: any(c.startswith(code) for c in codes if c))
    out = zones[keep.to_numpy(dtype=bool)].copy()
    out["grid_code"] = [
        next(c for c in codes if c.startswith(code)) for codes in touched[keep.to_numpy(dtype=bool)]
    ]
    return out


@router.get(
    "/coverage/gaps",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "Gap features"}},
)
def coverage_gaps(
    store: StoreDep,
    v: VersionDep,
    type: Annotated[
        str | None,
        Query(
            description="Facility type, e.g. emergency_shelter (a plan's own rules may add more)",
            max_length=40,
            json_schema_extra={"enum": FACILITY_TYPES},
        ),
    ] = None,
    kind: Annotated[
        Literal["beyond_reach", "missing_required", "over_capacity", "exposed_vulnerable"] | None,
        Query(description="Only gaps of this kind"),
    ] = None,
    code: CodeQuery = None,
) -> Response:
    """Coverage gaps, each with its reason: households beyond reach of a facility type,
    grids and communities missing a required type, shelters over capacity, and
    vulnerable people inside risk zones."""
    frame = _layer(store, v, "gaps", "run wangge coverage on the plan and import it")
    if type is not None:
        # a type of the plan's rules with no gaps is an empty answer, not an error
        known = sorted(set(_rules(v).facilities) | (set(frame["type"]) - {""}))
        if type not in known:
            raise InputError(
                f"unknown facility type {type!r}; this plan's rules have: {', '.join(known)}",
                where="type",
            )
        frame = frame[frame["type"] == type]
    if kind is not None:
        frame = frame[frame["kind"] == kind]
    frame = _within(frame, code, "grid_code")
    return _collection(frame, v)


@router.get(
    "/coverage/suggest",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}, "description": "Suggested sites"}},
)
async def coverage_suggest(
    request: Request,
    reader: ReaderDep,
    v: VersionDep,
    type: Annotated[
        str,
        Query(
            description="Facility type, e.g. aed (a plan's own rules may add more)",
            max_length=40,
            json_schema_extra={"enum": FACILITY_TYPES},
        ),
    ],
    k: Annotated[int, Query(ge=1, le=100, description="Sites to suggest")] = 5,
) -> Response:
    """The ``k`` candidate sites (block centroids, or the plan's candidate file) that
    would cover the most households now beyond reach of ``type``: greedy plus swap, with
    the households each adds and HiGHS's bound and gap where the instance is small."""
    # the inputs are read and cached once for every caller; the sites are the caller's
    sites, summary = await run_in_threadpool(_suggest, request, request.app.state.store, v, type, k)
    summary = {key: (None if pd.isna(val) else val) for key, val in summary.items()}
    return _collection(privacy.apply("suggestions", sites, reader), v, summary=_plain(summary))


def _plain(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


def _rules(v: Version) -> Rules:
    """The facility rules the plan's coverage was measured with (else the bundled ones)."""
    raw = v.meta.get("rules_json")
    return rules_from_raw(json.loads(raw), "plan meta") if raw else load_rules()


def _suggest(request: Request, store: Store, v: Version, ftype: str, k: int):
    from wangge.siting import prepare_siting, suggest_prepared

    rules = _rules(v)
    # the graph and snapped buildings are built once per version (versions never change)
    cache = request.app.state.__dict__.setdefault("siting_inputs", {})
    key = (v.plan_id, v.version)
    if key not in cache:
        crs = v.meta.get("metric_crs")
        if not crs:
            raise InputError("the plan's meta has no metric_crs", where="plan")
        have = {i.name for i in store.layers(v.plan_id, v.version)}
        names = ("network_nodes", "network_edges", "access", "candidates", "facilities")
        layers = {n: store.query(v.plan_id, v.version, n).frame for n in names if n in have}
        if len(cache) >= 4:
            cache.pop(next(iter(cache)))
        cache[key] = prepare_siting(layers, crs, rules)
    return suggest_prepared(cache[key], rules, ftype, k)
