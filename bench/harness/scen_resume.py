"""B10: resumable uploads (tus). B2's 2 GiB file, uploaded by asset-watcher
through asset-catalog-server into Garage:

1. the plain PUT path (`resumable_threshold_bytes` above the file's size)
   against the resumable path (the default threshold, 64 MiB), each by
   `asset-watcher scan` into a fresh stack: MB/s;
2. the resumable path cut at about 50 %: by `kill -9` of the watcher (a new
   `asset-watcher scan` finishes it), and by `kill -9` of the server (started
   again on the same state and port; the running watcher goes on by itself).
   Bytes sent twice = what the server received for the session
   (`asset_catalog_upload_session_received_bytes_total`) minus the file's
   size, against one part (`[storage] part_size_bytes`, 16 MiB).
"""

from __future__ import annotations

import hashlib
import re
import signal
import time
from pathlib import Path

import data
from ctx import GIB, MIB, Ctx
from results import Comparison, Scenario
from util import BenchError, http_json, log, wait_until

THRESHOLD_ENV = "ASSET_WATCHER__RESUMABLE_THRESHOLD_BYTES"
RECEIVED = re.compile(r"^asset_catalog_upload_session_received_bytes_total (\S+)$", re.M)
PART = 16 * MIB


def _received(s) -> int:
    found = RECEIVED.search(s.metrics())
    return int(float(found.group(1))) if found else 0


def _settled(s) -> int:
    """The received counter once it stops moving (the sender is stopped)."""
    last = -1
    while True:
        now = _received(s)
        if now == last:
            return now
        last = now
        time.sleep(0.5)


def _has(s, sha: str, size: int) -> bool:
    try:
        got = http_json("GET", f"{s.url}/v1/assets/{sha}", headers=s.auth)
    except BenchError:
        return False
    return got.get("size") == size


def _scan(ctx: Ctx, name: str, src: Path, threshold: int, sha: str, size: int) -> float:
    """One `asset-watcher scan` of `src` into a fresh stack; seconds."""
    g, s = ctx.stack(name)
    try:
        w = ctx.watcher(name, s, src)
        w.env[THRESHOLD_ENV] = str(threshold)
        t = w.scan(name)
        if not _has(s, sha, size):
            raise BenchError(f"{name}: the server does not have {sha} at {size} bytes")
        return t.seconds
    finally:
        s.stop()
        g.wipe()


def _cut(ctx: Ctx, name: str, src: Path, victim: str, sha: str, size: int) -> dict:
    """The resumable path with `victim` (watcher or server) killed (-9) once
    the server has received half the file; bytes sent twice and seconds."""
    g, s = ctx.stack(name)
    try:
        w = ctx.watcher(name, s, src)
        started = time.monotonic()
        w.start_daemon()
        wait_until(lambda: _received(s) >= size // 2, "half the file received", 600,
                   w.proc, w.root / "run.log")
        at = _received(s)
        if victim == "watcher":
            w.proc.kill()
            w.proc.wait()
            w.proc = None
            log(f"B10 {name}: watcher killed at {at / MIB:.0f} MiB received")
            w.scan(name)
        else:
            # Pause the watcher so that what the server received before its
            # death can be read exactly, then kill the server (-9) and let
            # the watcher go on: it finds the connection gone.
            w.proc.send_signal(signal.SIGSTOP)
            at = _settled(s)
            s.proc.kill()
            s.proc.wait()
            w.proc.send_signal(signal.SIGCONT)
            log(f"B10 {name}: server killed at {at / MIB:.0f} MiB received")
            s._spawn()
            wait_until(lambda: _has(s, sha, size), "the upload to finish after the restart",
                       900, w.proc, w.root / "run.log")
            w.stop_daemon()
        seconds = time.monotonic() - started
        if not _has(s, sha, size):
            raise BenchError(f"{name}: the server does not have {sha} at {size} bytes")
        # A restarted server counts from 0: what it received before the kill was `at`.
        received = _received(s) + (at if victim == "server" else 0)
        return {"resent": received - size, "seconds": seconds, "killed_at": at}
    finally:
        if w.proc is not None:
            w.proc.kill()
        s.stop()
        g.wipe()


def b10(ctx: Ctx) -> Scenario:
    p = ctx.params
    size = p.b2_size
    size_txt = f"{size / GIB:g} GiB" if size >= GIB else f"{size // MIB} MiB"
    sc = Scenario("B10", "Resumable uploads (tus)",
                  f"B2's {size_txt} file of random bytes, page cache warm, by asset-watcher "
                  "through the server into Garage (16 MiB parts); MB/s = 10⁶ bytes per "
                  "second of wall time; bytes sent twice = what the server received for "
                  "the session minus the file's size.")
    sc.measure("put", "plain PUT path (`asset-watcher scan`, threshold above the size)", "MB/s")
    sc.measure("tus", "resumable path (`asset-watcher scan`, default 64 MiB threshold)", "MB/s")
    sc.measure("resent_watcher", "bytes sent twice after kill -9 of the watcher at ~50 %", "MiB")
    sc.measure("resent_server", "bytes sent twice after kill -9 of the server at ~50 %", "MiB")
    sc.measure("cut_watcher_s", "whole upload with the watcher killed and run again", "s")
    sc.measure("cut_server_s", "whole upload with the server killed and restarted", "s")
    src = ctx.work / "data" / "b2"
    big = src / "big.bin"
    if not big.exists() or big.stat().st_size != size:
        log(f"B10: generating a {size_txt} file")
        data.big_file(big, size)
    digest = hashlib.sha256()
    with open(big, "rb") as f:
        while chunk := f.read(data.CHUNK):
            digest.update(chunk)
    sha = digest.hexdigest()
    for run in range(ctx.runs):
        for key, threshold in (("put", 1 << 50), ("tus", 64 * MIB)):
            log(f"B10 run {run + 1}/{ctx.runs}: {key}")
            data.warm([big])
            sc.add(key, size / 1e6 / _scan(ctx, f"b10-{key}-{run}", src, threshold, sha, size))
        for victim in ("watcher", "server"):
            log(f"B10 run {run + 1}/{ctx.runs}: kill -9 of the {victim}")
            data.warm([big])
            r = _cut(ctx, f"b10-cut-{victim}-{run}", src, victim, sha, size)
            log(f"B10 {victim}: killed at {r['killed_at'] / MIB:.0f} MiB, "
                f"{r['resent'] / MIB:.1f} MiB sent twice, {r['seconds']:.1f} s in all")
            sc.add(f"resent_{victim}", r["resent"] / MIB)
            sc.add(f"cut_{victim}_s", r["seconds"])
    sc.comparisons += [
        Comparison("resumable MB/s vs plain PUT", "tus", ">=", 0.9, ref="put"),
        Comparison("sent twice after a watcher kill vs one part", "resent_watcher", "<=", 1.0,
                   limit=PART / MIB, limit_label="16 MiB"),
        Comparison("sent twice after a server kill vs one part", "resent_server", "<=", 1.0,
                   limit=PART / MIB, limit_label="16 MiB"),
    ]
    sc.commands += [
        f"{THRESHOLD_ENV}={1 << 50} asset-watcher scan   # plain PUT",
        "asset-watcher scan                              # tus, default threshold",
        "asset-watcher run & ...; kill -9 (watcher or server) at half; scan / restart",
    ]
    return sc
