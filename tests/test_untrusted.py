"""Untrusted files (XLSX, zips, GeoPackages, Shapefiles) are checked for size and expansion
before any parser opens them (wangge.data.untrusted), and every reader of a user's file
calls the check. Every file, the zip bombs included, is built here at test time: a
shared-strings part of many MB of repeated text compresses to a few KB."""

from __future__ import annotations

import io
import sqlite3
import struct
import zipfile

import geopandas as gpd
import openpyxl
import pytest
import shapely

from wangge.data import untrusted
from wangge.errors import InputError, TooLarge

MB = 1024 * 1024
SHARED_STRINGS_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


def workbook(rows: list[list]) -> bytes:
    """An XLSX of ``rows`` as openpyxl writes it (inline strings, no shared strings)."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def roster_rows(n: int, code: str = "320102001001001") -> list[list]:
    return [["编码", "职务", "姓名", "电话"]] + [
        [code, "兼职网格员", f"员{i}", f"1391234{i:04d}"] for i in range(n)
    ]


def bomb(rows: list[list], mb: int = 64) -> bytes:
    """A real workbook of ``rows`` with a shared-strings part of ``mb`` MB of one short
    string repeated (as the attack had it: openpyxl builds an object for each)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(workbook(rows))) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", SHARED_STRINGS_TYPE + b"</Types>")
            dst.writestr(info.filename, data)
        unit = b"<si><t>wangge</t></si>"
        body = unit * (mb * MB // len(unit))
        sst = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        dst.writestr("xl/sharedStrings.xml", sst + body + b"</sst>")
    return out.getvalue()


def test_a_zip_bomb_workbook_is_refused_before_openpyxl_naming_the_part_and_limit():
    data = bomb(roster_rows(2))
    assert len(data) < 200_000  # 64 MB of XML in a few dozen KB
    with pytest.raises(TooLarge) as exc:
        untrusted.check_bytes(data, "roster.xlsx")
    text = str(exc.value)
    assert "roster.xlsx" in text and "xl/sharedStrings.xml" in text
    assert f"at most {untrusted.RATIO:g} times" in text and exc.value.status_code == 413
    # under the ratio but over the workbook's expanded size: refused by the sum
    with pytest.raises(TooLarge, match=r"expand to .* the limit is 8.0 MB"):
        untrusted.check_bytes(data, "roster.xlsx", untrusted.Limits(xlsx_bytes=8 * MB, ratio=1e6))


def test_a_workbook_within_the_limits_passes_and_its_cells_and_rows_are_counted():
    data = workbook(roster_rows(50))
    untrusted.check_bytes(data, "roster.xlsx")  # within every default
    cells = 51 * 4
    untrusted.check_bytes(data, "roster.xlsx", untrusted.Limits(cells=cells))
    with pytest.raises(TooLarge, match=rf"over {cells - 1:,} cells"):
        untrusted.check_bytes(data, "roster.xlsx", untrusted.Limits(cells=cells - 1))
    untrusted.check_bytes(data, "roster.xlsx", untrusted.Limits(rows=51))
    with pytest.raises(TooLarge, match=r"holds 51 rows; the limit is 50 .SETTING") as exc:
        untrusted.check_bytes(data, "roster.xlsx", untrusted.Limits(rows=50, setting="SETTING"))
    assert exc.value.where == "xl/worksheets/sheet1.xml"


def test_a_sheet_whose_dimension_claims_more_rows_than_allowed_is_refused():
    """The ``<dimension>`` a sheet declares counts, as its ``<row>`` elements do."""
    src = zipfile.ZipFile(io.BytesIO(workbook(roster_rows(3))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:D4"', b'<dimension ref="A1:D2000000"')
                assert b"D2000000" in data
            dst.writestr(info.filename, data)
    with pytest.raises(TooLarge, match=r"2,000,000 rows"):
        untrusted.check_bytes(out.getvalue(), "big.xlsx")


def test_a_workbook_declaring_entities_is_refused():
    src = zipfile.ZipFile(io.BytesIO(workbook(roster_rows(1))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/workbook.xml":
                data = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + data
            dst.writestr(info.filename, data)
    with pytest.raises(InputError, match=r"DTD or entities"):
        untrusted.check_bytes(out.getvalue(), "laughs.xlsx")


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_zips_are_held_to_their_members_sizes_and_declared_sizes():
    many = _zip({f"f{i}.txt": b"x" for i in range(30)})
    untrusted.check_bytes(many, "many.zip", untrusted.Limits(members=30))
    with pytest.raises(TooLarge, match=r"holds 30 files; a zip may hold at most 29"):
        untrusted.check_bytes(many, "many.zip", untrusted.Limits(members=29))
    big = _zip({"a.dbf": b" " * (3 * MB)})
    with pytest.raises(TooLarge, match=r"expands to 3.0 MB; the limit is 2.0 MB"):
        untrusted.check_bytes(big, "big.zip", untrusted.Limits(expanded_bytes=2 * MB))
    # a member that expands to more than it declares: zipfile stops at the declared size
    # and the checksum fails, so GDAL never reads past it
    honest = _zip({"a.shp": b"\x00" * 100_000})
    lying = bytearray(honest)
    local = lying.index(b"PK\x03\x04")
    central = lying.index(b"PK\x01\x02")
    assert struct.unpack("<I", lying[local + 22 : local + 26])[0] == 100_000
    lying[local + 22 : local + 26] = struct.pack("<I", 1000)
    lying[central + 24 : central + 28] = struct.pack("<I", 1000)
    with pytest.raises(InputError, match=r"does not expand to its declared size"):
        untrusted.check_bytes(bytes(lying), "lying.zip")
    with pytest.raises(InputError, match=r"not a readable zip"):
        untrusted.check_bytes(honest[:200], "cut.zip")


@pytest.fixture(scope="module")
def squares() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [f"32010200100100{i}" for i in range(5)], "name": ["甲"] * 5},
        geometry=[
            shapely.box(118.78 + i * 0.001, 32.04, 118.781 + i * 0.001, 32.041) for i in range(5)
        ],
        crs=4326,
    )


def test_geopackages_header_views_and_features(tmp_path, squares):
    path = tmp_path / "grids.gpkg"
    squares.to_file(path, layer="grids", engine="pyogrio")
    assert untrusted.check_geopackage(path) == {"grids": 5}
    assert untrusted.check_geopackage_bytes(path.read_bytes(), "upload") == {"grids": 5}
    with pytest.raises(TooLarge, match=r"over 4 features .at grids.; the limit is 4 .X"):
        untrusted.check_bytes(
            path.read_bytes(), "up.gpkg", untrusted.Limits(features=4, setting="X")
        )
    # cut short: the header claims pages the file does not have
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes(path.read_bytes()[: 2 * 4096])
    with pytest.raises(
        InputError, match=r"claims \d+ pages of 4,096 bytes but is 8,192 bytes .truncated"
    ):
        untrusted.check_file(cut)
    # a layer that is a view would be computed by GDAL as it reads: refused
    viewed = tmp_path / "viewed.gpkg"
    viewed.write_bytes(path.read_bytes())
    with sqlite3.connect(viewed) as conn:
        conn.execute("CREATE VIEW endless AS SELECT * FROM grids")
    with pytest.raises(InputError, match=r"holds SQL views .endless."):
        untrusted.check_file(viewed, "viewed.gpkg")
    # GDAL's own count (readers size their arrays by it) above the rows held
    lying = tmp_path / "lying.gpkg"
    lying.write_bytes(path.read_bytes())
    with sqlite3.connect(lying) as conn:
        conn.execute("UPDATE gpkg_ogr_contents SET feature_count = 10000000000")
    with pytest.raises(InputError, match=r"says layer grids holds 10,000,000,000"):
        untrusted.check_file(lying)


def test_shapefile_dbf_headers_are_checked_on_disk_and_in_a_zip(tmp_path, squares):
    shp = tmp_path / "grids.shp"
    squares.to_file(shp, engine="pyogrio")
    untrusted.check_file(shp)
    with pytest.raises(TooLarge, match=r"the .dbf holds 5 records; the limit is 4"):
        untrusted.check_shapefile(shp, limits=untrusted.Limits(features=4))
    dbf = tmp_path / "grids.dbf"
    data = bytearray(dbf.read_bytes())
    data[4:8] = struct.pack("<I", 5_000_000)  # claims far more records than it holds
    dbf.write_bytes(bytes(data))
    with pytest.raises(
        InputError, match=r"5,000,000 records of \d+ bytes but is 903 bytes .truncated"
    ):
        untrusted.check_file(shp)
    zipped = _zip({p.name: p.read_bytes() for p in tmp_path.glob("grids.*")})
    with pytest.raises(InputError, match=r"grids.zip \(grids.dbf\).*5,000,000 records"):
        untrusted.check_bytes(zipped, "grids.zip")


# every reader of a user's file calls the check ------------------------------------------


def test_every_reader_of_user_files_refuses_a_zip_bomb(tmp_path):
    from wangge.data.existing import read_grids
    from wangge.data.registers import read_vulnerable
    from wangge.data.roster import _Sheet
    from wangge.data.userfiles import read_households, read_table, read_vector

    book = tmp_path / "bomb.xlsx"
    book.write_bytes(bomb([["lon", "lat", "户数"], [118.78, 32.04, 3]], mb=16))
    with pytest.raises(TooLarge, match=r"bomb.xlsx: xl/sharedStrings.xml expands"):
        read_table(book)
    with pytest.raises(TooLarge, match=r"expands"):
        read_households(book, gpd.GeoDataFrame(geometry=[], crs=4549))
    with pytest.raises(TooLarge, match=r"expands"):  # its header check opened openpyxl first
        read_vulnerable(book, gpd.GeoDataFrame({"building_id": []}, geometry=[], crs=4549))
    with pytest.raises(TooLarge, match=r"expands"):
        _Sheet.read(book.read_bytes(), "roster.xlsx", None)
    zipped = tmp_path / "grids.zip"
    zipped.write_bytes(_zip({"grids.shp": b"\x00" * 100, "grids.dbf": b" " * (40 * MB)}))
    with pytest.raises(TooLarge, match=r"grids.dbf expands"):
        read_vector(zipped)
    with pytest.raises(TooLarge, match=r"grids.dbf expands"):
        read_grids(zipped)


def test_a_plan_geopackage_with_a_view_is_refused_by_the_plan_reader(tmp_path, squares):
    from wangge.data.plan import read_plan

    path = tmp_path / "plan.gpkg"
    squares.to_file(path, layer="grids", engine="pyogrio")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW streets AS SELECT * FROM grids")
    with pytest.raises(InputError, match=r"holds SQL views"):
        read_plan(path, required=())


def test_a_file_checked_once_is_not_read_again_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "ok.zip"
    path.write_bytes(_zip({"a.txt": b"a"}))
    calls = []
    real = untrusted.check_zip_file
    monkeypatch.setattr(
        untrusted, "check_zip_file", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    untrusted.check_file(path)
    untrusted.check_file(path)
    assert len(calls) == 1
    path.write_bytes(_zip({"a.txt": b"ab"}))
    untrusted.check_file(path)
    assert len(calls) == 2


def test_bombs_are_refused_within_a_bounded_amount_of_reading(monkeypatch):
    """The check reads no member of a refused bomb: what it refuses it refuses from the
    central directory alone (the declared sizes), however large the expansion."""
    data = bomb(roster_rows(1), mb=200)
    opened = []
    real = zipfile.ZipFile.open

    def counting(self, name, *args, **kwargs):
        opened.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", counting)
    with pytest.raises(TooLarge):
        untrusted.check_bytes(data, "big.xlsx")
    assert opened == []
