"""B4 (watch latency: close → indexed) and B6 (batch check and HEAD rate of
the server's API)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ctx import Ctx
from results import Comparison, Scenario
from scen_local import Populated
from util import BenchError, check, log, median, percentile, run_timed, wait_until

HERE = Path(__file__).resolve().parent


class Poller(threading.Thread):
    """Polls `HEAD /v1/assets/{sha}` for every pending file on one keep-alive
    connection and records when each first answers 200."""

    def __init__(self, port: int, auth: dict):
        super().__init__(daemon=True)
        self.port, self.auth = port, auth
        self.pending: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def add(self, sha: str, closed_at: float) -> None:
        with self.lock:
            self.pending[sha] = closed_at

    def _present(self, conn: http.client.HTTPConnection, sha: str) -> bool:
        conn.request("HEAD", f"/v1/assets/{sha}", headers=self.auth)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stopped.is_set():
            with self.lock:
                todo = list(self.pending.items())
            for sha, closed_at in todo:
                try:
                    found = self._present(conn, sha)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    continue
                if found:
                    now = time.perf_counter()
                    with self.lock:
                        self.pending.pop(sha, None)
                        self.done[sha] = (now - closed_at) * 1000
            time.sleep(0.002)
        conn.close()

    def outstanding(self) -> int:
        with self.lock:
            return len(self.pending)


def _rfc3339(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with any fraction length."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError(f"not RFC 3339: {text}")
    base = datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.astimezone(timezone.utc).timestamp() + frac


def _server_latencies(server, closes: list[tuple[str, float]]) -> list[float]:
    """close → the sighting's `seen_at` as stamped by the server, ms."""
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for sha, closed_wall in closes:
        conn.request("GET", f"/v1/assets/{sha}", headers=server.auth)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            continue
        seen = [s.get("seen_at") for s in json.loads(body).get("sightings", [])]
        seen = [_rfc3339(s) for s in seen if s]
        if seen:
            out.append((min(seen) - closed_wall) * 1000)
    conn.close()
    return out


def _write_files(watch: Path, n: int, rate: float, poller: Poller) -> list[tuple[str, float]]:
    closes = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        payload = os.urandom(4096)
        sha = hashlib.sha256(payload).hexdigest()
        with open(watch / f"file{i:05d}.bin", "wb") as f:
            f.write(payload)
        closed_mono, closed_wall = time.perf_counter(), time.time()
        poller.add(sha, closed_mono)
        closes.append((sha, closed_wall))
    return closes


def _b4_run(ctx: Ctx, run: int) -> tuple[list[float], list[float], int]:
    p = ctx.params
    g, s = ctx.stack(f"b4-{run}")
    watch = ctx.dir("data", f"b4-{run}")
    w = ctx.watcher(f"b4-{run}", s, watch)
    try:
        w.start_daemon()
        probe = os.urandom(4096)
        (watch / "probe.bin").write_bytes(probe)
        probe_sha = hashlib.sha256(probe).hexdigest()
        poller = Poller(s.port, s.auth)
        wait_until(lambda: poller._present(http.client.HTTPConnection("127.0.0.1", s.port),
                                           probe_sha),
                   "asset-watcher run: probe file indexed", 60, w.proc, w.root / "run.log")
        poller.start()
        closes = _write_files(watch, p.b4_files, p.b4_rate, poller)
        deadline = time.monotonic() + 60
        while poller.outstanding() and time.monotonic() < deadline:
            time.sleep(0.05)
        missing = poller.outstanding()
        poller.stopped.set()
        poller.join(10)
        return list(poller.done.values()), _server_latencies(s, closes), missing
    finally:
        w.stop_daemon()
        s.stop()
        g.wipe()


def b4(ctx: Ctx) -> Scenario:
    p = ctx.params
    sc = Scenario("B4", "Watch latency",
                  f"`asset-watcher run` watching an empty directory; {p.b4_files:,} files "
                  f"of 4 KiB random bytes written one at a time at {p.b4_rate:g}/s. "
                  "Latency = close() → the asset answers `HEAD /v1/assets/{sha256}` with 200 "
                  "(polled every ~2 ms); cross-checked with the server's own `seen_at`.")
    sc.measure("p50", "close → indexed, p50 (polled)", "ms")
    sc.measure("p99", "close → indexed, p99 (polled)", "ms")
    sc.measure("max", "close → indexed, max (polled)", "ms")
    sc.measure("p50_srv", "close → server seen_at, p50", "ms")
    sc.measure("p99_srv", "close → server seen_at, p99", "ms")
    sc.measure("missing", "files not indexed 60 s after the last write", "files")
    for run in range(ctx.runs):
        log(f"B4 run {run + 1}/{ctx.runs}: {p.b4_files} files at {p.b4_rate:g}/s")
        polled, stamped, missing = _b4_run(ctx, run)
        if not polled:
            raise BenchError("B4: no file was indexed")
        sc.add("p50", percentile(polled, 50))
        sc.add("p99", percentile(polled, 99))
        sc.add("max", max(polled))
        sc.add("missing", missing)
        if stamped:
            sc.add("p50_srv", percentile(stamped, 50))
            sc.add("p99_srv", percentile(stamped, 99))
    sc.comparisons += [
        Comparison("p99 close → indexed vs 100 ms", "p99", "<=", 1.0, limit=100,
                   limit_label="100 ms"),
        Comparison("p50 close → indexed vs 100 ms", "p50", "<=", None, limit=100,
                   limit_label="100 ms"),
        Comparison("files never indexed", "missing", "==", 0.0),
    ]
    sc.commands += ["asset-watcher run   # then the harness writes the files itself"]
    return sc


def _check_times(port: int, auth: dict, body: bytes, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"content-type": "application/json", **auth}
    times, missing = [], -1
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/assets/check", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        times.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise BenchError(f"POST /v1/assets/check -> {resp.status}: {data[:300]!r}")
        missing = len(json.loads(data)["missing"])
    conn.close()
    return times, missing


def _wrk(ctx: Ctx, url: str, method: str, paths: Path, auth: dict, seconds: int) -> dict:
    env = {**ctx.base_env, "BENCH_PATHS": str(paths), "BENCH_METHOD": method,
           "BENCH_AUTH": auth.get("authorization", "")}
    cmd = [ctx.bins.wrk, f"-t{ctx.params.wrk_threads}", f"-c{ctx.params.wrk_connections}",
           f"-d{seconds}s", "--timeout", "5s", "-s", str(HERE / "rotate.lua"), url]
    t = check(run_timed(cmd, env=env, stdout_path=ctx.dir("logs") / f"wrk-{method}.out"), "wrk")
    rps = re.search(r"Requests/sec:\s*([\d.]+)", t.stdout)
    reqs = re.search(r"(\d+) requests in", t.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", t.stdout)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       t.stdout)
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "requests": int(reqs.group(1)) if reqs else 0,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": sum(map(int, errors.groups())) if errors else 0}


def _head_load(ctx: Ctx, server, paths: Path, seconds: int) -> dict:
    cmd = [str(ctx.bins.objbench), "head-load", "--addr", f"127.0.0.1:{server.port}",
           "--paths-file", str(paths), "--connections", str(ctx.params.wrk_connections),
           "--seconds", str(seconds), "--threads", str(ctx.params.wrk_threads)]
    for k, v in server.auth.items():
        cmd += ["--header", f"{k}: {v}"]
    t = check(run_timed(cmd, stdout_path=ctx.dir("logs") / "head-load.out"), "head-load")
    out = json.loads(t.stdout)
    return {"rps": out["requests_per_sec"], "requests": out["requests"],
            "non_2xx": out["non_2xx"], "errors": out["errors"]}


def b6(ctx: Ctx, pop: Populated) -> Scenario:
    p = ctx.params
    s = pop.server
    present = pop.digests[: min(len(pop.digests), p.b6_hashes // 2)]
    absent = [secrets.token_hex(32) for _ in range(p.b6_hashes - len(present))]
    sc = Scenario("B6", "Server API",
                  f"Against the B3 catalog ({len(pop.digests):,} assets): `POST /v1/assets/check` "
                  f"with {p.b6_hashes:,} hashes ({len(present):,} present, {len(absent):,} not), "
                  f"median of {p.b6_requests} requests per run on one keep-alive connection; "
                  f"HEAD /v1/assets/{{sha256}} rotating over 1,000 stored assets, "
                  f"{p.wrk_connections} connections, {p.wrk_threads} threads, "
                  f"{p.wrk_seconds} s per run, load generator on the same 2 cores; the "
                  "catalog's server runs with `[jobs] enabled = false` (B9 measures the jobs).")
    sc.measure("check", f"POST /v1/assets/check, {p.b6_hashes:,} hashes", "ms")
    sc.measure("head", "HEAD /v1/assets/{sha256}", "req/s")
    sc.measure("get", "GET /v1/assets/{sha256} (metadata JSON, wrk)", "req/s")
    body = json.dumps({"hashes": present + absent}).encode()
    _, missing = _check_times(s.port, s.auth, body, 2)  # warm-up
    if missing != len(absent):
        raise BenchError(f"B6: check said {missing} missing, expected {len(absent)}")
    paths = ctx.work / "b6-paths.txt"
    paths.write_text("".join(f"/v1/assets/{d}\n" for d in pop.digests[:1000]))
    probe = _wrk(ctx, s.url, "HEAD", paths, s.auth, 1)
    use_wrk = probe["requests"] > 0 and probe["errors"] == 0 and probe["non_2xx"] == 0
    if not use_wrk:
        sc.notes.append("wrk 4.1.0 cannot measure HEAD: after a HEAD response that carries "
                        "Content-Length (as it should) it waits for a body that never comes "
                        f"(1 s probe: {probe['requests']} requests completed). HEAD/s therefore "
                        "comes from `objstore-bench head-load`, which does what wrk does: "
                        "keep-alive connections, one request in flight on each, fixed duration. "
                        "wrk still measures GET on the same URLs for comparison.")
    for run in range(ctx.runs):
        log(f"B6 run {run + 1}/{ctx.runs}")
        times, _ = _check_times(s.port, s.auth, body, p.b6_requests)
        sc.add("check", median(times))
        head = (_wrk(ctx, s.url, "HEAD", paths, s.auth, p.wrk_seconds) if use_wrk
                else _head_load(ctx, s, paths, p.wrk_seconds))
        if head["non_2xx"] or head["errors"]:
            sc.notes.append(f"run {run + 1}: HEAD load had {head['non_2xx']} non-2xx and "
                            f"{head['errors']} errors")
        sc.add("head", head["rps"])
        get = _wrk(ctx, s.url, "GET", paths, s.auth, p.wrk_seconds)
        if get["non_2xx"] or get["errors"]:
            sc.notes.append(f"run {run + 1}: wrk GET had {get['non_2xx']} non-2xx and "
                            f"{get['errors']} errors")
        sc.add("get", get["rps"])
    sc.comparisons += [
        Comparison("check of 10,000 hashes vs 50 ms", "check", "<=", 1.0, limit=50,
                   limit_label="50 ms"),
        Comparison("HEAD/s vs 10,000/s", "head", ">=", 1.0, limit=10_000,
                   limit_label="10,000 req/s"),
    ]
    head_cmd = ("wrk -t{t} -c{c} -d{d}s -s bench/harness/rotate.lua $SERVER   # BENCH_METHOD=HEAD"
                if use_wrk else
                "objstore-bench head-load --addr $SERVER --paths-file $PATHS "
                "--connections {c} --seconds {d} --threads {t}")
    sc.commands += [
        "curl -X POST -H 'content-type: application/json' -d @hashes.json "
        "$SERVER/v1/assets/check   # done from Python, keep-alive",
        head_cmd.format(t=p.wrk_threads, c=p.wrk_connections, d=p.wrk_seconds),
        f"wrk -t{p.wrk_threads} -c{p.wrk_connections} -d{p.wrk_seconds}s "
        "-s bench/harness/rotate.lua $SERVER   # BENCH_METHOD=GET",
    ]
    return sc
