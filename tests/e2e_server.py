"""A real wangge server and browser for the end-to-end tests: uvicorn in a subprocess over a
GeoPackage store with a plan imported and accounts added before it starts, and Debian's
chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: Debian's chromium (``bash scripts/ensure_services.sh chromium`` installs it).
CHROMIUM = Path("/usr/bin/chromium")
#: Software WebGL, so that MapLibre draws headless without a GPU.
CHROMIUM_ARGS = ["--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist"]


def chromium(args: list[str] | None = None):
    """Debian's chromium under Playwright, headless, for a fixture to ``yield from``; a
    missing chromium or playwright skips the test, or fails it under CI=true."""
    from conftest import need

    if not CHROMIUM.exists():
        need("chromium", f"{CHROMIUM} is missing; run `bash scripts/ensure_services.sh chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        need("playwright", f"{exc}; install the test extras: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS if args is None else args,
        )
        yield b
        b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def import_plan(plan: Path, store: Path, plan_id: str = "demo") -> int:
    """Import ``plan`` (a directory with plan.gpkg, or the file) into the GeoPackage ``store``
    as ``wangge import`` does; returns the new version."""
    from wangge.data.plan import plan_from_frames, read_plan
    from wangge.data.store import open_store
    from wangge.importing import save_plan

    path = plan / "plan.gpkg" if plan.is_dir() else plan
    layers, meta = read_plan(path).stored()
    st = open_store(str(store))
    try:
        version, _ = save_plan(
            st, plan_from_frames(layers, meta, str(path)), plan_id, None, "e2e", "imported"
        )
    finally:
        st.close()
    return version.version


#: The accounts :func:`add_accounts` makes: an admin, a viewer, one planner per community
#: (``planner:<community code>``) and a planner kept for revoking (``revocable``).
ADMIN, VIEWER, REVOCABLE = "admin", "viewer", "revocable"


def planner_of(community: str) -> str:
    """The name under which :func:`add_accounts` keeps the key of a community's planner."""
    return f"planner:{community}"


def add_accounts(store: Path, plan_id: str = "demo") -> dict[str, str]:
    """Accounts in the GeoPackage ``store``, made before the server starts: their API keys
    by :data:`ADMIN`, :data:`VIEWER`, :data:`REVOCABLE` (a planner of the first community)
    and :func:`planner_of` each community of ``plan_id``."""
    from wangge.data.accounts import make_account, new_key
    from wangge.data.store import open_store

    st = open_store(str(store))
    try:
        version = st.latest(plan_id)
        frame = st.query(plan_id, version, "communities").frame
        communities = sorted(frame["code"].astype(str))
        wanted = {
            ADMIN: ("e2e-admin", "admin", []),
            VIEWER: ("e2e-viewer", "viewer", []),
            REVOCABLE: ("e2e-revocable", "planner", communities[:1]),
        }
        for code in communities:
            wanted[planner_of(code)] = (f"e2e-planner-{code}", "planner", [code])
        keys = {}
        for label, (name, role, scopes) in wanted.items():
            keys[label] = new_key()
            st.book.add(make_account(name, role, scopes), keys[label])
    finally:
        st.close()
    return keys


@dataclass
class Server:
    """A running server: its base URL, the API keys of its accounts, and the process, log
    and store when this code started it. Requests go as the admin unless told otherwise."""

    url: str
    proc: subprocess.Popen | None = None
    log: Path | None = None
    keys: dict[str, str] = field(default_factory=dict)
    store: Path | None = None

    def call(
        self, method: str, path: str, body: object = None, key: str | None = ADMIN, timeout=30
    ) -> tuple[int, object]:
        """One request with ``key`` (a label of :attr:`keys`, or None for no key): the status
        and the JSON body, errors included."""
        headers = {"Accept": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys[key]}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str, key: str | None = ADMIN, timeout: float = 30) -> object:
        """The JSON body of a GET that must succeed."""
        status, body = self.call("GET", path, key=key, timeout=timeout)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def post(self, path: str, body: object, key: str | None = ADMIN) -> object:
        """The JSON body of a POST that must succeed (200 or 201)."""
        status, out = self.call("POST", path, body, key=key)
        assert status in (200, 201), f"POST {path}: {status} {out}"
        return out

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


def server_env(target: str) -> dict[str, str]:
    """The environment a test server runs in: ``target`` as its store, no default plan,
    and reads that need a key."""
    env = {**os.environ, "WANGGE_STORE": target}
    for name in ("WANGGE_PLAN", "WANGGE_PUBLIC_READS", "WANGGE_DATABASE_URL"):
        env.pop(name, None)
    return env


def uvicorn_command(port: int, workers: int = 1, log_level: str = "warning") -> list[str]:
    """``uvicorn wangge.api.app:create_app --factory`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "wangge.api.app:create_app",
        "--factory",
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        log_level,
    ]


def start_server(
    store: Path | str,
    log: Path,
    keys: dict[str, str] | None = None,
    timeout: float = 60,
    log_level: str = "warning",
    plan: str | None = None,
) -> Server:
    """Serve ``store`` (a GeoPackage path or a database URL) with uvicorn
    (``wangge.api.app:create_app``) on a free local port and wait until ``/healthz``
    answers. Reads need a key (``WANGGE_PUBLIC_READS`` is cleared); ``keys`` are those of
    the accounts already in the store (:func:`add_accounts`); ``plan`` is the default plan
    (``WANGGE_PLAN``). Raises RuntimeError with the server's log otherwise."""
    port = free_port()
    env = server_env(str(store))
    if plan is not None:
        env["WANGGE_PLAN"] = plan
    cmd = uvicorn_command(port, log_level=log_level)
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    path = store if isinstance(store, Path) else None
    server = Server(f"http://127.0.0.1:{port}", proc, log, dict(keys or {}), path)
    start = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if server.call("GET", "/healthz", key=None, timeout=2)[0] == 200:
                return server
        except (OSError, ValueError):
            pass
        if time.perf_counter() - start > timeout:
            server.stop()
            raise RuntimeError(f"the server did not answer in {timeout} s:\n{server.log_tail()}")
        time.sleep(0.1)
