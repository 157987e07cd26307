"""The run table of a city job and the street results waiting to become one plan version.

A city run (``wangge city``, :mod:`wangge.city`) is one row per street in ``wg_city_runs``:
its state (``pending``, ``running``, ``done``, ``failed``), the hash of the inputs it was
run on, its error, how many times it was tried and by which worker, and a few figures.
A worker writes its street's rows straight into the store's features, under the run's
*stage*: a negative version of the city plan that no reader lists (``wg_city_stages``),
each row marked with its street (``_street`` in its properties); it records each layer's
count, columns and extent in ``wg_city_layers`` and marks the street done, all in one
transaction, so a street is either done with its rows stored or not done at all. The
client's assembly then only writes the version's layer rows pointing at the stage (the
``source`` a kept layer uses): no feature is copied, however large the city.

Both tables live beside the accounts in the store (:attr:`Store.book`'s engine), so the
PostGIS store shares them between every worker of a cluster and the GeoPackage store keeps
them in its file. Rerunning a city skips the streets already done on the same inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

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
    "wg_city_layers",
    _meta,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("street", sa.Text, primary_key=True),
    sa.Column("layer", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("info", sa.Text, nullable=False),  # JSON: count, geometry type, bbox, columns
    sa.Column("dtypes", sa.Text, nullable=False),  # JSON
)
stages_table = sa.Table(
    "wg_city_stages",
    _meta,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("stage", sa.Integer, nullable=False),  # negative: never a listed version
    sa.Column("assembled", sa.Boolean, nullable=False),  # a version points at its rows
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
    """The run table, the stages and the parts of every city run in one store."""

    def __init__(self, engine: sa.Engine, store):
        self.engine = engine
        self.store = store
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})"))
            _meta.create_all(conn)

    def plan(self, run_id: str, streets: list[tuple[str, str, str]]) -> tuple[list[str], int]:
        """Enter a run's streets (code, name, input hash); return the codes that need to
        run (new ones, those not done, those done on other inputs) and the stage their
        rows go under. Streets no longer in the city are removed.

        A stage a saved version points at never changes: when such a run has streets to
        run again, the rows of the streets that stay done are copied to a fresh stage."""
        t = runs_table
        todo = []
        with self.engine.begin() as conn:
            self._lock(conn, run_id)
            have = {
                r.street: r for r in conn.execute(sa.select(t).where(t.c.run_id == run_id)).all()
            }
            wanted = {code for code, _, _ in streets}
            keep = [
                code
                for code, _, digest in streets
                if code in have and have[code].state == "done" and have[code].input_hash == digest
            ]
            todo = [code for code, _, _ in streets if code not in set(keep)]
            stage, assembled = self._stage(conn, run_id)
            dropped = sorted((set(have) - wanted) | {c for c in todo if c in have})
            if assembled and (todo or dropped):
                fresh = self._new_stage(conn, run_id)
                if keep:
                    self.store.copy_staged(conn, run_id, stage, fresh, keep)
                stage = fresh
            elif dropped:
                for code in dropped:
                    self.store.delete_staged(conn, run_id, stage, code)
            gone = sorted(set(have) - wanted)
            if gone:
                conn.execute(t.delete().where((t.c.run_id == run_id) & t.c.street.in_(gone)))
            if dropped:
                conn.execute(
                    parts_table.delete().where(
                        (parts_table.c.run_id == run_id) & parts_table.c.street.in_(dropped)
                    )
                )
            for code, name, digest in streets:
                if code not in todo:
                    continue
                values = {
                    "name": name,
                    "state": "pending",
                    "input_hash": digest,
                    "error": "",
                    "updated_at": _now(),
                }
                if code not in have:
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
        return todo, stage

    def _lock(self, conn: sa.Connection, run_id: str) -> None:
        if self.engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": run_id})

    def _stage(self, conn: sa.Connection, run_id: str) -> tuple[int, bool]:
        row = conn.execute(
            sa.select(stages_table.c.stage, stages_table.c.assembled).where(
                stages_table.c.run_id == run_id
            )
        ).first()
        if row is None:
            return self._new_stage(conn, run_id), False
        return int(row.stage), bool(row.assembled)

    def _new_stage(self, conn: sa.Connection, run_id: str) -> int:
        """The next negative version of the plan, below every stage it ever had: the
        current one, and every one a saved version points at (``wg_layers.source``), so a
        dropped run's successor never writes into rows a version reads."""
        low = conn.execute(
            sa.select(sa.func.min(stages_table.c.stage)).where(stages_table.c.run_id == run_id)
        ).scalar()
        used = conn.execute(
            sa.text("SELECT min(source) FROM wg_layers WHERE plan_id = :p"), {"p": run_id}
        ).scalar()
        stage = min(int(low or 0), int(used or 0), 0) - 1
        conn.execute(stages_table.delete().where(stages_table.c.run_id == run_id))
        conn.execute(stages_table.insert().values(run_id=run_id, stage=stage, assembled=False))
        return stage

    def assembled(self, run_id: str) -> None:
        """Mark the run's stage as pointed at by a saved version: it never changes again."""
        with self.engine.begin() as conn:
            conn.execute(
                stages_table.update().where(stages_table.c.run_id == run_id).values(assembled=True)
            )

    def begin(self, run_id: str, street: str, worker: str, digest: str) -> bool:
        """Mark a street running on ``worker`` (one more attempt); False when it is already
        done on ``digest``: a task Dask runs again after its worker died between storing
        the street and answering."""
        t = runs_table
        with self.engine.begin() as conn:
            hit = conn.execute(
                t.update()
                .where(
                    (t.c.run_id == run_id)
                    & (t.c.street == street)
                    & ((t.c.state != "done") | (t.c.input_hash != digest))
                )
                .values(
                    state="running", worker=worker, attempts=t.c.attempts + 1, updated_at=_now()
                )
            )
        return hit.rowcount > 0

    def finish(
        self,
        run_id: str,
        street: str,
        digest: str,
        stage: int,
        flat: dict[str, Rows],
        figures: dict,
    ) -> bool:
        """Write a street's rows under ``stage``, its layers' infos, and mark it done on
        ``digest``, in one transaction. False (and nothing written) when the street is
        already done on ``digest`` (a task Dask ran twice) or the stage moved on."""
        t = runs_table
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                row = conn.execute(
                    sa.select(t.c.state, t.c.input_hash)
                    .where((t.c.run_id == run_id) & (t.c.street == street))
                    .with_for_update()
                ).first()
            else:  # SQLite: take the write lock before reading
                conn.execute(
                    t.update()
                    .where((t.c.run_id == run_id) & (t.c.street == street))
                    .values(updated_at=_now())
                )
                row = conn.execute(
                    sa.select(t.c.state, t.c.input_hash).where(
                        (t.c.run_id == run_id) & (t.c.street == street)
                    )
                ).first()
            current, _ = self._stage(conn, run_id)
            if (
                row is None
                or current != stage
                or (row.state == "done" and row.input_hash == digest)
            ):
                return False
            for name, r in flat.items():
                if r.records:
                    self.store.write_staged(conn, run_id, stage, name, r.records)
            conn.execute(
                parts_table.insert(),
                [
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
                    }
                    for position, (name, r) in enumerate(flat.items())
                ],
            )
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
        return True

    def fail(self, run_id: str, street: str, error: str, figures: dict | None = None) -> None:
        """Mark a street failed with its error (it wrote nothing: its transaction never
        committed)."""
        t = runs_table
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where((t.c.run_id == run_id) & (t.c.street == street) & (t.c.state != "done"))
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

    def pieces(self, run_id: str) -> tuple[int, dict[str, list[tuple[str, dict, dict]]]]:
        """The run's stage, and every done street's layer infos as ``(street, info,
        dtypes)``, by layer in street-code order (:func:`merge_parts` joins them)."""
        p = parts_table
        out: dict[str, list] = {}
        with self.engine.connect() as conn:
            stage, _ = self._stage(conn, run_id)
            result = conn.execute(
                sa.select(p).where(p.c.run_id == run_id).order_by(p.c.street, p.c.position)
            )
            for r in result:
                out.setdefault(r.layer, []).append(
                    (r.street, json.loads(r.info), json.loads(r.dtypes))
                )
        return stage, out

    def drop(self, run_id: str) -> None:
        """Forget a run's table, parts and stage (rows a saved version points at stay)."""
        with self.engine.begin() as conn:
            stage = conn.execute(
                sa.select(stages_table.c.stage, stages_table.c.assembled).where(
                    stages_table.c.run_id == run_id
                )
            ).first()
            if stage is not None and not stage.assembled:
                for (street,) in conn.execute(
                    sa.select(runs_table.c.street).where(runs_table.c.run_id == run_id)
                ):
                    self.store.delete_staged(conn, run_id, stage.stage, street)
            for table in (runs_table, parts_table, stages_table):
                conn.execute(table.delete().where(table.c.run_id == run_id))


def merge_parts(name: str, pieces: list[tuple[str, dict, dict]]) -> Rows:
    """One layer's info over every street (no records: they are staged): columns in
    first-seen order, a dtype kept where every street agrees, bounding boxes joined."""
    columns: list[str] = []
    seen: dict[str, set[str]] = {}
    count = 0
    boxes = []
    types = []
    for _street, info, dt in pieces:
        for col in info["columns"]:
            if col not in columns:
                columns.append(col)
                seen[col] = set()
            if info["count"]:
                seen[col].add(dt.get(col, "object"))
        count += info["count"]
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
    return Rows(LayerInfo(name, count, gtype, bbox, tuple(columns)), dtypes, [])


def _one_dtype(kinds: set[str]) -> str:
    """The dtype a column keeps across streets: theirs if they agree, float where they
    are all numbers (an int column with nulls in one street), else ``object``."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds and all(k.startswith(("int", "float", "uint")) for k in kinds):
        return "float64"
    return "object"
