"""GeoPackage files a job writes whole: staged beside the target and renamed over it.

SQLite syncs the disk at the end of every transaction, and GDAL writes each layer in
several (the table, its metadata rows, the features, the R-tree): dozens of syncs for the
layers of one plan.gpkg, which cost the demo about two seconds of waiting on the disk
(docs/BENCHMARKS.md, issue 25). The staged copy is a scratch file, thrown away on any
failure, so those syncs protect nothing: it is written with ``OGR_SQLITE_SYNCHRONOUS=OFF``,
synced once when whole, and only then renamed over the target. The target is always a
whole file, the old one or the new, as before.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyogrio

_SYNC = "OGR_SQLITE_SYNCHRONOUS"


@contextmanager
def staged_gpkg(target: str | Path, start_from: str | Path | None = None) -> Iterator[Path]:
    """A scratch path beside ``target`` to write a GeoPackage to (a copy of
    ``start_from`` when given); when the block ends without an error it is synced and
    renamed over ``target``, and on an error it is removed, leaving ``target`` as it was.

    The scratch name is new on every call, never only the pid's: a run killed mid-write
    leaves its copy and SQLite's hot journal beside it, and a later run that reused the
    name (same pid, as in a container) would have that journal rolled back into its own
    copy. The sync setting is GDAL's process-wide configuration, restored on leaving.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{secrets.token_hex(4)}.gpkg")
    if start_from is not None:
        shutil.copyfile(start_from, tmp)
    before = pyogrio.get_gdal_config_option(_SYNC)
    pyogrio.set_gdal_config_options({_SYNC: "OFF"})
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        pyogrio.set_gdal_config_options({_SYNC: before})
        tmp.unlink(missing_ok=True)
