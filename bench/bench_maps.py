"""Benchmark: the offline web maps (size, time to draw in chromium with the network cut) and
the printed notice-board maps (time per sheet), on the demo and on Beijing.

Reproduce (2 cores; Debian chromium at /usr/bin/chromium, fonts-wqy-microhei):
    python bench/bench_maps.py                  # ~3 min: builds both cities, 5 loads per map
    python bench/bench_maps.py --runs 10 --out /tmp/wangge-bench/maps.json

Each city is built as a user would: `wangge demo` for Nanjing (sample register, coverage,
store), and for Beijing `wangge delineate` from the OSM file, the seeded sample register
(data/samples.py), `wangge overlay` and `wangge coverage`, then `wangge import`. Each HTML
map is opened ``--runs`` times in a fresh browser context with every request other than
the file itself aborted; "drawn" is the time from navigation start until Leaflet has put
every interactive path of the first load on the page (a MutationObserver, so the figure
does not include Playwright's polling). Then `wangge print` writes a PDF and a PNG per
community from the store: seconds per sheet. Budget (issue 15): each demo map < 3 MB and
drawn < 2 s.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEIJING = ROOT.parent / "shared" / "data" / "beijing-cau.osm"
CHROMIUM = "/usr/bin/chromium"
MAPS = ("map.html", "risk_map.html", "risk_heatmap.html", "gaps_map.html")
WANGGE = str(Path(sys.executable).parent / "wangge")
TIMER = """
window.__wg = {need: %d, drawn: null};
new MutationObserver((_, obs) => {
  if (document.querySelectorAll('path.leaflet-interactive').length >= window.__wg.need) {
    window.__wg.drawn = performance.now(); obs.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def sh(*args, cwd: Path) -> str:
    res = subprocess.run([WANGGE, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"wangge {' '.join(map(str, args))} failed:\n{res.stderr[-2000:]}")
    return res.stdout


def build_nanjing(base: Path) -> tuple[Path, Path]:
    d = base / "nanjing"
    d.mkdir()
    sh("demo", cwd=d)
    return d / "out" / "demo", d / "out" / "wangge.gpkg"


def build_beijing(base: Path) -> tuple[Path, Path]:
    from wangge.data.samples import write_samples

    d = base / "beijing"
    plan = d / "plan"
    sh("delineate", BEIJING, "--out", plan, "--district-code", "110108", cwd=base)
    s = write_samples(plan, seed=0)
    sh("overlay", plan, "--risks", s["risks"], "--zones", s["zones"],
       "--facilities", s["facilities"], "--vulnerable", s["vulnerable"], cwd=base)  # fmt: skip
    sh("coverage", plan, cwd=base)
    store = d / "wangge.gpkg"
    sh("import", plan / "plan.gpkg", "--plan-id", "beijing", "--store", store, cwd=base)
    return plan, store


def draw_times(browser, path: Path, runs: int) -> tuple[int, list[float]]:
    """The number of interactive paths and the ms to draw them, one figure per run."""
    url = path.as_uri()
    need, times = 0, []
    for i in range(runs + 1):
        context = browser.new_context(viewport={"width": 1400, "height": 860})
        outside: list[str] = []

        def route(r, outside=outside):
            if r.request.url == url or r.request.url.startswith("data:"):
                return r.continue_()
            outside.append(r.request.url)
            return r.abort()

        context.route("**/*", route)
        page = context.new_page()
        if i:
            page.add_init_script(TIMER % need)
        page.goto(url)
        if i == 0:  # the first load counts the paths; it is not timed
            page.wait_for_load_state("load")
            page.wait_for_timeout(500)
            need = page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
        else:
            page.wait_for_function("window.__wg && window.__wg.drawn !== null", timeout=30_000)
            times.append(page.evaluate("window.__wg.drawn"))
        if outside:
            raise SystemExit(f"{path.name} asked for {outside[:3]}")
        context.close()
    return need, times


def print_time(store: Path, out: Path, cwd: Path) -> tuple[int, float]:
    start = time.perf_counter()
    text = sh("print", "--store", store, "--out", out, cwd=cwd)
    seconds = time.perf_counter() - start
    sheets = len(list(out.glob("*.pdf")))
    assert sheets and re.search(r"wrote \d+ files", text), text[-500:]
    return sheets, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="wangge-bench-maps-"))
    results = []
    try:
        cities = {"nanjing (demo)": build_nanjing(base), "beijing": build_beijing(base)}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            for city, (plan, _) in cities.items():
                for name in MAPS:
                    path = plan / name
                    paths, times = draw_times(browser, path, args.runs)
                    row = {
                        "city": city,
                        "map": name,
                        "MB": path.stat().st_size / 1e6,
                        "paths": paths,
                        "draw_ms_median": statistics.median(times),
                        "draw_ms_max": max(times),
                    }
                    results.append(row)
                    print(
                        f"{city:15} {name:18} {row['MB']:5.2f} MB  {paths:6,} paths  drawn "
                        f"median {row['draw_ms_median']:6.0f} ms  max {row['draw_ms_max']:6.0f} ms"
                    )
            browser.close()
        for city, (_, store) in cities.items():
            sheets, seconds = print_time(store, base / f"print-{city[:7]}", base)
            results.append({"city": city, "print_sheets": sheets, "print_s": seconds})
            print(
                f"{city:15} wangge print: {sheets} sheets (PDF + PNG) in {seconds:.1f} s, "
                f"{seconds / sheets:.2f} s per sheet (start-up included)"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
