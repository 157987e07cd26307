"""Names and phones of the grid staff never leave the roster but to callers allowed to see
them: a seeded roster on every grid and micro-grid of the demo, a real server logging at
debug level, and every tile, export, item page, audit entry, error message and log line
grepped for each name and phone."""

from __future__ import annotations

import io
import json
import math
import re
import urllib.error
import urllib.request
import zipfile

import pytest
from e2e_server import ADMIN, VIEWER, add_accounts, import_plan, planner_of, start_server

from wangge.data.gpkg_store import GpkgStore
from wangge.data.roster import Staff


@pytest.fixture(scope="module")
def seeded(plan_dir, tmp_path_factory):
    """A server over a store holding the demo plan and a roster on every grid and
    micro-grid, with the names and phones seeded."""
    d = tmp_path_factory.mktemp("privacy")
    store = d / "store.gpkg"
    import_plan(plan_dir, store)
    keys = add_accounts(store)
    st = GpkgStore(store)
    secrets: list[str] = []
    try:
        v = st.latest("demo")
        grids = sorted(st.query("demo", v, "grids").frame["code"].astype(str))
        micro = sorted(st.query("demo", v, "microgrids").frame["code"].astype(str))
        for i, code in enumerate(grids + micro):
            name, phone = f"隐私{i:04d}号", f"139{i:08d}"
            role = "grid_head" if len(code) == 15 else "microgrid_head"
            st.roster.set("demo", code, [Staff(role, name, phone)], "seed")
            secrets += [name, phone]
        communities = sorted(st.query("demo", v, "communities").frame["code"].astype(str))
    finally:
        st.close()
    server = start_server(store, d / "server.log", keys, log_level="debug")
    yield server, secrets, grids, communities
    server.stop()


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def _fetch(server, path: str, key: str | None = ADMIN, data: bytes | None = None, **headers):
    if key is not None:
        headers["Authorization"] = f"Bearer {server.keys[key]}"
    method = "GET" if data is None else headers.pop("method", "POST")
    req = urllib.request.Request(server.url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _leaks(blob: bytes, secrets: list[str]) -> list[str]:
    found = []
    for s in secrets:
        if s.encode("utf-8") in blob or s.encode("gbk") in blob:
            found.append(s)
    return found


def test_no_tile_export_item_audit_error_or_log_line_carries_a_name_or_phone(seeded):
    server, secrets, grids, communities = seeded
    answers: dict[str, bytes] = {}

    def keep(label: str, status_and_body) -> int:
        status, body = status_and_body
        answers[label] = body
        return status

    # tiles of every layer over the plan, z12 to z16 at the centre and z14 everywhere
    state = json.loads(_fetch(server, "/plans/demo/state")[1])
    x0, y0, x1, y1 = state["bbox"]
    layers = json.loads(_fetch(server, "/tiles")[1])
    names = [layer["id"] if isinstance(layer, dict) else layer for layer in layers["layers"]]
    assert "grids" in names and "microgrids" in names
    (_, tx0, ty0), (_, tx1, ty1) = _tile(x0, y1, 14), _tile(x1, y0, 14)
    tiles = [(14, x, y) for x in range(tx0, tx1 + 1) for y in range(ty0, ty1 + 1)]
    tiles += [_tile((x0 + x1) / 2, (y0 + y1) / 2, z) for z in (12, 13, 15, 16)]
    served = 0
    for layer in names:
        for z, x, y in tiles:
            status = keep(
                f"tile {layer} {z}/{x}/{y}", _fetch(server, f"/tiles/{layer}/{z}/{x}/{y}.mvt")
            )
            served += status == 200
    assert served > len(tiles)  # tiles with features were served
    # every layer as items and in every export format
    collections = json.loads(_fetch(server, "/collections?plan=demo")[1])["collections"]
    for c in collections:
        keep(f"items {c['id']}", _fetch(server, f"/collections/{c['id']}/items?limit=10000"))
    # a layer that mixes points and areas (gaps) is two collections and one export
    stored = {re.sub(r"-(points|lines|areas)$", "", c["id"]) for c in collections}
    for layer in sorted(stored):
        for fmt, extra in (("geojson", ""), ("gpkg", ""), ("shp", "&encoding=GBK")):
            status, body = _fetch(server, f"/export/{layer}?format={fmt}{extra}")
            if fmt == "shp" and status == 200:  # look inside the zip: the .dbf is stored
                with zipfile.ZipFile(io.BytesIO(body)) as z:
                    body = b"".join(z.read(n) for n in z.namelist())
            answers[f"export {layer} {fmt}"] = body
    # risk and coverage views, lookups by callers who may not see staff
    for path in (
        "/risk/grids",
        "/risk/register",
        "/coverage/gaps",
        "/plans",
        "/plans/demo/versions",
    ):
        keep(path, _fetch(server, path))
    keep("point as viewer", _fetch(server, "/coverage/point?lon=118.78&lat=32.04", VIEWER))
    keep("point anonymous", _fetch(server, "/coverage/point?lon=118.78&lat=32.04", None))
    # writes that touch names and people, some refused with an error message
    planner = planner_of(communities[0])
    grid = next(g for g in grids if g.startswith(communities[0]))
    other = next(g for g in grids if not g.startswith(communities[0]))
    bad_rows = (
        f"编码,职务,姓名,电话\n{grid},网格长,{secrets[0]},12345\n"
        f"{other},网格长,{secrets[2]},{secrets[3]}\n"
    )
    for key in (planner, ADMIN):
        status = keep(
            f"bad roster import {key}",
            _fetch(
                server,
                "/plans/demo/roster/import",
                key,
                bad_rows.encode(),
                **{"Content-Type": "text/csv"},
            ),
        )
        assert status in (403, 422)
    body = json.dumps({"staff": [{"role": "网格长", "name": secrets[4], "phone": "not-a-phone"}]})
    status = keep(
        "bad roster put",
        _fetch(
            server,
            f"/plans/demo/roster/{grid}",
            planner,
            body.encode(),
            **{"Content-Type": "application/json", "method": "PUT"},
        ),
    )
    assert status == 422
    good = json.dumps({"staff": [{"role": "网格长", "name": secrets[0], "phone": secrets[1]}]})
    status = keep(
        "roster put",
        _fetch(
            server,
            f"/plans/demo/roster/{grid}",
            planner,
            good.encode(),
            **{"Content-Type": "application/json", "method": "PUT"},
        ),
    )
    assert status == 200
    answers.pop("roster put")  # its answer is the staff, to the planner who set them
    for fmt in ("json", "csv"):
        keep(f"audit {fmt}", _fetch(server, f"/audit?f={fmt}"))
    assert b"roster" in answers["audit json"]  # the roster writes are audited, by code
    leaks = {label: _leaks(body, secrets) for label, body in answers.items()}
    leaks = {k: v[:3] for k, v in leaks.items() if v}
    assert not leaks, leaks
    log = server.log.read_bytes()
    assert b"GET /tiles/" in log  # the server did log, at debug level
    assert not _leaks(log, secrets)


def test_staff_reach_a_planner_of_the_grid_but_not_a_viewer_without_scope(seeded):
    server, secrets, grids, _ = seeded
    grid = json.loads(_fetch(server, f"/collections/grids/items/{grids[0]}")[1])
    from shapely.geometry import shape

    p = shape(grid["geometry"]).representative_point()
    path = f"/coverage/point?lon={p.x}&lat={p.y}"
    planner = planner_of(grids[0][:12])
    mine = json.loads(_fetch(server, path, planner)[1])
    assert mine["grid"]["staff"] and mine["grid"]["staff"][0]["name"] in secrets
    theirs = json.loads(_fetch(server, path, VIEWER)[1])
    assert theirs["grid"]["staff"] is None and not _leaks(json.dumps(theirs).encode(), secrets)
