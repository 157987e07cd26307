"""HTTP as GIS clients and caches expect it, against a real uvicorn server on each store:
compressed answers (JSON, GeoJSON, HTML, CSV) that GDAL's ``ogrinfo`` and pyogrio read,
binary and small ones left alone, HEAD and ETag/304 per representation, ``Vary`` where an
answer is negotiated, and OGC API routes that refuse a query parameter they do not declare
(400, named, its value never echoed) while every link they hand out can be followed.

The middleware's corner cases (an answer already encoded, a streamed one, ``If-Match`` on
the gzip tag) are checked on a small app of their own.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import re
import shutil
import subprocess
import uuid
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pyogrio
import pytest
from apitools import key_for
from conftest import PG_URL, need
from e2e_server import Server, start_server
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.auth import api_routes
from wangge.api.negotiate import GZIP_TAG, Compress, accepts_gzip, compressible
from wangge.api.ogc import declared_params
from wangge.api.settings import Settings
from wangge.data.gpkg_store import GpkgStore

#: What a client that cannot decode gzip sends (curl without --compressed sends nothing).
IDENTITY = {"Accept-Encoding": "identity"}
#: What GDAL's OAPIF driver sends (3.6 and 3.12 alike).
GDAL_LIKE = {"Accept-Encoding": "gzip", "Accept": "application/json"}
#: A value no answer may repeat.
MARKER = "zz-echo-7f3a"


class Served:
    """A server holding the demo plan: its URL, a reader's key, the stored layers, and a
    client that sends the key and no Accept-Encoding of its own (each test says which)."""

    def __init__(self, server: Server, key: str, plan: str, frames: dict):
        self.server, self.key, self.plan, self.frames = server, key, plan, frames
        self.url = server.url
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def raw(self, path: str, headers: dict | None = None, method: str = "GET", **kw):
        """The answer and its body as sent (not decoded)."""
        with self.http.stream(method, path, headers=headers, **kw) as r:
            return r, b"".join(r.iter_raw())


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, demo_plan_frames, tmp_path_factory):
    frames, meta = demo_plan_frames
    plan = f"http-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("http")
    if request.param == "gpkg":
        target = str(tmp / "store.gpkg")
        store = GpkgStore(tmp / "store.gpkg")
    else:
        target = PG_URL
        store = request.getfixturevalue("postgis_store")  # fails, not skips, with CI=true
    store.save(plan, frames, meta, author="tests")
    key = key_for(store, "admin")
    if request.param == "gpkg":
        store.close()
    server = start_server(target, tmp / "server.log", plan=plan)
    yield Served(server, key, plan, frames)
    server.stop()


def _points_csv(frames: dict, n: int = 400) -> str:
    """``n`` points over the demo's grids, as the CSV a hotline system would post."""
    x0, y0, x1, y1 = frames["grids"].to_crs(4326).total_bounds
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    return "id,lon,lat\n" + "".join(
        f"p{i},{a:.6f},{b:.6f}\n" for i, (a, b) in enumerate(zip(lon, lat, strict=True))
    )


# compression ---------------------------------------------------------------------------------


def _unstamped(body: bytes) -> bytes:
    """A body without the time it was answered at (a page's ``timeStamp``)."""
    return re.sub(rb'"timeStamp": ?"[^"]*"', b"", body)


def _answers(served: Served) -> dict[str, dict]:
    """One request of each kind a client reads as text: GeoJSON pages, JSON, HTML, CSV,
    the editor's JavaScript."""
    csv = _points_csv(served.frames)
    return {
        "geojson grids": {"path": "/collections/grids/items", "params": {"limit": 1000}},
        "geojson units": {"path": "/collections/units/items"},
        "json collections": {"path": "/collections"},
        "html items": {"path": "/collections/grids/items", "params": {"f": "html"}},
        "csv lookup": {
            "path": "/coverage/points",
            "method": "POST",
            "params": {"format": "csv"},
            "content": csv,
            "headers": {"Content-Type": "text/csv"},
        },
        "javascript": {"path": "/editor/static/vendor/maplibre-gl.js"},
    }


def test_text_answers_are_gzipped_with_their_length_and_decode_to_the_identity_body(served):
    for name, ask in _answers(served).items():
        ask = dict(ask)
        path, method = ask.pop("path"), ask.pop("method", "GET")
        extra = ask.pop("headers", {})
        r, raw = served.raw(path, {**extra, **GDAL_LIKE}, method, **ask)
        plain, body = served.raw(path, {**extra, **IDENTITY}, method, **ask)
        assert r.status_code == plain.status_code == 200, (name, r.status_code)
        assert r.headers["content-encoding"] == "gzip", name
        assert int(r.headers["content-length"]) == len(raw), name
        assert _unstamped(gzip.decompress(raw)) == _unstamped(body), name
        assert "content-encoding" not in plain.headers, name
        assert int(plain.headers["content-length"]) == len(body), name
        for answer in (r, plain):  # a shared cache must keep the two apart
            assert "accept-encoding" in answer.headers["vary"].lower(), name
        assert len(raw) < len(body) / 2, f"{name}: {len(raw)} of {len(body)} bytes"


def test_small_and_binary_answers_are_sent_as_they_are(served):
    """A small answer is not worth a decoder; a tile, a GeoPackage or a zip are not text
    (a tile would be compressed twice by a proxy that trusts the server)."""
    small, raw = served.raw("/healthz", GDAL_LIKE)
    assert "content-encoding" not in small.headers and json.loads(raw)["status"] == "ok"
    assert "accept-encoding" in small.headers["vary"].lower()  # a larger one would be
    bounds = served.frames["grids"].to_crs(4326).total_bounds
    z = 15
    x, y = _tile_of((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, z)
    for path, params in (
        (f"/tiles/grids/{z}/{x}/{y}.mvt", {}),
        ("/export/grids", {"format": "gpkg"}),
        ("/export/grids", {"format": "shp"}),
    ):
        r, raw = served.raw(path, {"Accept-Encoding": "gzip, br"}, params=params)
        plain, body = served.raw(path, IDENTITY, params=params)
        assert r.status_code == 200 and len(raw) > 1000, path
        assert "content-encoding" not in r.headers, path
        assert "accept-encoding" not in r.headers.get("vary", "").lower(), path
        assert int(r.headers["content-length"]) == len(raw), path
        if path.endswith(".mvt"):
            assert raw == body and r.headers["etag"] == plain.headers["etag"]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    return x, y


def test_head_gives_the_headers_of_the_compressed_get(served):
    params = {"limit": 1000}
    get, raw = served.raw("/collections/grids/items", GDAL_LIKE, params=params)
    head, empty = served.raw("/collections/grids/items", GDAL_LIKE, "HEAD", params=params)
    assert head.status_code == 200 and empty == b""
    for name in ("content-encoding", "content-length", "content-type", "vary"):
        assert head.headers[name] == get.headers[name], name
    assert int(head.headers["content-length"]) == len(raw)


def test_each_representation_has_its_own_etag_and_either_revalidates(served):
    """RFC 9110 8.8.3: the gzip form is another representation, with another strong tag;
    a client holding either (or a weak form of either, from a proxy) is answered 304 with
    the tag of the form it holds."""
    path = "/editor/static/vendor/maplibre-gl.js"
    zipped, _ = served.raw(path, GDAL_LIKE)
    plain, _ = served.raw(path, IDENTITY)
    tag, own = zipped.headers["etag"], plain.headers["etag"]
    assert tag == own[:-1] + GZIP_TAG + '"' and not tag.startswith("W/")
    for held, encoding in ((tag, "gzip"), (f"W/{tag}", "gzip"), (own, "gzip"), (own, "identity")):
        r, body = served.raw(path, {"Accept-Encoding": encoding, "If-None-Match": f'"x", {held}'})
        assert r.status_code == 304 and body == b"", (held, encoding)
        assert r.headers["etag"] == (tag if GZIP_TAG in held else own), (held, encoding)
    stale, _ = served.raw(path, {**GDAL_LIKE, "If-None-Match": '"other-gzip"'})
    assert stale.status_code == 200


def test_tiles_keep_their_strong_etag_and_304(served):
    bounds = served.frames["grids"].to_crs(4326).total_bounds
    x, y = _tile_of((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 15)
    path = f"/tiles/grids/15/{x}/{y}.mvt"
    first, _ = served.raw(path, GDAL_LIKE)
    tag = first.headers["etag"]
    assert GZIP_TAG not in tag and not tag.startswith("W/")
    again, body = served.raw(path, {**GDAL_LIKE, "If-None-Match": f"W/{tag}"})
    assert again.status_code == 304 and body == b"" and again.headers["etag"] == tag


# GDAL ------------------------------------------------------------------------------------------


def _ogr2ogr() -> str:
    found = shutil.which("ogr2ogr")
    if found is None:
        need("ogr2ogr", "run `bash scripts/ensure_services.sh gdal` (Debian's gdal-bin)")
    return found


def test_gdal_command_line_reads_the_compressed_grids(served, tmp_path):
    """Debian's GDAL (3.6 on bookworm, the version the issue was found with) asks for gzip,
    is answered gzip (curl's verbose log shows it) and copies every grid, as the store
    holds them."""
    out = tmp_path / "grids.geojson"
    env = {**os.environ, "CPL_CURL_VERBOSE": "YES"}
    cmd = [_ogr2ogr(), "-f", "GeoJSON", str(out), f"OAPIF:{served.url}/", "grids"]
    cmd += ["--config", "GDAL_HTTP_USERPWD", f"gdal:{served.key}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stderr.lower()
    assert "accept-encoding: gzip" in log and "content-encoding: gzip" in log, log[-3000:]
    got = json.loads(out.read_text())["features"]
    assert sorted(f["properties"]["code"] for f in got) == sorted(served.frames["grids"]["code"])


def test_gdal_bindings_read_the_compressed_collections(served):
    """pyogrio's GDAL (a newer one) reads a GeoJSON page and an HTML-capable layer list."""
    url = f"OAPIF:{served.url}/"
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": served.key})
    try:
        units = pyogrio.read_dataframe(url, layer="units", PAGE_SIZE=500)
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})
    assert sorted(units["code"]) == sorted(served.frames["units"]["code"])


# Vary ------------------------------------------------------------------------------------------


def _vary(r: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in r.headers.get("vary", "").split(",") if v.strip()}


def test_negotiated_pages_vary_by_accept(served):
    """Without ``f`` the OGC pages choose HTML or JSON by Accept, and say so; with ``f``
    the address alone decides."""
    code = served.frames["grids"]["code"].iloc[0]
    paths = ["/", "/conformance", "/collections", "/collections/grids"]
    paths += ["/collections/grids/items", f"/collections/grids/items/{code}"]
    for path in paths:
        page = served.http.get(path, headers={"Accept": "text/html"})
        data = served.http.get(path, headers={"Accept": "application/json"})
        assert page.headers["content-type"].startswith("text/html"), path
        assert "json" in data.headers["content-type"], path
        for r in (page, data):
            assert "accept" in _vary(r), (path, r.headers.get("vary"))
        pinned = served.http.get(path, params={"f": "json"}, headers={"Accept": "text/html"})
        assert "json" in pinned.headers["content-type"] and "accept" not in _vary(pinned)


def test_the_sign_in_challenge_varies_by_accept(served):
    """A browser is asked for Basic, a script for Bearer: the 401 depends on Accept."""
    for accept in ("text/html", "application/json"):
        r = httpx.get(f"{served.url}/collections", headers={"Accept": accept})
        assert r.status_code == 401 and "accept" in _vary(r), accept


# unknown query parameters ----------------------------------------------------------------------


def test_an_unknown_query_parameter_is_refused_by_name_and_never_echoed(served):
    """OGC API – Features /req/core/query-param-unknown: 400 naming the parameter, in the
    API's one error shape, never repeating its value; a misspelt parameter, a filter the
    service does not offer and a key put in the address alike."""
    code = served.frames["grids"]["code"].iloc[0]
    paths = ["/", "/conformance", "/api", "/collections", "/collections/grids"]
    paths += ["/collections/grids/items", f"/collections/grids/items/{code}"]
    for path in paths:
        for name in ("bbbox", "filter", "sortby", "skipGeometry", "Limit", "q"):
            r = served.http.get(path, params={name: MARKER})
            assert r.status_code == 400, (path, name, r.status_code)
            body = r.json()
            assert set(body) == {"error", "detail", "where"} and body["where"] == name, body
            assert MARKER not in r.text and "not a query parameter" in body["error"], body
            assert [d["where"] for d in body["detail"]] == [name]
    secret = f"wg_{MARKER}"
    r = served.http.get("/collections/grids/items", params={"api_key": secret, "limit": 1})
    assert r.status_code == 400 and secret not in r.text and MARKER not in r.text
    assert "header" in r.json()["error"]
    twice = served.http.get("/collections/grids/items?limit=1&limit=" + MARKER)
    assert (
        twice.status_code == 400 and twice.json()["where"] == "limit" and MARKER not in twice.text
    )


def test_other_routes_keep_their_leniency(served):
    """The rule is OGC API's: the rest of the API (tiles, lookups) still ignores an extra
    parameter, as it always has."""
    assert served.http.get("/tiles", params={"cachebust": "1"}).status_code == 200
    assert served.http.get("/healthz", params={"x": "1"}).status_code == 200


def _ogc(path: str) -> bool:
    return path in ("/", "/conformance", "/api") or path.startswith("/collections")


def _declared_in(doc: dict, path: str) -> set[str]:
    """The query parameters the OpenAPI document declares for the GET of ``path``."""
    for template, ops in doc["paths"].items():
        if "get" in ops and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return {p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"}
    raise AssertionError(f"no operation for {path}")


def _links(r: httpx.Response) -> list[str]:
    """The links of an OGC answer: its own and those of its grids collection in JSON, every
    href in HTML."""
    if r.headers["content-type"].startswith("text/html"):
        return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', r.text)]
    body = r.json()
    found = body.get("links", [])
    found += [x for c in body.get("collections", []) if c["id"] == "grids" for x in c["links"]]
    return [x["href"] for x in found]


def test_every_link_can_be_followed_and_carries_only_declared_parameters(served):
    """From the landing page (with ``?plan=``, which OWSLib and GDAL carry to every request)
    and a paged collection, every link an OGC answer hands out, in JSON and in HTML, names
    only parameters its target declares, and those to the service's pages and the grids
    collection are followed: none is refused."""
    doc = served.http.get("/openapi.json").json()
    query = f"plan={served.plan}&version=1"
    todo = [f"{served.url}/?{query}", f"{served.url}/collections/grids/items?limit=30&{query}"]
    seen: set[str] = set()
    while todo and len(seen) < 40:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        r = served.http.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        if urlsplit(url).path == "/api":
            continue
        for href in _links(r):
            parts = urlsplit(href)
            if parts.netloc not in ("", urlsplit(served.url).netloc) or not _ogc(parts.path):
                continue
            params = {k for k, _ in parse_qsl(parts.query)}
            declared = _declared_in(doc, parts.path)
            assert params <= declared, (href, params - declared)
            if parts.netloc and (parts.path.count("/") < 2 or "/grids" in parts.path):
                todo.append(href)
    assert len(seen) >= 8 and any("offset=30" in u for u in seen)


def test_the_api_description_lists_exactly_what_each_ogc_route_takes():
    """What the 400 refuses is what the OpenAPI document leaves out: the two agree."""
    app = create_app(Settings(plan="none"))  # the store opens at start: not needed here
    doc = app.openapi()
    checked = 0
    for route in api_routes(app.router.routes):
        if not _ogc(route.path) or not route.include_in_schema:  # OPTIONS (api/ogc_edits.py)
            continue
        for method in route.methods:
            op = doc["paths"][route.path][method.lower()]
            listed = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            assert listed == declared_params(route), (method, route.path)
            assert "400" in op["responses"], (method, route.path)
            checked += 1
    assert checked >= 7


# the middleware on its own ---------------------------------------------------------------------


def _tiny() -> TestClient:
    app = FastAPI()
    app.add_middleware(Compress)
    text = "网格 grid " * 500

    @app.get("/pre")
    def pre() -> Response:
        return Response(
            gzip.compress(text.encode()),
            media_type="application/json",
            headers={"Content-Encoding": "gzip"},
        )

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(
            (text for _ in range(20)), media_type="text/csv", headers={"ETag": '"s1"'}
        )

    @app.put("/tagged")
    def tagged(request: Request) -> Response:
        return Response(
            json.dumps({"if_match": request.headers.get("if-match")}) + " " * 2000,
            media_type="application/json",
            headers={"ETag": '"t1"'},
        )

    return TestClient(app)


def test_an_answer_already_encoded_is_not_compressed_again():
    with _tiny() as client, client.stream("GET", "/pre", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).decode().startswith("网格 grid")  # once, not twice


def test_a_streamed_answer_is_compressed_as_it_goes_without_a_length():
    with (
        _tiny() as client,
        client.stream("GET", "/stream", headers={"Accept-Encoding": "gzip"}) as r,
    ):
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip" and "content-length" not in r.headers
    assert r.headers["etag"] == '"s1' + GZIP_TAG + '"'
    assert gzip.decompress(raw).decode() == "网格 grid " * 500 * 20


def test_if_match_on_the_gzip_tag_reaches_the_route_as_its_own():
    """A client that writes back (OGC API – Features Part 4) sends the tag it read, the
    gzip one: the route compares it with its own, strongly, as If-Match asks."""
    with _tiny() as client:
        r = client.put("/tagged", headers={"If-Match": '"t1' + GZIP_TAG + '"'})
    assert r.json()["if_match"] == '"t1"'
    assert r.headers["etag"] == '"t1' + GZIP_TAG + '"'


def test_accept_encoding_and_media_types_are_read_as_rfc_9110_says():
    assert accepts_gzip("gzip") and accepts_gzip("br;q=1.0, gzip;q=0.5") and accepts_gzip("*")
    assert not accepts_gzip("") and not accepts_gzip("identity") and not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("*, gzip;q=0") and accepts_gzip("x-gzip")
    for media in (
        "application/geo+json",
        "text/html; charset=utf-8",
        "text/csv",
        "application/vnd.oai.openapi+json;version=3.0",
        "application/json",
    ):
        assert compressible(media), media
    for media in (
        "application/vnd.mapbox-vector-tile",
        "application/zip",
        "application/geopackage+sqlite3",
        "image/png",
        None,
    ):
        assert not compressible(media), media
