"""The grid roster on both stores: set and get, replace semantics, roster files in UTF-8,
UTF-8 with BOM, GBK and XLSX, each bad row refused naming file, row and column but never
the name or phone, a file touching another's grids refused whole (403), and the table cut
to a caller's territory."""

from __future__ import annotations

import io
import traceback
import uuid

import openpyxl
import pytest
import sqlalchemy as sa

from wangge.data.roster import (
    ImportSummary,
    RosterInvalid,
    Staff,
    _withheld,
    clean_name,
    normalise_phone,
    role_key,
    roster_table,
)
from wangge.errors import Forbidden, InputError

GRID = "320102001001001"
GRID2 = "320102001001002"
MICRO = GRID + "001"
OTHER = "320102002001001"  # another community: outside the planner's territory
UNKNOWN = "320102001001009"  # in the territory, not in the plan
ID_CARD = "320102199001011234"  # 18 digits like a micro-grid code: an ID card number
KNOWN = {GRID, GRID2, MICRO, OTHER}
HEADER = ("网格编码", "职务", "姓名", "联系电话")
ROWS = [
    (GRID, "网格长", "王小明", "13912345678"),
    (GRID, "专职网格员", "李四娘", "+86 139-0000-1111"),
    (GRID, "part_time", "欧阳娜娜", "025-83331234"),
    (MICRO, "微网格长", "赵六", "13800001234"),
]
NAMES = [r[2] for r in ROWS]
PHONES = [r[3] for r in ROWS] + ["13900001111", "025-83331234"]


def covers(code: str) -> bool:
    return code.startswith("320102001001")


def plan() -> str:
    return f"p{uuid.uuid4().hex[:10]}"


def csv_bytes(rows, header=HEADER, encoding="utf-8") -> bytes:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows, header=HEADER, merge: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(header))
    for r in rows:
        sheet.append(list(r))
    if merge:
        sheet.merge_cells(merge)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def people(store, plan_id, code) -> list[tuple[str, str, str]]:
    return [(s.role, s.name, s.phone) for s in store.roster.get(plan_id, [code])[code]]


def assert_private(exc: Exception, *values: str) -> None:
    """No name or phone anywhere in the error: message, where or violations."""
    text = f"{exc} {getattr(exc, 'where', '')} {getattr(exc, 'violations', '')}"
    for value in [*NAMES, *PHONES, *values]:
        assert value not in text, f"{value!r} leaked into {text!r}"


def test_set_and_get_round_trip_normalised(store):
    p = plan()
    before = store.roster.set(
        p,
        GRID,
        [
            Staff("网格长", " 王小明 ", "+86 139 1234 5678"),
            Staff("full_time", "李四娘", "13900001111"),
            Staff("网格指导员", "欧阳娜娜", "02583331234转801"),
        ],
        by="planner1",
    )
    store.roster.set(p, MICRO, [Staff("微网格长", "赵六", "0510 8888 1234")], by="planner1")
    assert before == 0
    got = store.roster.get(p, [GRID, MICRO, GRID2])
    assert [(s.role, s.name, s.phone, s.label) for s in got[GRID]] == [
        ("grid_head", "王小明", "13912345678", "网格长"),
        ("full_time", "李四娘", "13900001111", "专职网格员"),
        ("instructor", "欧阳娜娜", "025-83331234-801", "网格指导员"),
    ]
    assert people(store, p, MICRO) == [("microgrid_head", "赵六", "0510-88881234")]
    assert got[GRID2] == []  # asked for, nobody on it
    assert store.roster.get(plan(), [GRID]) == {GRID: []}  # rosters are kept per plan
    assert "王小明" not in repr(got[GRID][0]) and "139" not in repr(got[GRID][0])


def test_set_replaces_one_code_and_an_empty_list_clears_it(store):
    p = plan()
    store.roster.set(p, GRID, [Staff("网格长", "王小明", "13912345678")], by="a")
    store.roster.set(p, GRID2, [Staff("网格长", "李四娘", "13900001111")], by="a")
    replaced = store.roster.set(
        p,
        GRID,
        [Staff("兼职网格员", "赵六", "13800001234"), Staff("兼职网格员", "钱七", "13800005678")],
        by="b",
    )
    assert replaced == 1
    assert people(store, p, GRID) == [
        ("part_time", "赵六", "13800001234"),
        ("part_time", "钱七", "13800005678"),
    ]
    assert people(store, p, GRID2) == [("grid_head", "李四娘", "13900001111")]
    assert store.roster.set(p, GRID, [], by="b") == 2
    assert people(store, p, GRID) == []
    assert people(store, p, GRID2) == [("grid_head", "李四娘", "13900001111")]
    table = store.roster.table(p)
    assert list(table["updated_by"]) == ["a"]


@pytest.mark.parametrize(
    ("code", "staff", "match"),
    [
        (GRID, [Staff("微网格长", "赵六", "13800001234")], "18-digit micro-grid"),
        (MICRO, [Staff("网格长", "王小明", "13912345678")], "15-digit grid"),
        (MICRO, [Staff("兼职网格员", "王小明", "13912345678")], "15-digit grid"),
        (
            GRID,
            [Staff("网格长", "王小明", "13912345678"), Staff("grid_head", "赵六", "13800001234")],
            "at most one 网格长",
        ),
        ("320102001001", [Staff("网格长", "王小明", "13912345678")], "15-digit grid or"),
    ],
)
def test_set_refuses_wrong_level_second_head_and_bad_code(store, code, staff, match):
    p = plan()
    store.roster.set(p, GRID, [Staff("网格指导员", "钱七", "13800005678")], by="a")
    with pytest.raises(InputError, match=match) as err:
        store.roster.set(p, code, staff, by="a")
    assert_private(err.value)
    assert people(store, p, GRID) == [("instructor", "钱七", "13800005678")]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("13912345678", "13912345678"),
        ("+86 139-1234-5678", "13912345678"),
        ("8613912345678", "13912345678"),
        ("１３９１２３４５６７８", "13912345678"),
        ("025-83331234", "025-83331234"),
        ("02583331234", "025-83331234"),
        ("(025) 8333 1234", "025-83331234"),
        ("051088881234", "0510-88881234"),
        ("010-62751234-801", "010-62751234-801"),
        ("025-83331234 转 801", "025-83331234-801"),
    ],
)
def test_phones_are_kept_in_one_form(given, kept):
    assert normalise_phone(given) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "12345678901",  # 12x is no mobile prefix
        "1391234567",  # ten digits
        "139123456789",
        "83331234",  # a landline needs its area code
        "0251-2345678",  # no 4-digit area code begins 02
        "025-03331234",  # a local number never begins with 0
        "025-833312",
        "13912345678 or 13800001234",
    ],
)
def test_bad_phones_are_refused_without_quoting_them(bad):
    with pytest.raises(InputError) as err:
        normalise_phone(bad)
    assert err.value.where == "phone"
    assert not bad or bad not in str(err.value)


def test_roles_and_names():
    assert role_key("网格长") == role_key("grid_head") == role_key(" Grid_Head ") == "grid_head"
    assert [role_key(r) for r in ("专职网格员", "兼职网格员", "网格指导员", "微网格长")] == [
        "full_time",
        "part_time",
        "instructor",
        "microgrid_head",
    ]
    with pytest.raises(InputError, match="not a staff role") as err:
        role_key("张三")
    assert "张三" not in str(err.value)
    assert clean_name("  欧阳 娜娜 ") == "欧阳 娜娜"
    for bad, match in [("", "empty"), ("名" * 41, "longer than 40"), ("王\x00明", "control")]:
        with pytest.raises(InputError, match=match):
            clean_name(bad)
    assert clean_name("名" * 40) == "名" * 40


@pytest.mark.parametrize("kind", ["utf-8", "utf-8-sig", "gbk", "xlsx"])
def test_import_csv_in_each_encoding_and_xlsx(store, kind):
    p = plan()
    store.roster.set(p, GRID, [Staff("网格长", "孙八", "13700001234")], by="a")
    store.roster.set(p, GRID2, [Staff("网格长", "周九", "13700005678")], by="a")
    rows = [*ROWS[:2], ("", "", "", ""), *ROWS[2:]]  # a blank row is skipped
    if kind == "xlsx":
        data, name = xlsx_bytes(rows), "名册.xlsx"
    else:
        data, name = csv_bytes(rows, encoding=kind), "名册.csv"
    summary = store.roster.import_file(p, data, name, KNOWN, covers, by="planner1")
    assert summary == ImportSummary(codes=(GRID, MICRO), rows=4, staff=4, replaced=1)
    assert_private(ImportSummary.__repr__(summary))  # counts and codes only
    assert people(store, p, GRID) == [
        ("grid_head", "王小明", "13912345678"),
        ("full_time", "李四娘", "13900001111"),
        ("part_time", "欧阳娜娜", "025-83331234"),
    ]
    assert people(store, p, MICRO) == [("microgrid_head", "赵六", "13800001234")]
    assert people(store, p, GRID2) == [("grid_head", "周九", "13700005678")]  # not in the file


def test_import_english_headers_explicit_encoding_and_merged_code_cells(store):
    p = plan()
    header = ("Code", "Role", "Name", "Phone", "备注")
    rows = [(*r, "note") for r in ROWS[:3]]
    summary = store.roster.import_file(
        p, csv_bytes(rows, header, "gbk"), "r.csv", KNOWN, covers, by="a", encoding="gbk"
    )
    assert summary.staff == 3 and summary.codes == (GRID,)
    gbk = csv_bytes(ROWS, header[:4], "gbk")
    with pytest.raises(InputError, match="not utf-8 text") as err:
        store.roster.import_file(p, gbk, "r.csv", KNOWN, covers, by="a", encoding="utf-8")
    assert err.value.where == "row 2"  # the first row that is not ASCII
    # a grid's code merged over its staff rows, and a phone typed as a number
    rows = [(GRID, "网格长", "王小明", 13912345678), (None, "兼职网格员", "李四娘", "13900001111")]
    data = xlsx_bytes(rows, merge="A2:A3")
    summary = store.roster.import_file(p, data, "r.xlsx", KNOWN, covers, by="a")
    assert summary.staff == 2
    assert people(store, p, GRID) == [
        ("grid_head", "王小明", "13912345678"),
        ("part_time", "李四娘", "13900001111"),
    ]


BAD_ROWS = [
    # (the row replacing data row 3, i.e. spreadsheet row 4; column; words in the error)
    ((UNKNOWN, "网格长", "钱七", "13800005678"), "网格编码", "unknown code"),
    (("3201020010", "网格长", "钱七", "13800005678"), "网格编码", "15-digit grid or"),
    (("", "网格长", "钱七", "13800005678"), "网格编码", "empty code"),
    ((GRID2, "队长", "钱七", "13800005678"), "职务", "not a staff role"),
    ((GRID2, "钱七", "网格长", "13800005678"), "职务", "not a staff role"),  # shifted
    ((GRID2, "微网格长", "钱七", "13800005678"), "职务", "18-digit micro-grid"),
    ((MICRO, "兼职网格员", "钱七", "13800005678"), "职务", "15-digit grid"),
    ((GRID, "网格长", "钱七", "13800005678"), "职务", "second 网格长"),
    ((GRID2, "网格长", "钱七", "1380000567"), "联系电话", "not a phone number"),
    ((GRID2, "网格长", "钱七", "8333-1234"), "联系电话", "not a phone number"),
    ((GRID2, "网格长", "钱七", ""), "联系电话", "empty phone"),
    ((GRID2, "网格长", "", "13800005678"), "姓名", "empty name"),
    ((GRID2, "网格长", "钱\u202e七", "13800005678"), "姓名", "control characters"),
    ((GRID2, "网格长", "钱七" * 21, "13800005678"), "姓名", "longer than 40"),
    (ROWS[1], "姓名", "repeats row 3"),
]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
@pytest.mark.parametrize(("row", "column", "words"), BAD_ROWS)
def test_each_bad_row_is_refused_naming_file_row_and_column_never_the_person(
    store, kind, row, column, words
):
    p = plan()
    store.roster.set(p, GRID, [Staff("网格长", "孙八", "13700001234")], by="a")
    rows = [ROWS[0], ROWS[1], row, ROWS[3]]
    if kind == "xlsx":
        data, name = xlsx_bytes(rows), "roster-upload.xlsx"
    else:
        data, name = csv_bytes(rows), "roster-upload.csv"
    with pytest.raises(RosterInvalid) as err:
        store.roster.import_file(p, data, name, KNOWN, covers, by="a")
    exc = err.value
    assert isinstance(exc, InputError) and exc.status_code == 422
    assert name in str(exc) and f"row 4, column {column}" in str(exc) and words in str(exc)
    assert exc.violations[0] == {
        "row": 4,
        "column": column,
        "problem": exc.violations[0]["problem"],
    }
    assert_private(exc, "钱七", "钱\u202e七", "13800005678", "1380000567", "8333-1234", UNKNOWN)
    assert people(store, p, GRID) == [("grid_head", "孙八", "13700001234")]  # nothing written
    assert people(store, p, MICRO) == []


def test_numbers_a_spreadsheet_mangled_are_explained(store):
    p = plan()
    rows = [
        (GRID, "网格长", "王小明", 2583331234),
        (float(MICRO), "微网格长", "赵六", "13800001234"),
    ]
    with pytest.raises(RosterInvalid) as err:
        store.roster.import_file(p, xlsx_bytes(rows), "r.xlsx", KNOWN, covers, by="a")
    (phone, code) = err.value.violations
    assert (phone["row"], phone["column"]) == (2, "联系电话") and "leading 0" in phone["problem"]
    assert (code["row"], code["column"]) == (3, "网格编码") and "15 digits" in code["problem"]
    rows = [("3.20102E+14", "网格长", "王小明", "13912345678")]
    with pytest.raises(RosterInvalid, match="shortened number") as err:
        store.roster.import_file(p, csv_bytes(rows), "r.csv", KNOWN, covers, by="a")
    assert err.value.where == "row 2, column 网格编码"
    assert_private(err.value, "2583331234")
    assert store.roster.table(p).empty


def test_up_to_twenty_problems_are_reported_together(store):
    p = plan()
    rows = [(GRID2, "兼职网格员", f"员{i}", "1380000") for i in range(25)]
    with pytest.raises(RosterInvalid) as err:
        store.roster.import_file(p, csv_bytes(rows), "many.csv", KNOWN, covers, by="a")
    exc = err.value
    assert len(exc.violations) == 20
    assert [v["row"] for v in exc.violations] == list(range(2, 22))
    assert {v["column"] for v in exc.violations} == {"联系电话"}
    assert "24 more" in str(exc) and exc.where == "row 2, column 联系电话"
    assert_private(exc, "1380000", *(f"员{i}" for i in range(25)))
    assert store.roster.table(p).empty


#: Unusable roster files; their ids are words, not bytes, so that every test process
#: collects the same ids (an XLSX made at import time carries the second it was zipped).
UNUSABLE = [
    (b"", "r.csv", "empty", None),
    (b"\r\n \r\n", "r.csv", "empty", None),
    (csv_bytes([]), "r.csv", "header but no rows", "row 1"),
    (csv_bytes(ROWS, HEADER[:3]), "r.csv", "missing column(s): phone", "row 1 (header)"),
    (
        csv_bytes([r[1:] for r in ROWS], HEADER[1:]),
        "r.csv",
        "missing column(s): code",
        "row 1 (header)",
    ),
    (csv_bytes(ROWS, ("编码", "职务", "姓名", "电话", "手机")), "r.csv", "two columns", None),
    (csv_bytes(ROWS), "r.pdf", ".csv or .xlsx", None),
    (b"\xd0\xcf\x11\xe0" + b"\x00" * 60, "r.xls", "old .xls", None),
    (b"not a zip at all", "r.xlsx", "not an XLSX", None),
    (xlsx_bytes(ROWS)[:300], "r.xlsx", "cannot be read as an XLSX", None),
    (xlsx_bytes(ROWS), "r.csv", "not a text CSV", None),
    (csv_bytes(ROWS) + b"\xff\xfe\xff", "r.csv", "neither UTF-8 nor GBK", "row 6"),
]


@pytest.mark.parametrize(
    ("data", "name", "words", "where"),
    UNUSABLE,
    ids=[f"{i}-{case[1]}-{case[2]}" for i, case in enumerate(UNUSABLE)],
)
def test_unusable_files_are_refused_and_nothing_is_written(store, data, name, words, where):
    p = plan()
    store.roster.set(p, GRID, [Staff("网格长", "孙八", "13700001234")], by="a")
    with pytest.raises(InputError) as err:
        store.roster.import_file(p, data, name, KNOWN, covers, by="a")
    assert words in str(err.value) and name in str(err.value)
    if where is not None:
        assert err.value.where == where
    assert_private(err.value)
    assert people(store, p, GRID) == [("grid_head", "孙八", "13700001234")]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_row_outside_the_territory_refuses_the_whole_file_with_403(store, kind):
    p = plan()
    store.roster.set(p, GRID, [Staff("网格长", "孙八", "13700001234")], by="a")
    store.roster.set(p, OTHER, [Staff("网格长", "周九", "13700005678")], by="admin")
    rows = [
        *ROWS,
        (OTHER, "网格长", "钱七", "13800005678"),
        (GRID2, "队长", "", ""),  # a 422 problem, but the 403 comes first
        (ID_CARD, "网格长", "钱七", "13800005678"),  # wrong column: never echoed
    ]
    data = xlsx_bytes(rows) if kind == "xlsx" else csv_bytes(rows)
    with pytest.raises(Forbidden) as err:
        store.roster.import_file(p, data, f"r.{kind}", KNOWN, covers, by="planner1")
    exc = err.value
    assert exc.status_code == 403 and not isinstance(exc, InputError)
    assert f"r.{kind}" in str(exc) and OTHER in str(exc) and "2 row(s)" in str(exc)
    assert exc.where == "row 6, 8, column 网格编码"
    assert_private(exc, "钱七", "13800005678", ID_CARD)
    assert people(store, p, GRID) == [("grid_head", "孙八", "13700001234")]
    assert people(store, p, OTHER) == [("grid_head", "周九", "13700005678")]
    assert people(store, p, MICRO) == []


def test_table_is_cut_to_a_territory(store):
    p = plan()
    store.roster.set(p, MICRO, [Staff("微网格长", "赵六", "13800001234")], by="a")
    store.roster.set(
        p,
        GRID,
        [Staff("网格长", "王小明", "13912345678"), Staff("兼职网格员", "李四娘", "025-83331234")],
        by="a",
    )
    store.roster.set(p, OTHER, [Staff("网格长", "周九", "13700005678")], by="admin")
    store.roster.set(plan(), GRID2, [Staff("网格长", "钱七", "13800005678")], by="a")
    whole = store.roster.table(p)
    assert list(whole.columns) == [
        "code",
        "level",
        "role",
        "role_zh",
        "name",
        "phone",
        "position",
        "updated_at",
        "updated_by",
    ]
    assert list(whole["code"]) == [GRID, GRID, MICRO, OTHER]
    assert list(whole["position"]) == [0, 1, 0, 0]
    assert list(whole["level"]) == ["grid", "grid", "microgrid", "grid"]
    assert list(whole["role_zh"]) == ["网格长", "兼职网格员", "微网格长", "网格长"]
    mine = store.roster.table(p, covers=covers)
    assert list(mine["code"]) == [GRID, GRID, MICRO] and "周九" not in set(mine["name"])
    assert store.roster.table(p, covers=lambda c: False).empty
    assert list(store.roster.table(p, covers=lambda c: False).columns) == list(whole.columns)


def test_database_errors_withhold_the_row_values(store):
    row = {
        "plan_id": plan(),
        "code": GRID,
        "position": 0,
        "role": "grid_head",
        "name": "隐私名字",
        "phone": "13911112222",
        "updated_at": "now",
        "updated_by": "a",
    }
    engine = store.roster.engine
    with pytest.raises(sa.exc.IntegrityError) as err, _withheld(), engine.begin() as conn:
        conn.execute(roster_table.insert(), [row, row])  # the same key twice
    shown = "".join(traceback.format_exception(err.value))
    assert "隐私名字" not in shown and "13911112222" not in shown
    assert "IntegrityError" in shown or "UniqueViolation" in shown
    with engine.connect() as conn:
        left = conn.execute(sa.select(roster_table).where(roster_table.c.plan_id == row["plan_id"]))
        assert left.all() == []
