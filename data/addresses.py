"""The address table of a plan: a city's standard addresses (标准地址) and the OSM names.

A plan's address lookup (``wangge/geocoding.py``) reads two kinds of entry besides the
names its buildings carry: the rows of a city's standard address table, each an address
text with a building id or coordinates (CSV in UTF-8 or GBK), and the OSM file's
``addr:*`` tags and names of places, compounds and buildings. Both are kept here, per
plan and source, in one table on the store's own engine (both stores, through
SQLAlchemy Core, like the roster), so that they outlive plan versions: an entry is
matched to a version's buildings when the lookup is built, never when it is stored.
A file is read and checked whole first; then, in one transaction, it replaces the rows
its source held before. A bad row refuses the file naming the file and the row, and
nothing stored is touched.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import osmium
import pandas as pd
import sqlalchemy as sa

from wangge.data.accounts import append_audit
from wangge.data.roster import _decode
from wangge.data.store import check_plan_id
from wangge.errors import InputError, TooLarge

#: Column headers (compared lower-cased, without spaces or '*') accepted for each field.
COLUMNS = {
    "address": ("address", "地址", "标准地址", "地址名称", "门牌地址", "详细地址", "text", "name"),
    "building_id": ("building_id", "楼栋编号", "建筑编号", "楼栋id", "osm_id"),
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
}
#: The most rows one standard address file may hold.
MAX_ROWS = 2_000_000
#: Problems named in one error, first ones first.
MAX_PROBLEMS = 10
#: The longest address text kept.
MAX_TEXT = 200
#: Entry kinds (``wangge.geo.geocode.KINDS``) and ``region``: an administrative name
#: (addr:province, addr:city, addr:district, an administrative area) stripped from the
#: front of texts, never an answer.
REGION = "region"
#: China's extent (WGS84): coordinates outside it are swapped, GCJ-02 gone wrong or typed
#: wrong, and refuse the file.
_CHINA = (73.0, 3.0, 136.0, 54.0)

_meta = sa.MetaData()
address_table = sa.Table(
    "wg_addresses",
    _meta,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True),  # the file's row (header is row 1)
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("building_id", sa.Text),
    sa.Column("compound_id", sa.Text),
    sa.Column("lon", sa.Float),
    sa.Column("lat", sa.Float),
    sa.Column("public", sa.Boolean, nullable=False),
)
source_table = sa.Table(
    "wg_address_sources",
    _meta,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("token", sa.Text, nullable=False),  # new at each import: the lookup's cache key
    sa.Column("imported_at", sa.Text, nullable=False),
    sa.Column("imported_by", sa.Text, nullable=False),
)
ENTRY_COLUMNS = ["text", "kind", "building_id", "compound_id", "lon", "lat", "public"]
_DDL_LOCK = 20261130  # shared with the accounts and the roster (table creation)
_WRITE_LOCK = 20261224
_CHUNK = 5_000


@dataclass(frozen=True)
class ImportSummary:
    """What an import stored: the source it replaced, the rows read and stored, and how
    many rows the source held before."""

    source: str
    file: str
    rows: int
    replaced: int


class AddressBook:
    """Every plan's address entries, by source, in two tables of a store."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})"))
            _meta.create_all(conn)

    def replace(
        self,
        plan_id: str,
        source: str,
        entries: pd.DataFrame,
        file: str,
        by: str,
        audit: dict | None = None,
    ) -> ImportSummary:
        """Replace the entries of ``source`` with ``entries`` (columns
        :data:`ENTRY_COLUMNS`, checked already), in one transaction."""
        check_plan_id(plan_id)
        source = check_source(source)
        rows = entries.reset_index(drop=True)
        values = [
            {
                "plan_id": plan_id,
                "source": source,
                "row": int(r.get("row", i + 2)),
                "text": str(r["text"]),
                "kind": str(r["kind"]),
                "building_id": _text(r.get("building_id")),
                "compound_id": _text(r.get("compound_id")),
                "lon": _number(r.get("lon")),
                "lat": _number(r.get("lat")),
                "public": bool(r.get("public", False)),
            }
            for i, r in enumerate(rows.to_dict("records"))
        ]
        a, s = address_table, source_table
        at = datetime.now(UTC).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k, hashtext(:p))"),
                    {"k": _WRITE_LOCK, "p": plan_id},
                )
            gone = conn.execute(a.delete().where(a.c.plan_id == plan_id, a.c.source == source))
            conn.execute(s.delete().where(s.c.plan_id == plan_id, s.c.source == source))
            for start in range(0, len(values), _CHUNK):
                conn.execute(a.insert(), values[start : start + _CHUNK])
            conn.execute(
                s.insert(),
                {
                    "plan_id": plan_id,
                    "source": source,
                    "file": file,
                    "rows": len(values),
                    "token": uuid.uuid4().hex,
                    "imported_at": at,
                    "imported_by": by,
                },
            )
            if audit is not None:
                append_audit(conn, audit)
        return ImportSummary(source, file, len(values), max(gone.rowcount, 0))

    def entries(self, plan_id: str) -> pd.DataFrame:
        """Every entry of the plan: ``source``, ``row`` and :data:`ENTRY_COLUMNS`."""
        a = address_table
        cols = [a.c.source, a.c.row, *(a.c[c] for c in ENTRY_COLUMNS)]
        stmt = sa.select(*cols).where(a.c.plan_id == plan_id).order_by(a.c.source, a.c.row)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return pd.DataFrame(rows, columns=["source", "row", *ENTRY_COLUMNS])

    def sources(self, plan_id: str) -> pd.DataFrame:
        """The plan's sources: ``source``, ``file``, ``rows``, ``token``, ``imported_at``,
        ``imported_by``. The tokens change at every import (the lookup's cache key)."""
        s = source_table
        stmt = sa.select(s).where(s.c.plan_id == plan_id).order_by(s.c.source)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        columns = ["source", "file", "rows", "token", "imported_at", "imported_by"]
        return pd.DataFrame(rows, columns=["plan_id", *columns])[columns]


def check_source(source: str) -> str:
    """A source name: 1–40 letters, digits, '_', '.' or '-' (``standard``, ``osm``)."""
    text = str(source or "")
    if not (0 < len(text) <= 40) or not all(c.isalnum() or c in "_.-" for c in text):
        raise InputError("a source is 1–40 letters, digits, '_', '.' or '-'", where="source")
    return text


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


# a standard address file ------------------------------------------------------------------
def _header_key(value) -> str:
    return str(value or "").strip().lower().replace(" ", "").replace("*", "").lstrip("\ufeff")


def read_standard(
    data: bytes, filename: str, encoding: str | None = None, most_rows: int = MAX_ROWS
) -> pd.DataFrame:
    """The entries of a standard address file (标准地址), checked whole.

    The file is a CSV (UTF-8 with or without BOM, or GBK; ``encoding`` to say which) with
    a header naming an address column and a building id column, lon/lat (WGS84) columns,
    or both (:data:`COLUMNS`). Blank rows are skipped; every other row needs its address
    and a building id or both coordinates.

    Returns
    -------
    pandas.DataFrame
        ``row`` (the file's, header row 1) and :data:`ENTRY_COLUMNS`; kind ``address``,
        not public (an address is about one building: data/privacy.py).

    Raises
    ------
    InputError
        Naming the file and the first bad rows (up to :data:`MAX_PROBLEMS`); a file
        without the columns names its header row.
    TooLarge
        A file of more than ``most_rows`` rows.
    """
    text = _decode(data, filename, encoding)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InputError(f"not a well-formed CSV ({exc})", filename) from None
    if not rows:
        raise InputError("the file is empty", filename)
    header = {_header_key(h): i for i, h in reversed(list(enumerate(rows[0])))}
    col = {f: next((header[n] for n in names if n in header), None) for f, names in COLUMNS.items()}
    if col["address"] is None or (
        col["building_id"] is None and (col["lon"] is None or col["lat"] is None)
    ):
        raise InputError(
            "the header needs an address column (地址, address) and a building id column "
            "(楼栋编号, building_id) or lon and lat (经度, 纬度)",
            filename,
            where="row 1",
        )
    if len(rows) - 1 > most_rows:
        raise TooLarge(f"{len(rows) - 1:,} rows; an address file holds at most {most_rows:,}")
    out, problems = [], []
    for n, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        entry, problem = _standard_row(cells, col)
        if problem:
            problems.append((n, problem))
            if len(problems) >= MAX_PROBLEMS:
                break
        else:
            out.append({"row": n, **entry})
    if problems:
        more = "".join(f"; row {n}: {p}" for n, p in problems[1:])
        raise InputError(problems[0][1] + more, filename, where=f"row {problems[0][0]}")
    if not out:
        raise InputError("holds no address rows", filename)
    return pd.DataFrame(out, columns=["row", *ENTRY_COLUMNS])


def _standard_row(cells: list[str], col: dict) -> tuple[dict, str | None]:
    def cell(field: str) -> str:
        at = col[field]
        return cells[at].strip() if at is not None and at < len(cells) else ""

    address = cell("address")
    if not address:
        return {}, "no address"
    if len(address) > MAX_TEXT:
        return {}, f"address longer than {MAX_TEXT} characters"
    building, lon_text, lat_text = cell("building_id"), cell("lon"), cell("lat")
    lon, lat = _number(lon_text), _number(lat_text)
    if (lon_text or lat_text) and (lon is None or lat is None):
        return {}, "lon and lat must both be numbers"
    if lon is not None and lat is not None:
        x0, y0, x1, y1 = _CHINA
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            swapped = x0 <= lat <= x1 and y0 <= lon <= y1
            return {}, "lon/lat swapped" if swapped else "lon/lat outside China (WGS84)"
    if not building and lon is None:
        return {}, "neither a building id nor lon/lat"
    entry = {"text": address, "kind": "address", "building_id": building or None}
    return entry | {"compound_id": None, "lon": lon, "lat": lat, "public": False}, None


# the OSM file's names and addr:* tags ----------------------------------------------------
class _Names(osmium.SimpleHandler):
    """Every named or addressed object of an OSM file, as an entry at its point."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.regions: set[str] = set()

    def _add(self, tags: dict, kind_of: str, ident: str, lon: float, lat: float) -> None:
        for key in ("addr:province", "addr:city", "addr:district"):
            if tags.get(key):
                self.regions.add(tags[key])
        if tags.get("boundary") == "administrative" and tags.get("name"):
            self.regions.add(tags["name"])
            return
        building = ident if kind_of == "building" else None
        compound = ident if kind_of == "compound" else None
        base = {"building_id": building, "compound_id": compound, "lon": lon, "lat": lat}
        name = tags.get("name:zh") or tags.get("name")
        if name and not tags.get("highway") and not tags.get("route"):
            kind = kind_of if kind_of in ("building", "compound") else "place"
            self.rows.append({"text": name, "kind": kind, **base})
        street, number = tags.get("addr:street"), tags.get("addr:housenumber")
        if tags.get("addr:full"):
            self.rows.append({"text": tags["addr:full"], "kind": "address", **base})
        if street:
            text = street + (number + ("" if number.endswith("号") else "号") if number else "")
            self.rows.append({"text": text, "kind": "address", **base})

    def node(self, n) -> None:
        if n.tags and n.location.valid():  # no footprint: it names the building it is in
            self._add(dict(n.tags), "place", "", n.location.lon, n.location.lat)

    def area(self, a) -> None:
        tags = dict(a.tags)
        if not ("name" in tags or any(k.startswith("addr:") for k in tags)):
            return
        try:
            geom = shapely_from_area(a)
        except RuntimeError:
            return
        point = geom.representative_point()
        ident = ("w" if a.from_way() else "r") + str(a.orig_id())
        if tags.get("building", "no") != "no":
            kind = "building"
        elif tags.get("landuse") == "residential" or tags.get("amenity") or tags.get("barrier"):
            kind = "compound"
        else:
            kind = "place"
        self._add(tags, kind, ident, point.x, point.y)


_WKB = osmium.geom.WKBFactory()


def shapely_from_area(a):
    import shapely

    return shapely.from_wkb(_WKB.create_multipolygon(a))


def read_osm_names(path: str | Path) -> pd.DataFrame:
    """The names and ``addr:*`` tags of an OSM file, as entries.

    Buildings are named by their OSM id (``w123``, as the plan's buildings layer), compounds
    (``landuse=residential``, a campus, a walled area) by theirs, and any other named or
    addressed object (a shop, a school's node, an entrance) by its point; roads and routes
    are left out. Administrative names (``addr:province``, ``addr:city``,
    ``addr:district``, administrative areas) come as entries of kind :data:`REGION`.
    All are public: OSM is public data.

    Raises
    ------
    InputError
        If the file is missing, not OSM, or unreadable.
    """
    from wangge.data.osm import check_osm_file

    path = Path(path)
    check_osm_file(path)
    handler = _Names()
    try:
        handler.apply_file(str(path), locations=True)
    except RuntimeError as exc:
        raise InputError(f"cannot be read as OSM ({exc})", path) from None
    regions = [
        {"text": r, "kind": REGION, "lon": None, "lat": None} for r in sorted(handler.regions)
    ]
    frame = pd.DataFrame(handler.rows + regions)
    for c in ENTRY_COLUMNS:
        if c not in frame:
            frame[c] = None
    frame["public"] = True
    frame["building_id"] = frame["building_id"].replace("", None)
    frame = frame.drop_duplicates(["text", "kind", "building_id", "compound_id"])
    frame = frame.reset_index(drop=True)
    frame.insert(0, "row", np.arange(1, len(frame) + 1))
    return frame[["row", *ENTRY_COLUMNS]]
