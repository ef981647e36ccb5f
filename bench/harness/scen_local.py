"""B3 (rescan of unchanged files) and B5 (hashing throughput): work that
stays on this machine. B3 also builds the populated catalog that B6 reuses.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import data
from ctx import GIB, MIB, Ctx
from garage import Garage
from product import Server, Watcher, hashed_bytes
from results import Comparison, Scenario
from util import BenchError, check, log, run_timed


@dataclass
class Populated:
    """A server whose index holds the B3 tree, and the watcher that sent it."""

    garage: Garage
    server: Server
    watcher: Watcher
    root: Path
    digests: list[str]
    initial_seconds: float
    initial_rss_kib: int

    def close(self) -> None:
        self.server.stop()
        self.garage.wipe()


def populate(ctx: Ctx) -> Populated:
    p = ctx.params
    root = ctx.work / "data" / "b3"
    log(f"B3: generating {p.b3_files} files of {p.b3_size} bytes")
    digests = data.small_files(root, p.b3_files, p.b3_size)
    # Background jobs off: the 100,000 new assets would queue metadata and
    # thumbnail jobs that run through B3 and B6 and compete with what those
    # measure (B6's HEAD/s fell from 13,443 to 1,778 with them on). B9
    # measures the jobs and their effect on ingest.
    g, s = ctx.stack("b3", jobs="[jobs]\nenabled = false\n")
    try:
        w = ctx.watcher("b3", s, root)
        log("B3: initial sync (not measured)")
        t = w.scan("initial")
        count = s.count_assets()
        if count != p.b3_files:
            raise BenchError(f"B3 initial sync stored {count} of {p.b3_files} files")
    except BaseException:
        s.stop()
        g.wipe()
        raise
    return Populated(g, s, w, root, digests, t.seconds, t.maxrss_kib)


def b3(ctx: Ctx, pop: Populated) -> Scenario:
    p = ctx.params
    sc = Scenario("B3", "Rescan of unchanged files",
                  f"`asset-watcher scan` over {p.b3_files:,} files ({p.b3_size} B each, "
                  f"1,000 per directory) that it has already synced, against a bare walk "
                  "that stats every file; page cache warm for both.")
    sc.measure("ours", "asset-watcher scan (nothing changed)", "s")
    sc.measure("find", "find -type f -printf '%s %T@\\n'", "s")
    sc.measure("hashed", "bytes hashed during the rescan", "B")
    sc.measure("rss", "asset-watcher peak RSS, rescan", "MiB")
    sc.measure("initial_rss", f"asset-watcher peak RSS, initial sync of the {p.b3_files:,} "
               "files (once, before the runs)", "MiB")
    sc.add("initial_rss", pop.initial_rss_kib / 1024)
    find_cmd = ["find", str(pop.root), "-type", "f", "-printf", "%s %T@\n"]
    out = ctx.dir("logs") / "b3-find.out"
    check(run_timed(find_cmd, stdout_path=out), "find")  # warm-up
    for run in range(ctx.runs):
        log(f"B3 run {run + 1}/{ctx.runs}")
        before = pop.watcher.bytes_hashed_total()
        t = pop.watcher.scan(f"rescan-{run}")
        after = pop.watcher.bytes_hashed_total()
        sc.add("ours", t.seconds)
        sc.add("rss", t.maxrss_kib / 1024)
        hb = hashed_bytes(t)  # the scan's own summary line: bytes_hashed=N
        if hb is None and before is not None and after is not None:
            hb = after - before
        if hb is None:
            sc.notes.append("Neither `asset-watcher status --json` nor the scan's output "
                            "shows a bytes-hashed counter.")
        else:
            sc.add("hashed", hb)
        sc.add("find", check(run_timed(find_cmd, stdout_path=out), "find").seconds)
    sc.comparisons += [
        Comparison("rescan time vs bare walk", "ours", "<=", 1.5, ref="find"),
        Comparison("bytes hashed during the rescan", "hashed", "==", 0.0),
        Comparison("watcher peak RSS in the rescan vs 64 MiB", "rss", "<=", 1.0, limit=64,
                   limit_label="64 MiB"),
        Comparison("watcher peak RSS in the initial sync vs 64 MiB", "initial_rss", "<=", 1.0,
                   limit=64, limit_label="64 MiB"),
    ]
    sc.notes.append("Bytes hashed: `bytes_hashed=N` from the scan's summary line (or, "
                    "failing that, the change of `bytes_hashed` in `asset-watcher status --json`).")
    sc.commands += ["asset-watcher scan   # second and later scans of the same tree",
                    "find $DATA -type f -printf '%s %T@\\n' > /dev/null"]
    sc.notes.append(f"Initial sync of the tree (setup, not part of B3): "
                    f"{pop.initial_seconds:.1f} s = {p.b3_files / pop.initial_seconds:,.0f} files/s.")
    return sc


def _sha256sum(files: list[Path], jobs: int, log_path: Path) -> tuple[float, list[str]]:
    if jobs == 1:
        cmd = ["sha256sum", *map(str, files)]
    else:
        cmd = ["sh", "-c", f'printf "%s\\n" "$@" | xargs -P {jobs} -n 1 sha256sum', "sh",
               *map(str, files)]
    t = check(run_timed(cmd, stdout_path=log_path), "sha256sum")
    sums = {line.split()[1]: line.split()[0] for line in t.stdout.splitlines() if line.strip()}
    return t.seconds, [sums[str(f)] for f in files]


def _ours(ctx: Ctx, files: list[Path], threads: int, log_path: Path) -> tuple[float, list[str]]:
    cmd = [str(ctx.bins.objbench), "hash", "--threads", str(threads), *map(str, files)]
    t = check(run_timed(cmd, stdout_path=log_path), "objstore-bench hash")
    return t.seconds, json.loads(t.stdout)["digests"]


def b5(ctx: Ctx) -> Scenario:
    p = ctx.params
    cores = os.cpu_count() or 1
    size_txt = f"{p.b5_size / GIB:g} GiB" if p.b5_size >= GIB else f"{p.b5_size // MIB} MiB"
    sc = Scenario("B5", "Hashing throughput",
                  f"SHA-256 of one {size_txt} file on one thread, and of the same bytes cut "
                  f"into {cores} files hashed on all {cores} cores; page cache warm; "
                  "MB/s = 10⁶ bytes per second of wall time (process start included for both).")
    sc.measure("ours1", "asset-watcher's hasher, 1 thread", "MB/s")
    sc.measure("sum1", "sha256sum", "MB/s")
    sc.measure("oursN", f"asset-watcher's hasher, pool of {cores}", "MB/s")
    sc.measure("sumN", f"sha256sum × {cores} (xargs -P {cores})", "MB/s")
    src = ctx.work / "data" / "b5" / "one.bin"
    log(f"B5: generating a {size_txt} file")
    data.big_file(src, p.b5_size)
    parts = data.split_file(src, cores, src.parent / "parts")
    data.warm([src, *parts])
    logs = ctx.dir("logs")
    for run in range(ctx.runs):
        log(f"B5 run {run + 1}/{ctx.runs}")
        s_ours, d_ours = _ours(ctx, [src], 1, logs / "b5-ours1.out")
        s_sum, d_sum = _sha256sum([src], 1, logs / "b5-sum1.out")
        if d_ours != d_sum:
            raise BenchError(f"B5: digests differ: ours {d_ours} vs sha256sum {d_sum}")
        sc.add("ours1", p.b5_size / 1e6 / s_ours)
        sc.add("sum1", p.b5_size / 1e6 / s_sum)
        s_ours, d_ours = _ours(ctx, parts, cores, logs / "b5-oursN.out")
        s_sum, d_sum = _sha256sum(parts, cores, logs / "b5-sumN.out")
        if d_ours != d_sum:
            raise BenchError("B5: digests of the parts differ between ours and sha256sum")
        sc.add("oursN", p.b5_size / 1e6 / s_ours)
        sc.add("sumN", p.b5_size / 1e6 / s_sum)
    sc.comparisons += [
        Comparison("1 thread vs sha256sum", "ours1", ">=", 0.9, ref="sum1"),
        Comparison(f"{cores} threads vs sha256sum × {cores}", "oursN", ">=", None, ref="sumN"),
    ]
    sc.commands += [
        "objstore-bench hash --threads 1 $DATA/one.bin",
        "sha256sum $DATA/one.bin",
        f"objstore-bench hash --threads {cores} $DATA/parts/part*.bin",
        f"printf '%s\\n' $DATA/parts/part*.bin | xargs -P {cores} -n 1 sha256sum",
    ]
    sc.notes.append("`objstore-bench hash` calls the watcher's own `asset_watcher::hasher::Hasher` "
                    "(same pool, read size, open flags and SHA-256 code as `asset-watcher`).")
    sc.notes.append("Every digest is checked against sha256sum's.")
    return sc


def coreutils_version() -> str:
    out = subprocess.run(["sha256sum", "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"
