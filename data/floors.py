"""Read floor counts and heights as building files write them: ``12``, ``12层``, ``9m``, ``3-5``."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Floors above this are not believed (the tallest buildings have about 160).
MAX_FLOORS = 200
#: Heights above this many metres are not believed (the tallest tower is 828 m; 700 matches
#: :func:`wangge.data.osm.parse_height`).
MAX_HEIGHT_M = 700.0
#: Metres in a foot (international foot, exactly).
FOOT_M = 0.3048

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = "".join(_CN_DIGITS) + "十百"
_NUM = rf"(\d+(?:\.\d+)?|[{_CN_NUMBER}]+)"
#: Units by what they measure, longest first so that ``floors`` is not read as ``f``.
_FLOOR_UNITS = ("层楼", "层", "楼", "floors", "floor", "storeys", "storey", "stories", "levels")
_FLOOR_UNITS += ("level", "fl", "f")
_METRE_UNITS = ("metres", "metre", "meters", "meter", "公尺", "米", "m")
_FOOT_UNITS = ("feet", "foot", "ft", "'")
_UNIT = "|".join(re.escape(u) for u in (*_FLOOR_UNITS, *_METRE_UNITS, *_FOOT_UNITS))
#: One cell: an optional word (约 about, 共 in all), a number or a range of two, an optional
#: unit, and trailing words without digits (以上, 左右, (底商)).
_CELL = re.compile(
    rf"^(?:约|共|大约)?\s*{_NUM}(?:\s*(?:-|~|至|到|–|—)\s*{_NUM})?\s*"
    rf"(?:(?P<unit>{_UNIT})(?![a-z]))?\s*(?P<rest>[^\d{_CN_NUMBER}]*)$"
)
_NEGATIVE = re.compile(r"^-\s*(\d+(?:\.\d+)?)$")
_BASEMENT = re.compile(r"^(?:b\s*\d|-\s*\d+(?:\.\d+)?\s*(?:层|fl|f)(?![a-z]))")
_BLANK = {"", "nan", "none", "null", "<na>", "nat"}


@dataclass(frozen=True)
class Cell:
    """What a floor or height cell says.

    Attributes
    ----------
    value
        The number (the mean of a range; feet already made metres); NaN when none.
    unit
        ``"floors"`` or ``"m"`` when the cell names its unit, ``""`` for a bare number.
    how
        ``""``, ``"range"``, ``"blank"``, ``"underground"`` (floors below ground only) or
        ``"unreadable"``.
    """

    value: float
    unit: str = ""
    how: str = ""


def _chinese(text: str) -> float:
    """``十二`` → 12, ``两`` → 2, ``一百零五`` → 105 (numerals up to the hundreds)."""
    total, digit = 0, 0
    for ch in text:
        if ch in "十百":
            total += (digit or 1) * (10 if ch == "十" else 100)
            digit = 0
        else:
            digit = _CN_DIGITS[ch]
    return float(total + digit)


def _number(text: str) -> float:
    return float(text) if text[0].isdigit() else _chinese(text)


def read_cell(value: object) -> Cell:
    """Read one floor or height cell.

    Accepted: numbers (``12``, ``12.0``), Chinese numerals (``十二层``), full-width digits,
    a unit of floors (``12层``, ``12F``, ``12 floors``), of length (``9m``, ``9 米``,
    ``30 ft``, made metres), a range read as its mean (``3-5``, ``3~5层``, ``三至五层``) and
    the above-ground part of a cell that also gives floors below ground (``地上12层地下2层``,
    ``12层(地下2层)``). A cell of floors below ground only (``地下1层``, ``B1``, ``-1层``) says
    nothing of the floors above it.

    Parameters
    ----------
    value
        The cell as read from the file: a number, text or a missing value.

    Returns
    -------
    Cell
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return Cell(np.nan, how="blank")
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    if text in _BLANK:
        return Cell(np.nan, how="blank")
    if "地上" in text:
        text = text.split("地上", 1)[1].split("地下", 1)[0].strip(" /,，;；、(（)）+")
    elif "地下" in text:
        above = text.split("地下", 1)[0].strip(" /,，;；、(（)）+")
        if not re.search(rf"[\d{_CN_NUMBER}]", above):
            return Cell(np.nan, how="underground")
        text = above
    negative = _NEGATIVE.match(text)
    if negative:  # a bare negative number: ignored by the range checks, as such
        return Cell(-float(negative.group(1)))
    if _BASEMENT.match(text):
        return Cell(np.nan, how="underground")
    m = _CELL.match(text)
    if not m:
        return Cell(np.nan, how="unreadable")
    low = _number(m.group(1))
    value_ = low if m.group(2) is None else (low + _number(m.group(2))) / 2
    how = "" if m.group(2) is None else "range"
    unit = m.group("unit") or ""
    if unit in _FOOT_UNITS:
        return Cell(value_ * FOOT_M, "m", how)
    return Cell(value_, "m" if unit in _METRE_UNITS else "floors" if unit else "", how)


@dataclass
class Levels:
    """Floors and heights read from a file's two columns.

    Attributes
    ----------
    floors, height
        Per row: floors above ground and height in metres, NaN where unknown or not
        believed.
    findings
        ``(kind, detail, row_index)``: ``row_index`` is the position of the row, or None
        for a finding about a whole column.
    notes
        What happened, counted.
    """

    floors: np.ndarray
    height: np.ndarray
    findings: list[tuple[str, str, int | None]] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)


def _shown(value: object) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):g}"
    return repr(str(value))


def _examples(cells: pd.Series, where: np.ndarray) -> str:
    shown = ", ".join(_shown(cells.iloc[i]) for i in where[:3])
    return shown + (", …" if len(where) > 3 else "")


def read_levels(
    floor_cells: pd.Series | None,
    height_cells: pd.Series | None,
    rows: np.ndarray,
    what: str = "row",
) -> Levels:
    """Read a file's floor column and height column into floors and metres.

    A floor cell with a unit of length (``9m``, ``9米``) is a height and is read as one,
    so that the household model divides it by 3 m per level; a height cell with a unit of
    floors (``12层``) is a floor count. The file's own column for that field wins where it
    also has a value. Each such column, and each column of ranges, is named in one finding
    saying how its cells were read. Cells that hold no number, floors below ground only,
    values ≤ 0 and values above :data:`MAX_FLOORS` floors or :data:`MAX_HEIGHT_M` metres are
    ignored, a finding each.

    Parameters
    ----------
    floor_cells, height_cells
        The columns (named), or None where the file has none.
    rows, what
        The number of each row as a finding names it, by position, and what a row is
        (``row``: a spreadsheet row, header = row 1; ``feature``: from 1).

    Returns
    -------
    Levels
    """
    n = len(rows)
    row_label = (np.asarray(rows), what)
    out = Levels(np.full(n, np.nan), np.full(n, np.nan))
    read = {}
    for name, cells in (("floors", floor_cells), ("height", height_cells)):
        if cells is not None:
            parsed = [read_cell(v) for v in cells]
            read[name] = (
                cells,
                np.array([c.value for c in parsed], dtype=float),
                np.array([c.unit for c in parsed], dtype=object),
                np.array([c.how for c in parsed], dtype=object),
            )
    own_unit = {"floors": "floors", "height": "m"}
    other_unit = {"floors": "m", "height": "floors"}
    values = {"floors": out.floors, "height": out.height}
    source = {"floors": np.full(n, -1), "height": np.full(n, -1)}  # 0 own column, 1 other
    for name, (cells, v, unit, how) in read.items():
        own = np.isin(unit, ["", own_unit[name]]) & ~np.isnan(v)
        values[name][own] = v[own]
        source[name][own] = 0
        _report_cells(out, name, cells, how, row_label)
    for name, (cells, v, unit, _) in read.items():
        other = "height" if name == "floors" else "floors"
        moved = (unit == other_unit[name]) & ~np.isnan(v)
        if not moved.any():
            continue
        free = moved & np.isnan(values[other])
        values[other][free] = v[free]
        source[other][free] = 1
        _report_moved(out, name, cells, moved, free, unit, v, read.get(other), row_label)
    for name, upper, word in (("floors", MAX_FLOORS, "floors"), ("height", MAX_HEIGHT_M, "m")):
        _bound(out, name, values[name], upper, word, source[name], read)
    return out


def _report_cells(
    out: Levels, name: str, cells: pd.Series, how: np.ndarray, row_label: tuple[np.ndarray, str]
) -> None:
    """Findings for one column's unreadable and underground cells, one column-wide finding
    for its ranges."""
    col = cells.name
    for i in np.flatnonzero(how == "unreadable"):
        out.findings.append(
            (f"{name} ignored", f"{col} = {_shown(cells.iloc[i])} is not a number; ignored", i)
        )
    for i in np.flatnonzero(how == "underground"):
        out.findings.append(
            (
                f"{name} ignored",
                f"{col} = {_shown(cells.iloc[i])} gives floors below ground only, not the "
                "floors above it; ignored",
                i,
            )
        )
    for how_, why in (("unreadable", "is not a number"), ("underground", "below ground only")):
        if (how == how_).any():
            out.notes[f"{name} values ignored ({why})"] += int((how == how_).sum())
    ranges = np.flatnonzero(how == "range")
    if len(ranges):
        out.findings.append(
            (
                f"{name} range",
                f"{col} holds {len(ranges)} ranges ({_examples(cells, ranges)}; "
                f"{_rows(row_label, ranges)}): each read as the mean of its ends",
                None,
            )
        )
        out.notes[f"{name} ranges read as their mean"] += len(ranges)


def _rows(row_label: tuple[np.ndarray, str], where: np.ndarray) -> str:
    rows, what = row_label
    shown = ", ".join(str(int(rows[i])) for i in where[:5])
    return f"{what}{'s' if len(where) > 1 else ''} {shown}" + (" …" if len(where) > 5 else "")


def _report_moved(
    out: Levels,
    name: str,
    cells: pd.Series,
    moved: np.ndarray,
    free: np.ndarray,
    unit: np.ndarray,
    v: np.ndarray,
    other_read: tuple | None,
    row_label: tuple[np.ndarray, str],
) -> None:
    """One finding for a column whose cells carry the other field's unit."""
    col = cells.name
    where = np.flatnonzero(moved)
    if name == "floors":
        kind, said, read_as = "floors read as height", "a unit of length", "heights in metres"
        why = "÷ 3 m per level, as for a height column"
    else:
        kind, said, read_as = "height read as floors", "a unit of floors", "floor counts"
        why = "the floors of the building"
    detail = (
        f"{col} holds {len(where)} values with {said} ({_examples(cells, where)}; "
        f"{_rows(row_label, where)}): read as {read_as}, {why}"
    )
    kept = moved & ~free
    if kept.any() and other_read is not None:
        detail += f"; in {int(kept.sum())} rows {other_read[0].name} gives its own, which wins"
    bare = np.flatnonzero((unit == "") & ~np.isnan(v))
    if len(bare):
        plain = "floors" if name == "floors" else "metres"
        detail += (
            f". Its {len(bare)} bare numbers ({_examples(cells, bare)}; "
            f"{_rows(row_label, bare)}) are read as {plain}: check them"
        )
    out.findings.append((kind, detail, None))
    out.notes[f"{kind} (a unit in the column)"] += int(free.sum())


def _bound(
    out: Levels,
    name: str,
    v: np.ndarray,
    upper: float,
    what: str,
    source: np.ndarray,
    read: dict,
) -> None:
    """Set values ≤ 0 or above ``upper`` to NaN (in place), a finding each naming the cell."""
    other = "height" if name == "floors" else "floors"
    low, high = v <= 0, v > upper
    for mask, why in (
        (low, "is zero or negative"),
        (high, f"is above {upper:g} {what}, not believed"),
    ):
        for i in np.flatnonzero(mask):
            cells = read[name if source[i] == 0 else other][0]
            detail = f"{cells.name} = {_shown(cells.iloc[i])} {why}; ignored"
            out.findings.append((f"{name} ignored", detail, i))
        if mask.any():
            out.notes[f"{name} values ignored ({why})"] += int(mask.sum())
    v[low | high] = np.nan
