"""A city's streets as Dask tasks: cuts written and hashed, one task each, a progress bar.

Every city job (:mod:`wangge.city` delineates, :mod:`wangge.city_access` measures walking
access, :mod:`wangge.city_overlay` scores risk) fans out the same way: the client writes
one cut file per street (:func:`write_cuts`, hashed by content), submits one task per
street carrying only plain values (:func:`run_tasks`) to a LocalCluster of
single-threaded worker processes, a running scheduler or the caller's client, or runs
them in this process (``workers=0``), collects them as they complete behind a progress
bar, and records a street whose worker died more often than Dask retries as failed. A
task returns a small status, ``{street, state, worker, ...}``; :func:`guarded` makes one
from a function on the street's spec, so that a street's failure stays its own, and
:func:`run_cuts` writes the cuts, runs the tasks and raises if a street failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.errors import InputError, WanggeError

#: How often Dask runs a task again when its worker dies.
RETRIES = 2


# the cuts ------------------------------------------------------------------------------


def write_cuts(cuts: dict[str, dict], run_dir: Path, settings: dict) -> list[dict]:
    """Write each street's cut to ``run_dir/cuts/CODE.pkl`` (atomically) and return the
    task specs, largest street first (so the last tasks to start are short ones). A cut
    is rewritten only when its bytes change."""
    folder = run_dir / "cuts"
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    salt = json.dumps(settings, sort_keys=True, ensure_ascii=False).encode()
    for code, cut in cuts.items():
        blob = pickle.dumps(cut, protocol=5)
        digest = content_digest(cut, salt)
        path = folder / f"{code}.pkl"
        tmp = folder / f".{code}.{os.getpid()}.pkl"
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        specs.append(
            {"street": code, "cut": str(path), "hash": digest, "size": len(blob), **settings}
        )
    specs.sort(key=lambda s: (-s["size"], s["street"]))
    return specs


def content_digest(value: Any, salt: bytes = b"") -> str:
    """A SHA-256 of what a cut holds, the same for equal contents however the frames were
    made (pickled bytes are not: a copied frame pickles differently): per frame its
    columns, dtypes, values and geometries' WKB; files by their bytes."""
    h = hashlib.sha256(salt)
    _feed(h, value)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(f"<{key}>".encode())
            _feed(h, value[key])
    elif isinstance(value, pd.DataFrame):
        frame = value
        h.update(repr((list(frame.columns), [str(t) for t in frame.dtypes])).encode())
        if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
            h.update(str(frame.crs).encode())
            wkb = shapely.to_wkb(frame.geometry.to_numpy(), byte_order=1)
            h.update(b"".join(b"" if w is None else w for w in wkb))
            frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        for col in frame.columns:
            try:
                hashed = pd.util.hash_pandas_object(frame[col], index=False).to_numpy()
            except TypeError:  # lists and other unhashable cells
                hashed = frame[col].astype(str).to_numpy()
            h.update(
                np.ascontiguousarray(hashed).tobytes()
                if hashed.dtype != object
                else repr(hashed.tolist()).encode()
            )
    elif hasattr(value, "__dataclass_fields__"):
        _feed(h, {k: getattr(value, k) for k in value.__dataclass_fields__ if k != "stats"})
    elif isinstance(value, str) and value.endswith(".geojson") and Path(value).is_file():
        h.update(Path(value).read_bytes())
    else:
        h.update(repr(value).encode())


def load_cut(spec: dict) -> Any:
    """The cut a task's ``spec`` names, as :func:`write_cuts` wrote it."""
    with open(spec["cut"], "rb") as fh:
        return pickle.load(fh)


def check_run_dir(run_dir: str | Path | None, scheduler: str | None) -> None:
    """Refuse a scheduler without a run directory: its workers must read the cuts."""
    if scheduler is not None and run_dir is None:
        raise InputError(
            "with a scheduler, give run_dir: a path every worker can read", where="run_dir"
        )


class _folder:
    """``run_dir/sub`` made, or a temporary directory removed on exit."""

    def __init__(self, run_dir: str | Path | None, sub: str):
        self.tmp = None if run_dir else tempfile.TemporaryDirectory(prefix=f"wangge-{sub}-")
        self.path = Path(self.tmp.name) if self.tmp else Path(run_dir) / sub

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


# one task, on a worker -----------------------------------------------------------------


def worker_name() -> str:
    """This worker process, as a street's status names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def error_text(exc: BaseException) -> str:
    """An exception as a street's status and the run table record it."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def guarded(spec: dict, work: Callable[[dict], dict]) -> dict:
    """The status of ``work`` on one street's ``spec``: ``done`` with what it returns, or
    ``failed`` with its error, each with the worker and the seconds it took."""
    start = time.perf_counter()
    worker = worker_name()
    try:
        result = work(spec)
        seconds = round(time.perf_counter() - start, 3)
        return {
            "street": spec["street"],
            "state": "done",
            "worker": worker,
            **result,
            "seconds": seconds,
        }
    except Exception as exc:  # a street's failure is its own: reported, the others go on
        return {
            "street": spec["street"],
            "state": "failed",
            "worker": worker,
            "error": error_text(exc),
            "seconds": round(time.perf_counter() - start, 3),
        }


# the fan-out ---------------------------------------------------------------------------


def run_tasks(
    fn: Callable[[dict], dict],
    specs: list[dict],
    label: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    progress: bool = False,
    skipped: int = 0,
    unique: bool = True,
    on_lost: Callable[[dict, str], None] | None = None,
) -> dict[str, dict]:
    """Run ``fn`` on every spec and return the statuses by street.

    Parameters
    ----------
    fn
        A module-level function of one spec (plain values, with ``street`` and ``hash``)
        that returns the street's status, ``{street, state, ...}``.
    label
        The tasks' key prefix: a task's key is ``LABEL-STREET-HASH`` (its first 12 hex
        digits), with a token of this call after it when ``unique``.
    workers, scheduler, client
        A LocalCluster of ``workers`` single-threaded processes (default: one per core), a
        running scheduler's address, or a :class:`distributed.Client` of the caller's (left
        open); ``workers=0`` runs every spec in this process, in order.
    progress, skipped
        Show a progress bar (on stderr), saying first how many streets were skipped.
    on_lost
        Called with the spec and the error of a task whose worker died more often than
        Dask retries it (``RETRIES``), before its failed status is recorded.
    """
    bar = _Bar(len(specs), skipped, progress)
    out: dict[str, dict] = {}
    try:
        if not specs:
            return out
        if workers == 0 and scheduler is None and client is None:
            for spec in specs:
                out[spec["street"]] = status = fn(spec)
                bar.update(status)
            return out
        from distributed import as_completed

        own = None
        if client is None:
            own = client = _client(workers, scheduler)
        token = f"-{secrets.token_hex(4)}" if unique else ""
        try:
            futures = {
                client.submit(
                    fn,
                    spec,
                    key=f"{label}-{spec['street']}-{spec['hash'][:12]}{token}",
                    retries=RETRIES,
                    pure=False,
                ): spec
                for spec in specs
            }
            for future in as_completed(list(futures)):
                spec = futures[future]
                try:
                    status = future.result()
                except Exception as exc:  # the worker died more often than Dask allows
                    detail = f"{type(exc).__name__}: {exc}"
                    if on_lost is not None:
                        on_lost(spec, detail)
                    status = {"street": spec["street"], "state": "failed", "error": detail}
                out[spec["street"]] = status
                bar.update(status)
        finally:
            close_own(own)
    finally:
        bar.close()
    return out


def run_cuts(
    fn: Callable[[dict], dict],
    cuts: dict[str, dict],
    settings: dict,
    sub: str,
    label: str,
    *,
    run_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    progress: bool = False,
    timings: dict[str, float] | None = None,
) -> dict[str, dict]:
    """Write ``cuts`` under ``run_dir/sub`` (default: a temporary directory, removed
    after), run ``fn`` on each as :func:`run_tasks` does, and return the statuses by
    street; raise naming the first street that failed.

    ``cuts`` is emptied once written, so that its frames can be freed while the tasks
    run. ``timings`` gains the seconds spent writing (added to ``cut``) and running
    (``streets``).
    """
    timings = {} if timings is None else timings
    with _folder(run_dir, sub) as folder:
        start = time.perf_counter()
        specs = write_cuts(cuts, folder, settings)
        cuts.clear()
        timings["cut"] = timings.get("cut", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        results = run_tasks(
            fn,
            specs,
            label,
            workers=workers,
            scheduler=scheduler,
            client=client,
            progress=progress,
        )
        timings["streets"] = time.perf_counter() - start
    _raise_failed(results)
    return results


def _raise_failed(results: dict[str, dict]) -> None:
    """Raise a WanggeError naming the first failed street, if any failed."""
    failed = {c: s.get("error", "") for c, s in results.items() if s["state"] != "done"}
    if failed:
        first = next(iter(sorted(failed)))
        raise WanggeError(
            f"{len(failed)} street(s) failed; street {first}: {failed[first]}", where="streets"
        )


def close_own(client) -> None:
    """Close a client this run made, and its LocalCluster (None: the caller's, left open)."""
    if client is not None:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def _client(workers: int | None, scheduler: str | None):
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    n = workers if workers else (os.cpu_count() or 1)
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    return Client(cluster)


class _Bar:
    """Streets done, failed and left, with the time to go (tqdm on stderr)."""

    def __init__(self, total: int, skipped: int, show: bool):
        self.done = self.failed = 0
        self.bar = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="streets", unit="street")
            if skipped:
                self.bar.write(f"{skipped} street(s) already done on the same inputs: skipped")
            self._post()

    def update(self, status: dict) -> None:
        if status["state"] == "done":
            self.done += 1
        else:
            self.failed += 1
        if self.bar is not None:
            if status["state"] != "done":
                self.bar.write(f"street {status['street']} failed: {status.get('error', '')}")
            self._post()
            self.bar.update(1)

    def _post(self) -> None:
        left = self.bar.total - self.done - self.failed
        self.bar.set_postfix_str(f"done {self.done} · failed {self.failed} · left {left}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
