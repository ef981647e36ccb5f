"""BENCHMARKS.md: the machine, the versions, the summary against the issue's
targets, one table per scenario with every run, and how to reproduce."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path

from results import Scenario
from util import tool_version

BENCH_DIR = Path(__file__).resolve().parent.parent


def _first_line(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine_info() -> dict:
    mem_kib = int(_first_line("/proc/meminfo", "MemTotal").split()[0] or 0)
    return {
        "cpu": _first_line("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": _os_release(),
        "load average at start": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "unknown"


def versions(bins, repo: Path, profile: str) -> dict:
    rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--",
                            "server", "client", "proto", "media", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "asset-catalog": f"{rev}{' + uncommitted changes' if dirty else ''} ({profile} build)",
        "asset-catalog-server": tool_version([str(bins.server), "--version"]),
        "asset-watcher": tool_version([str(bins.watcher), "--version"]),
        "rustc": tool_version(["rustc", "--version"]),
        "garage": tool_version([str(bins.garage), "--version"]),
        "rclone": tool_version([bins.rclone, "version"]),
        "aws-cli": tool_version([bins.aws, "--version"]),
        "wrk": tool_version([bins.wrk, "-v"]).split(" Copyright")[0],
        "sha256sum": tool_version(["sha256sum", "--version"]),
        "python (harness)": platform.python_version(),
    }


def fmt(v: float | None, unit: str = "") -> str:
    if v is None or v != v:  # None or NaN
        return "—"
    if unit == "B" or float(v).is_integer() and abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def _target(c) -> str:
    if c.target is None:
        return "(context)"
    if c.op == "==":
        return f"= {fmt(c.target)}"
    return f"{'≥' if c.op == '>=' else '≤'} {c.target:g}×"


def _verdict(met: bool | None) -> str:
    return {True: "✅ met", False: "❌ missed", None: "—"}[met]


def summary_rows(sc: Scenario) -> list[str]:
    rows = []
    for c in sc.comparisons:
        ours = sc.measures.get(c.ours)
        ref, ratio, met = sc.evaluate(c)
        if c.target is None:
            continue
        ref_txt = (f"{sc.measures[c.ref].label}: {fmt(ref)}" if c.ref and ref is not None
                   else c.limit_label or "—")
        rows.append(f"| {sc.id} | {c.figure} | {fmt(ours.median if ours else None)} "
                    f"{ours.unit if ours else ''} | {ref_txt} | "
                    f"{'—' if ratio is None else f'{ratio:.2f}×'} | {_target(c)} | "
                    f"{_verdict(met)} |")
    return rows


def scenario_section(sc: Scenario, images: list[str] = ()) -> list[str]:
    out = [f"## {sc.id} — {sc.title}", "", sc.what, ""]
    if sc.error:
        out += [f"**Did not complete:** `{sc.error}`", ""]
    out += sc.table or _generic_tables(sc)
    # The same figures drawn (charts.py), right after the tables.
    for line in images:
        out += [line, ""]
    if sc.commands:
        out += ["Commands:", "", "```", *sc.commands, "```", ""]
    out += [f"- {n}" for n in dict.fromkeys(sc.notes)]
    if sc.notes:
        out.append("")
    # Hand-written analysis of this scenario (bench/findings-B8.md), which
    # `--render` picks up again after an edit.
    findings = BENCH_DIR / f"findings-{sc.id}.md"
    if findings.exists():
        out += [findings.read_text().strip(), ""]
    return out


def _generic_tables(sc: Scenario) -> list[str]:
    out = ["| tool | median | unit | runs |", "|---|---:|---|---|"]
    for m in sc.measures.values():
        if not m.runs:
            continue
        runs = ", ".join(fmt(v, m.unit) for v in m.runs)
        out.append(f"| {m.label} | **{fmt(m.median, m.unit)}** | {m.unit} | {runs} |")
    out.append("")
    return out + ratio_table(sc)


def ratio_table(sc: Scenario) -> list[str]:
    """The scenario's comparisons, each as ours / reference against its target."""
    ratios = []
    for c in sc.comparisons:
        _, ratio, met = sc.evaluate(c)
        if ratio is None and c.op != "==":
            continue
        what = sc.measures[c.ref].label if c.ref else c.limit_label
        val = f"{ratio:.2f}×" if ratio is not None else fmt(sc.measures[c.ours].median)
        ratios.append(f"| {c.figure} | {what} | {val} | {_target(c)} | {_verdict(met)} |")
    if not ratios:
        return []
    return ["| figure | against | ratio | target | |", "|---|---|---:|---|---|", *ratios, ""]


SUMMARY_HEAD = ["| | figure | ours | peer / limit | ratio | target | |",
                "|---|---|---:|---|---:|---|---|"]


def summary_table(scenarios: list[Scenario]) -> list[str]:
    out = list(SUMMARY_HEAD)
    for sc in scenarios:
        out += _summary_of(sc)
    return out


def _summary_of(sc: Scenario) -> list[str]:
    rows = summary_rows(sc)
    if sc.error:
        rows.append(f"| {sc.id} | did not complete: {sc.error} | — | — | — | — | ❌ error |")
    return rows


def render(scenarios: list[Scenario], machine: dict, vers: dict, meta: dict,
           images: dict[str, list[str]] | None = None) -> str:
    """The whole report; `images` holds each scenario's chart lines (charts.write)."""
    images = images or {}
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{meta['command']}` on {meta.get('generated') or time.strftime('%Y-%m-%d %H:%M %Z')} "
        f"in {meta['wall']:.0f} s. Do not edit by hand: run the command again.",
        "",
        "Every figure is the **median of "
        f"{meta['runs']} run{'s' if meta['runs'] != 1 else ''}**. Every tool talks to the "
        "same Garage on 127.0.0.1 (single node, LMDB, TCP_NODELAY on accepted sockets "
        "through an LD_PRELOAD shim"
        f"{', verified active' if meta.get('nodelay') else ''}); our server runs on "
        "127.0.0.1 too. Each upload starts from an empty bucket, index and client state.",
        "",
    ]
    if meta.get("quick"):
        out += ["> **Quick smoke run** — reduced sizes, not the issue's; do not quote "
                "these numbers.", ""]
    if meta.get("perf"):
        out += ["> **Profiled run (--perf)** — perf record was attached to our daemons; "
                "timings and RSS are perturbed.", ""]
    if meta.get("profile") != "release":
        out += [f"> **{meta.get('profile')} build** — not the release binaries users get.", ""]
    if os.cpu_count() and meta.get("load_start", 0.0) > 0.5 * os.cpu_count():
        out += [f"> **The machine was busy when the run started** (1-minute load average "
                f"{meta['load_start']:.2f} on {os.cpu_count()} cores): expect noise.", ""]
    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine.items()]
    out += ["", "## Versions", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in vers.items()]
    out += ["", "## Summary against the targets (issue 6; B1–B3 raised by issue 17)", ""]
    out += summary_table(scenarios)
    out.append("")
    for sc in scenarios:
        out += scenario_section(sc, images.get(sc.id, []))
    findings = BENCH_DIR / "findings.md"
    if findings.exists():
        out += [findings.read_text().strip(), ""]
    out += [
        "## How to reproduce",
        "",
        "```",
        "bench/run.sh              # full run: builds release binaries, installs the peers",
        "                          # (Debian rclone, awscli, wrk) and Garage when missing",
        "bench/run.sh --quick      # smoke run with small sizes, 1 run, writes target/bench/",
        "bench/run.sh --help       # --runs N, --only B1,B4, --profile, --keep, ...",
        "```",
        "",
        "`$DATA` is the generated data, `$SERVER` our server's URL, `$GARAGE` the Garage S3 "
        "endpoint; the peers get their endpoint, keys, region `garage` and path-style "
        "addressing from environment variables and config files in a temporary HOME. "
        "Raw results: `target/bench/results.json`. The harness is `bench/harness/` "
        "(Python, standard library only; B9 draws its JPEGs with Debian's python3-pil) plus "
        "`bench/objstore-bench` (the object_store baselines and the HEAD load generator).",
        "",
    ]
    return "\n".join(out)


def _scenario_id(heading: str) -> str | None:
    """`B8` for the heading of a scenario section (`## B8 — …`), else None."""
    m = re.match(r"## (B\d+) — ", heading)
    return m.group(1) if m else None


def _id_order(sid: str) -> int:
    return int(sid[1:])


def merge(old: str, scenarios: list[Scenario], vers: dict, meta: dict,
          images: dict[str, list[str]] | None = None) -> str:
    """`old` (a report this module wrote) with the sections and summary rows
    of `scenarios` replaced or added, everything else kept, and a line under
    the title saying when and how these were measured apart from the rest."""
    blocks: list[list[str]] = [[]]
    for line in old.splitlines():
        if line.startswith("## "):
            blocks.append([])
        blocks[-1].append(line)
    ran = {sc.id: sc for sc in scenarios}
    sections = {_scenario_id(b[0]): b for b in blocks[1:] if _scenario_id(b[0])}
    images = images or {}
    sections.update({sid: scenario_section(sc, images.get(sid, [])) for sid, sc in ran.items()})
    ordered = [sections[sid] for sid in sorted(sections, key=_id_order)]
    out: list[str] = _merge_preamble(blocks[0], ran, vers, meta)
    placed = False
    for block in blocks[1:]:
        if _scenario_id(block[0]):
            if not placed:
                out += [line for section in ordered for line in section]
                placed = True
            continue
        if block[0].startswith("## Summary"):
            block = _merge_summary(block, ran)
        elif not placed and block[0] in ("## Method notes", "## How to reproduce"):
            out += [line for section in ordered for line in section]
            placed = True
        out += block
    if not placed:
        out += [line for section in ordered for line in section]
    return "\n".join(out) + "\n"


def _merge_summary(block: list[str], ran: dict) -> list[str]:
    rows: dict[str, list[str]] = {}
    for line in block:
        m = re.match(r"\| (B\d+) \|", line)
        if m:
            rows.setdefault(m.group(1), []).append(line)
    rows.update({sid: _summary_of(sc) for sid, sc in ran.items()})
    table = [line for sid in sorted(rows, key=_id_order) for line in rows[sid]]
    head = block[:block.index(SUMMARY_HEAD[0])] if SUMMARY_HEAD[0] in block else block[:2]
    return [*head, *SUMMARY_HEAD, *table, ""]


def _note_ids(line: str) -> set[str]:
    """{"B8", "B11"} for a `> **B8, B11** measured separately` line, else empty."""
    m = re.match(r"> \*\*([B\d, ]+)\*\* measured separately", line)
    return {s.strip() for s in m.group(1).split(",")} if m else set()


def _merge_preamble(pre: list[str], ran: dict, vers: dict, meta: dict) -> list[str]:
    """The preamble with the note on these scenarios replaced where the last
    one about any of them stood (so re-rendering keeps the order), or added."""
    ids = ", ".join(sorted(ran, key=_id_order))
    tag = f"> **{ids}** measured separately"
    note = (f"{tag}: `{meta['command']}` on {meta['generated']} in {meta['wall']:.0f} s, "
            f"asset-catalog {vers['asset-catalog']}, 1-minute load average at its start "
            f"{meta['load_start']:.2f}; the rest of this report is the run above.")
    old = [i for i, line in enumerate(pre) if _note_ids(line) & set(ran)]
    if old:
        return [note if i == old[-1] else line for i, line in enumerate(pre)
                if i == old[-1] or i not in old]
    kept = list(pre)
    while kept and not kept[-1].strip():
        kept.pop()
    return [*kept, "", note, ""]
