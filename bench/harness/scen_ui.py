"""B11 (the web UI at 1M assets): the server on the B8 index, read by a real
Chromium. index-bench builds the index (the same 1,000,000 assets and ~3M
sightings as B8, SQLite, the embedded default) straight into a server's
state directory; the release server serves it from an empty file store (no
thumbnails: the page weight is "without thumbnails", as the issue asks) with
jobs off (they would work through 1M metadata jobs for objects that do not
exist); `ui_probe.py` signs in and loads each page `runs` times with the
browser cache off (a first visit) and on (a return), reading the browser's
own navigation timing and the bytes that crossed the network."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ctx import Ctx
from product import Server, create_token
from results import Comparison, Scenario
from util import BenchError, check, log, run_timed

PROBE = "ui_probe.py"
# The grid page asked for, then a name search, the list view, the overview.
PAGES = [
    ("grid", "/", "first grid page"),
    ("search", "/?q=PXL_202505", "name search \"PXL_202505\" (0.2%)"),
    ("list", "/?view=list", "list view"),
    ("overview", "/ui/overview", "overview"),
]
# Immich (immich-app/immich#17379, 2025): one map chunk of ~1 MB (223 kB
# compressed) was fetched on every first load until that change.
IMMICH_NOTE = ("For scale: Immich's web app fetched a ~1 MB map chunk (223 kB with brotli) "
               "on every first load until immich-app/immich#17379 (2025) deferred it; no "
               "published figure for the MinIO console's page weight was found.")


def b11(ctx: Ctx) -> Scenario:
    p = ctx.params
    srv = Server(ctx.bins.server, ctx.dir("b11", "server"), None,
                 jobs="[jobs]\nenabled = false\n")
    srv.write_config(fresh=True)
    index = srv.root / "state" / "index.sqlite3"
    log(f"B11: building the B8 index ({p.b8_assets:,} assets) into the server's state")
    cmd = [str(ctx.bins.indexbench), "--assets", str(p.b8_assets), "--reps", "1",
           "--insert-seconds", "1", "--backends", "sqlite", "--keep-sqlite", str(index),
           "--workdir", str(ctx.dir("b11")),
           "--json", str(ctx.work / "b11-index.json")]
    t = check(run_timed(cmd, stdout_path=ctx.dir("logs") / "b11-index-bench.out",
                        timeout=3 * 3600), "index-bench")
    log(f"B11: index built in {t.seconds:.0f} s")
    srv.token = create_token(srv.binary, srv.config)
    srv._spawn()
    try:
        probe = [ctx.bins.pil_python, str(Path(__file__).resolve().parent / PROBE), srv.url,
                 srv.token or "", str(p.b11_runs), *[path for _, path, _ in PAGES]]
        log(f"B11: Chromium loads {len(PAGES)} pages {p.b11_runs}x cold and warm")
        out = subprocess.run(probe, capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise BenchError(f"ui_probe failed: {out.stderr.strip()[-300:]}")
        raw = json.loads(out.stdout)
    finally:
        srv.stop()
    return scenario(raw, p.b8_assets, p.b11_runs)


def _weight(load: dict) -> int:
    return int(load["html_bytes"] + sum(r["bytes"] for r in load["resources"]))


def scenario(raw: dict, assets: int, runs: int) -> Scenario:
    sc = Scenario("B11", "The web UI at 1M assets", (
        f"The server's web UI on the B8 index ({assets:,} assets, SQLite), release build, "
        f"read by Debian's Chromium {raw['browser']} (headless, Selenium over chromedriver) "
        "after signing in. Each page is loaded once to settle, then "
        f"{runs} times with the browser cache off (\"cold\": a first visit fetches the page, "
        "its stylesheet, script and icons) and on (\"warm\"). Time: the browser's navigation "
        "timing, request start to the end of the load event. Weight: the bytes that crossed "
        "the network (headers and bodies) on a cold load. No thumbnails exist in this store "
        "(the grid shows type icons), as the issue's \"without thumbnails\" asks."))
    sc.raw = raw
    for (key, _path, label), page in zip(PAGES, raw["pages"]):
        cold, warm = page["cold"], page["warm"]
        sc.measure(f"{key}.cold", f"{label}: load, cache off", "ms").runs = [
            round(r["load_ms"], 1) for r in cold]
        sc.measure(f"{key}.warm", f"{label}: load, cache on", "ms").runs = [
            round(r["load_ms"], 1) for r in warm]
        sc.measure(f"{key}.ttfb", f"{label}: first byte of the HTML", "ms").runs = [
            round(r["ttfb_ms"], 1) for r in cold]
        sc.measure(f"{key}.weight", f"{label}: weight, cache off", "B").runs = [
            _weight(r) for r in cold]
        sc.measure(f"{key}.items", f"{label}: assets on the page", "").runs = [
            r["cards"] for r in cold]
    sc.comparisons += [
        Comparison("time to first grid page, cache off, vs 300 ms", "grid.cold", "<=", 1.0,
                   limit=300, limit_label="300 ms"),
        Comparison("first grid page's weight without thumbnails vs 150 KB", "grid.weight",
                   "<=", 1.0, limit=150 * 1024, limit_label="150 KB"),
    ]
    sc.notes.append(IMMICH_NOTE)
    sc.commands += [
        "bench/run.sh --only B11 --merge   # this section; --assets N for a smaller index",
        "/usr/bin/python3 bench/harness/ui_probe.py URL TOKEN RUNS PATH...   # the browser part",
    ]
    return sc
