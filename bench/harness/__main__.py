"""Benchmark harness for issue #6: runs B1-B6 for asset-catalog and its peers
against one local Garage, B7 (scale-out ingest on PostgreSQL), B8 (the index
at 1M assets, SQLite vs PostgreSQL), B9 (background jobs) and B11 (the web
UI at 1M assets, in Chromium), and writes
BENCHMARKS.md. Start it through
bench/run.sh, which builds the binaries and installs the peers first.

    python3 bench/harness --bin-dir target/release --garage PATH [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import charts
import product
import report
import scen_index
import scen_jobs
import scen_local
import scen_resume
import scen_scale
import scen_server
import scen_ui
import scen_upload
from ctx import Bins, Ctx, Params
from results import Comparison, Measure, Scenario
from util import BenchError, log, stop_all

ALL = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    ap.add_argument("--bin-dir", type=Path, required=True,
                    help="directory with asset-catalog-server, asset-watcher, objstore-bench")
    ap.add_argument("--profile", default="release", help="only recorded in the report")
    ap.add_argument("--garage", type=Path, help="the garage binary (B1-B6)")
    ap.add_argument("--shim", type=Path, help="TCP_NODELAY LD_PRELOAD library for Garage")
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 run: a smoke test")
    ap.add_argument("--runs", type=int, help="runs per figure (default 3, quick 1)")
    ap.add_argument("--only", default=",".join(ALL), help="e.g. B1,B4 (default: all)")
    ap.add_argument("--output", type=Path, help="report path (default BENCHMARKS.md; "
                    "quick: target/bench/BENCHMARKS.quick.md)")
    ap.add_argument("--merge", action="store_true",
                    help="write only the scenarios measured now into the existing report "
                    "(their sections and summary rows, replaced or added; a line under the "
                    "title says when they were measured), keeping everything else: e.g. "
                    "--only B8 --merge")
    ap.add_argument("--assets", type=int, metavar="N",
                    help="B8: assets in the index (default 1,000,000; quick 20,000)")
    ap.add_argument("--workdir", type=Path, help="parent of the scratch directory "
                    "(default $TMPDIR); needs ~3x the largest data size free")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--no-drop-caches", action="store_true",
                    help="B1 is 'cold': the page cache is dropped before each upload "
                    "(needs root; not in --quick runs); this turns that off")
    ap.add_argument("--perf", action="store_true",
                    help="record CPU profiles (perf record, DWARF call graphs) of the server "
                    "and the watcher into target/bench/perf/; timings and RSS are then "
                    "perturbed, so such a run is for profiling, not for BENCHMARKS.md")
    ap.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                    help="measure nothing: write the report and its charts again from the raw results of an "
                    "earlier run (target/bench/results.json), e.g. after editing findings.md")
    ap.add_argument("--command", default="bench/run.sh", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.only = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in ALL]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not args.garage and not args.render and any(s not in ("B8", "B11") for s in args.only):
        ap.error("--garage is required for B1-B7 and B9")
    if args.assets is not None and args.assets < 1000:
        ap.error("--assets must be at least 1000")
    if args.output is None:
        name = ("BENCHMARKS.perf.md" if args.perf else
                "BENCHMARKS.quick.md" if args.quick else None)
        args.output = args.repo / "target" / "bench" / name if name else args.repo / "BENCHMARKS.md"
    return args


def run_scenarios(ctx: Ctx, only: list[str]) -> list[Scenario]:
    done: list[Scenario] = []

    def attempt(sid: str, title: str, fn, *a) -> None:
        if sid not in only:
            return
        log(f"=== {sid}: {title}")
        try:
            done.append(fn(ctx, *a))
        except (BenchError, OSError, ValueError, KeyError) as e:
            traceback.print_exc()
            done.append(Scenario(sid, title, "", error=str(e).splitlines()[0][:300]))

    attempt("B1", "Small files, cold, end to end", scen_upload.b1)
    attempt("B2", "One large file, end to end", scen_upload.b2)
    attempt("B5", "Hashing throughput", scen_local.b5)
    if "B3" in only or "B6" in only:
        try:
            pop = scen_local.populate(ctx)
        except (BenchError, OSError) as e:
            traceback.print_exc()
            for sid, title in (("B3", "Rescan of unchanged files"), ("B6", "Server API")):
                if sid in only:
                    done.append(Scenario(sid, title, "", error=f"setup: {e}"[:300]))
        else:
            try:
                attempt("B3", "Rescan of unchanged files", scen_local.b3, pop)
                attempt("B6", "Server API", scen_server.b6, pop)
            finally:
                pop.close()
    attempt("B4", "Watch latency", scen_server.b4)
    attempt("B7", "Scale-out ingest on PostgreSQL", scen_scale.b7)
    attempt("B8", "The index at 1M assets", scen_index.b8)
    attempt("B9", "Background jobs", scen_jobs.b9)
    attempt("B10", "Resumable uploads (tus)", scen_resume.b10)
    attempt("B11", "The web UI at 1M assets", scen_ui.b11)
    return sorted(done, key=lambda s: int(s.id[1:]))


def render_again(args) -> int:
    """Rebuild the report from a results JSON without measuring anything."""
    raw = json.loads(args.render.read_text())
    # Results written before "generated" was recorded: the file's own time.
    raw["meta"].setdefault("generated", time.strftime(
        "%Y-%m-%d %H:%M %Z", time.localtime(args.render.stat().st_mtime)))
    scenarios = []
    for d in raw["scenarios"]:
        if d["id"] not in args.only:
            continue
        s = Scenario(**{k: v for k, v in d.items() if k not in ("measures", "comparisons")})
        s.measures = {k: Measure(**m) for k, m in d["measures"].items()}
        s.comparisons = [Comparison(**c) for c in d["comparisons"]]
        scenarios.append(s)
    if not scenarios:
        log(f"{args.render} holds none of {', '.join(args.only)}")
        return 2
    write_report(args, scenarios, raw["machine"], raw["versions"], raw["meta"])
    log(f"wrote {args.output} and its charts from {args.render} (nothing measured)")
    return 0


def write_report(args, scenarios: list[Scenario], machine: dict, vers: dict, meta: dict) -> None:
    """The whole report, or with --merge only these scenarios into the existing one,
    and each scenario's charts beside it (bench/charts/ for BENCHMARKS.md)."""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    images = charts.write(scenarios, charts.charts_dir(args.output, args.repo),
                          args.output.parent.resolve())
    if args.merge and args.output.exists():
        text = report.merge(args.output.read_text(), scenarios, vers, meta, images)
    else:
        text = report.render(scenarios, machine, vers, meta, images)
    args.output.write_text(text)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.render:
        return render_again(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="asset-catalog-bench-", dir=parent))
    (work / "logs").mkdir()
    os.environ["BENCH_LOGDIR"] = str(work / "logs")
    bins = Bins(server=args.bin_dir / "asset-catalog-server",
                watcher=args.bin_dir / "asset-watcher",
                objbench=args.bin_dir / "objstore-bench", garage=args.garage, shim=args.shim,
                indexbench=args.bin_dir / "index-bench")
    needed = [bins.indexbench] if {"B8", "B11"} & set(args.only) else []
    if "B11" in args.only:
        needed.append(bins.server)
    if any(s not in ("B8", "B11") for s in args.only):
        needed += [bins.server, bins.watcher, bins.objbench, bins.garage]
    for b in needed:
        if not b.exists():
            print(f"bench: missing binary {b}", file=sys.stderr)
            return 2
    params = Params.quick() if args.quick else Params()
    if args.assets is not None:
        params.b8_assets = args.assets
    if args.perf:
        product.PERF_DIR = args.repo / "target" / "bench" / "perf"
        shutil.rmtree(product.PERF_DIR, ignore_errors=True)
    ctx = Ctx(bins, work, args.runs, params,
              drop_caches=not (args.no_drop_caches or args.quick))
    load_start = os.getloadavg()[0]
    machine = report.machine_info()
    vers = report.versions(bins, args.repo, args.profile)
    log(f"scratch directory {work}; scenarios {','.join(args.only)}; {args.runs} run(s)")
    start = time.monotonic()
    failed = True
    try:
        scenarios = run_scenarios(ctx, args.only)
        failed = any(s.error for s in scenarios)
    finally:
        stop_all()
        if args.keep:
            log(f"scratch directory kept: {work}")
        elif failed:
            shutil.rmtree(work / "data", ignore_errors=True)
            shutil.rmtree(work / "garage", ignore_errors=True)
            log(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    machine["load average at end"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    meta = {"command": args.command, "runs": args.runs, "quick": args.quick,
            "wall": time.monotonic() - start, "nodelay": bool(args.shim),
            "profile": args.profile, "load_start": load_start, "perf": args.perf,
            "generated": time.strftime("%Y-%m-%d %H:%M %Z")}
    write_report(args, scenarios, machine, vers, meta)
    tag = ".quick" * args.quick + ".perf" * args.perf
    if args.merge:
        # A partial run: keep the full run's raw results (`--render` input) intact.
        tag += "." + "-".join(args.only)
    raw = args.repo / "target" / "bench" / f"results{tag}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"machine": machine, "versions": vers, "meta": meta,
                               "scenarios": [dataclasses.asdict(s) for s in scenarios]},
                              indent=2, default=str))
    log(f"wrote {args.output} and {raw}")
    if args.perf:
        log(f"CPU profiles: {product.PERF_DIR}/*.data (perf report -i FILE)")
    print("\n".join(report.summary_table(scenarios)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
