"""B9 (background jobs, issue 14): what the server's jobs cost and deliver.

1. Scrub throughput: random objects stored in a server's file store, the
   server stopped, then `asset-catalog-server scrub --now` (unthrottled)
   against `sha256sum` of the same object files, both pinned to one core
   (`taskset`), page cache warm for both (one unmeasured pass each first).
2. Thumbnail jobs per second: camera-like 12-megapixel JPEGs (drawn by
   draw_jpegs.py) PUT one after another into a fresh server with the default
   `[jobs]`, `workers` = 1 and 2; timed from the first upload's completion
   until every asset shows `"thumbnail": true`; mean job times from the
   server's `asset_catalog_job_duration_seconds` histogram.
3. The jobs' effect on B1's ingest: B1's watcher scan (scen_upload.ours_scan)
   into a server with `[jobs] enabled = false`, and into one with the
   default `[jobs]` while a backlog runs: JPEGs waiting for their metadata
   and thumbnails, and scrubs of them and of some large objects queued
   (`scrub SHA256…`), at the default rate. Both servers hold the same
   backlog content; it is uploaded with jobs off, then the server restarts
   with its setup's `[jobs]`, so the whole backlog is there when the scan
   starts. /metrics is sampled during the scan to show how long it lasted.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from http.client import HTTPException
from pathlib import Path

import data
import jobs_tables
import scen_upload
from ctx import Ctx
from product import Server, job_figures, jobs_done
from results import Scenario
from util import BenchError, check, log, run_timed, wait_until

# The core `taskset` pins both hashers to for "one core".
CORE = "0"
JOBS_OFF = "[jobs]\nenabled = false\n"
SAMPLE_EVERY = 0.5  # seconds between /metrics samples during B9's ingest
POLL_EVERY = 0.1  # seconds between listings while thumbnails are made


def b9(ctx: Ctx) -> Scenario:
    p = ctx.params
    objects = _objects(ctx)
    images = _images(ctx)
    raw: dict = {"scrub": _scrub(ctx, objects), "thumbnails": [], "ingest": []}
    for run in range(ctx.runs):
        for workers in (1, 2):
            log(f"B9 run {run + 1}/{ctx.runs}: thumbnails, [jobs] workers = {workers}")
            raw["thumbnails"].append(_thumbnails(ctx, images[:p.b9_images], workers, run))
    backlog = images[:p.b9_backlog_images] + objects[:p.b9_backlog_objects]
    for run in range(ctx.runs):
        for setup in ("off", "on"):
            log(f"B9 run {run + 1}/{ctx.runs}: B1's ingest, jobs {setup}")
            raw["ingest"].append(_ingest(ctx, setup, run, backlog))
    return jobs_tables.scenario(raw, p, ctx.drop_caches)


def _objects(ctx: Ctx) -> list[Path]:
    p = ctx.params
    out = ctx.dir("data", "b9", "objects")
    log(f"B9: generating {p.b9_objects} objects of {p.b9_object_size // 2 ** 20} MiB")
    paths = [out / f"obj{i:04d}.bin" for i in range(p.b9_objects)]
    for path in paths:
        data.big_file(path, p.b9_object_size)
    return paths


def _images(ctx: Ctx) -> list[Path]:
    """The JPEGs, drawn by Debian's python3 with python3-pil, one process per core."""
    p = ctx.params
    n = max(p.b9_images, p.b9_backlog_images)
    width, height = p.b9_image_px
    out = ctx.dir("data", "b9", "jpegs")
    py = ctx.bins.pil_python
    if subprocess.run([py, "-c", "import PIL"], capture_output=True).returncode != 0:
        raise BenchError(f"B9 draws its JPEGs with {py} and PIL: apt-get install python3-pil")
    log(f"B9: drawing {n} JPEGs of {width} × {height}")
    script = Path(__file__).with_name("draw_jpegs.py")
    procs, first, share = [], 0, -(-n // 2)
    for _ in range(2):
        count = min(share, n - first)
        procs.append(subprocess.Popen([py, str(script), str(out), str(first), str(count),
                                       str(width), str(height)]))
        first += count
    if any(proc.wait(timeout=3600) != 0 for proc in procs):
        raise BenchError("draw_jpegs.py failed")
    return sorted(out.glob("*.jpg"))[:n]


def _hashers(ctx: Ctx, s: Server, files: list[Path], want: dict[str, str]) -> dict:
    """One pass of each hasher over `files`; wall seconds each."""
    logs = ctx.dir("logs")
    pin = ["taskset", "-c", CORE]
    out = {}
    for key, cmd in (("scrub.one", pin + s.scrub_now_cmd()),
                     ("sum.one", pin + ["sha256sum", *map(str, files)]),
                     ("scrub.free", s.scrub_now_cmd())):
        t = check(run_timed(cmd, stdout_path=logs / f"b9-{key}.out"), key)
        if key.startswith("scrub") and f"clean: {len(files)} checked" not in t.stdout:
            raise BenchError(f"scrub --now: {t.stdout.strip().splitlines()[-1:]}")
        if key.startswith("sum"):
            got = {line.split()[1]: line.split()[0] for line in t.stdout.splitlines()}
            if any(got.get(str(f)) != sha for f, sha in want.items()):
                raise BenchError("B9: sha256sum of an object file is not its asset's hash")
        out[key] = t.seconds
    return out


def _scrub(ctx: Ctx, objects: list[Path]) -> dict:
    s = ctx.file_server("b9-scrub")
    try:
        log(f"B9: storing {len(objects)} objects in the file store")
        shas = {s.put(o) for o in objects}
        assets = s.assets()
    finally:
        s.stop()
    try:
        files = {s.objects_dir / a["key"]: a["sha256"] for a in assets if a["sha256"] in shas}
        size = sum(f.stat().st_size for f in files)
        if len(files) != len(objects) or size != sum(o.stat().st_size for o in objects):
            raise BenchError(f"B9: {len(files)} objects in the file store, not {len(objects)}")
        paths = sorted(files)
        log("B9: scrub and sha256sum, warm-up pass")
        _hashers(ctx, s, paths, files)
        runs = []
        for run in range(ctx.runs):
            log(f"B9 run {run + 1}/{ctx.runs}: scrub --now and sha256sum")
            runs.append(_hashers(ctx, s, paths, files))
        return {"bytes": size, "objects": len(files), "runs": runs}
    finally:
        shutil.rmtree(s.root, ignore_errors=True)


def _thumbnails(ctx: Ctx, images: list[Path], workers: int, run: int) -> dict:
    s = ctx.file_server(f"b9-thumbs-w{workers}-{run}", jobs=f"[jobs]\nworkers = {workers}\n")
    try:
        first = None
        for img in images:
            s.put(img)
            first = first or time.perf_counter()
        uploaded = time.perf_counter() - first
        limit = 120 + 30 * len(images)
        wait_until(lambda: _all_thumbnails(s, len(images)),
                   f"thumbnails of {len(images)} JPEGs", limit, s.proc,
                   s.root / "server.log", interval=POLL_EVERY)
        seconds = time.perf_counter() - first
        figures = job_figures(s.metrics())
    finally:
        s.stop()
        shutil.rmtree(s.root, ignore_errors=True)
    return {"workers": workers, "run": run, "images": len(images), "seconds": seconds,
            "uploads_after_first": uploaded,
            "thumbnail": jobs_done(figures, "thumbnail"),
            "metadata": jobs_done(figures, "metadata"), "jobs": figures["jobs"]}


def _all_thumbnails(s: Server, n: int) -> bool:
    """Whether all `n` assets have a thumbnail; a `false` is an error."""
    found = [a.get("thumbnail") for a in s.assets()]
    if False in found:
        raise BenchError(f"B9: the jobs made no thumbnail for {found.count(False)} JPEG(s); "
                         f"see `jobs failed` and {s.root / 'server.log'}")
    return len(found) == n and all(found)


class Sampler(threading.Thread):
    """Samples a server's job figures from /metrics every SAMPLE_EVERY s."""

    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server = server
        self.samples: list[dict] = []
        self.done = threading.Event()

    def sample(self) -> None:
        try:
            figures = job_figures(self.server.metrics())
        except (BenchError, OSError, HTTPException):
            return
        self.samples.append({"t": time.monotonic(),
                             "thumbnail": jobs_done(figures, "thumbnail")[0],
                             "metadata": jobs_done(figures, "metadata")[0],
                             "scrub": jobs_done(figures, "scrub")[0],
                             "scrub_bytes": figures["scrub_bytes"]})

    def run(self) -> None:
        while not self.done.wait(SAMPLE_EVERY):
            self.sample()

    def finish(self) -> list[dict]:
        self.done.set()
        self.join()
        self.sample()
        return self.samples


def _ingest(ctx: Ctx, setup: str, run: int, backlog: list[Path]) -> dict:
    """B1's ingest into a server holding `backlog`, with jobs off or on."""
    p = ctx.params
    name = f"b9-{setup}-{run}"
    g, s = ctx.stack(name, jobs=JOBS_OFF)
    try:
        shas = [s.put(f) for f in backlog]
        s.stop()
        s.queue_scrubs(shas)
        s.restart(JOBS_OFF if setup == "off" else "")
        sampler = Sampler(s)
        sampler.start()
        try:
            r = scen_upload.ours_scan(ctx, name, s, scen_upload.b1_data(ctx),
                                      len(backlog) + p.b1_files, ctx.drop_caches)
        finally:
            samples = sampler.finish()
    finally:
        s.stop()
        g.wipe()
    images = sum(1 for f in backlog if f.suffix == ".jpg")
    return {"setup": setup, "run": run, "files": p.b1_files, "seconds": r["seconds"],
            "server_rss": r["server_rss"], "watcher_rss": r["watcher_rss"],
            "started": r["ended"] - r["seconds"], "ended": r["ended"], "samples": samples,
            "backlog": {"images": images, "objects": len(backlog) - images,
                        "bytes": sum(f.stat().st_size for f in backlog)}}
