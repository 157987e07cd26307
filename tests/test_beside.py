"""The second process of the delineate job (wangge/beside.py): its work lands only when
both halves succeed, its errors reach the caller, and a failed caller stops it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import wangge.delineate as delineate_job
from wangge.beside import beside, can_fork
from wangge.errors import InputError


def test_the_forks_error_is_raised_in_the_caller():
    def fails():
        raise InputError("no room left", "map.html", "row 3")

    with pytest.raises(InputError, match=r"map\.html: row 3: no room left"), beside(fails):
        pass


def test_an_error_that_does_not_pickle_comes_back_with_its_traceback():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(a)

    def fails():
        raise Odd("odd", 2)

    with pytest.raises(RuntimeError, match="Odd: odd"), beside(fails):
        pass


def test_a_failed_caller_stops_the_fork(tmp_path):
    mark = tmp_path / "finished"

    def slow():
        time.sleep(3)
        mark.write_text("x")

    start = time.monotonic()
    with pytest.raises(ValueError, match="caller fails"), beside(slow):
        raise ValueError("caller fails")
    assert time.monotonic() - start < 2.5  # not waited for
    time.sleep(0.2)
    assert not mark.exists()


def test_the_work_runs_in_another_process_where_the_os_forks(tmp_path):
    seen = tmp_path / "pid"
    with beside(lambda: seen.write_text(str(os.getpid()))):
        pass
    assert (int(seen.read_text()) != os.getpid()) == can_fork()


def _views_to(files: dict[str, str]):
    def write_views(result, out_dir: Path) -> None:
        for name, text in files.items():
            (out_dir / name).write_text(text)

    return write_views


def test_views_replace_the_old_ones_only_when_both_halves_succeed(tmp_path, monkeypatch):
    out = tmp_path / "plan"
    out.mkdir()
    (out / "map.html").write_text("old map")
    monkeypatch.setattr(delineate_job, "write_views", _views_to({"map.html": "new map"}))
    with pytest.raises(ValueError), delineate_job.views_beside(None, out):
        raise ValueError("validation failed")
    assert (out / "map.html").read_text() == "old map"
    assert sorted(p.name for p in out.iterdir()) == ["map.html"]  # no scratch left

    with delineate_job.views_beside(None, out):
        (out / "plan.gpkg").write_text("plan")
    assert (out / "map.html").read_text() == "new map"
    assert sorted(p.name for p in out.iterdir()) == ["map.html", "plan.gpkg"]
