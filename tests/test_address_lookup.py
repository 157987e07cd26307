"""Address to grid (issue 24): normalising, matching against the labelled set, the stored
address table on both stores, the API with its scopes, the CLI import and the CSV batch.

tests/data/addresses_labelled.csv was made by hand from the demo OSM file's own
``addr:street``/``addr:housenumber`` tags and names (``expect``: the tagged text the query
means; empty for a place not in the district), each written the ways a caller writes it:
with and without 江苏省南京市玄武区, full-width digits, 號, traditional characters, a
building, unit and room suffix (3栋2单元501室, 七栋, 7号楼), one wrong character; and
negatives: places elsewhere in Nanjing or Beijing, house numbers its streets do not have,
and near names (金陵小学 beside 金陵中学). A query is right when its building is the
building the expected text itself finds.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apitools import auth
from clitools import run
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.addresses import read_osm_names, read_standard
from wangge.data.plan import plan_from_frames, read_plan
from wangge.errors import InputError
from wangge.geo.geocode import MIN_SCORE, admin_names, normalise, split
from wangge.geocoding import lookup
from wangge.importing import save_plan

LABELLED = Path(__file__).parent / "data" / "addresses_labelled.csv"
#: The recall the labelled set must keep: one query in twenty may go unanswered (a typo in
#: a four-character name after its province is stripped scores 75 and is refused, rightly).
RECALL_FLOOR = 0.9


def test_normalise_takes_the_usual_variation_to_one_form():
    full, short = admin_names(["江苏省", "南京市", "玄武区", "南京"])
    same = {
        normalise(q, full, short)
        for q in ("江苏省南京市玄武区中山路169号", "南京玄武区中山路１６９號", "中山路 169 号")
    }
    assert same == {"中山路169号"}
    assert normalise("南京图书馆", full, short) == "南京图书馆"  # a name keeps its 南京
    assert normalise("华侨路二十六号小区") == "华侨路26号小区"
    assert normalise("凯润金城7号楼") == normalise("凯润金城七栋") == "凯润金城7栋"
    assert split("中山路169号3栋2单元501室") == ("中山路169号", "3栋", "2单元501室")
    assert split("某小区3-2-501") == ("某小区", "3栋", "2单元501")
    assert split("新街口#1") == ("新街口#1", "", "")  # an entrance's number is its name


@pytest.fixture(scope="module")
def gpkg(plan_dir, tmp_path_factory):
    """The demo plan in a GeoPackage store, with the demo OSM file's names imported."""
    from wangge.data.gpkg_store import GpkgStore

    st = GpkgStore(tmp_path_factory.mktemp("addr") / "s.gpkg")
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(st, plan_from_frames(layers, meta, "plan.gpkg"), "demo", None, "tests", "")
    st.addresses.replace("demo", "osm", read_osm_names_cached(), "demo.osm", "tests")
    yield st
    st.close()


_NAMES: dict = {}


def read_osm_names_cached() -> pd.DataFrame:
    from conftest import DEMO_OSM

    if "demo" not in _NAMES:
        _NAMES["demo"] = read_osm_names(DEMO_OSM)
    return _NAMES["demo"]


def test_the_labelled_set_meets_precision_and_recall(gpkg):
    v = gpkg.resolve("demo")
    lab = pd.read_csv(LABELLED, keep_default_na=False)
    assert len(lab) >= 100 and (lab["expect"] == "").sum() >= 20
    found = lookup(gpkg, v, lab["query"].tolist(), MIN_SCORE)
    want = lookup(gpkg, v, lab["expect"].replace("", "-").tolist(), 100)
    positive = (lab["expect"] != "").to_numpy()
    assert (want["status"][positive] == "matched").all(), "every expected text is indexed"
    answered = (found["status"] == "matched").to_numpy()
    right = answered & positive & (found["building_id"] == want["building_id"]).to_numpy()
    precision, recall = right.sum() / answered.sum(), right.sum() / positive.sum()
    print(f"\nlabelled set at {MIN_SCORE}: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95
    assert recall >= RECALL_FLOOR
    # every answer's units are its building's own, as the plan assigns it
    buildings = gpkg.query("demo", v.version, "buildings").frame.set_index("building_id")
    hit = found[answered]
    own = buildings.loc[hit["building_id"]]
    assert (hit["microgrid_code"].to_numpy() == own["microgrid_code"].to_numpy()).all()
    assert (hit["grid_code"].to_numpy() == own["grid_code"].to_numpy()).all()
    assert (hit["community_code"] == hit["grid_code"].str[:12]).all()
    assert found.loc[~answered, "grid_code"].isna().all()


def test_a_near_name_and_a_wrong_house_number_are_no_match(gpkg):
    v = gpkg.resolve("demo")
    found = lookup(gpkg, v, ["金陵小学", "中山路999号", "中山路178号"])
    assert found["status"].tolist() == ["no_match", "no_match", "matched"]
    assert found["score"].iloc[2] == 100


def test_a_standard_table_is_read_in_gbk_and_a_bad_row_is_named():
    text = "地址,楼栋编号,经度,纬度\n玄武区测试路8号,,118.7753,32.0433\n测试路9号,w1,,\n"
    rows = read_standard(text.encode("gbk"), "std.csv")
    assert rows["text"].tolist() == ["玄武区测试路8号", "测试路9号"]
    assert rows["row"].tolist() == [2, 3] and not rows["public"].any()
    bad = text + "测试路10号,,32.04,118.77\n测试路11号,,,\n"
    with pytest.raises(InputError) as err:
        read_standard(bad.encode("gbk"), "std.csv")
    assert err.value.source == "std.csv" and err.value.where == "row 4"
    assert "swapped" in err.value.problem and "row 5" in err.value.problem
    with pytest.raises(InputError, match="header"):
        read_standard("名称,备注\n甲,乙\n".encode(), "std.csv")


def test_the_address_table_on_each_store_replaces_a_source_whole(store):
    plan = f"addr-{uuid.uuid4().hex[:8]}"
    first = read_standard("地址,楼栋编号\n甲路1号,w1\n乙路2号,w2\n".encode(), "a.csv")
    done = store.addresses.replace(plan, "standard", first, "a.csv", "tests")
    assert (done.rows, done.replaced) == (2, 0)
    store.addresses.replace(plan, "osm", first.iloc[:1], "b.osm", "tests")
    token = store.addresses.sources(plan).set_index("source")["token"]
    again = store.addresses.replace(plan, "standard", first.iloc[:1], "a.csv", "tests")
    assert again.replaced == 2
    entries = store.addresses.entries(plan)
    assert sorted(entries["source"]) == ["osm", "standard"]
    after = store.addresses.sources(plan).set_index("source")["token"]
    assert after["osm"] == token["osm"] and after["standard"] != token["standard"]


# the API -------------------------------------------------------------------------------


@pytest.fixture(params=["gpkg", "postgis"])
def served(request, plan_dir):
    """The demo plan on each store, its OSM names imported, and an app serving it."""
    if request.param == "gpkg":
        st = request.getfixturevalue("gpkg")
        plan = "demo"
    else:
        st = request.getfixturevalue("postgis_store")
        plan = f"addr-{uuid.uuid4().hex[:8]}"
        layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
        save_plan(st, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "")
        st.addresses.replace(plan, "osm", read_osm_names_cached(), "demo.osm", "tests")
    with TestClient(create_app(Settings(plan=plan), st)) as client:
        yield st, plan, client


def test_the_api_answers_an_address_with_its_units_and_the_staff_the_caller_may_see(served):
    from wangge.data.roster import Staff

    st, plan, client = served
    admin = auth(st, "admin")
    r = client.get("/lookup/address", params={"q": "南京市中山路１６９號3栋2单元"}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "matched" and body["score"] == 100 and body["rest"] == "3栋2单元"
    grid, micro = body["grid"]["code"], body["microgrid"]["code"]
    assert micro.startswith(grid) and body["street"]["code"] == grid[:9]
    st.roster.set(plan, grid, [Staff("grid_head", "测试员", "13912345678")], "tests")
    other = "9" * 12 if not grid.startswith("9") else "1" * 12
    inside = client.get(
        "/lookup/address", params={"q": "中山路169号"}, headers=auth(st, "viewer", (grid[:12],))
    )
    outside = client.get(
        "/lookup/address", params={"q": "中山路169号"}, headers=auth(st, "viewer", (other,))
    )
    assert [p["name"] for p in inside.json()["grid"]["staff"]] == ["测试员"]
    assert outside.status_code == 200 and outside.json()["grid"]["staff"] is None
    assert client.get("/lookup/address", params={"q": "中山路169号"}).status_code == 401
    none = client.get("/lookup/address", params={"q": "北京市海淀区中关村大街1号"}, headers=admin)
    assert none.json()["status"] == "no_match" and none.json()["grid"] is None
    assert client.get("/lookup/address", params={"q": ""}, headers=admin).status_code == 422
    low = client.get("/lookup/address", params={"q": "a", "min_score": 10}, headers=admin)
    assert low.status_code == 422


def test_a_standard_address_is_withheld_outside_the_callers_territory(served):
    st, plan, client = served
    admin = auth(st, "admin")
    csv_text = "地址,楼栋编号\n测试苑5栋,w74657066\n坏行,\n"
    bad = client.post(f"/plans/{plan}/addresses", content=csv_text.encode("gbk"), headers=admin)
    assert bad.status_code == 422 and "row 3" in bad.text
    assert client.get(f"/plans/{plan}/addresses", headers=admin).json()[0]["source"] == "osm"
    planner = auth(st, "planner", ("999999",))
    good = csv_text.replace("坏行,\n", "")
    denied = client.post(f"/plans/{plan}/addresses", content=good.encode(), headers=planner)
    assert denied.status_code == 403
    done = client.post(f"/plans/{plan}/addresses", content=good.encode("gbk"), headers=admin)
    assert done.status_code == 201 and done.json()["rows"] == 1
    q = {"q": "测试苑五栋3单元"}
    seen = client.get("/lookup/address", params=q, headers=admin).json()
    assert seen["matched"] == "测试苑5栋" and seen["building_id"] == "w74657066"
    micro = seen["microgrid"]["code"]
    other = "9" * 12 if not micro.startswith("9") else "1" * 12
    hidden = client.get("/lookup/address", params=q, headers=auth(st, "viewer", (other,))).json()
    assert hidden["matched"] is None and hidden["microgrid"]["code"] == micro


def test_the_batch_takes_csv_in_gbk_and_answers_csv_or_json(served):
    st, _plan, client = served
    admin = auth(st, "admin")
    body = "id,地址\n1,金陵中学\n2,江苏美朮馆\n3,火星基地\n".encode("gbk")
    r = client.post(
        "/lookup/addresses?format=csv", content=body, headers={**admin, "content-type": "text/csv"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["status"] for x in rows] == ["matched", "matched", "no_match"]
    assert rows[0]["id"] == "1" and rows[1]["grid_code"] and not rows[2]["grid_code"]
    j = client.post(
        "/lookup/addresses", json={"addresses": [{"id": 7, "address": "金鹰A座"}]}, headers=admin
    )
    assert j.status_code == 200 and j.json()["results"][0]["building_id"] == "w74657066"
    missing = client.post(
        "/lookup/addresses", content=b"id,x\n1,2\n", headers={**admin, "content-type": "text/csv"}
    )
    assert missing.status_code == 422
    xml = client.post(
        "/lookup/addresses", content=b"<a/>", headers={**admin, "content-type": "application/xml"}
    )
    assert xml.status_code == 415


def test_the_cli_imports_a_gbk_table_and_keeps_everything_on_a_bad_row(gpkg, tmp_path):
    target = str(gpkg.url if hasattr(gpkg, "url") else "")
    assert target
    good = tmp_path / "标准地址.csv"
    good.write_bytes("地址,经度,纬度\n测试大街12号,118.7753,32.0433\n".encode("gbk"))
    res = run("addresses", "import", good, "--plan-id", "demo", "--store", target)
    assert res.returncode == 0, res.stderr
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        "地址,经度,纬度\n测试大街13号,118.7753,32.0433\n测试大街14号,abc,32\n".encode("gbk")
    )
    res = run("addresses", "import", bad, "--plan-id", "demo", "--store", target)
    assert res.returncode == 2 and "bad.csv: row 3" in res.stderr
    found = lookup(gpkg, gpkg.resolve("demo"), ["测试大街12号", "测试大街13号"])
    assert found["status"].tolist() == ["matched", "no_match"]
    assert np.isin(["standard", "osm"], gpkg.addresses.sources("demo")["source"]).all()
