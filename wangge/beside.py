"""Work done in a second process beside the caller's: the two halves of a job that share
their inputs and nothing else, run on two cores.

The delineate job ends with two such halves: validating the plan and writing plan.gpkg,
and writing the views of it (units.gpkg, a GeoJSON per level, map.html). Where the OS
forks (Linux), the views are written by a forked copy of the process, which has the
plan in memory already and nothing to send back but an error; elsewhere they are written
after the first half, in this process, with the same result (issue 25).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def can_fork() -> bool:
    """Whether :func:`beside` runs its work in a second process here."""
    return sys.platform == "linux" and hasattr(os, "fork")


@contextmanager
def beside(work: Callable[[], None]) -> Iterator[None]:
    """Run ``work`` in a forked process while the block runs, wait for it on leaving, and
    raise its error here (the same exception where it pickles, else a RuntimeError with
    its traceback). If the block fails, the fork is stopped. Without fork, ``work`` runs
    after the block, in this process.
    """
    if not can_fork():
        yield
        work()
        return
    sys.stdout.flush()  # what is buffered is written once, by this process
    sys.stderr.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: do the work, report an error through the pipe, never return
        os.close(read)
        code = 0
        try:
            work()
        except BaseException as exc:  # every failure goes to the parent
            code = 1
            with os.fdopen(write, "wb") as pipe:
                pipe.write(_pickled(exc))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        os.kill(pid, signal.SIGTERM)
        raise
    finally:
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read()  # until the fork ends
        _, status = os.waitpid(pid, 0)
    if not failed and status != 0:
        if report:
            raise pickle.loads(report)
        raise RuntimeError(f"the second process ended with status {status}")


def _pickled(exc: BaseException) -> bytes:
    """``exc`` as bytes the parent can raise: itself, or its traceback in a RuntimeError."""
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:  # one that does not survive pickling
        text = "".join(traceback.format_exception(exc))
        return pickle.dumps(RuntimeError(f"in the second process:\n{text}"))
