"""The run table of a city job and the street results waiting to become one plan version.

A city run (``wangge city``, :mod:`wangge.city`) is one row per street in ``wg_city_runs``:
its state (``pending``, ``running``, ``done``, ``failed``), the hash of the inputs it was
run on, its error, how many times it was tried and by which worker, and a few figures.
A worker writes its street's plan layers to ``wg_city_parts`` (one row per layer, the
flattened rows of :func:`wangge.data.store.flatten` packed with msgpack) and marks the
street done in the same transaction, so a street is either done with its result stored or
not done at all. The client assembles the parts into the city plan's next version.

Both tables live beside the accounts in the store (:attr:`Store.book`'s engine), so the
PostGIS store shares them between every worker of a cluster and the GeoPackage store keeps
them in its file. Rerunning a city skips the streets already done on the same inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import msgpack
import sqlalchemy as sa

from wangge.data.store import LayerInfo, Rows, merge_geometry_types

_meta = sa.MetaData()
runs_table = sa.Table(
    "wg_city_runs",
    _meta,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("street", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("input_hash", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("seconds", sa.Float),
    sa.Column("households", sa.Integer),
    sa.Column("grids", sa.Integer),
    sa.Column("flagged", sa.Integer),
    sa.Column("errors", sa.Integer),
    sa.Column("peak_rss_mb", sa.Float),
    sa.Column("updated_at", sa.Text, nullable=False),
)
parts_table = sa.Table(
    "wg_city_parts",
    _meta,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("street", sa.Text, primary_key=True),
    sa.Column("layer", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("info", sa.Text, nullable=False),  # JSON: count, geometry type, bbox, columns
    sa.Column("dtypes", sa.Text, nullable=False),  # JSON
    sa.Column("records", sa.LargeBinary, nullable=False),  # msgpack of the flattened rows
)
#: PostgreSQL advisory lock taken while the tables are made (shared with the accounts).
_DDL_LOCK = 20261130
STATES = ("pending", "running", "done", "failed")
#: The figures a worker reports for its street, stored in the row.
FIGURES = ("seconds", "households", "grids", "flagged", "errors", "peak_rss_mb")


@dataclass(frozen=True)
class StreetRun:
    """One street's row of a run."""

    street: str
    name: str
    state: str
    input_hash: str
    attempts: int
    worker: str
    error: str
    figures: dict


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunTable:
    """The run table and the parts of every city run in one store."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})"))
            _meta.create_all(conn)

    def plan(self, run_id: str, streets: list[tuple[str, str, str]]) -> list[str]:
        """Enter a run's streets (code, name, input hash); return the codes that need to
        run: new ones, those not done, and those done on other inputs (set back to
        pending, their old result dropped). Streets no longer in the city are removed."""
        t = runs_table
        todo = []
        with self.engine.begin() as conn:
            have = {
                r.street: r for r in conn.execute(sa.select(t).where(t.c.run_id == run_id)).all()
            }
            wanted = {code for code, _, _ in streets}
            gone = sorted(set(have) - wanted)
            if gone:
                conn.execute(t.delete().where((t.c.run_id == run_id) & t.c.street.in_(gone)))
                conn.execute(
                    parts_table.delete().where(
                        (parts_table.c.run_id == run_id) & parts_table.c.street.in_(gone)
                    )
                )
            for code, name, digest in streets:
                row = have.get(code)
                if row is not None and row.state == "done" and row.input_hash == digest:
                    continue
                todo.append(code)
                values = {
                    "name": name,
                    "state": "pending",
                    "input_hash": digest,
                    "error": "",
                    "updated_at": _now(),
                }
                if row is None:
                    conn.execute(
                        t.insert().values(
                            run_id=run_id, street=code, attempts=0, worker="", **values
                        )
                    )
                else:
                    conn.execute(
                        t.update()
                        .where((t.c.run_id == run_id) & (t.c.street == code))
                        .values(**values)
                    )
        return todo

    def begin(self, run_id: str, street: str, worker: str) -> None:
        """Mark a street running on ``worker`` (one more attempt)."""
        t = runs_table
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where((t.c.run_id == run_id) & (t.c.street == street))
                .values(
                    state="running", worker=worker, attempts=t.c.attempts + 1, updated_at=_now()
                )
            )

    def finish(
        self, run_id: str, street: str, digest: str, flat: dict[str, Rows], figures: dict
    ) -> None:
        """Store a street's layers and mark it done on ``digest``, in one transaction."""
        p = parts_table
        rows = [
            {
                "run_id": run_id,
                "street": street,
                "layer": name,
                "position": position,
                "info": json.dumps(
                    {
                        "count": r.info.count,
                        "geometry_type": r.info.geometry_type,
                        "bbox": r.info.bbox,
                        "columns": list(r.info.columns),
                    },
                    ensure_ascii=False,
                ),
                "dtypes": json.dumps(r.dtypes),
                "records": msgpack.packb(r.records, use_bin_type=True),
            }
            for position, (name, r) in enumerate(flat.items())
        ]
        t = runs_table
        with self.engine.begin() as conn:
            conn.execute(p.delete().where((p.c.run_id == run_id) & (p.c.street == street)))
            if rows:
                conn.execute(p.insert(), rows)
            conn.execute(
                t.update()
                .where((t.c.run_id == run_id) & (t.c.street == street))
                .values(
                    state="done",
                    input_hash=digest,
                    error="",
                    updated_at=_now(),
                    **{k: figures.get(k) for k in FIGURES},
                )
            )

    def fail(self, run_id: str, street: str, error: str, figures: dict | None = None) -> None:
        """Mark a street failed with its error (its earlier result, if any, is dropped)."""
        t, p = runs_table, parts_table
        with self.engine.begin() as conn:
            conn.execute(p.delete().where((p.c.run_id == run_id) & (p.c.street == street)))
            conn.execute(
                t.update()
                .where((t.c.run_id == run_id) & (t.c.street == street))
                .values(
                    state="failed",
                    error=error[:2000],
                    updated_at=_now(),
                    **{k: (figures or {}).get(k) for k in FIGURES},
                )
            )

    def streets(self, run_id: str) -> list[StreetRun]:
        """The run's streets in code order."""
        t = runs_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.run_id == run_id).order_by(t.c.street)).all()
        return [
            StreetRun(
                r.street,
                r.name,
                r.state,
                r.input_hash,
                r.attempts,
                r.worker,
                r.error,
                {k: getattr(r, k) for k in FIGURES},
            )
            for r in rows
        ]

    def pieces(self, run_id: str) -> dict[str, list[tuple[str, dict, dict, list]]]:
        """Every done street's layers as ``(street, info, dtypes, records)``, by layer and
        in street-code order, so the plan does not depend on the order streets finished
        in (:func:`merge_parts` joins them)."""
        p = parts_table
        out: dict[str, list] = {}
        with self.engine.connect() as conn:
            result = conn.execute(
                sa.select(p).where(p.c.run_id == run_id).order_by(p.c.street, p.c.position)
            )
            for r in result:
                records = [
                    (c, pc, j, w, None if b is None else tuple(b))
                    for c, pc, j, w, b in msgpack.unpackb(r.records, raw=False)
                ]
                piece = (r.street, json.loads(r.info), json.loads(r.dtypes), records)
                out.setdefault(r.layer, []).append(piece)
        return out

    def drop(self, run_id: str) -> None:
        """Forget a run: its rows and its parts."""
        with self.engine.begin() as conn:
            conn.execute(runs_table.delete().where(runs_table.c.run_id == run_id))
            conn.execute(parts_table.delete().where(parts_table.c.run_id == run_id))


def merge_parts(name: str, pieces: list[tuple[str, dict, dict, list]]) -> Rows:
    """One layer's rows from every street: columns in first-seen order, a dtype kept only
    where every street agrees (else ``object``), bounding boxes joined."""
    columns: list[str] = []
    seen: dict[str, set[str]] = {}
    records: list = []
    boxes = []
    types = []
    for _street, info, dt, recs in pieces:
        for col in info["columns"]:
            if col not in columns:
                columns.append(col)
                seen[col] = set()
            if info["count"]:
                seen[col].add(dt.get(col, "object"))
        records.extend(recs)
        if info["bbox"]:
            boxes.append(info["bbox"])
        if info["geometry_type"] and info["count"]:
            types.append(info["geometry_type"])
    bbox = None
    if boxes:
        bbox = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    dtypes = {c: _one_dtype(seen[c]) for c in columns}
    gtype = merge_geometry_types(types) if types else pieces[0][1]["geometry_type"]
    return Rows(LayerInfo(name, len(records), gtype, bbox, tuple(columns)), dtypes, records)


def _one_dtype(kinds: set[str]) -> str:
    """The dtype a column keeps across streets: theirs if they agree, float where they
    are all numbers (an int column with nulls in one street), else ``object``."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds and all(k.startswith(("int", "float", "uint")) for k in kinds):
        return "float64"
    return "object"
