"""B1 (10,000 small files, cold) and B2 (one 2 GiB file): end-to-end uploads
by asset-watcher through asset-catalog-server into Garage, against rclone,
aws-cli and object_store talking to the same Garage directly.

Every measured upload gets a fresh Garage (empty bucket) and, for us, a fresh
server and watcher state. Tools are interleaved run by run so slow drift on
the machine hits all of them alike.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import cpu
import data
from ctx import GIB, MIB, Ctx
from results import Comparison, Scenario
from util import BenchError, check, drop_caches, http_json, log, run_timed

B1_TOOLS = ["ours", "rclone", "rclone16", "aws", "objstore", "objstore16", "objstore32"]
# The backend's own PUT rate at each concurrency measured; the best of them
# (per run) is what B1 is held against.
OBJSTORE = {"objstore": None, "objstore16": 16, "objstore32": 32}


def _rclone_count(ctx: Ctx, g, home: Path, prefix: str) -> tuple[int, int]:
    env = g.rclone_env(ctx.base_env, home)
    t = check(run_timed([ctx.bins.rclone, "size", "--json", f"garage:bench/{prefix}"],
                        env=env, stdout_path=home / "size.out"), "rclone size")
    out = json.loads(t.stdout)
    return int(out["count"]), int(out["bytes"])


def _expect(what: str, got: int, want: int) -> None:
    if got != want:
        raise BenchError(f"{what}: {got} objects stored, expected {want}")


def _peer_upload(ctx: Ctx, tool: str, src: Path, run: int, want: int, cold: bool) -> dict:
    """Upload `src` with a peer into a fresh Garage: wall seconds, and the
    CPU seconds of the tool and of Garage during the upload."""
    g = ctx.garage(f"{tool}-{run}")
    home = ctx.peer_home(f"{tool}-{run}")
    try:
        if tool.startswith("rclone"):
            extra = ["--transfers", "16"] if tool == "rclone16" else []
            cmd = [ctx.bins.rclone, "copy", *extra, str(src), "garage:bench/up"]
            env = g.rclone_env(ctx.base_env, home)
        elif tool == "aws":
            cmd = [ctx.bins.aws, "s3", "cp", "--recursive", "--endpoint-url", g.endpoint,
                   str(src), "s3://bench/up/"]
            env = g.aws_env(ctx.base_env, home)
        elif tool in OBJSTORE:
            cmd = [str(ctx.bins.objbench), "put-many", "--dir", str(src), "--prefix", "up",
                   "--concurrency", str(OBJSTORE[tool] or ctx.params.concurrency)]
            env = g.objstore_env(ctx.base_env)
        elif tool == "multipart":
            cmd = [str(ctx.bins.objbench), "put-multipart", "--file", str(src / "big.bin"),
                   "--key", "up/big.bin", "--part-size-mib", str(ctx.params.part_size_mib),
                   "--concurrency", str(ctx.params.part_concurrency)]
            env = g.objstore_env(ctx.base_env)
        else:
            raise BenchError(f"unknown tool {tool}")
        if cold and not drop_caches(True):
            raise BenchError("cannot drop the page cache (needs root); use --no-drop-caches")
        before = cpu.snapshot([g.proc.pid])
        t = check(run_timed(cmd, env=env, stdout_path=home / "upload.out"), tool)
        garage_cpu = cpu.seconds(before, cpu.snapshot([g.proc.pid]))
        count, _ = _rclone_count(ctx, g, home, "up")
        _expect(tool, count, want)
        return {"seconds": t.seconds, "cpu": {"tool": t.cpu_s, "garage": garage_cpu}}
    finally:
        g.wipe()


def _ours_upload(ctx: Ctx, name: str, src: Path, want: int, cold: bool,
                 sha: str | None = None, size: int = 0) -> dict:
    """asset-watcher scan of `src` into a fresh stack; see `ours_scan`."""
    g, s = ctx.stack(name)
    try:
        return ours_scan(ctx, name, s, src, want, cold, sha, size, garage_pid=g.proc.pid)
    finally:
        s.stop()
        g.wipe()


def ours_scan(ctx: Ctx, name: str, s, src: Path, want: int, cold: bool,
              sha: str | None = None, size: int = 0, garage_pid: int | None = None) -> dict:
    """asset-watcher scan of `src` into server `s` by a fresh watcher;
    seconds, peak RSS, CPU seconds (watcher, server and, with `garage_pid`,
    Garage, during the scan), and when it ended (time.monotonic). The index
    must then hold `want` assets.

    With `sha`, also checks that the server has that asset at `size` bytes.
    """
    w = ctx.watcher(name, s, src)
    if cold and not drop_caches(True):
        raise BenchError("cannot drop the page cache (needs root); use --no-drop-caches")
    pids = {"server": s.proc.pid, **({"garage": garage_pid} if garage_pid else {})}
    before = {k: cpu.snapshot([pid]) for k, pid in pids.items()}
    t = w.scan(name)
    ended = time.monotonic()
    used = {k: cpu.seconds(before[k], cpu.snapshot([pid])) for k, pid in pids.items()}
    count = s.count_assets()
    _expect("asset-watcher scan", count, want)
    if sha:
        got = http_json("GET", f"{s.url}/v1/assets/{sha}", headers=s.auth)
        if got.get("size") != size:
            raise BenchError(f"server has {sha} with size {got.get('size')}, not {size}")
    return {"seconds": t.seconds, "watcher_rss": t.maxrss_kib, "server_rss": s.peak_rss_kib(),
            "ended": ended, "cpu": {"watcher": t.cpu_s, **used}}


def b1_data(ctx: Ctx) -> Path:
    """B1's files (generated once per run of the harness)."""
    p = ctx.params
    src = ctx.work / "data" / "b1"
    done = src.with_name("b1.complete")  # outside the tree the tools upload
    if not done.exists():
        log(f"B1: generating {p.b1_files} files")
        data.small_files(src, p.b1_files, p.b1_size)
        done.touch()
    return src


def b1(ctx: Ctx) -> Scenario:
    p = ctx.params
    dirs = -(-p.b1_files // 1000)
    cold = ("page cache dropped before each upload" if ctx.drop_caches
            else "page cache NOT dropped (--no-drop-caches or --quick)")
    sc = Scenario("B1", "Small files, cold, end to end",
                  f"{p.b1_files:,} files × {p.b1_size // 1024} KiB of random bytes in "
                  f"{dirs} director{'y' if dirs == 1 else 'ies'}; empty bucket, empty index "
                  f"and client state, {cold}; files/s = files / wall time.")
    labels = {
        "ours": "asset-watcher scan → server → Garage",
        "rclone": "rclone copy (defaults: --transfers 4)",
        "rclone16": "rclone copy --transfers 16",
        "aws": "aws s3 cp --recursive",
        "objstore": f"object_store PUTs, {p.concurrency} in flight",
        "objstore16": "object_store PUTs, 16 in flight",
        "objstore32": "object_store PUTs, 32 in flight",
    }
    for key in B1_TOOLS:
        sc.measure(key, labels[key], "files/s")
    sc.measure("objstore_best", "object_store PUTs, best of 4/16/32 in flight "
               "(backend's own rate)", "files/s")
    cpu_labels = {
        "cpu.ours.watcher": "CPU per file: asset-watcher",
        "cpu.ours.server": "CPU per file: asset-catalog-server",
        "cpu.ours.garage": "CPU per file: Garage, under ours",
        "cpu.rclone.tool": "CPU per file: rclone (defaults)",
        "cpu.rclone.garage": "CPU per file: Garage, under rclone",
        "cpu.objstore16.tool": "CPU per file: object_store, 16 in flight",
        "cpu.objstore16.garage": "CPU per file: Garage, under object_store 16",
    }
    for key, label in cpu_labels.items():
        sc.measure(key, label, "ms")
    sc.measure("watcher_rss", "asset-watcher peak RSS", "MiB")
    sc.measure("server_rss", "asset-catalog-server peak RSS", "MiB")
    src = b1_data(ctx)
    for run in range(ctx.runs):
        best = 0.0
        for key in B1_TOOLS:
            log(f"B1 run {run + 1}/{ctx.runs}: {key}")
            if key == "ours":
                r = _ours_upload(ctx, f"b1-{run}", src, p.b1_files, ctx.drop_caches)
                sc.add("watcher_rss", r["watcher_rss"] / 1024)
                sc.add("server_rss", r["server_rss"] / 1024)
            else:
                r = _peer_upload(ctx, key, src, run, p.b1_files, ctx.drop_caches)
            rate = p.b1_files / r["seconds"]
            sc.add(key, rate)
            if key in OBJSTORE:
                best = max(best, rate)
            for part, secs in r["cpu"].items():
                if f"cpu.{key}.{part}" in sc.measures:
                    sc.add(f"cpu.{key}.{part}", secs * 1e3 / p.b1_files)
        sc.add("objstore_best", best)
    sc.comparisons += [
        Comparison("files/s vs rclone defaults", "ours", ">=", 1.5, ref="rclone"),
        Comparison("files/s vs backend's best PUT rate", "ours", ">=", 0.9, ref="objstore_best"),
        Comparison("files/s vs rclone --transfers 16", "ours", ">=", None, ref="rclone16"),
        Comparison("files/s vs aws s3 cp", "ours", ">=", None, ref="aws"),
    ]
    sc.commands += [
        f"ASSET_WATCHER__UPLOAD_CONCURRENCY={p.concurrency} asset-watcher scan   "
        "# after `asset-watcher init --server $SERVER --watch $DATA`",
        "rclone copy $DATA garage:bench/up",
        "rclone copy --transfers 16 $DATA garage:bench/up",
        "aws s3 cp --recursive --endpoint-url $GARAGE $DATA s3://bench/up/",
        "objstore-bench put-many --dir $DATA --prefix up --concurrency N   # N = "
        f"{p.concurrency}, 16, 32",
    ]
    sc.notes.append("CPU per file: user + system time of each process during the upload "
                    "(wait4 for the tool or watcher, /proc/PID/stat for the server and "
                    "Garage), divided by the number of files.")
    sc.notes.append("Every upload is checked afterwards: the server's index (ours) or the "
                    "bucket listing (peers) must hold exactly the generated files.")
    return sc


def b2(ctx: Ctx) -> Scenario:
    p = ctx.params
    size_txt = f"{p.b2_size / GIB:g} GiB" if p.b2_size >= GIB else f"{p.b2_size // MIB} MiB"
    sc = Scenario("B2", "One large file, end to end",
                  f"One {size_txt} file of random bytes (page cache warm for every tool); "
                  "MB/s = 10⁶ bytes per second of wall time; peak RSS from the kernel "
                  "(VmHWM of each process). At the watcher's defaults a file this size "
                  "goes up as a resumable (tus) upload (`resumable_threshold_bytes`, 64 MiB; "
                  "issue 16), one 16 MiB part in flight: see B10.")
    sc.measure("ours", "asset-watcher scan → server → Garage", "MB/s")
    sc.measure("rclone", "rclone copy (defaults)", "MB/s")
    sc.measure("multipart", f"object_store multipart PUT ({p.part_size_mib} MiB parts, "
               f"{p.part_concurrency} in flight)", "MB/s")
    sc.measure("server_rss", "asset-catalog-server peak RSS", "MiB")
    sc.measure("watcher_rss", "asset-watcher peak RSS", "MiB")
    src = ctx.work / "data" / "b2"
    log(f"B2: generating a {size_txt} file")
    data.big_file(src / "big.bin", p.b2_size)
    digest = hashlib.sha256()
    with open(src / "big.bin", "rb") as f:
        while chunk := f.read(data.CHUNK):
            digest.update(chunk)
    log(f"B2: sha256 {digest.hexdigest()}")
    for run in range(ctx.runs):
        for key in ("ours", "rclone", "multipart"):
            log(f"B2 run {run + 1}/{ctx.runs}: {key}")
            data.warm([src / "big.bin"])
            if key == "ours":
                r = _ours_upload(ctx, f"b2-{run}", src, 1, False, digest.hexdigest(), p.b2_size)
                sc.add("watcher_rss", r["watcher_rss"] / 1024)
                sc.add("server_rss", r["server_rss"] / 1024)
            else:
                r = _peer_upload(ctx, key, src, run, 1, False)
            sc.add(key, p.b2_size / 1e6 / r["seconds"])
    sc.comparisons += [
        Comparison("MB/s vs direct multipart PUT", "ours", ">=", 0.95, ref="multipart"),
        Comparison("MB/s vs rclone", "ours", ">=", None, ref="rclone"),
        Comparison("server peak RSS vs 64 MiB", "server_rss", "<=", 1.0, limit=64,
                   limit_label="64 MiB"),
        Comparison("watcher peak RSS vs 64 MiB", "watcher_rss", "<=", 1.0, limit=64,
                   limit_label="64 MiB"),
    ]
    sc.commands += [
        "asset-watcher scan   # watching a directory that holds only the file",
        "rclone copy $DATA garage:bench/up",
        f"objstore-bench put-multipart --file $DATA/big.bin --key up/big.bin "
        f"--part-size-mib {p.part_size_mib} --concurrency {p.part_concurrency}",
    ]
    return sc
