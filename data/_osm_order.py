"""Putting an OSM file in the order libosmium reads: sorted by type then id, ids made
positive, each object once; and the ids wangge gives OSM objects (``n1``, ``w-5``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import osmium

from wangge.errors import InputError

#: Ids ≤ 0 (JOSM's new objects) are read as ``NEGATIVE_BASE - id``: libosmium's node
#: location index keeps positive ids only. Real OSM ids are far below it (2**50 ≈ 1.1e15).
NEGATIVE_BASE = 2**50


def osm_id(kind: str, ident: int) -> str:
    """Return the string id wangge uses for an OSM object: ``n123``, ``w123`` or ``r-12``.

    ``ident`` may be an id as read from a file whose ids ≤ 0 were shifted to positive ones
    (see :func:`positive_ids`); the string id keeps the sign the object has in the file.
    """
    if ident >= NEGATIVE_BASE:
        ident = NEGATIVE_BASE - ident
    return f"{kind}{ident}"


def unsigned(ident: int) -> int:
    return ident if ident > 0 else NEGATIVE_BASE - ident


def read_error(exc: Exception, source: Path, handler: object | None = None) -> InputError:
    """The :class:`InputError` for an exception raised while libosmium read ``source``."""
    detail = str(exc) or type(exc).__name__
    where = handler.where if handler is not None else None
    ends = ("no element found", "gzip error", "bzip2 error", "unexpected EOF", "truncated")
    if any(w in detail for w in ends):
        detail = f"the file ends too early or is damaged (truncated?): {detail}"
        where = None
    elif "unknown encoding" in detail:
        detail = f"{detail} (OSM XML is read in UTF-8: convert the file to UTF-8)"
        where = None
    elif not isinstance(exc, RuntimeError | osmium.InvalidLocationError):
        detail = f"{type(exc).__name__}: {detail}"
    else:
        where = None  # libosmium's own errors come from the parser, not from one object
    return InputError(f"cannot be read as OSM data: {detail}", source, where)


def claims_sorted(path: Path) -> bool:
    """Whether ``path`` is a PBF whose header says it is sorted by type, then id."""
    if not path.name.lower().endswith(".pbf"):
        return False
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.NOTHING)
        try:
            return reader.header().get("sorting", "") == "Type_then_ID"
        finally:
            reader.close()
    except Exception:
        return False


def sorted_copy(path: Path, dst: Path, source: Path, once: bool = False) -> Path:
    """Write ``path`` sorted by type, then id to the PBF ``dst``: every copy of an object
    kept, or with ``once`` only its newest version (what ``osmium merge`` keeps)."""
    reader = osmium.MergeInputReader()
    try:
        reader.add_file(str(path))
        writer = osmium.SimpleWriter(str(dst), overwrite=True)
        try:
            reader.apply(writer, simplify=once)
        finally:
            writer.close()
    except Exception as exc:
        raise read_error(exc, source) from exc
    return dst


def positive_ids(path: Path, tmp: Path, source: Path) -> Path:
    """Copy the sorted file ``path`` with every id ≤ 0 shifted above ``NEGATIVE_BASE``.

    Node refs and relation members move with their objects; :func:`osm_id` shifts them
    back, so the string ids keep their sign. The copy is sorted again.
    """
    shifted = tmp / "positive.osm.pbf"
    try:
        with osmium.SimpleWriter(str(shifted), overwrite=True) as writer:
            for obj in osmium.FileProcessor(str(path)):
                ident = unsigned(obj.id)
                if obj.is_node():
                    writer.add_node(obj.replace(id=ident))
                elif obj.is_way():
                    refs = [unsigned(nd.ref) for nd in obj.nodes]
                    writer.add_way(obj.replace(id=ident, nodes=refs))
                elif obj.is_relation():
                    members = [(m.type, unsigned(m.ref), m.role) for m in obj.members]
                    writer.add_relation(obj.replace(id=ident, members=members))
    except Exception as exc:
        raise read_error(exc, source) from exc
    return sorted_copy(shifted, tmp / "positive-sorted.osm.pbf", source)


def copies(path: Path) -> Counter:
    """The objects of the sorted file ``path`` given more than once, as a ``stats`` line."""
    seen, first, extra = None, None, 0
    for obj in osmium.FileProcessor(str(path)):
        key = (obj.type_str(), obj.id)
        if key == seen:
            extra += 1
            first = first or osm_id(*key)
        seen = key
    what = (
        f"objects given more than once (the newest copy kept, as osmium merge does; first {first})"
    )
    return Counter({what: extra})
