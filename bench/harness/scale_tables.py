"""B7's report: what scen_scale measured, as tables (ingest rate, CPU per
upload, index work per upload, S3 requests per upload) and the sizing model
for a 10,000 files/s small-file ingest computed from those figures."""

from __future__ import annotations

import math

from results import Scenario
from util import median

RATE = 10_000  # uploads/s the model sizes for
BUSY = 0.7  # highest average CPU use planned for, leaving headroom for bursts
CPU_PARTS = [("server", "servers"), ("postgres", "PostgreSQL"), ("haproxy", "HAProxy"),
             ("garage", "Garage"), ("watcher", "watcher")]
# Frontend message types the counting proxy reports, in protocol order.
MESSAGES = [("Q", "Query (simple protocol: BEGIN, COMMIT, SELECT 1)"), ("P", "Parse"),
            ("D", "Describe"), ("B", "Bind"), ("E", "Execute"), ("S", "Sync"),
            ("C", "Close (a one-use statement's, not waited for)")]


def _n(v: float, unit: str = "") -> str:
    if v != v:
        return "—"
    text = (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10
            else f"{v:.2f}" if abs(v) >= 0.995 else f"{v:.3f}" if v else "0")
    return f"{text} {unit}".strip()


def _of(results: list[dict], key: str) -> list[dict]:
    return [r for r in results if r["setup"] == key]


def _per_file(runs: list[dict], get) -> float:
    """Sum over runs of get(run), over the files of those runs."""
    files = sum(r["files"] for r in runs)
    return sum(get(r) for r in runs) / files if files else float("nan")


def scenario(setups, results: list[dict], wire: dict, params, cold: bool) -> Scenario:
    sc = Scenario("B7", "Scale-out ingest on PostgreSQL", _what(params, cold))
    sc.raw = {"runs": results, "wire": wire}
    base = params.concurrency
    for s in setups:
        for r in _of(results, s.key):
            conc = r.get("concurrency", base)
            if conc == base:
                _add_measures(sc, s.key, s.label, r, params.b1_size)
            else:
                _add_measures(sc, f"{s.key}.c{conc}", f"{s.label}, {conc} in flight", r,
                              params.b1_size)
    main = [r for r in results if r.get("concurrency", base) == base]
    high = sorted({r.get("concurrency", base) for r in results} - {base})
    sc.table = (_ingest_table(sc, setups) + _cpu_table(sc, setups)
                + [line for c in high for line in _high_table(sc, setups, c)]
                + _pg_table(sc, setups, main) + _wire_table(wire) + _sqlite_table(main)
                + _http_table(setups, main) + _s3_table(setups, main) + _model(sc, wire))
    sc.commands += [
        f"ASSET_WATCHER__UPLOAD_CONCURRENCY={base} asset-watcher scan   "
        "# after `asset-watcher init --server $FRONT --watch $DATA`; $FRONT is a server or HAProxy",
        "asset-catalog-server --config server.toml   # each server: [index] url = "
        "\"postgres://postgres@127.0.0.1:$PGPORT/$DB\", password_file = \"$PGPASSWORD_FILE\"",
        "/usr/sbin/haproxy -f haproxy.cfg -db   # packaging/examples/haproxy.cfg on loopback",
        "pg_ctl -D $PGDATA -o \"-c shared_preload_libraries=pg_stat_statements ...\" start"
        "   # as user postgres; initdb -A scram-sha-256",
    ]
    return sc


def _add_measures(sc: Scenario, key: str, label: str, r: dict, size: int) -> None:
    """One run's figures, per upload, under measure keys `key.…`."""
    per = r["files"]
    values = [
        ("files_s", "files/s", "files/s", per / r["seconds"]),
        ("mb_s", "MB/s", "MB/s", per * size / 1e6 / r["seconds"]),
        ("cpu.all", "all CPU per upload", "ms", sum(r["cpu"].values()) * 1e3 / per),
        ("s3", "S3 requests per upload", "requests", sum(r["s3"].values()) / per),
    ]
    values += [(f"cpu.{part}", f"{name} CPU per upload", "ms", r["cpu"][part] * 1e3 / per)
               for part, name in CPU_PARTS if part in r["cpu"]]
    if "statements" in r:
        values.append(("pg.calls", "statements per upload", "statements",
                       sum(q["calls"] for q in r["statements"].values()) / per))
        values += [(f"pg.{k}", f"{k} per upload", k, r["pg"].get(k, 0) / per)
                   for k in ("xact_commit", "wal_records", "wal_bytes", "wal_sync")]
    for suffix, what, unit, value in values:
        sc.measure(f"{key}.{suffix}", f"{label}: {what}", unit).runs.append(value)


def _what(params, cold: bool) -> str:
    return (
        f"B1's ingest — {params.b1_files:,} files × {params.b1_size // 1024} KiB of random bytes, "
        f"`asset-watcher scan` with {params.concurrency} uploads in flight, one single-node "
        "Garage (fresh, empty bucket each run), "
        + ("page cache dropped before each upload" if cold else "page cache NOT dropped")
        + " — through one server on SQLite (the baseline, as in B1) and through one private "
        "PostgreSQL 15 (fsync on, scram-sha-256, `pg_stat_statements` loaded; a fresh database "
        "each run) with 1 server direct, and 1, 2 and 3 servers behind HAProxy "
        "(packaging/examples/haproxy.cfg: round robin, `/readyz` checks every 500 ms). Every "
        "process runs on this machine's **2 cores**: more servers add no CPU, so the rows "
        "compare the cost of the setups, not the capacity of a real scale-out. CPU time is "
        "utime + stime from /proc over the scan (PostgreSQL: the postmaster and all its "
        "children, exited backends included); statements from `pg_stat_statements`; "
        "transactions and WAL from `pg_stat_database` and `pg_stat_wal`; S3 requests from "
        "Garage's `api_s3_request_counter`; HTTP requests from each server's `/metrics`. All "
        "per-upload figures are totals over the scan divided by the files, so one check "
        "request's share and the readiness probes are included."
    )


def _med(sc: Scenario, key: str) -> float:
    m = sc.measures.get(key)
    return m.median if m and m.runs else float("nan")


def _ingest_table(sc: Scenario, setups) -> list[str]:
    base = _med(sc, "sqlite.files_s")
    out = ["| setup | files/s | MB/s | vs SQLite | files/s, every run |",
           "|---|---:|---:|---:|---|"]
    for s in setups:
        fs = _med(sc, f"{s.key}.files_s")
        runs = ", ".join(_n(v) for v in sc.measures[f"{s.key}.files_s"].runs)
        out.append(f"| {s.label} | **{_n(fs)}** | {_n(_med(sc, f'{s.key}.mb_s'))} | "
                   f"{fs / base:.2f}× | {runs} |")
    return out + [""]


def _cpu_table(sc: Scenario, setups) -> list[str]:
    out = ["CPU time per upload (ms, median of the runs), and the cores those add up to at "
           "the rate measured (all × files/s):", "",
           "| setup |" + "".join(f" {name} |" for _, name in CPU_PARTS) + " all | cores busy |",
           "|---|" + "---:|" * (len(CPU_PARTS) + 2)]
    for s in setups:
        cells = "".join(f" {_n(_med(sc, f'{s.key}.cpu.{p}'))} |" for p, _ in CPU_PARTS)
        total = _med(sc, f"{s.key}.cpu.all")
        busy = total * _med(sc, f"{s.key}.files_s") / 1e3
        out.append(f"| {s.label} |{cells} **{_n(total)}** | "
                   f"{_n(busy)} of 2 |")
    return out + [""]


def _high_table(sc: Scenario, setups, conc: int) -> list[str]:
    base = _med(sc, f"sqlite.c{conc}.files_s")
    out = [f"The same ingest with **{conc} uploads in flight** (one run per setup): the watcher "
           "no longer waits, the two cores do:", "",
           "| setup | files/s | vs SQLite | servers | PostgreSQL | all CPU per upload | "
           "cores busy |", "|---|---:|---:|---:|---:|---:|---:|"]
    for s in setups:
        k = f"{s.key}.c{conc}"
        fs, total = _med(sc, f"{k}.files_s"), _med(sc, f"{k}.cpu.all")
        out.append(f"| {s.label} | **{_n(fs)}** | {fs / base:.2f}× | "
                   f"{_n(_med(sc, f'{k}.cpu.server'), 'ms')} | "
                   f"{_n(_med(sc, f'{k}.cpu.postgres'), 'ms')} | {_n(total, 'ms')} | "
                   f"{_n(total * fs / 1e3)} of 2 |")
    return out + [""]


def _short(query: str) -> str:
    q = query.replace("|", "\\|")
    return f"`{q[:70]}…`" if len(q) > 71 else f"`{q}`"


# What each statement of the upload path is for (by its start), in the
# order one upload runs them; a statement not listed goes last.
STEPS = [
    ("SELECT secret_hash", "every request: the token's row"),
    ("INSERT INTO leases", "PUT: take the hash's lease (a transaction of its own)"),
    ("SELECT a.sha256", "PUT: is the hash known? and again before COMMIT"),
    ("START TRANSACTION", "PUT: the insert transaction"),
    ("INSERT INTO assets", "PUT: the insert transaction"),
    ("UPDATE tokens SET stored_bytes", "PUT: the insert transaction (uploader's bytes)"),
    ("INSERT INTO sightings", "PUT: the insert transaction"),
    ("COMMIT", "PUT: the insert transaction"),
    ("DELETE FROM leases", "after the answer: release the lease (a transaction of its own)"),
    ("SELECT sha256 FROM assets", "check request: which hashes are missing"),
    ("SELECT sha256 FROM leases", "check request: which are arriving through another server"),
    ("UPDATE tokens SET last_used", "token use (once a minute per token and server)"),
    ("SELECT $1", "readiness probe (HAProxy's /readyz checks)"),
]


def _step(query: str) -> tuple[int, str]:
    for i, (start, what) in enumerate(STEPS):
        if query.startswith(start):
            return i, what
    return len(STEPS), ""


def _pg_table(sc: Scenario, setups, results: list[dict]) -> list[str]:
    pgs = [s for s in setups if s.pg]
    per = {s.key: _statements(_of(results, s.key)) for s in pgs}
    every = [r for r in results if r["setup"] in per]
    wal, ms = _statements(every, "wal_bytes"), _statements(every, "exec_ms")
    queries = sorted({q for d in per.values() for q in d}, key=lambda q: (_step(q), q))
    out = ["PostgreSQL: statements per upload from `pg_stat_statements` (calls summed over the "
           "runs ÷ files), in the order an upload runs them; the WAL each wrote and the time "
           "PostgreSQL spent executing it (per upload, all PostgreSQL setups together); then the "
           "database's counters:", "",
           "| statement | for |" + "".join(f" {s.label} |" for s in pgs)
           + " WAL bytes | executing (µs) |", "|---|---|" + "---:|" * (len(pgs) + 2)]
    for q in queries:
        out.append(f"| {_short(q)} | {_step(q)[1]} |"
                   + "".join(f" {_n(per[s.key].get(q, 0))} |" for s in pgs)
                   + f" {_n(wal.get(q, 0))} | {_n(ms.get(q, 0) * 1e3)} |")
    out.append("| **all statements** | |" + "".join(
        f" **{_n(_med(sc, f'{s.key}.pg.calls'))}** |" for s in pgs)
        + f" {_n(sum(wal.values()))} | {_n(sum(ms.values()) * 1e3)} |")
    rows = [("transactions committed", "pg.xact_commit"), ("WAL records", "pg.wal_records"),
            ("WAL bytes (`pg_stat_wal`)", "pg.wal_bytes"), ("WAL fsyncs", "pg.wal_sync")]
    for label, key in rows:
        out.append(f"| {label} | |" + "".join(f" {_n(_med(sc, f'{s.key}.{key}'))} |" for s in pgs)
                   + " | |")
    return out + [""]


def _statements(runs: list[dict], what: str = "calls") -> dict[str, float]:
    """Per statement: `what` (calls, wal_bytes, exec_ms) summed over the runs ÷ files."""
    queries = {q for r in runs for q in r["statements"]}
    return {q: _per_file(runs, lambda r: r["statements"].get(q, {}).get(what, 0))
            for q in queries}


def _wire_table(wire: dict) -> list[str]:
    m, files = wire["messages"], wire["files"]
    trips = (m.get("Q", 0) + m.get("S", 0) - m.get("C", 0)) / files
    out = [f"Round trips to PostgreSQL, counted on the wire: one more ingest of the same files "
           f"through 1 server whose connections pass a proxy that counts the server's protocol "
           f"messages ({wire['seconds']:.1f} s, not timed for the tables above; "
           f"{m.get('connections', 0)} connections opened):", "",
           "| message from the server | per upload |", "|---|---:|"]
    out += [f"| {label} | {_n(m.get(k, 0) / files)} |" for k, label in MESSAGES]
    out += [f"| **round trips waited for** (Query + Sync − Close) | **{_n(trips)}** |", ""]
    return out


def _sqlite_table(results: list[dict]) -> list[str]:
    """SQLite's statements per upload, counted from the code with the measured
    number of check requests per upload."""
    runs = _of(results, "sqlite")
    checks = _per_file(runs, lambda r: sum(n for d in r["requests"] for k, n in d.items()
                                            if k.startswith("POST") and "check" in k))
    return [
        "SQLite, counted from the code (server/src/index/sqlite/write.rs `insert`, group.rs), "
        f"with the measured {_n(checks)} check requests per upload. All of them are calls "
        "into the same process, none a round trip:", "",
        "| step | statements |", "|---|---:|",
        "| PUT: token check (`SELECT … FROM tokens`) | 1 |",
        "| PUT: is the hash known (`SELECT … FROM assets`) | 1 |",
        "| PUT: `insert`, in a savepoint of a group commit: INSERT assets, UPDATE tokens "
        "(stored bytes), INSERT sightings, UPDATE assets (last_seen), SELECT the asset | 5 |",
        "| PUT: SAVEPOINT + RELEASE around it | 2 |",
        "| the group's BEGIN IMMEDIATE + COMMIT (one fsync'd commit), shared by the uploads "
        "queued together | 2 ÷ group |",
        f"| check request: token check + one `SELECT … IN (…)` per 500 hashes | "
        f"2 × {_n(checks)} |",
        f"| **per upload** | **{_n(9 + 2 * checks)} + 2 ÷ group** |", ""]


def _per_upload_rows(setups, results: list[dict], rows: dict) -> list[str]:
    """One table row per `rows` item (label -> count of one run), a column
    per setup: counts summed over the runs ÷ files."""
    return [f"| {label} |" + "".join(f" {_n(_per_file(_of(results, s.key), get))} |"
                                     for s in setups) for label, get in rows.items()]


def _head(first: str, setups) -> list[str]:
    return [f"| {first} |" + "".join(f" {s.label} |" for s in setups),
            "|---|" + "---:|" * len(setups)]


def _http_table(setups, results: list[dict]) -> list[str]:
    # Not the harness's own scrapes of /metrics.
    routes = sorted({k for r in results for d in r["requests"] for k in d} - {"GET /metrics"})
    rows = {f"`{route}`": lambda r, route=route: sum(d.get(route, 0) for d in r["requests"])
            for route in routes}
    split = []
    for s in setups:
        last = _of(results, s.key)[-1]
        puts = [sum(n for k, n in d.items() if k.startswith("PUT")) for d in last["requests"]]
        split.append(" / ".join(f"{n:,}" for n in puts))
    return (["HTTP requests per upload the servers answered (their `/metrics`, all servers), "
             "and how HAProxy spread the PUTs (last run):", ""] + _head("request", setups)
            + _per_upload_rows(setups, results, rows)
            + ["| PUTs per server |" + "".join(f" {x} |" for x in split), ""])


def _s3_table(setups, results: list[dict]) -> list[str]:
    ops = sorted({op for r in results for op in r["s3"]})
    rows = {op: lambda r, op=op: r["s3"].get(op, 0) for op in ops}
    return (["S3 requests per upload, as Garage counted them:", ""]
            + _head("S3 operation", setups) + _per_upload_rows(setups, results, rows) + [""])


def _model(sc: Scenario, wire: dict) -> list[str]:
    lb = ("pg1h", "pg2h", "pg3h")

    def worst(key: str) -> float:
        return max(_med(sc, f"{k}.{key}") for k in lb)

    srv, pgc, hap, gar = (worst("cpu.server"), worst("cpu.postgres"), worst("cpu.haproxy"),
                          worst("cpu.garage"))
    m = wire["messages"]
    trips = (m.get("Q", 0) + m.get("S", 0) - m.get("C", 0)) / wire["files"]

    def cores(ms: float) -> float:
        return RATE * ms / 1e3

    def hosts(ms: float, k: int) -> int:
        return math.ceil(cores(ms) / (BUSY * k))

    rows = [
        ("asset-catalog-server CPU", f"{_n(srv)} ms", f"{_n(cores(srv))} cores",
         f"**{hosts(srv, 2)} servers of 2 cores**, or {hosts(srv, 8)} of 8 cores, or "
         f"{hosts(srv, 16)} of 16"),
        ("PostgreSQL CPU (backends + background)", f"{_n(pgc)} ms", f"{_n(cores(pgc))} cores",
         f"**one primary with ≥ {math.ceil(cores(pgc) / BUSY)} cores**"),
        ("PostgreSQL statements", _n(worst("pg.calls")), f"{_n(RATE * worst('pg.calls'))}/s", ""),
        ("PostgreSQL round trips", _n(trips), f"{_n(RATE * trips)}/s",
         f"mostly in sequence: ~{_n(trips * 0.2)} ms of each upload at a 0.2 ms RTT"),
        ("PostgreSQL transactions", _n(worst("pg.xact_commit")),
         f"{_n(RATE * worst('pg.xact_commit'))}/s", ""),
        ("WAL", f"{_n(worst('pg.wal_bytes'))} B, {_n(worst('pg.wal_sync'))} fsyncs",
         f"{_n(RATE * worst('pg.wal_bytes') / 1e6)} MB/s, "
         f"≤ {_n(RATE * worst('pg.wal_sync'))} fsyncs/s", "fsyncs: fewer as commits group"),
        ("HAProxy CPU", f"{_n(hap)} ms", f"{_n(cores(hap))} cores",
         f"{math.ceil(cores(hap) / BUSY)} cores"),
        ("S3 requests", _n(worst("s3")), f"{_n(RATE * worst('s3'))}/s", "the bucket's PUT rate"),
        ("Garage CPU (1 node, no replication)", f"{_n(gar)} ms", f"{_n(cores(gar))} cores",
         "more with replication (each PUT written 3×)"),
    ]
    out = ["**The model.** For R = 10,000 small uploads/s, each resource needs R × (its cost "
           "per upload). Cores of a kind: C = R × c, with c the CPU seconds per upload; hosts of "
           f"k cores each, at most {BUSY:.0%} busy on average: **N = ⌈R × c / ({BUSY} × k)⌉**. "
           "Each c below is the highest median of the three HAProxy setups (the deployment's "
           "shape), measured in this run:", "",
           "| resource | per upload (measured) | at 10,000 uploads/s | needs |",
           "|---|---:|---:|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out + [""]
