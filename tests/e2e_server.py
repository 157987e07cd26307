"""A real wangge server and browser for the end-to-end tests: uvicorn in a subprocess over a
GeoPackage store with a plan imported, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: Debian's chromium (``bash scripts/ensure_services.sh chromium`` installs it).
CHROMIUM = Path("/usr/bin/chromium")
#: Software WebGL, so that MapLibre draws headless without a GPU.
CHROMIUM_ARGS = ["--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def import_plan(plan: Path, store: Path, plan_id: str = "demo") -> int:
    """Import ``plan`` (a directory with plan.gpkg, or the file) into the GeoPackage ``store``
    as ``wangge import`` does; returns the new version."""
    from wangge.data.gpkg_store import read_plan_file
    from wangge.data.store import open_store
    from wangge.importing import save_plan

    path = plan / "plan.gpkg" if plan.is_dir() else plan
    layers, meta = read_plan_file(path)
    st = open_store(str(store))
    try:
        version, _ = save_plan(st, layers, meta, str(path), plan_id, None, "e2e", "imported")
    finally:
        st.close()
    return version.version


@dataclass
class Server:
    """A running server: its base URL, and the process and log when this code started it."""

    url: str
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def get(self, path: str, timeout: float = 30) -> object:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as res:
            return json.loads(res.read())

    def log_tail(self, lines: int = 40) -> str:
        if not self.log or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_server(store: Path, log: Path, timeout: float = 60) -> Server:
    """Serve ``store`` with uvicorn (``wangge.api.app:create_app``) on a free local port and
    wait until ``/healthz`` answers. Raises RuntimeError with the server's log otherwise."""
    port = free_port()
    env = {**os.environ, "WANGGE_STORE": str(store)}
    env.pop("WANGGE_PLAN", None)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "wangge.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    start = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            server.get("/healthz", timeout=2)
            break
        except (OSError, ValueError):
            if time.perf_counter() - start > timeout:
                server.stop()
                raise RuntimeError(
                    f"the server did not answer in {timeout} s:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)
    return server
