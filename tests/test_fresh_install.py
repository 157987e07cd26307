"""A new user's first minutes, on a fresh virtual environment: the README's first command,
run as written, then `wangge serve` and the editor in chromium, signed in with the key the
demo printed. Nothing of this interpreter's site-packages is visible in the venv: every
dependency comes from the package index, as on a fresh machine. Also: a wheel built from
the checkout carries the vendored MapLibre and Leaflet and the editor's files.

This is the slowest test of the suite (about 2 to 3 minutes: most of it pip)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import need
from e2e_server import CHROMIUM, CHROMIUM_ARGS, Server, free_port

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
KEY = re.compile(r"\bwg_[A-Za-z0-9_-]{20,}")
#: What the wheel must carry for /editor and the HTML maps to work offline.
SHIPPED = (
    "wangge/maps/static/vendor/maplibre-gl.js",
    "wangge/maps/static/vendor/maplibre-gl.css",
    "wangge/maps/static/vendor/maplibre-gl.LICENSE.txt",
    "wangge/maps/static/vendor/leaflet.js",
    "wangge/maps/static/vendor/leaflet.css",
    "wangge/maps/static/vendor/leaflet.LICENSE.txt",
    "wangge/maps/static/vendor/images/layers.png",
    "wangge/maps/editor/index.html",
    "wangge/maps/editor/editor.js",
    "wangge/data/demo/nanjing-xinjiekou.osm",
)


def readme_first_command() -> str:
    """The first line of the README's first bash block, without its comment."""
    text = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no bash block"
    return block.group(1).splitlines()[0].split("  #")[0].strip()


def checkout_copy(dest: Path) -> Path:
    """The files git tracks, as a fresh clone has them (no out/, node_modules or caches)."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, names):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    return dest


def clean_env(venv: Path) -> dict[str, str]:
    """This process's environment with the venv first on PATH and nothing of wangge's or
    Python's own settings that a new user would not have."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANGGE_", "PYTHON", "VIRTUAL_ENV", "CONDA"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A venv, a copy of the checkout, and the README's first command run in it."""
    if shutil.which("git") is None:
        need("git", "the test copies the checkout's tracked files")
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    repo = checkout_copy(base / "checkout")
    env = clean_env(venv)
    command = readme_first_command()
    assert "wangge demo" in command, command
    start = time.perf_counter()
    res = subprocess.run(
        ["bash", "-c", command],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    seconds = time.perf_counter() - start
    assert res.returncode == 0, f"`{command}` failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    print(f"`{command}` in a fresh venv: {seconds:.0f} s")
    return venv, repo, env, res


def test_readme_first_command_in_a_fresh_venv(fresh):
    venv, repo, env, res = fresh
    # it ran the venv's own wangge, installed from the copy, not this interpreter's
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import wangge.maps; print(wangge.maps.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=repo.parent,
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to(repo.resolve()), where
    version = subprocess.run(
        ["wangge", "--version"], env=env, capture_output=True, text=True, cwd=repo
    )
    assert version.returncode == 0 and version.stdout.startswith("wangge "), version
    for name in ("plan.gpkg", "units.gpkg", "map.html", "risk_map.html", "gaps_map.html"):
        assert (repo / "out" / "demo" / name).is_file(), name
    assert (repo / "out" / "wangge.gpkg").is_file()
    assert KEY.search(res.stdout), "the demo did not print its admin key"
    assert "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def served(fresh):
    """`wangge serve` from the venv, in the copy, as the README says; the demo's key."""
    _, repo, env, res = fresh
    key = KEY.search(res.stdout).group(0)
    port = free_port()
    log = repo / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["wangge", "serve", "--port", str(port)],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log, {"admin": key})
    try:
        deadline = time.perf_counter() + 60
        while True:
            assert proc.poll() is None, server.log_tail()
            try:
                if server.call("GET", "/healthz", key=None, timeout=2)[0] == 200:
                    break
            except (OSError, ValueError):
                pass
            assert time.perf_counter() < deadline, server.log_tail()
            time.sleep(0.3)
        yield server
    finally:
        server.stop()


def test_editor_after_the_first_command(served):
    """/editor in chromium with the demo's key: the map draws the demo's grids, and every
    request stays on the server."""
    if not CHROMIUM.exists():
        need("chromium", f"{CHROMIUM} is missing; run `bash scripts/ensure_services.sh chromium`")
    from playwright.sync_api import sync_playwright

    key = served.keys["admin"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        requested: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{served.url}/editor?plan=demo")
        page.locator("#signin-key").fill(key)
        page.locator("#signin-ok").click()
        page.wait_for_function(
            """() => { const s = window.wanggeEditor;
                       return s && s.ready && s.renderedVersion === s.version; }""",
            timeout=90_000,
        )
        drawn = page.evaluate(
            "() => window.wanggeEditor.map.queryRenderedFeatures({layers: ['grids-fill']}).length"
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "fresh-install-editor.png"))
        browser.close()
    assert drawn > 0, "no grid drawn"
    outside = [u for u in requested if not u.startswith((served.url + "/", "data:", "blob:"))]
    assert not outside, outside
    assert any("/editor/static/vendor/maplibre-gl.js" in u for u in requested)
    assert not errors, errors


def test_readme_gdal_command(served, tmp_path):
    """The README's ogr2ogr line for OGC API – Features (the tiles have their own), as a
    GIS user copies it (their key and server filled in), copies every grid of the plan
    through GDAL's OAPIF driver."""
    if shutil.which("ogr2ogr") is None:
        need("ogr2ogr", "run `bash scripts/ensure_services.sh gdal` (Debian's gdal-bin)")
    text = (ROOT / "README.md").read_text("utf-8")
    (line,) = [x for x in text.splitlines() if x.startswith("ogr2ogr ") and "OAPIF:" in x]
    assert "OAPIF:http://127.0.0.1:8000" in line and "KEY" in line, line
    command = line.replace("http://127.0.0.1:8000", served.url).replace("KEY", served.keys["admin"])
    res = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    import pyogrio

    (out,) = tmp_path.glob("*.gpkg")
    info = pyogrio.read_info(out, layer="grids")
    collection = served.get("/collections/grids?f=json")
    assert info["features"] == collection["itemCount"] > 0
    assert info["geometry_type"] in ("MultiPolygon", "Polygon"), info["geometry_type"]


def test_wheel_ships_the_vendored_assets(fresh, tmp_path):
    venv, repo, env, _ = fresh
    res = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            ".",
            str(repo),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (wheel,) = tmp_path.glob("wangge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in SHIPPED if n not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
