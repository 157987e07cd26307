"""The grid roster (网格人员名册): who runs each grid and micro-grid of a plan.

Each grid (15-digit code) has its 网格长, 专职网格员, 兼职网格员 and 网格指导员, and each
micro-grid (18-digit code) its 微网格长; roles are taken in Chinese or by their English
key. A grid may carry any number of each grid role (several 兼职网格员, two 指导员) but at
most one 网格长, and a micro-grid at most one 微网格长. The roster is kept per plan and
code, so it outlives plan versions that keep their codes. Names and phones are personal
data: this module never logs them, ``repr`` of a :class:`Staff` leaves them out, and no
error it raises quotes a cell, save a code of the plan (an unknown 18-digit "code" may
be an ID card number). A roster file (CSV in UTF-8 or GBK, or XLSX) is checked whole
before anything is written, and then replaces the staff of every code it names in one
transaction. Storage goes through SQLAlchemy Core on the store's own engine
(:attr:`wangge.data.store.Store.roster`), like the accounts.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from wangge.data import untrusted
from wangge.data.accounts import append_audit
from wangge.data.store import check_plan_id
from wangge.errors import Forbidden, InputError, TooLarge

#: Staff roles: English key, Chinese label and the level of the code they belong on.
ROLES = {
    "grid_head": ("网格长", "grid"),
    "full_time": ("专职网格员", "grid"),
    "part_time": ("兼职网格员", "grid"),
    "instructor": ("网格指导员", "grid"),
    "microgrid_head": ("微网格长", "microgrid"),
}
#: Code length of each level a role belongs on.
CODE_LENGTHS = {"grid": 15, "microgrid": 18}
#: Roles a code holds at most one of.
SINGLE_ROLES = ("grid_head", "microgrid_head")
#: Accepted column headers (compared lower-cased, without spaces or '*') for each field.
COLUMNS = {
    "code": ("code", "编码", "网格编码", "微网格编码", "代码"),
    "role": ("role", "职务", "岗位", "角色"),
    "name": ("name", "姓名"),
    "phone": ("phone", "电话", "联系电话", "手机", "手机号", "手机号码", "mobile"),
}
MAX_NAME = 40
#: Problems reported in one error, first ones first.
MAX_PROBLEMS = 20

_BY_LABEL = {label: key for key, (label, _) in ROLES.items()}
_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
_EXTENSION = re.compile(r"(.+?)(?:转|分机|ext\.?|x|#)(\d{1,6})", re.IGNORECASE)
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e\+?\d+", re.IGNORECASE)


# the rules --------------------------------------------------------------------------------
def role_key(role: str) -> str:
    """The English key of a role given by key or Chinese label (``"网格长"`` → ``"grid_head"``).

    Raises
    ------
    InputError
        For any other text (which it does not quote: a shifted column may hold a name).
    """
    text = unicodedata.normalize("NFKC", str(role or "")).strip()
    if text.lower() in ROLES:
        return text.lower()
    if text in _BY_LABEL:
        return _BY_LABEL[text]
    accepted = ", ".join(f"{label} ({key})" for key, (label, _) in ROLES.items())
    raise InputError(
        f"{'empty role' if not text else 'not a staff role'}; roles are {accepted}", where="role"
    )


def clean_name(name: str) -> str:
    """A person's name, trimmed: 1–:data:`MAX_NAME` characters, no control characters.

    Raises
    ------
    InputError
        An empty, overlong or control-character name (never quoting it).
    """
    text = str(name or "").strip()
    if not text:
        raise InputError("empty name", where="name")
    if len(text) > MAX_NAME:
        raise InputError(f"name is longer than {MAX_NAME} characters", where="name")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise InputError("name holds control characters", where="name")
    return text


def normalise_phone(phone: str) -> str:
    """A Chinese mobile or landline number in one written form.

    A mobile is ``1[3-9]`` and nine digits, optionally after +86, 86 or 0086, and is kept
    as its 11 digits. A landline is an area code and a 7–8 digit number (not starting with
    0 or 1), optionally with an extension (``-801``, ``转801``, ``ext 801``, ``#801``), and is
    kept as ``025-83331234`` or ``025-83331234-801``. Written without a separator, the area
    code is split off by the national plan: 010 and 02x have three digits, every other
    area code four. Full-width digits, spaces, dashes and brackets are accepted.

    Raises
    ------
    InputError
        For anything else (never quoting the value).
    """
    text = unicodedata.normalize("NFKC", str(phone or "")).strip()
    if not text:
        raise InputError("empty phone", where="phone")
    compact = re.sub(r"[\s\-()]", "", text)
    mobile = _MOBILE.fullmatch(compact)
    if mobile:
        return mobile.group(1)
    landline = _landline(text)
    if landline:
        return landline
    raise InputError(
        "not a phone number: expected a mobile (1[3-9] and 9 digits, +86 allowed) or a "
        "landline with its area code (like 0571-8xxxxxxx, an extension after '-' or 转)",
        where="phone",
    )


def _landline(text: str) -> str | None:
    extension = ""
    ext = _EXTENSION.fullmatch(re.sub(r"\s", "", text))
    if ext:
        text, extension = ext.group(1), ext.group(2)
    groups = [g for g in re.split(r"[\s\-()]+", text) if g]
    if not groups or not all(g.isascii() and g.isdigit() for g in groups):
        return None
    readings = [(groups, extension)]
    if not extension and len(groups) > 1 and len(groups[-1]) <= 6:
        readings.append((groups[:-1], groups[-1]))  # 025-83331234-801
    for main, extension in readings:
        number = _area_number(main)
        if number:
            return number + (f"-{extension}" if extension else "")
    return None


def _area_number(groups: list[str]) -> str | None:
    """``025-83331234`` from digit groups, the area code split off by the national plan."""
    digits = "".join(groups)
    if len(digits) < 3 or digits[0] != "0":
        return None
    area = 3 if digits[1] in "12" else 4
    number = digits[area:]
    if len(groups) > 1 and len(groups[0]) != area:
        return None  # written with an area code the national plan does not have
    if not 7 <= len(number) <= 8 or number[0] in "01":
        return None
    return f"{digits[:area]}-{number}"


def code_level(code: str) -> str:
    """``"grid"`` for a 15-digit code, ``"microgrid"`` for an 18-digit one.

    Raises
    ------
    InputError
        For any other code.
    """
    text = str(code)
    for level, length in CODE_LENGTHS.items():
        if len(text) == length and text.isascii() and text.isdigit():
            return level
    raise InputError(
        "a roster code is a 15-digit grid or an 18-digit micro-grid code", where=f"code {code!r}"
    )


def _wrong_level(code: str, role: str) -> str | None:
    label, level = ROLES[role]
    if code_level(code) == level:
        return None
    want = "an 18-digit micro-grid code" if level == "microgrid" else "a 15-digit grid code"
    return f"a {label} ({role}) belongs on {want}, not on {code}"


@dataclass(frozen=True)
class Staff:
    """One person on a grid's roster: a role (key or Chinese label), a name and a phone.

    The fields are checked and normalised on construction (:func:`role_key`,
    :func:`clean_name`, :func:`normalise_phone`), so a Staff always holds the role's key
    and the phone in its one written form. ``repr`` shows the role only.

    Raises
    ------
    InputError
        Naming the field at fault, never its value.
    """

    role: str
    name: str = field(repr=False)
    phone: str = field(repr=False)

    def __post_init__(self):
        object.__setattr__(self, "role", role_key(self.role))
        object.__setattr__(self, "name", clean_name(self.name))
        object.__setattr__(self, "phone", normalise_phone(self.phone))

    @classmethod
    def _stored(cls, role: str, name: str, phone: str) -> Staff:
        """A Staff as stored, without checking it again (the rules may have grown since)."""
        person = object.__new__(cls)
        for attr, value in (("role", role), ("name", name), ("phone", phone)):
            object.__setattr__(person, attr, value)
        return person

    @property
    def label(self) -> str:
        """The role's Chinese label (``网格长``)."""
        return ROLES[self.role][0]


@dataclass(frozen=True)
class ImportSummary:
    """What a roster file changed, without a name or phone in it (fit for the audit log).

    ``codes`` are the grids and micro-grids whose staff the file replaced, ``rows`` the
    data rows read (blank ones skipped), ``staff`` the people now on those codes and
    ``replaced`` how many were on them before.
    """

    codes: tuple[str, ...]
    rows: int
    staff: int
    replaced: int


class RosterInvalid(InputError):
    """A roster file with problems; ``violations`` lists the first
    :data:`MAX_PROBLEMS` as ``{"row", "column", "problem"}`` (no cell values)."""

    def __init__(self, problem: str, violations: list[dict], source: str, where: str):
        super().__init__(problem, source, where)
        self.violations = violations


# storage: one implementation for both stores, through SQLAlchemy Core ---------------------
_meta = sa.MetaData()
roster_table = sa.Table(
    "wg_roster",
    _meta,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),  # order on the code's roster, from 0
    sa.Column("role", sa.Text, nullable=False),  # a key of ROLES
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("phone", sa.Text, nullable=False),  # normalise_phone's form
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)
#: Advisory lock keys on PostgreSQL: table creation (shared with the accounts), and the
#: class of the per-plan lock that serialises writers of one plan's roster.
_DDL_LOCK = 20261130
_WRITE_LOCK = 20261201
_CHUNK = 500


class Roster:
    """The staff of every plan's grids and micro-grids, in one table of a store.

    Callers check the caller's territory (``covers``) before :meth:`set`; :meth:`import_file`
    takes it as an argument because a file names many codes.
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})"))
            _meta.create_all(conn)

    def set(
        self, plan_id: str, code: str, staff: list[Staff], by: str, audit: dict | None = None
    ) -> int:
        """Replace the staff of one grid or micro-grid (an empty list clears it).

        Parameters
        ----------
        plan_id
            The plan the roster belongs to.
        code
            A 15-digit grid or 18-digit micro-grid code.
        staff
            The people, in the order they are listed.
        by
            The account making the change.
        audit
            Its audit log entry (:func:`wangge.data.accounts.audit_entry`, no names or
            phones), appended in the same transaction.

        Returns
        -------
        int
            How many people were on the code before.

        Raises
        ------
        InputError
            A bad code, a role on the wrong level, or a second 网格长 / 微网格长.
        """
        check_plan_id(plan_id)
        code = str(code)
        code_level(code)
        for person in staff:
            if not isinstance(person, Staff):
                raise InputError("staff must be Staff entries", where=f"code {code}")
            problem = _wrong_level(code, person.role)
            if problem:
                raise InputError(problem, where=f"code {code}")
        for role in SINGLE_ROLES:
            if sum(p.role == role for p in staff) > 1:
                raise InputError(
                    f"a code has at most one {ROLES[role][0]} ({role})", where=f"code {code}"
                )
        return self._replace(plan_id, {code: list(staff)}, by, audit)

    def get(self, plan_id: str, codes: Iterable[str]) -> dict[str, list[Staff]]:
        """The staff of each code asked for, in roster order ([] where there is none)."""
        wanted = list(dict.fromkeys(map(str, codes)))
        out: dict[str, list[Staff]] = {c: [] for c in wanted}
        t = roster_table
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = conn.execute(
                    sa.select(t.c.code, t.c.role, t.c.name, t.c.phone)
                    .where(t.c.plan_id == plan_id, t.c.code.in_(wanted[start : start + _CHUNK]))
                    .order_by(t.c.code, t.c.position)
                )
                for row in rows:
                    out[row.code].append(Staff._stored(row.role, row.name, row.phone))
        return out

    def table(self, plan_id: str, covers: Callable[[str], bool] | None = None) -> pd.DataFrame:
        """The plan's roster, one row per person, by code and roster order.

        Parameters
        ----------
        plan_id
            The plan.
        covers
            If given, only codes for which ``covers(code)`` is true (a caller's territory).

        Returns
        -------
        pandas.DataFrame
            ``code``, ``level`` (grid or microgrid), ``role``, ``role_zh``, ``name``,
            ``phone``, ``position``, ``updated_at`` and ``updated_by``.
        """
        t = roster_table
        stmt = sa.select(t).where(t.c.plan_id == plan_id).order_by(t.c.code, t.c.position)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        if covers is not None:
            rows = [r for r in rows if covers(r["code"])]
        columns = ["code", "level", "role", "role_zh", "name", "phone", "position"]
        columns += ["updated_at", "updated_by"]
        for r in rows:
            r["level"] = code_level(r["code"])
            r["role_zh"] = ROLES[r["role"]][0]
        return pd.DataFrame(rows, columns=columns)

    def import_file(
        self,
        plan_id: str,
        data: bytes,
        filename: str,
        known_codes: set[str],
        covers: Callable[[str], bool],
        by: str,
        encoding: str | None = None,
        audit: dict | None = None,
        most_rows: int | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> ImportSummary:
        """Replace the staff of every code a roster file names, all or nothing.

        The file is a CSV (UTF-8 with or without BOM, or GBK) or an XLSX workbook (its
        first sheet; merged cells count for every cell they cover), with a header row
        naming the columns :data:`COLUMNS` lists; other columns are ignored, blank rows
        skipped. Every row is checked before anything is written.

        Parameters
        ----------
        plan_id
            The plan the roster belongs to.
        data, filename
            The file's bytes and name (``.csv``, ``.txt`` or ``.xlsx``).
        known_codes
            The plan's grid and micro-grid codes; any other code is refused.
        covers
            The caller's territory: a code it does not cover refuses the whole file.
        by
            The account making the change.
        encoding
            A CSV's text encoding; by default UTF-8, else GBK (GB18030).
        audit
            The import's audit log entry; the codes replaced are added to its detail.
        most_rows
            Refuse (413) a file of more data rows than this (a workbook's rows are
            counted before it is opened, data/untrusted.py).
        before_write
            Called once the file is read and checked, just before the write (the API's
            time cap: it raises when the caller was answered 413 already).

        Returns
        -------
        ImportSummary
            The codes replaced and the counts (no names or phones).

        Raises
        ------
        Forbidden
            (403) When a row names a code outside ``covers``; nothing is written.
        RosterInvalid
            (an InputError, 422) Naming the file, the first bad row (the header is row 1)
            and column, with up to :data:`MAX_PROBLEMS` problems in ``violations``.
        InputError
            (422) For the file as a whole: empty, unreadable, of another type, or missing
            a column (naming the header row).
        """
        check_plan_id(plan_id)
        sheet = _Sheet.read(data, filename, encoding, most_rows)
        if most_rows is not None and len(sheet.rows) > most_rows:
            raise TooLarge(
                f"{len(sheet.rows):,} rows; a roster upload holds at most {most_rows:,}",
                filename,
                where="body",
            )
        parsed = sheet.staff(known_codes, covers)
        if audit is not None:
            detail = {**json.loads(audit["detail"]), "codes": sorted(parsed)}
            audit = {**audit, "detail": json.dumps(detail, ensure_ascii=False)}
        if before_write is not None:
            before_write()
        replaced = self._replace(plan_id, parsed, by, audit)
        return ImportSummary(
            codes=tuple(sorted(parsed)),
            rows=len(sheet.rows),
            staff=sum(len(s) for s in parsed.values()),
            replaced=replaced,
        )

    def _replace(
        self, plan_id: str, staff: dict[str, list[Staff]], by: str, audit: dict | None = None
    ) -> int:
        """Replace the staff of each code in one transaction; how many were there before."""
        t = roster_table
        at = datetime.now(UTC).isoformat(timespec="seconds")
        values = [
            {
                "plan_id": plan_id,
                "code": code,
                "position": i,
                "role": p.role,
                "name": p.name,
                "phone": p.phone,
                "updated_at": at,
                "updated_by": by,
            }
            for code, people in staff.items()
            for i, p in enumerate(people)
        ]
        codes = list(staff)
        replaced = 0
        with _withheld(), self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k, hashtext(:p))"),
                    {"k": _WRITE_LOCK, "p": plan_id},
                )
            for start in range(0, len(codes), _CHUNK):
                chunk = codes[start : start + _CHUNK]
                done = conn.execute(t.delete().where(t.c.plan_id == plan_id, t.c.code.in_(chunk)))
                replaced += done.rowcount
            if values:
                conn.execute(t.insert(), values)
            if audit is not None:
                append_audit(conn, audit)
        return replaced


@contextmanager
def _withheld() -> Iterator[None]:
    """Database errors without the row values (names, phones) they would otherwise show."""
    try:
        yield
    except sa.exc.OperationalError as exc:  # the connection or a timeout, not the row
        exc.params, exc.hide_parameters = None, True
        raise
    except sa.exc.DBAPIError as exc:
        orig = RuntimeError(f"{type(exc.orig).__name__} (row values withheld)")
        raise type(exc)(exc.statement, None, orig, hide_parameters=True) from None


# reading a roster file --------------------------------------------------------------------
def _cell(value) -> str:
    """A cell as trimmed text ('' when blank); a whole float loses its '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _header_key(value) -> str:
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    return re.sub(r"[\s*]", "", text).lower()


class _Sheet:
    """A roster file's header and data rows, with each row's number as a user counts it."""

    def __init__(self, source: str, header: tuple[int, list], rows: list[tuple[int, list]]):
        self.source = source
        self.header_row, self.header = header
        self.rows = rows

    @classmethod
    def read(
        cls, data: bytes, filename: str, encoding: str | None, most_rows: int | None = None
    ) -> _Sheet:
        name = str(filename or "upload")
        lower = name.lower()
        if not data or not data.strip():
            raise InputError("the file is empty", name)
        if data[:4] == b"\xd0\xcf\x11\xe0":
            raise InputError("an old .xls workbook; save it as .xlsx or CSV", name)
        if lower.endswith(".xlsx"):
            if data[:4] != b"PK\x03\x04":
                raise InputError("not an XLSX workbook (truncated, or renamed?)", name)
            table = _xlsx_rows(data, name, most_rows)
        elif lower.endswith((".csv", ".txt")):
            if data[:4] == b"PK\x03\x04" or b"\x00" in data:
                raise InputError("not a text CSV file (a workbook? name it .xlsx)", name)
            table = _csv_rows(data, name, encoding)
        else:
            raise InputError("a roster is a .csv or .xlsx file", name)
        filled = [(n, cells) for n, cells in table if any(_cell(c) for c in cells)]
        if not filled:
            raise InputError("the file is empty", name)
        header, rows = filled[0], filled[1:]
        if not rows:
            raise InputError("the file holds a header but no rows", name, where=f"row {header[0]}")
        return cls(name, header, rows)

    def columns(self) -> dict[str, int]:
        """The position of each field's column; an error naming any missing or doubled."""
        found: dict[str, list[int]] = {f: [] for f in COLUMNS}
        for i, head in enumerate(self.header):
            key = _header_key(head)
            for f, aliases in COLUMNS.items():
                if key in aliases:
                    found[f].append(i)
        where = f"row {self.header_row} (header)"
        missing = [f for f, at in found.items() if not at]
        if missing:
            wants = "; ".join(f"{f}: one of {', '.join(COLUMNS[f])}" for f in missing)
            raise InputError(f"missing column(s): {wants}", self.source, where=where)
        doubled = [f for f, at in found.items() if len(at) > 1]
        if doubled:
            f = doubled[0]
            heads = ", ".join(str(self.header[i]).strip() for i in found[f])
            raise InputError(
                f"two columns hold the {f}: {heads}; keep one", self.source, where=where
            )
        return {f: at[0] for f, at in found.items()}

    def staff(self, known: set[str], covers: Callable[[str], bool]) -> dict[str, list[Staff]]:
        """Every row checked and grouped by code in file order; errors as documented in
        :meth:`Roster.import_file`."""
        cols = self.columns()
        head = {f: str(self.header[i]).strip() for f, i in cols.items()}

        def cell(cells: list, f: str):
            return cells[cols[f]] if cols[f] < len(cells) else None

        # territory first: a file touching another's grids is refused as a whole
        outside: list[tuple[int, str]] = []
        for n, cells in self.rows:
            code = unicodedata.normalize("NFKC", _cell(cell(cells, "code")))
            if len(code) in CODE_LENGTHS.values() and code.isdigit() and not covers(code):
                outside.append((n, code))
        if outside:
            codes = sorted({c for _, c in outside if c in known})  # never an unknown value
            named = f": {', '.join(codes[:10])}{' …' if len(codes) > 10 else ''}" if codes else ""
            rows = ", ".join(str(n) for n, _ in outside[:10]) + (" …" if len(outside) > 10 else "")
            raise Forbidden(
                f"{len(outside)} row(s) name codes outside your territory (属地管理){named}; "
                "nothing was saved",
                self.source,
                where=f"row {rows}, column {head['code']}",
            )

        problems: list[dict] = []

        def bad(n: int, f: str, problem: str) -> None:
            problems.append({"row": n, "column": head[f], "problem": problem})

        out: dict[str, list[Staff]] = {}
        seen: dict[tuple, int] = {}
        for n, cells in self.rows:
            raw_code = cell(cells, "code")
            code = unicodedata.normalize("NFKC", _cell(raw_code))
            try:
                code_level(code)
            except InputError:
                bad(n, "code", _code_problem(code, raw_code))
                code = ""
            if code and code not in known:
                hint = _NUMBER_HINT if _is_number(raw_code) and len(code) > 15 else ""
                bad(n, "code", f"unknown code: not a grid or micro-grid of the plan{hint}")
                code = ""
            fields = {}
            for f, check in (("role", role_key), ("name", clean_name), ("phone", normalise_phone)):
                raw = cell(cells, f)
                try:
                    fields[f] = check(_cell(raw))
                except InputError as exc:
                    hint = _LEADING_ZERO if f == "phone" and _is_number(raw) else ""
                    bad(n, f, exc.problem + hint)
            if code and "role" in fields:
                problem = _wrong_level(code, fields["role"])
                if problem:
                    bad(n, "role", problem)
                    continue
            if not code or len(fields) < 3:
                continue
            person = Staff(fields["role"], fields["name"], fields["phone"])
            key = (code, person.role, person.name, person.phone)
            if key in seen:
                bad(n, "name", f"repeats row {seen[key]} (same code, role, name and phone)")
                continue
            if person.role in SINGLE_ROLES:
                first = seen.get((code, person.role))
                if first is not None:
                    bad(n, "role", f"a second {person.label} for {code} (the first is row {first})")
                    continue
                seen[(code, person.role)] = n
            seen[key] = n
            out.setdefault(code, []).append(person)
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise RosterInvalid(
                f"{first['problem']}{more}; nothing was saved",
                problems[:MAX_PROBLEMS],
                self.source,
                where=f"row {first['row']}, column {first['column']}",
            )
        return out


_NUMBER_HINT = (
    "; the cell is a number, and a spreadsheet keeps only 15 digits of one: format the "
    "column as text and enter the codes again"
)
_LEADING_ZERO = (
    "; the cell is a number, which drops a landline's leading 0: format the column as text"
)


def _code_problem(code: str, raw) -> str:
    if not code:
        return "empty code"
    if _SCIENTIFIC.fullmatch(code):
        return (
            "the code was saved as a shortened number (like 3.2E+14): format the column "
            "as text and enter the codes again"
        )
    return "not a 15-digit grid or 18-digit micro-grid code"


def _csv_rows(data: bytes, source: str, encoding: str | None) -> list[tuple[int, list]]:
    text = _decode(data, source, encoding)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        return [
            (n, cells)
            for n, cells in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1)
        ]
    except csv.Error as exc:
        raise InputError(f"not a well-formed CSV ({exc})", source) from None


def _decode(data: bytes, source: str, encoding: str | None) -> str:
    if encoding is not None:
        try:
            codec = "utf-8-sig" if _codec(encoding) == "utf-8" else encoding
            return data.decode(codec)
        except LookupError:
            raise InputError(f"unknown text encoding {encoding!r}", source) from None
        except UnicodeDecodeError as exc:
            row = data[: exc.start].count(b"\n") + 1
            raise InputError(f"not {encoding} text", source, where=f"row {row}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise InputError("neither UTF-8 nor GBK text", source, where=f"row {row}") from None


def _codec(encoding: str) -> str:
    return codecs.lookup(encoding).name


def _xlsx_rows(data: bytes, source: str, most_rows: int | None = None) -> list[tuple[int, list]]:
    import openpyxl

    # sizes, expansion, cells and rows (a header row besides the data) before openpyxl
    limits = untrusted.DEFAULT
    if most_rows is not None:
        limits = untrusted.Limits(rows=min(limits.rows, most_rows + 1))
    untrusted.check_bytes(data, source, limits, xlsx=True)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        problem = f"cannot be read as an XLSX workbook ({type(exc).__name__}; truncated?)"
        raise InputError(problem, source) from None
    try:
        sheet = book.worksheets[0]
        grid = [list(r) for r in sheet.iter_rows(min_row=1, values_only=True)]
        # a merged cell (a code spanning its grid's staff) counts for every cell it covers
        for span in sheet.merged_cells.ranges:
            value = sheet.cell(span.min_row, span.min_col).value
            for r in range(span.min_row, min(span.max_row, len(grid)) + 1):
                row = grid[r - 1]
                for c in range(span.min_col, min(span.max_col, len(row)) + 1):
                    row[c - 1] = value
    finally:
        book.close()
    return list(enumerate(grid, 1))
