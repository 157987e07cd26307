"""The protobuf half of the MVT encoder: varints, per-feature byte pieces and Value messages.

The wire format is written directly (no protobuf library): a feature's message is built
from pieces (one part of each feature's bytes: a field tag, a length, packed varints) that
:func:`interleave` lays out feature after feature, all as numpy arrays.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import numpy as np

# A value of a layer's value table: its kind ("string", "int", "double", "bool") and value.
# The kind is part of the key because True == 1 and 1.0 == 1 in Python.
ValueKey = tuple[str, Any]


_BYTE = [bytes((b,)) for b in range(128)]
_DOUBLE = struct.Struct("<d").pack


class Piece(NamedTuple):
    """One part of each feature's message, for :func:`interleave`.

    Attributes
    ----------
    data
        The bytes of all features.
    start
        Where each feature's bytes start in ``data``.
    length
        How many bytes each feature has (0 to leave the part out).
    """

    data: np.ndarray
    start: np.ndarray
    length: np.ndarray


def varint(n: int) -> bytes:
    """The base-128 varint of a non-negative integer."""
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Base-128 varints of non-negative integers, concatenated, and the bytes of each."""
    v = np.asarray(values).astype(np.uint64)
    size = np.ones(len(v), np.int64)
    for k in range(1, 10):
        more = v >= np.uint64(1 << (7 * k))
        if not more.any():
            break
        size += more
    start = np.cumsum(size) - size
    out = np.empty(int(size.sum()), np.uint8)
    for k in range(int(size.max(initial=0))):
        at = np.flatnonzero(size > k)
        byte = (v[at] >> np.uint64(7 * k)) & np.uint64(0x7F)
        out[start[at] + k] = byte | (size[at] > k + 1).astype(np.uint64) << np.uint64(7)
    return out, size


def varint_piece(values: np.ndarray, per_feature: np.ndarray) -> Piece:
    """Packed varints, ``per_feature[i]`` of them for feature ``i``, as a piece.

    ``per_feature`` may be a boolean mask, for one optional varint per feature.
    """
    per_feature = np.asarray(per_feature).astype(np.int64)
    data, size = varints(values)
    ends = np.concatenate([[0], np.cumsum(size)])
    last = np.cumsum(per_feature)
    start = ends[last - per_feature]
    return Piece(data, start, ends[last] - start)


def const_piece(byte: int | np.ndarray, n: int, present: np.ndarray | None = None) -> Piece:
    """One byte per feature (the same or one each), left out where ``present`` is false."""
    data = np.broadcast_to(np.asarray(byte, dtype=np.uint8), (n,))
    length = np.ones(n, np.int64) if present is None else np.asarray(present).astype(np.int64)
    return Piece(data, np.arange(n), length)


def interleave(pieces: list[Piece]) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's bytes of every piece in turn, features one after another.

    Returns
    -------
    data
        The bytes of feature 0 (piece 0, piece 1, ...), then of feature 1, ...
    size
        Bytes per feature.
    """
    lengths = np.column_stack([length for _, _, length in pieces])
    flat = lengths.reshape(-1)
    dest = (np.cumsum(flat) - flat).reshape(lengths.shape)
    out = np.empty(int(flat.sum()), np.uint8)
    for k, (data, start, length) in enumerate(pieces):
        total = int(length.sum())
        if not total:
            continue
        within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
        out[np.repeat(dest[:, k], length) + within] = data[np.repeat(start, length) + within]
    return out, lengths.sum(axis=1)


def value_message(value: ValueKey) -> bytes:
    """The Value message of one ``(kind, value)``."""
    kind, v = value
    if kind == "string":
        raw = v.encode("utf-8", "replace")
        return b"\x0a" + varint(len(raw)) + raw
    if kind == "double":
        return b"\x19" + _DOUBLE(v)
    if kind == "bool":
        return b"\x38\x01" if v else b"\x38\x00"
    if v >= 0:
        return b"\x28" + varint(v)  # uint_value
    return b"\x30" + varint((-v << 1) - 1)  # sint_value, zigzag


def tags_piece(codes: np.ndarray) -> Piece:
    """Packed ``(key, value)`` index pairs of each feature, as a piece."""
    present = codes >= 0
    row, key = np.nonzero(present)
    pairs = np.column_stack([key, codes[row, key]]).reshape(-1)
    return varint_piece(pairs, 2 * present.sum(axis=1))
