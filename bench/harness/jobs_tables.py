"""B9's report: what scen_jobs measured (scrub against sha256sum, thumbnail
jobs per second, B1's ingest with and without a backlog of jobs) as
measures, comparisons and tables, and how long the backlog lasted."""

from __future__ import annotations

from report import fmt, ratio_table
from results import Comparison, Scenario
from util import median

MIB = 1024 ** 2
WORKERS = (1, 2)


def scenario(raw: dict, params, cold: bool) -> Scenario:
    sc = Scenario("B9", "Background jobs", _what(raw, params, cold))
    sc.raw = raw
    _scrub_measures(sc, raw["scrub"])
    for r in raw["thumbnails"]:
        w = r["workers"]
        sc.measure(f"thumb.w{w}", f"thumbnail jobs/s, [jobs] workers = {w}", "jobs/s")
        sc.add(f"thumb.w{w}", r["images"] / r["seconds"])
        for kind in ("thumbnail", "metadata"):
            count, secs = r[kind]
            sc.measure(f"{kind}.w{w}", f"mean {kind} job, workers = {w}", "ms")
            sc.add(f"{kind}.w{w}", secs / count * 1e3 if count else float("nan"))
    labels = {"off": "B1's ingest, [jobs] enabled = false",
              "on": "B1's ingest, default [jobs], backlog running"}
    for r in raw["ingest"]:
        sc.measure(f"ingest.{r['setup']}", labels[r["setup"]], "files/s")
        sc.add(f"ingest.{r['setup']}", r["files"] / r["seconds"])
    sc.comparisons += [
        Comparison("scrub MB/s vs sha256sum, one core", "scrub.one", ">=", 0.8, ref="sum.one"),
        Comparison("B1 ingest files/s, jobs running vs off (≤ 10 % slower)", "ingest.on",
                   ">=", 0.9, ref="ingest.off"),
        Comparison("scrub MB/s not pinned vs sha256sum on one core", "scrub.free", ">=", None,
                   ref="sum.one"),
        Comparison("thumbnail jobs/s, workers = 2 vs 1", "thumb.w2", ">=", None,
                   ref="thumb.w1"),
    ]
    sc.table = (_scrub_table(sc) + _thumb_table(sc, raw["thumbnails"])
                + _ingest_table(sc) + _backlog_table(raw["ingest"]) + ratio_table(sc))
    sc.commands += [
        "PUT /v1/assets/$SHA of each object   # (1) into a server's default file store; "
        "then the server is stopped",
        "taskset -c 0 asset-catalog-server --config server.toml scrub --now",
        "taskset -c 0 sha256sum $STATE/objects/$KEY …   # the same objects' files",
        "asset-catalog-server --config server.toml scrub --now   # not pinned",
        "PUT /v1/assets/$SHA (content-type image/jpeg) for each JPEG, one after another; "
        "GET /v1/assets every 0.1 s until all show \"thumbnail\": true   # (2), "
        "[jobs] workers = 1, then 2",
        "asset-catalog-server --config server.toml scrub $SHA …   # (3) queue scrubs of the "
        "backlog, server stopped; then started with its setup's [jobs]",
        f"ASSET_WATCHER__UPLOAD_CONCURRENCY={params.concurrency} asset-watcher scan   "
        "# (3) B1's ingest, as in B1",
    ]
    sc.notes.append("Mean job times are `asset_catalog_job_duration_seconds_sum / _count` "
                    "of the jobs that ended `done`, per run; the table shows their median.")
    return sc


def _scrub_measures(sc: Scenario, scrub: dict) -> None:
    labels = {"scrub.one": "asset-catalog-server scrub --now, one core (taskset -c 0)",
              "sum.one": "sha256sum, one core (taskset -c 0)",
              "scrub.free": "asset-catalog-server scrub --now, not pinned"}
    for key, label in labels.items():
        sc.measure(key, label, "MB/s")
        for r in scrub["runs"]:
            sc.add(key, scrub["bytes"] / 1e6 / r[key])


def _what(raw: dict, p, cold: bool) -> str:
    width, height = p.b9_image_px
    scrub = raw["scrub"]
    backlog = raw["ingest"][0]["backlog"] if raw["ingest"] else {}
    return "\n\n".join([
        f"**(1) Scrub throughput.** {scrub['objects']} objects × {p.b9_object_size // MIB} MiB "
        "of random bytes stored through a server into its default file store; the server "
        "stopped; `scrub --now` (unthrottled) over every asset against `sha256sum` of the same "
        "object files, both pinned to one core with `taskset -c 0`. Both read from the page "
        "cache (one unmeasured pass of each first), so this compares the read-and-hash paths, "
        "not the disk. MB/s = 10⁶ bytes per second of wall time, process start included.",
        f"**(2) Thumbnail jobs per second.** {p.b9_images} different {width} × {height} JPEGs "
        f"({width * height / 1e6:g} MP, quality 90, camera EXIF, ~6 MB each; drawn by "
        "`bench/harness/draw_jpegs.py` with Debian's python3-pil), PUT one after another into "
        "a fresh server on its file store with the default `[jobs]` (nice 10) but `workers` = "
        "1 and 2. Each JPEG gets a metadata job, then a thumbnail job (256 and 1024 px). "
        "jobs/s = JPEGs / seconds from the first PUT's response until every asset shows "
        "`\"thumbnail\": true` (the listing polled every 0.1 s).",
        f"**(3) Ingest beside a backlog of jobs.** B1's ingest ({p.b1_files:,} files × "
        f"{p.b1_size // 1024} KiB, `asset-watcher scan`, Garage, "
        + ("page cache dropped before the scan" if cold else "page cache NOT dropped")
        + ") into a server with `[jobs] enabled = false`, and into one with the default "
        "`[jobs]` (workers 1, nice 10, scrub 16 MiB/s) while a backlog runs: "
        f"{backlog.get('images', p.b9_backlog_images)} of the JPEGs waiting for metadata and "
        f"thumbnails, and queued scrubs of them and of {backlog.get('objects', p.b9_backlog_objects)} "
        f"of the (1) objects ({backlog.get('bytes', 0) / 1e6:,.0f} MB). Both servers hold the "
        "same backlog: it is uploaded with jobs off, then the server restarts with its setup's "
        "`[jobs]` right before the scan. The scan's own new assets queue a metadata job each "
        "too. Both setups' `/metrics` are read every 0.5 s during the scan (for the backlog "
        "table). Setups interleaved run by run.",
    ])


def _med(sc: Scenario, key: str) -> float:
    m = sc.measures.get(key)
    return m.median if m and m.runs else float("nan")


def _runs(sc: Scenario, key: str) -> str:
    m = sc.measures.get(key)
    return ", ".join(fmt(v) for v in m.runs) if m else "—"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b == b and a == a and b else "—"


def _scrub_table(sc: Scenario) -> list[str]:
    ref = _med(sc, "sum.one")
    out = ["| (1) reader | MB/s | vs sha256sum | MB/s, every run |", "|---|---:|---:|---|"]
    for key in ("scrub.one", "sum.one", "scrub.free"):
        out.append(f"| {sc.measures[key].label} | **{fmt(_med(sc, key))}** | "
                   f"{_ratio(_med(sc, key), ref)} | {_runs(sc, key)} |")
    return out + [""]


def _thumb_table(sc: Scenario, runs: list[dict]) -> list[str]:
    out = ["| (2) `[jobs] workers` | thumbnail jobs/s | mean thumbnail job | mean metadata job "
           "| s, first upload to last thumbnail | jobs/s, every run |",
           "|---:|---:|---:|---:|---:|---|"]
    for w in WORKERS:
        secs = [r["seconds"] for r in runs if r["workers"] == w]
        if not secs:
            continue
        out.append(f"| {w} | **{fmt(_med(sc, f'thumb.w{w}'))}** | "
                   f"{fmt(_med(sc, f'thumbnail.w{w}'))} ms | "
                   f"{fmt(_med(sc, f'metadata.w{w}'))} ms | {fmt(median(secs))} | "
                   f"{_runs(sc, f'thumb.w{w}')} |")
    return out + [""]


def _ingest_table(sc: Scenario) -> list[str]:
    off, on = _med(sc, "ingest.off"), _med(sc, "ingest.on")
    slower = f"{(1 - on / off) * 100:.1f} %" if off == off and on == on and off else "—"
    return ["| (3) server | files/s | vs jobs off | slower by | files/s, every run |",
            "|---|---:|---:|---:|---|",
            f"| `[jobs] enabled = false` | **{fmt(off)}** | 1.00× | — | "
            f"{_runs(sc, 'ingest.off')} |",
            f"| default `[jobs]`, backlog running | **{fmt(on)}** | {_ratio(on, off)} | "
            f"{slower} | {_runs(sc, 'ingest.on')} |", ""]


def _at(samples: list[dict], t: float, after: bool) -> dict:
    """The last sample at or before `t`, or (`after`) the first at or after it."""
    zero = {"t": t, "thumbnail": 0.0, "metadata": 0.0, "scrub": 0.0, "scrub_bytes": 0.0}
    if after:
        return next((s for s in samples if s["t"] >= t), samples[-1] if samples else zero)
    return next((s for s in reversed(samples) if s["t"] <= t), zero)


def _ran_out(samples: list[dict], key: str, total: float, start: float) -> float | None:
    """Seconds after `start` when `key` first reached `total`; None if never."""
    return next((s["t"] - start for s in samples if s[key] >= total), None)


def _during(r: dict) -> dict:
    """What the jobs did during one ingest, from its /metrics samples."""
    b, samples = r["backlog"], r["samples"]
    first, last = _at(samples, r["started"], False), _at(samples, r["ended"], True)
    items = b["images"] + b["objects"]
    return {
        "thumbs": last["thumbnail"] - first["thumbnail"],
        "thumbs_left": b["images"] - last["thumbnail"],
        "thumbs_out": _ran_out(samples, "thumbnail", b["images"], r["started"]),
        "scrub_mb": (last["scrub_bytes"] - first["scrub_bytes"]) / 1e6,
        "scrub_left_mb": (b["bytes"] - last["scrub_bytes"]) / 1e6,
        "scrub_out": _ran_out(samples, "scrub", items, r["started"]),
        "metadata": last["metadata"] - first["metadata"],
    }


def _lasted(d: dict, seconds: float) -> str:
    """Whether the thumbnails and the scrubs ran all through the ingest."""
    ends = [f"{what} done {out:.1f} s into it" if out > 0 else f"{what} done before it"
            for what, out in (("thumbnails", d["thumbs_out"]), ("scrubs", d["scrub_out"]))
            if out is not None and out < seconds]
    return "; ".join(ends) if ends else "✅ lasted through the ingest"


def _backlog_table(runs: list[dict]) -> list[str]:
    on = [r for r in runs if r["setup"] == "on"]
    if not on:
        return []
    out = ["| (3) run, jobs on | ingest s | thumbnails made during it | thumbnails left at "
           "its end | scrub read during it | scrub left at its end | metadata jobs during it "
           "| backlog |", "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in on:
        d = _during(r)
        out.append(f"| {r['run'] + 1} | {fmt(r['seconds'])} | {d['thumbs']:.0f} | "
                   f"{d['thumbs_left']:.0f} of {r['backlog']['images']} | "
                   f"{fmt(d['scrub_mb'])} MB | {fmt(max(d['scrub_left_mb'], 0.0))} MB | "
                   f"{d['metadata']:.0f} | {_lasted(d, r['seconds'])} |")
    return out + [""]
