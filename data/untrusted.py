"""Files from users checked for size and expansion before any parser opens them.

A zip (an XLSX workbook, a zipped Shapefile) can expand a thousandfold: a 262 KB
workbook of repeated shared strings held openpyxl for 80 s and 1.8 GB. A GeoPackage is
a database whose header may claim pages it does not have, or hold SQL views that compute
without end. So every reader of a user's file (data/userfiles.py and the readers built on
it, data/roster.py, data/registers.py, data/existing.py, the plan reader data/plan.py
that ``wangge import`` and ``POST /plans`` use, and the API's upload routes through
api/bodies.py ``check_upload``) calls :func:`check_file` or
:func:`check_bytes` first, and only a file within :class:`Limits` reaches openpyxl,
pyogrio or SQLite. What is measured, without expanding anything that is not bounded:

- any file: its size on disk;
- a zip: its members, the sum of their declared sizes, each large member's compression
  ratio, and (for members GDAL will read) that each expands to exactly its declared size
  and checksum, read through :mod:`zipfile`, which stops at the declared size;
- an XLSX: besides the zip, the expanded size of its XML, the cells and shared strings
  of its parts (counted in a streaming pass), each sheet's rows (its ``<dimension>`` and
  its ``<row>`` elements), and no DTD or entity (a workbook has none);
- a GeoPackage: the SQLite header's page size and page count against the file's size
  (SQLite file format, https://www.sqlite.org/fileformat2.html, section 1.3), no SQL view,
  a bounded number of tables and features;
- a Shapefile: the size of its parts and the .dbf header's record count against the
  .dbf's size (dBASE III header: records at byte 4, header and record length at 8 and 10).

A file beyond a limit is refused with :class:`~wangge.errors.TooLarge` (413 in the API)
naming the file and the limit; a damaged one with :class:`~wangge.errors.InputError`.
"""

from __future__ import annotations

import io
import re
import sqlite3
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from wangge.errors import InputError, TooLarge

MB = 1024 * 1024
#: A file on disk larger than this is refused: a whole city's plan.gpkg is a few GB (an
#: upload to the API has its own cap, WANGGE_MAX_UPLOAD_MB, and limits of its own).
FILE_BYTES = 16 * 1024 * MB
#: The sum of the declared sizes of a zip's members.
EXPANDED_BYTES = 16 * 1024 * MB
#: A member expanding beyond :data:`RATIO_FLOOR` may be at most this many times its
#: compressed size: XML compresses 5–30 times, a .dbf padded with blanks up to about 100;
#: a zip bomb's member 1,000 times (deflate's ceiling is about 1,032).
RATIO = 200.0
RATIO_FLOOR = 8 * MB
#: Files in one zip (an XLSX holds a few dozen parts, a zipped Shapefile a handful).
MEMBERS = 1000
#: The XML of a workbook, expanded: openpyxl holds about four times it in memory.
XLSX_BYTES = 256 * MB
#: Cells plus shared strings in a workbook: openpyxl spends about 25 µs and 0.5 KB on
#: each, so this bounds a load to a minute and a gigabyte.
XLSX_CELLS = 2_000_000
#: Rows in one sheet: Excel's own maximum (Office Open XML sheets stop at 1,048,576).
XLSX_ROWS = 1_048_576
#: Features (rows of the layers) in a GeoPackage or Shapefile: a whole city's plan holds
#: a few million.
FEATURES = 100_000_000
#: Tables in a GeoPackage (a plan has about thirty).
TABLES = 1000

SQLITE_MAGIC = b"SQLite format 3\x00"
ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What a file may hold before it is parsed; each field has a module default.

    The API passes its own (api/bodies.py ``upload_limits``): an upload's features are
    capped by ``WANGGE_MAX_UPLOAD_FEATURES`` before a reader sees them.
    """

    file_bytes: int = FILE_BYTES
    expanded_bytes: int = EXPANDED_BYTES
    ratio: float = RATIO
    ratio_floor: int = RATIO_FLOOR
    members: int = MEMBERS
    xlsx_bytes: int = XLSX_BYTES
    cells: int = XLSX_CELLS
    rows: int = XLSX_ROWS
    features: int = FEATURES
    tables: int = TABLES
    #: The setting that sets ``features`` and ``rows``, named when they refuse (the API's).
    setting: str = ""


DEFAULT = Limits()


def _bytes(n: float) -> str:
    return f"{n / MB:,.1f} MB" if n >= MB else f"{int(n):,} bytes"


# any file -------------------------------------------------------------------------------


def check_file(
    path: str | Path, source: str | Path | None = None, limits: Limits = DEFAULT
) -> None:
    """Check a user's file on disk before it is parsed, by what its first bytes say it
    is (a zip, an XLSX, a GeoPackage) or by its suffix (a Shapefile).

    A file checked once is not checked again while its size and time stay the same (the
    readers of a zipped Shapefile open it several times).

    Parameters
    ----------
    path
        The file (a ``.shp`` has its parts beside it).
    source
        How to name the file in messages (an upload's name); ``path`` by default.
    limits
        The limits to hold it to.

    Raises
    ------
    TooLarge
        Beyond a limit, naming the file and the limit.
    InputError
        Damaged in a way that shows before parsing (a truncated zip or database).
    """
    path = Path(path)
    source = str(source or path)
    try:
        stat = path.stat()
    except OSError:
        return  # the reader names a missing file
    if not path.is_file():
        return
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, limits, source)
    if path.suffix.lower() == ".shp":  # its parts beside it count too
        parts = sorted(path.parent.glob(f"{glob_escape(path.stem)}.*"))
        key += tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in parts)
    if _seen(key):
        return
    if stat.st_size > limits.file_bytes:
        raise TooLarge(
            f"the file is {_bytes(stat.st_size)}; a file may be at most "
            f"{_bytes(limits.file_bytes)}",
            source,
        )
    with open(path, "rb") as fh:
        head = fh.read(100)
    suffix = path.suffix.lower()
    if head.startswith(ZIP_MAGIC):  # what is no zip is named by its reader
        check_zip_file(path, source, limits, xlsx=suffix == ".xlsx" or None)
    elif head.startswith(SQLITE_MAGIC):
        check_geopackage(path, source, limits)
    elif suffix == ".shp":
        check_shapefile(path, source, limits)
    _remember(key)


def check_bytes(
    data: bytes, source: str, limits: Limits = DEFAULT, xlsx: bool | None = None
) -> None:
    """:func:`check_file` for an upload held in memory (a zip or XLSX by its first
    bytes, a GeoPackage by SQLite's); other bodies (JSON, CSV) are capped by their size.
    ``xlsx`` says a zip is a workbook (None: its name or its members tell)."""
    if len(data) > limits.file_bytes:
        raise TooLarge(
            f"the file is {_bytes(len(data))}; a file may be at most {_bytes(limits.file_bytes)}",
            source,
        )
    if data.startswith(ZIP_MAGIC):
        if xlsx is None:
            xlsx = source.lower().endswith(".xlsx") or None
        check_zip_file(io.BytesIO(data), source, limits, xlsx=xlsx)
    elif data.startswith(SQLITE_MAGIC):
        check_geopackage_bytes(data, source, limits)


_checked: OrderedDict[tuple, bool] = OrderedDict()
_checked_lock = threading.Lock()


def _seen(key: tuple) -> bool:
    with _checked_lock:
        if key in _checked:
            _checked.move_to_end(key)
            return True
    return False


def _remember(key: tuple) -> None:
    with _checked_lock:
        _checked[key] = True
        while len(_checked) > 256:
            _checked.popitem(last=False)


# zips -----------------------------------------------------------------------------------


def check_zip_file(
    file: str | Path | BinaryIO,
    source: str,
    limits: Limits = DEFAULT,
    xlsx: bool | None = None,
) -> list[zipfile.ZipInfo]:
    """Check a zip before anything is expanded: its members, their declared sizes and
    ratios; then an XLSX's XML (:func:`_check_xlsx`) or, for any other zip (read by
    GDAL), that each member expands to its declared size and checksum, and a .dbf's
    header.

    ``xlsx`` None decides by the members (``xl/workbook.xml``).
    """
    try:
        z = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        what = "cannot be read as an XLSX workbook" if xlsx else "is not a readable zip archive"
        raise InputError(f"{what} (truncated?): {exc}", source) from None
    with z:
        infos = z.infolist()
        if len(infos) > limits.members:
            raise TooLarge(
                f"the zip holds {len(infos):,} files; a zip may hold at most {limits.members:,}",
                source,
            )
        is_xlsx = xlsx if xlsx is not None else any(i.filename == "xl/workbook.xml" for i in infos)
        total = sum(i.file_size for i in infos)
        most = limits.xlsx_bytes if is_xlsx else limits.expanded_bytes
        if total > most:
            what = "the workbook's parts expand" if is_xlsx else "the zip expands"
            raise TooLarge(
                f"{what} to {_bytes(total)}; the limit is {_bytes(most)} (a zip bomb?)", source
            )
        for info in infos:
            if info.file_size > limits.ratio_floor:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.ratio:
                    raise TooLarge(
                        f"{info.filename} expands {ratio:,.0f} times ({_bytes(info.compress_size)}"
                        f" to {_bytes(info.file_size)}); a member over "
                        f"{_bytes(limits.ratio_floor)} may expand at most {limits.ratio:g} "
                        "times (a zip bomb?)",
                        source,
                    )
        if is_xlsx:
            _check_xlsx(z, infos, source, limits)
        else:
            for info in infos:
                _expand(z, info, source)
            dbfs = [i for i in infos if i.filename.lower().endswith(".dbf")]
            for info in dbfs:
                with z.open(info) as fh:
                    _check_dbf_header(
                        fh.read(32), info.file_size, f"{source} ({info.filename})", limits
                    )
    return infos


@contextmanager
def _member(z: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> Iterator[BinaryIO]:
    """A zip member opened for reading, whatever goes wrong while it expands named as an
    InputError: a member that lies about its size or checksum (damaged, or a zip bomb), or
    one in a compression or encryption :mod:`zipfile` lacks."""
    try:
        with z.open(info) as fh:
            yield fh
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise InputError(
            f"{info.filename} does not expand to its declared size and checksum "
            f"(damaged, or a zip bomb): {exc}",
            source,
        ) from None
    except (NotImplementedError, RuntimeError) as exc:
        raise InputError(f"{info.filename} cannot be read: {exc}", source) from None


def _expand(z: zipfile.ZipFile, info: zipfile.ZipInfo, source: str):
    """Read a member through, in chunks: :mod:`zipfile` stops at its declared size and
    checks its checksum, so a member that lies about its size is refused here, not
    expanded by GDAL."""
    with _member(z, info, source) as fh:
        while fh.read(_CHUNK):
            pass


#: Counted in a workbook's XML: cells, shared strings, rows (with or without a namespace
#: prefix; a few bytes of text that look like one only make the count safer).
_CELL_TAGS = (b"<c ", b"<c>", b":c ", b":c>")
_STRING_TAGS = (b"<si>", b"<si ", b":si>", b":si ")
_ROW_TAGS = (b"<row ", b"<row>", b":row ", b":row>")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"[A-Z]*\d*:?[A-Z]*(\d+)\"")


def _check_xlsx(
    z: zipfile.ZipFile, infos: list[zipfile.ZipInfo], source: str, limits: Limits
) -> None:
    """Stream a workbook's XML parts once, counting cells, shared strings and each sheet's
    rows, and refusing a DTD or entity."""
    cells = 0
    for info in infos:
        name = info.filename
        if not name.lower().endswith((".xml", ".rels", ".vml")):
            continue
        sheet = name.startswith("xl/worksheets/") and name.endswith(".xml")
        counts = _scan(z, info, source, sheet)
        cells += counts["cells"]
        if cells > limits.cells:
            raise TooLarge(
                f"the workbook holds over {limits.cells:,} cells and shared strings (at "
                f"{name}); the limit is {limits.cells:,}",
                source,
            )
        if sheet:
            rows = max(counts["rows"], counts["dimension"])
            if rows > limits.rows:
                raise TooLarge(
                    f"sheet {name.rsplit('/', 1)[-1]} holds {rows:,} rows; the limit is "
                    f"{limits.rows:,}" + (f" ({limits.setting})" if limits.setting else ""),
                    source,
                    where=name,
                )


def _scan(z: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, sheet: bool) -> dict[str, int]:
    out = {"cells": 0, "rows": 0, "dimension": 0}
    tail = b""
    first = True
    with _member(z, info, source) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            text = tail + chunk
            if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
                raise InputError(
                    f"{info.filename} declares a DTD or entities, which no workbook has",
                    source,
                )
            # counted in the chunk alone: a tag split between two chunks is one cell
            out["cells"] += sum(chunk.count(t) for t in (*_CELL_TAGS, *_STRING_TAGS))
            if sheet:
                out["rows"] += sum(chunk.count(t) for t in _ROW_TAGS)
                if first:
                    found = _DIMENSION.search(text[:65536])
                    if found:
                        out["dimension"] = int(found.group(1))
            first = False
            tail = chunk[-16:]
    return out


# Shapefiles -----------------------------------------------------------------------------


def _check_dbf_header(head: bytes, size: int, source: str, limits: Limits) -> None:
    """A .dbf's record count against its size and :attr:`Limits.features`."""
    if len(head) < 12:
        return  # GDAL names a .dbf too short to be one
    records = struct.unpack("<I", head[4:8])[0]
    header, record = struct.unpack("<HH", head[8:12])
    if records > limits.features:
        raise TooLarge(
            f"the .dbf holds {records:,} records; the limit is {limits.features:,}"
            + (f" ({limits.setting})" if limits.setting else ""),
            source,
        )
    if header + records * record > size + 1:  # the end-of-file byte is optional
        raise InputError(
            f"the .dbf says it holds {records:,} records of {record:,} bytes but is "
            f"{_bytes(size)} (truncated?)",
            source,
        )


def check_shapefile(path: str | Path, source: str | None = None, limits: Limits = DEFAULT) -> None:
    """A Shapefile's parts (``.shp``, ``.dbf``, ``.shx``... beside it): each within
    :attr:`Limits.file_bytes`, together within :attr:`Limits.expanded_bytes`, and its
    .dbf's record count within :attr:`Limits.features` and its size."""
    path = Path(path)
    source = source or str(path)
    parts = [p for p in path.parent.glob(f"{glob_escape(path.stem)}.*") if p.is_file()]
    total = 0
    for part in parts:
        size = part.stat().st_size
        total += size
        if size > limits.file_bytes:
            raise TooLarge(
                f"{part.name} is {_bytes(size)}; a file may be at most {_bytes(limits.file_bytes)}",
                source,
            )
        if part.suffix.lower() == ".dbf":
            with open(part, "rb") as fh:
                _check_dbf_header(fh.read(32), size, f"{source} ({part.name})", limits)
    if total > limits.expanded_bytes:
        raise TooLarge(
            f"the Shapefile's parts add up to {_bytes(total)}; the limit is "
            f"{_bytes(limits.expanded_bytes)}",
            source,
        )


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


# GeoPackages ----------------------------------------------------------------------------


def _sqlite_header(head: bytes, size: int, source: str, limits: Limits) -> None:
    """The SQLite header's page size (bytes 16–17, 1 meaning 65536) and, when valid (its
    change counter at 24 equals the one at 92), its page count (28–31) against the file."""
    if len(head) < 100:
        raise InputError("is not a GeoPackage: its SQLite header is cut short", source)
    page = struct.unpack(">H", head[16:18])[0]
    page = 65536 if page == 1 else page
    if page < 512 or page > 65536 or page & (page - 1):
        raise InputError(f"is not a GeoPackage: its header names a page size of {page}", source)
    pages = struct.unpack(">I", head[28:32])[0]
    if head[24:28] == head[92:96] and pages:
        if pages * page > limits.file_bytes:
            raise TooLarge(
                f"the GeoPackage claims {pages:,} pages of {page:,} bytes; a file may be at "
                f"most {_bytes(limits.file_bytes)}",
                source,
            )
        if pages * page > size:
            raise InputError(
                f"the GeoPackage claims {pages:,} pages of {page:,} bytes but is "
                f"{_bytes(size)} (truncated?)",
                source,
            )


def check_geopackage(
    path: str | Path, source: str | None = None, limits: Limits = DEFAULT
) -> dict[str, int]:
    """A GeoPackage's header (:func:`_sqlite_header`), then, opened read-only with
    SQLite's defences on, no SQL view (a view may compute without end when a layer is
    read), at most :attr:`Limits.tables` tables and :attr:`Limits.features` rows in its
    layers.

    Returns
    -------
    dict
        The rows of each layer of ``gpkg_contents``.
    """
    path = Path(path)
    source = source or str(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        _sqlite_header(fh.read(100), size, source, limits)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise InputError(f"cannot be opened as a GeoPackage: {exc}", source) from None
    try:
        return _check_tables(conn, source, limits)
    finally:
        conn.close()


def check_geopackage_bytes(data: bytes, source: str, limits: Limits = DEFAULT) -> dict[str, int]:
    """:func:`check_geopackage` for a GeoPackage held in memory (an upload)."""
    _sqlite_header(data[:100], len(data), source, limits)
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        try:
            conn.deserialize(data)
        except (sqlite3.Error, OverflowError) as exc:
            raise InputError(f"cannot be opened as a GeoPackage: {exc}", source) from None
        return _check_tables(conn, source, limits)
    finally:
        conn.close()


def _check_tables(conn: sqlite3.Connection, source: str, limits: Limits) -> dict[str, int]:
    # SQLite's advice for a database from an untrusted source (https://www.sqlite.org/security.html):
    # no schema-defined functions run, and each page's cell sizes are checked as read
    for pragma in ("trusted_schema=OFF", "cell_size_check=ON", "mmap_size=0", "query_only=ON"):
        conn.execute(f"PRAGMA {pragma}")
    try:
        objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
        views = [name for kind, name in objects if kind == "view"]
        if views:
            raise InputError(
                f"holds SQL views ({', '.join(views[:5])}); send a GeoPackage of plain "
                "tables (export the layer again)",
                source,
            )
        tables = [name for kind, name in objects if kind == "table"]
        if len(tables) > limits.tables:
            raise TooLarge(
                f"the GeoPackage holds {len(tables):,} tables; the limit is {limits.tables:,}",
                source,
            )
        names = set(tables)
        layers = []
        if "gpkg_contents" in names:
            layers = [r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")]
        claimed = {}
        if "gpkg_ogr_contents" in names:  # GDAL's own count, which readers size arrays by
            claimed = dict(conn.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents"))
        counts: dict[str, int] = {}
        for name in layers:
            if name not in names:
                continue
            quoted = '"' + str(name).replace('"', '""') + '"'
            counts[name] = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
            said = claimed.get(name)
            if isinstance(said, int) and said > counts[name]:
                raise InputError(
                    f"its gpkg_ogr_contents says layer {name} holds {said:,} features, but it "
                    f"holds {counts[name]:,} (damaged?)",
                    source,
                )
            total = sum(counts.values())
            if total > limits.features:
                raise TooLarge(
                    f"the GeoPackage's layers hold over {limits.features:,} features (at "
                    f"{name}); the limit is {limits.features:,}"
                    + (f" ({limits.setting})" if limits.setting else ""),
                    source,
                )
    except sqlite3.Error as exc:
        raise InputError(f"cannot be read as a GeoPackage: {exc}", source) from None
    return counts
