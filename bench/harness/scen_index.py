"""B8 (the index at 1M assets): `index-bench` (bench/index-bench) times the
server's own `Index` API on SQLite and on PostgreSQL in one run; this turns
its JSON into the report: one table of both backends against the goals, the
plans of every query that missed its goal, and the raw JSON (every sample,
every plan) kept in the scenario for results.json."""

from __future__ import annotations

import json

from ctx import Ctx
from results import Comparison, Scenario
from util import check, log, percentile, run_timed

# (backend name in index-bench's JSON, measure key prefix)
BACKENDS = {"SQLite": "sqlite", "PostgreSQL": "pg"}


def b8(ctx: Ctx) -> Scenario:
    p = ctx.params
    out = ctx.work / "b8.json"
    args = ["--assets", str(p.b8_assets), "--reps", str(p.b8_reps),
            "--insert-seconds", f"{p.b8_insert_seconds:g}",
            "--insert-tasks", str(p.b8_insert_tasks), "--fixes"]
    cmd = [str(ctx.bins.indexbench), *args, "--workdir", str(ctx.dir("b8")),
           "--json", str(out)]
    log(f"B8: {p.b8_assets:,} assets, SQLite then PostgreSQL "
        f"(progress in {ctx.work}/logs/index-bench.stderr)")
    t = check(run_timed(cmd, stdout_path=ctx.dir("logs") / "index-bench.out",
                        timeout=4 * 3600), "index-bench")
    log(f"B8: done in {t.seconds:.0f} s")
    sc = scenario(json.loads(out.read_text()))
    sc.commands += [
        "bench/run.sh --only B8 --merge   # this section; --assets N for a smaller index",
        f"index-bench {' '.join(args)}   # what it runs (bench/index-bench)",
    ]
    return sc


def _title(assets: int) -> str:
    size = f"{assets // 1_000_000}M" if assets % 1_000_000 == 0 else f"{assets:,}"
    return f"The index at {size} assets"


def scenario(raw: dict) -> Scenario:
    sc = Scenario("B8", _title(raw["assets"]), _what(raw))
    sc.raw = raw
    for b in raw["backends"]:
        key = BACKENDS[b["backend"]]
        for q in b["queries"]:
            m = sc.measure(f"{key}.{q['id']}", f"{q['label']} — {b['backend']}", "ms")
            m.runs = list(q["samples_ms"])
            goal = q["goal_ms"]
            sc.comparisons.append(Comparison(
                f"{b['backend']}: {q['label']}, median vs {goal:g} ms", f"{key}.{q['id']}",
                "<=", 1.0, limit=goal, limit_label=f"{goal:g} ms"))
        sc.measure(f"{key}.insert", f"sustained insert — {b['backend']}", "assets/s").runs = [
            b["insert"]["per_sec"]]
        sc.measure(f"{key}.load", f"bulk load — {b['backend']}", "s").runs = [
            b["load"]["total_s"]]
        sc.measure(f"{key}.size", f"size on disk — {b['backend']}", "B").runs = [
            b["sizes"][0][1]]
    sc.table = _table(sc, raw) + _plans(sc, raw) + _prototypes(raw)
    sc.notes += [f"Results differ between the backends: {m}" for m in raw["mismatches"]]
    return sc


def _what(raw: dict) -> str:
    ins = raw["backends"][0]["insert"] if raw["backends"] else {"tasks": 0, "seconds": 0}
    return (
        f"The server's metadata index holding {raw['assets']:,} assets and "
        f"{raw['sightings']:,} sightings (1–5 per asset), on SQLite and on a private "
        "PostgreSQL 15 in the same run on this machine, timed through "
        "`asset_catalog_server::index::Index`, the interface the server calls (no HTTP). "
        f"Each query: one warm-up, then {raw['reps']} runs; median and p95 (nearest rank). "
        "Listing pages hold 100 assets, newest first. The check asks for 10,000 hashes, "
        "5,000 of them stored, a fresh random set each run. The deep page is the one after "
        f"position {raw['deep_position']:,} (its cursor built from that asset's "
        f"`(first_seen, sha256)`). The insert load is {ins['tasks']} tasks calling "
        f"`Index::insert` (a new asset with one sighting) for {ins['seconds']:.0f} s against "
        "the loaded index, after the queries. Data: camera, screenshot "
        "and document names (`IMG_20240512_123456.jpg`, `kestrel-audit-2023-q4.pdf`), paths "
        "under `/home/USER/`, 20 clients of Zipf-like activity, image/jpeg 41%, image/png 14%, "
        "video/mp4 9%, application/pdf 10%, text/plain (mostly `; charset=utf-8`) 8%, …, "
        "`first_seen` spread over 3 years. Loaded in bulk (SQLite: one transaction of prepared "
        "inserts; PostgreSQL: COPY, then `VACUUM (ANALYZE)`); the load is not the server's "
        "path and is shown only for scale."
    )


def _ms(v: float) -> str:
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _table(sc: Scenario, raw: dict) -> list[str]:
    names = [b["backend"] for b in raw["backends"]]
    head = "| query | goal |" + "".join(f" {n} median | {n} p95 | |" for n in names)
    out = [head, "|---|---|" + "---:|---:|---|" * len(names)]
    for n, q in enumerate(raw["backends"][0]["queries"]):
        row = f"| {q['label']} | ≤ {q['goal_ms']:g} ms |"
        for b in raw["backends"]:
            m = sc.measures[f"{BACKENDS[b['backend']]}.{q['id']}"]
            met = "✅ met" if m.median <= q["goal_ms"] else "❌ missed"
            row += f" **{_ms(m.median)}** | {_ms(percentile(m.runs, 95))} | {met} |"
        out.append(row)
    rows = [
        (f"sustained insert, {raw['backends'][0]['insert']['tasks']} tasks", lambda b: (
            f"**{b['insert']['per_sec']:,.0f} assets/s**",
            f"{_ms(b['insert']['p95_ms'])} per insert")),
        ("bulk load (rows + indexes + analyze)", lambda b: (
            f"{b['load']['total_s']:.0f} s",
            f"{b['load']['rows_s']:.0f} + {b['load']['indexes_s']:.0f} + "
            f"{b['load']['analyze_s']:.0f} s")),
        ("size on disk", lambda b: (_size(b["sizes"][0][1]), "; ".join(
            f"{what} {_size(n)}" for what, n in b["sizes"][1:]) or "one file")),
    ]
    for label, cells in rows:
        out.append(f"| {label} | — |" + "".join(
            " {} | {} | |".format(*cells(b)) for b in raw["backends"]))
    out.append("")
    for b in raw["backends"]:
        out.append(f"- {b['backend']}: {'; '.join(b['settings'])}.")
    out.append("")
    return out


def _prototypes(raw: dict) -> list[str]:
    """The proposed fixes, prototyped on the same data after the run."""
    rows, legend = [], []
    for b in raw["backends"]:
        for v in b.get("prototypes", []):
            cost = (f"built in {v['setup_s']:.0f} s, +{_size(v['extra_bytes'])}"
                    if v["setup_s"] else "—")
            legend.append(f"- {b['backend']}, *{v['name']}*: {v['what']}; cost: {cost}.")
            for t in v["timings"]:
                met = "✅ met" if t["p50_ms"] <= t["goal_ms"] else "❌ missed"
                rows.append(f"| {b['backend']} | {v['name']} | {t['label']} | "
                            f"**{_ms(t['p50_ms'])}** | {_ms(t['p95_ms'])} | "
                            f"≤ {t['goal_ms']:g} ms | {met} |")
    if not rows:
        return []
    return ["Proposed fixes, prototyped on the same data after the run: rewritten SQL or "
            "settings run directly, not through the server (`bench/index-bench/src/fixes.rs`; "
            "their plans are in the raw results):", "",
            "| backend | prototype | query | median | p95 | goal | |",
            "|---|---|---|---:|---:|---|---|", *rows, "", *legend, ""]


def _plans(sc: Scenario, raw: dict) -> list[str]:
    out = []
    for b in raw["backends"]:
        for q in b["queries"]:
            if sc.measures[f"{BACKENDS[b['backend']]}.{q['id']}"].median <= q["goal_ms"]:
                continue
            out += [f"Plan of **{q['label']}** on {b['backend']}, which missed its goal "
                    f"({b['plan_method']}):", "",
                    "```", *q["plan"].splitlines(), "```", ""]
    if out:
        out.insert(0, "")
    return out
