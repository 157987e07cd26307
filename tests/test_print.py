"""`wangge print`: notice-board maps of the demo and of Beijing read back from their PDFs
and PNGs; the roster only with --with-roster, only what a key's account may see; a scale
bar true on the ground; labels that never overlap; bad input named, exit 2."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from cities_bounds import beijing_communities
from cities_osm import BEIJING_OSM, real_file
from clitools import run
from matplotlib.image import imread
from pypdf import PdfReader
from pyproj import CRS, Geod, Transformer
from typer.testing import CliRunner

from wangge.cli import app
from wangge.data.accounts import make_account, new_key
from wangge.data.gpkg_store import GpkgStore
from wangge.data.plan import read_plan
from wangge.data.roster import Staff
from wangge.errors import WanggeError
from wangge.maps import notice
from wangge.maps.notice import ATTRIBUTION, page_pixels, scale_bar
from wangge.printing import file_stem, print_plan, sheets

A, B = "320102001002", "320102001005"  # two demo communities; a planner's key covers A


def _print(*args) -> object:
    """``wangge print ARGS`` in this process (the console script is tried once, below)."""
    result = CliRunner().invoke(app, ["print", *map(str, args)])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def _pdf_text(path) -> str:
    reader = PdfReader(path)
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def _check_sheet(out, code: str, name: str, grid_codes: list[str], version: str) -> str:
    """The community's PDF and PNG are there and say what a notice must; its text."""
    stem = file_stem(code, name)
    pdf, png = out / f"{stem}.pdf", out / f"{stem}.png"
    text = _pdf_text(pdf)
    for must in (code, name, f"{name}网格划分公示图", ATTRIBUTION, version, *grid_codes):
        assert must in text, (stem, must)
    box = PdfReader(pdf).pages[0].mediabox
    orientation = "landscape" if box.width > box.height else "portrait"
    assert sorted([round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)]) == [
        210,
        297,
    ]  # A4
    width, height = page_pixels(orientation)
    assert imread(png).shape[:2] == (height, width)
    return text


# -- the demo, from its plan.gpkg and from a store with a roster ---------------------------


@pytest.fixture(scope="module")
def demo_store(plan_dir, tmp_path_factory):
    """The demo plan imported into a store, every grid's staff seeded, a planner of
    community A; and a second plan ``sampled`` that holds a sample-data layer."""
    d = tmp_path_factory.mktemp("print-store")
    store = d / "store.gpkg"
    st = GpkgStore(store)
    staff: dict[str, list[str]] = {}
    try:
        layers, meta = read_plan(
            plan_dir / "plan.gpkg"
        ).stored()  # saved as is: wangge import validates
        st.save("demo", {n: layers[n] for n in ("communities", "grids", "microgrids")}, meta)
        grids = st.query("demo", 1, "grids").frame
        for i, code in enumerate(sorted(grids["code"].astype(str))):
            people = [Staff("grid_head", f"赵某{i:03d}", f"139{i:08d}")]
            people.append(Staff("part_time", f"钱某{i:03d}", f"0258{i:07d}"[:12]))
            st.roster.set("demo", code, people, "seed")
            staff[code] = [s for p in people for s in (p.name, p.phone)]
        key = new_key()
        st.book.add(make_account("planner-a", "planner", [A]), key)
        layers = {n: st.query("demo", 1, n).frame for n in ("communities", "grids", "microgrids")}
        layers["risk_points"] = pd.DataFrame({"risk_id": ["r1"], "sample": [True]})
        st.save("sampled", layers, st.resolve("demo").meta)
        codes = {
            c: sorted(grids.loc[grids["code"].str.startswith(c), "code"])
            for c in st.query("demo", 1, "communities").frame["code"]
        }
        names = dict(st.query("demo", 1, "communities").frame[["code", "name"]].to_numpy())
    finally:
        st.close()
    return {"store": store, "key": key, "staff": staff, "grids": codes, "names": names, "d": d}


def test_demo_store_every_community_with_a_scoped_key(demo_store):
    """All communities of the stored demo, the roster asked for with a planner's key of
    community A: a PDF and PNG per community; A's staff on A's sheet, nobody else's
    anywhere."""
    s = demo_store
    out = s["d"] / "scoped"
    res = _print(
        "--store", s["store"], "--plan-id", "demo", "--out", out, "--with-roster", "--key", s["key"]
    )
    assert len(list(out.glob("*.pdf"))) == len(list(out.glob("*.png"))) == len(s["names"]) == 11
    mine = [x for code in s["grids"][A] for x in s["staff"][code]]
    others = [x for code, xs in s["staff"].items() if not code.startswith(A) for x in xs]
    for code, name in s["names"].items():
        text = _check_sheet(out, code, name, s["grids"][code], "version 1")
        assert "demo 第1版" in text
        assert "SAMPLE DATA" not in text  # the demo plan alone holds no sample layer
        assert not [x for x in others if x in text]
        if code == A:
            assert all(x in text for x in mine)
            assert "planner-a" in text  # whose territory the table lists
        else:
            assert not [x for x in mine if x in text]
    assert not [x for xs in s["staff"].values() for x in xs if x in res.stdout]


def test_demo_store_roster_as_holder(demo_store):
    """--with-roster and no key: the holder of the store sees every grid's staff."""
    s = demo_store
    out = s["d"] / "holder"
    _print(
        "--store", s["store"], "--plan-id", "demo", "--out", out, "--community", B, "--with-roster"
    )
    text = _check_sheet(out, B, s["names"][B], s["grids"][B], "version 1")
    assert all(x in text for code in s["grids"][B] for x in s["staff"][code])


def test_no_roster_no_names(demo_store, plan_dir):
    """Without --with-roster, no name or phone of the roster is in any byte of the PDF
    (its text or its raw stream), nor on the screen; the plan.gpkg prints the same."""
    s = demo_store
    out = s["d"] / "plain"
    res = _print("--store", s["store"], "--plan-id", "demo", "--out", out, "--community", A)
    secrets = [x for xs in s["staff"].values() for x in xs]
    pdf = out / f"{file_stem(A, s['names'][A])}.pdf"
    text = _pdf_text(pdf)
    raw = pdf.read_bytes()
    assert not [x for x in secrets if x in text or x.encode() in raw]
    assert not [x for x in secrets if x in res.stdout]
    assert "职务 Role" not in text
    version = print_plan(read_plan(plan_dir)).version
    assert version.startswith("plan.gpkg (")
    _print(plan_dir / "plan.gpkg", "--out", out / "file", "--community", A)
    _check_sheet(out / "file", A, s["names"][A], s["grids"][A], version)


def test_sample_banner(demo_store):
    s = demo_store
    out = s["d"] / "sampled"
    _print("--store", s["store"], "--plan-id", "sampled", "--out", out, "--community", A)
    text = _check_sheet(out, A, s["names"][A], s["grids"][A], "sampled 第1版")
    assert notice.SAMPLE_BANNER in text


def test_bad_input(demo_store, plan_dir):
    """Bad input names what is wrong and exits 2, with no traceback."""
    s = demo_store
    res = run("print", plan_dir, "--out", s["d"] / "bad", "--community", "320102009009")
    assert res.returncode == 2, res.stderr
    assert "no community 320102009009" in res.stderr and "320102001001" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    runner = CliRunner()
    cases = {
        ("--store", s["store"], "--plan-id", "nope"): "no plan named 'nope'",
        ("--store", s["store"], "--plan-id", "demo", "--version", "7"): "not 7",
        (plan_dir, "--with-roster"): "the roster (names and phones of the grid staff) lives in",
        (s["d"] / "missing.gpkg",): "file not found",
        (s["store"],): "a store? name it with --store",
        ("--store", s["store"], "--with-roster", "--key", "wg_nope"): "unknown, revoked",
        ("--store", s["store"], "--key", s["key"]): "add --with-roster",
        ("--store", s["store"], "--per", "street"): "--per: is community or grid",
    }
    for args, words in cases.items():
        res = runner.invoke(app, ["print", *map(str, args), "--out", str(s["d"] / "bad")])
        assert res.exit_code == 2, (args, res.stdout, res.exception)
        assert words in " ".join(res.stderr.split()), (args, res.stderr)
    assert not list((s["d"] / "bad").glob("*"))


# -- Beijing: a second real city, its communities given with names -------------------------


@pytest.fixture(scope="module")
def beijing_plan(tmp_path_factory):
    """Beijing around CAU delineated by `wangge delineate` inside six named communities."""
    d = tmp_path_factory.mktemp("print-bj")
    given = beijing_communities(real_file(BEIJING_OSM), d / "communities.geojson")
    res = run("delineate", BEIJING_OSM, "--communities", given, "--out", d, "--seed", 3)
    assert res.returncode == 0, res.stderr
    return d


def test_beijing_every_community(beijing_plan):
    out = beijing_plan / "print"
    _print(beijing_plan, "--out", out)
    communities = gpd.read_file(beijing_plan / "plan.gpkg", layer="communities")
    grids = gpd.read_file(beijing_plan / "plan.gpkg", layer="grids")
    version = print_plan(read_plan(beijing_plan)).version
    assert len(list(out.glob("*.pdf"))) == len(communities) == 6
    for code, name in communities[["code", "name"]].to_numpy():
        assert name.endswith("社区")  # the given names, not made-up ones
        codes = sorted(grids.loc[grids["code"].str.startswith(code), "code"])
        assert codes
        text = _check_sheet(out, code, name, codes, version)
        assert f"{name}网格划分公示图" in text


def test_beijing_per_grid(beijing_plan):
    """--per grid adds a sheet per grid, listing every micro-grid code."""
    code = "110108002002"
    out = beijing_plan / "per-grid"
    _print(beijing_plan, "--out", out, "--community", code, "--per", "grid")
    grids = gpd.read_file(beijing_plan / "plan.gpkg", layer="grids")
    micro = gpd.read_file(beijing_plan / "plan.gpkg", layer="microgrids")
    mine = grids[grids["code"].str.startswith(code)]
    assert len(list(out.glob("*.pdf"))) == 1 + len(mine)
    for grid, name in mine[["code", "name"]].to_numpy():
        text = _pdf_text(out / f"{file_stem(grid, name)}.pdf")
        assert f"{name}微网格划分公示图" in text
        assert all(m in text for m in micro.loc[micro["code"].str.startswith(grid), "code"])


# -- the parts: scale bar, labels, font -----------------------------------------------------

_GEOD = Geod(ellps="WGS84")


def _ground(bar, crs) -> float:
    to_ll = Transformer.from_crs(CRS.from_user_input(crs), 4326, always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_ll.transform(
        [bar.start[0], bar.end[0]], [bar.start[1], bar.end[1]]
    )
    return _GEOD.inv(lon0, lat0, lon1, lat1)[2]


def _metres(label: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+) (m|km)", label).groups()
    return float(number) * (1000 if unit == "km" else 1)


@pytest.mark.parametrize(
    ("crs", "lon", "lat", "width_m"),
    [
        ("EPSG:4549", 118.78, 32.04, 2_400),  # the demo's zone, near its central meridian
        ("EPSG:4548", 116.35, 40.00, 900),  # Beijing
        ("EPSG:4549", 121.4, 31.2, 30_000),  # 1.4° off the central meridian
        ("EPSG:3857", 116.35, 40.00, 5_000),  # Web Mercator: 1.3 map metres to a metre
    ],
)
def test_scale_bar_is_true_on_the_ground(crs, lon, lat, width_m):
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    k = 1.31 if crs == "EPSG:3857" else 1.0
    xlim = (x - k * width_m / 2, x + k * width_m / 2)
    bar = scale_bar(CRS.from_user_input(crs), xlim, (y - k * width_m / 3, y + k * width_m / 3), 8)
    length = _metres(bar.label)
    assert length == bar.length_m
    mantissa = length / 10 ** np.floor(np.log10(length))
    assert mantissa in (1, 2, 5)
    assert width_m / 10 < length <= width_m / 4 * 1.02
    assert abs(_ground(bar, crs) - length) / length < 0.02
    assert abs(bar.ratio - width_m / (8 * 0.0254)) / bar.ratio < 0.05


@pytest.fixture(scope="module")
def drawn(beijing_plan):
    """Sheets of Beijing drawn (not written): a community's, and the widest and the
    tallest of all its community and grid sheets (chosen by shape, not by code: a
    partition that moves a grid does not take the tall one away)."""
    plan = print_plan(read_plan(beijing_plan))
    every = sheets(plan, per_grid=True)

    def tallness(sheet) -> float:
        x0, y0, x1, y1 = sheet.boundary.bounds
        return (y1 - y0) / max(x1 - x0, 1e-9)

    every.sort(key=tallness)
    community = sheets(plan, "110108001002")[0]
    chosen = [community, *(s for s in (every[0], every[-1]) if s.code != community.code)]
    return plan, chosen, [notice.draw_sheet(sheet) for sheet in chosen]


def test_drawn_scale_bar_and_labels(drawn):
    plan, chosen, results = drawn
    for sheet, done in zip(chosen, results, strict=True):
        assert abs(_ground(done.scale, plan.crs) - done.scale.length_m) / done.scale.length_m < 0.02
        boxes = [label.box for label in done.labels if label.box is not None]
        assert len(done.labels) == len(sheet.parts)
        for i, a in enumerate(boxes):
            assert not [b for b in boxes[i + 1 :] if a.overlaps(b)], sheet.code
        assert sum(label.box is None for label in done.labels) <= len(sheet.parts) // 4
    assert {d.orientation for d in results} == {"landscape", "portrait"}


def test_missing_font_is_named(tmp_path):
    with pytest.raises(WanggeError, match="fonts-wqy-microhei") as caught:
        notice.cjk_font((tmp_path / "none.ttc",))
    assert "none.ttc" in caught.value.message
    assert notice.cjk_font() in notice.FONT_FILES  # and here one is installed


def test_a_character_outside_the_cut_font_still_prints(drawn, tmp_path):
    """Each run prints with a font cut to its text; a character outside the cut comes from
    the full CJK font, never a missing-glyph box."""
    import warnings

    _, chosen, _ = drawn
    sheet = chosen[0]
    sheet = notice.Sheet(**{**vars(sheet), "name": "龘靐社区"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a glyph no font has
        notice.draw_sheet(sheet, pdf=tmp_path / "rare.pdf", family=notice.notice_font([]))
    reader = PdfReader(tmp_path / "rare.pdf")
    assert "龘靐社区网格划分公示图" in reader.pages[0].extract_text()
    fonts = [f.get_object()["/BaseFont"] for f in reader.pages[0]["/Resources"]["/Font"].values()]
    assert any("WenQuanYi" in f for f in fonts) and any("WanggeNotice" in f for f in fonts)


def test_whose_staff_each_sheet_lists(drawn):
    """A community's sheet lists its grids' people; a grid's sheet the grid's own people
    and its micro-grids' heads."""
    from wangge.printing import roster_rows

    plan, _, _ = drawn
    grid, micro = "110108001002004", "110108001002004001"
    table = pd.DataFrame(
        [
            (grid, "网格长", "甲", "13900000001"),
            (micro, "微网格长", "乙", "13900000002"),
            ("110108001001001", "网格长", "丙", "13900000003"),
        ],
        columns=["code", "role_zh", "name", "phone"],
    )
    chosen = sheets(plan, "110108001002", per_grid=True, staff=roster_rows(table))
    by_code = {s.code: s.staff for s in chosen}
    assert by_code["110108001002"] == [tuple(table.iloc[0])]
    assert by_code[grid] == [tuple(table.iloc[0]), tuple(table.iloc[1])]
    assert by_code["110108001002001"] == []
