"""B7 (scale-out ingest on PostgreSQL): B1's ingest — the same 10,000 × 4 KiB
files, the same `asset-watcher scan` with 4 uploads in flight, the same
single-node Garage, page cache dropped — through one server on SQLite (the
baseline, direct), one server on PostgreSQL (direct), and 1, 2 and 3 servers
on one PostgreSQL behind HAProxy; all on this machine, in one run, setups
interleaved run by run; then once more each with 16 uploads in flight.

Besides files/s it measures what one upload costs on each backend: CPU
seconds of every process (servers, PostgreSQL with its backends, HAProxy,
Garage, the watcher) from /proc over the scan; statements per upload from
pg_stat_statements, transactions and WAL from pg_stat_database and
pg_stat_wal; S3 requests per upload from Garage's own metrics; and, in one
extra pass through a counting proxy, the round trips a server makes to
PostgreSQL. scale_tables turns them into the report and the sizing model.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import cpu
import data
import scale_tables
from ctx import Ctx
from haproxy import Haproxy
from pg import Postgres, WireCounter
from product import Server, Watcher
from results import Scenario
from util import BenchError, drop_caches, http, log, wait_until


@dataclass(frozen=True)
class Setup:
    key: str
    label: str
    servers: int
    pg: bool
    haproxy: bool


SETUPS = [
    Setup("sqlite", "1 server, SQLite, direct (baseline)", 1, False, False),
    Setup("pg1", "1 server, PostgreSQL, direct", 1, True, False),
    Setup("pg1h", "1 server, PostgreSQL, HAProxy", 1, True, True),
    Setup("pg2h", "2 servers, PostgreSQL, HAProxy", 2, True, True),
    Setup("pg3h", "3 servers, PostgreSQL, HAProxy", 3, True, True),
]
# A second pass with this many uploads in flight, one run per setup: enough
# to keep the two cores busy, so files/s follows the CPU each upload costs.
HIGH_CONCURRENCY = 16
# After the servers are ready: HAProxy's checks (and the servers' own
# readiness probes, which end a transaction each second and so flush a
# backend's pending statistics) have run at least once more.
SETTLE_S = 2.5


@dataclass
class Endpoint:
    """Where the watcher sends its uploads (a server or HAProxy)."""

    url: str
    token: str | None


class Stack:
    """One setup's processes for one measured ingest; `close()` stops them."""

    def __init__(self, ctx: Ctx, setup: Setup, name: str, pg: Postgres | None,
                 concurrency: int, pg_port: int | None = None):
        self.setup, self.pg = setup, pg
        self.garage = ctx.garage(name)
        self.servers: list[Server] = []
        self.lb: Haproxy | None = None
        self.db = f"catalog_{name.replace('-', '_')}" if setup.pg else None
        try:
            index = ""
            if setup.pg:
                url = pg.create_database(self.db, pg_port)
                index = f'[index]\nurl = "{url}"\npassword_file = "{pg.password_file}"\n'
            for i in range(setup.servers):
                root = ctx.work / "server" / f"{name}-s{i + 1}"
                self.servers.append(Server(ctx.bins.server, root, self.garage, index).start())
            token = self.servers[0].token
            front = Endpoint(self.servers[0].url, token)
            if setup.haproxy:
                self.lb = Haproxy(ctx.work / "haproxy" / name,
                                  [s.port for s in self.servers]).start()
                front = Endpoint(self.lb.url, token)
            self.watcher = Watcher(ctx.bins.watcher, ctx.work / "watcher" / name, front,
                                   ctx.work / "data" / "b7", concurrency).init()
        except BaseException:
            self.close()
            raise

    def cpu(self) -> dict[str, cpu.Snapshot]:
        snaps = {"server": cpu.snapshot([s.proc.pid for s in self.servers]),
                 "garage": cpu.snapshot([self.garage.proc.pid])}
        if self.pg:
            snaps["postgres"] = cpu.snapshot([self.pg.postmaster_pid()], children=True)
        if self.lb:
            snaps["haproxy"] = cpu.snapshot([self.lb.proc.pid])
        return snaps

    def requests(self) -> list[dict[str, int]]:
        """Each server's HTTP requests so far, by `METHOD route`."""
        return [_requests(s) for s in self.servers]

    def close(self) -> None:
        if self.lb:
            self.lb.stop()
        for s in self.servers:
            s.stop()
        if self.pg and self.db:
            # Backends flush their statistics as they exit.
            wait_until(lambda: self.pg.psql("postgres", (
                "SELECT count(*) FROM pg_stat_activity "
                f"WHERE datname = '{self.db}'"))[0][0] == "0",
                "PostgreSQL backends of the stopped servers gone", 30)
        self.garage.wipe()


_REQUEST = re.compile(r'^asset_catalog_http_request_duration_seconds_count\{(.*)\} (\d+)', re.M)


def _requests(server: Server) -> dict[str, int]:
    status, body = http("GET", f"{server.url}/metrics", headers=server.auth, timeout=10)
    if status != 200:
        raise BenchError(f"{server.url}/metrics answered {status}")
    out: dict[str, int] = {}
    for labels, n in _REQUEST.findall(body.decode()):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = f"{fields.get('method', '?')} {fields.get('route', '?')}"
        out[key] = out.get(key, 0) + int(n)
    return out


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _ingest(ctx: Ctx, setup: Setup, run: str, pg: Postgres, concurrency: int) -> dict:
    """One measured ingest of the B7 files through `setup` by a watcher with
    `concurrency` uploads in flight; everything it cost."""
    stack = Stack(ctx, setup, f"b7-{setup.key}-{run}", pg if setup.pg else None, concurrency)
    files = ctx.params.b1_files
    try:
        time.sleep(SETTLE_S)
        if ctx.drop_caches and not drop_caches(True):
            raise BenchError("cannot drop the page cache (needs root); use --no-drop-caches")
        if setup.pg:
            pg.reset_statements()
            pg_0 = pg.counters(stack.db)
        s3_0, req_0, cpu_0 = stack.garage.s3_requests(), stack.requests(), stack.cpu()
        watcher_0 = cpu.children_seconds()
        t = stack.watcher.scan(f"{setup.key}-{run}")
        watcher_s = cpu.children_seconds() - watcher_0
        cpu_1 = stack.cpu()
        out = {
            "setup": setup.key, "run": run, "concurrency": concurrency, "files": files,
            "seconds": t.seconds,
            "cpu": {k: cpu.seconds(cpu_0[k], cpu_1[k]) for k in cpu_1} | {"watcher": watcher_s},
            "s3": _delta(stack.garage.s3_requests(), s3_0),
            "requests": [_delta(a, b) for a, b in zip(stack.requests(), req_0)],
        }
        if setup.pg:
            out["statements"] = pg.statements(stack.db)
        count = stack.servers[0].count_assets()
        if count != files:
            raise BenchError(f"{setup.label}: {count} assets indexed, expected {files}")
    finally:
        stack.close()
    if setup.pg:
        out["pg"] = _delta(pg.counters(stack.db), pg_0)
    return out


def _round_trips(ctx: Ctx, pg: Postgres) -> dict:
    """One ingest through one server whose PostgreSQL connections pass a
    counting proxy: protocol messages per upload (not timed)."""
    counter = WireCounter(pg.port)
    setup = Setup("wire", "1 server, PostgreSQL through a counting proxy", 1, True, False)
    stack = Stack(ctx, setup, "b7-wire", pg, ctx.params.concurrency, counter.port)
    try:
        time.sleep(SETTLE_S)
        counter.reset()
        t = stack.watcher.scan("wire")
        counts = counter.snapshot()
    finally:
        stack.close()
        counter.close()
    return {"files": ctx.params.b1_files, "seconds": t.seconds, "messages": counts}


def b7(ctx: Ctx) -> Scenario:
    p = ctx.params
    src = ctx.work / "data" / "b7"
    log(f"B7: generating {p.b1_files} files")
    data.small_files(src, p.b1_files, p.b1_size)
    pg = Postgres(ctx.dir("b7") / "pg-password").start()
    log(f"B7: PostgreSQL 15 on 127.0.0.1:{pg.port}")
    results = []
    try:
        for run in range(ctx.runs):
            for setup in SETUPS:
                log(f"B7 run {run + 1}/{ctx.runs}: {setup.label}")
                results.append(_ingest(ctx, setup, str(run), pg, ctx.params.concurrency))
        for setup in SETUPS:
            log(f"B7, {HIGH_CONCURRENCY} uploads in flight (one run): {setup.label}")
            results.append(_ingest(ctx, setup, f"c{HIGH_CONCURRENCY}", pg, HIGH_CONCURRENCY))
        log("B7: round trips to PostgreSQL (one pass through a counting proxy)")
        wire = _round_trips(ctx, pg)
    finally:
        pg.stop()
    return scale_tables.scenario(SETUPS, results, wire, p, ctx.drop_caches)
