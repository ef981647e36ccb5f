"""Charts for BENCHMARKS.md: for each scenario, one SVG per unit with its
measures side by side, so a reader compares by looking.

Each measure is a horizontal bar at its median, with a whisker from the
smallest to the largest run; ours are highlighted, the figures they are
compared against (peers, baselines) are grey. Where a comparison has a
target, a marker shows the value ours has to reach (or stay under). The SVG
is written by hand (no dependency), carries its own background in both a
light and a dark variant, is ~720 px wide for a README column, and says
everything it shows in its `<title>`/`<desc>` for screen readers. The same
results give byte-identical files, so re-rendering changes nothing.

    >>> from results import Comparison, Measure, Scenario
    >>> sc = Scenario("B0", "Example", "")
    >>> sc.measures["ours"] = Measure("asset-watcher", "MB/s", [90.0, 100.0, 95.0])
    >>> sc.measures["peer"] = Measure("rclone", "MB/s", [80.0, 82.0, 81.0])
    >>> sc.measures["rss"] = Measure("asset-watcher peak RSS", "MiB", [30.0])
    >>> sc.comparisons.append(Comparison("MB/s vs rclone", "ours", ">=", 1.5, ref="peer"))
    >>> [(c.slug, [m.label for m in c.measures]) for c in charts_of(sc)]
    [('B0-MB-per-s', ['asset-watcher', 'rclone']), ('B0-MiB', ['asset-watcher peak RSS'])]
    >>> text = svg(sc, charts_of(sc)[0])
    >>> 'role="img"' in text and "<title" in text and 'width="720"' in text
    True
    >>> "target ≥ 122: missed" in text
    True
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from results import Comparison, Measure, Scenario

WIDTH = 720
MARGIN = 12
FONT = 12  # px; labels and values
CHAR_W = 0.6 * FONT  # generous average glyph width, so estimates never clip
MAX_BARS = 20  # more bars of one unit are split over several charts
BAR_H = 14
GAP = 10  # between rows
OUR_NAMES = ("asset-watcher", "asset-catalog", "ours")

# Light first; the dark variant follows the reader's colour scheme. Both
# paint their own background, so either reads well on GitHub's light and
# dark pages (GitHub's Primer colours).
STYLE = """
.bg{fill:#ffffff}.fg{fill:#1f2328}.mute{fill:#59636e}.grid{stroke:#d1d9e0}
.ours{fill:#0969da}.peer{fill:#8c959f}.whisk{stroke:#1f2328}
.met{stroke:#1a7f37;fill:#1a7f37}.missed{stroke:#cf222e;fill:#cf222e}
.tmet{fill:#1a7f37}.tmissed{fill:#cf222e}.halo,.lbl{stroke:#ffffff}
@media (prefers-color-scheme:dark){
.bg{fill:#0d1117}.fg{fill:#e6edf3}.mute{fill:#9198a1}.grid{stroke:#3d444d}
.ours{fill:#4493f8}.peer{fill:#656c76}.whisk{stroke:#e6edf3}
.met{stroke:#3fb950;fill:#3fb950}.missed{stroke:#f85149;fill:#f85149}
.tmet{fill:#3fb950}.tmissed{fill:#f85149}.halo,.lbl{stroke:#0d1117}}
.lbl{stroke-width:3px;stroke-linejoin:round;paint-order:stroke}
text{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI','Noto Sans',Helvetica,Arial,sans-serif;font-size:12px}
.title{font-size:14px;font-weight:600}
""".strip()


@dataclass
class Chart:
    """The measures of one unit (or one part of them) in one scenario."""

    slug: str  # file name without .svg, e.g. B10-MB-per-s
    unit: str
    measures: list[Measure]
    keys: list[str]
    part: tuple[int, int] = (1, 1)

    def caption(self, sc: Scenario) -> str:
        of = f", part {self.part[0]} of {self.part[1]}" if self.part[1] > 1 else ""
        return f"{sc.id} — {sc.title}: {self.unit or 'count'}{of}"


def unit_slug(unit: str) -> str:
    """A file-name-safe form of a unit.

    >>> [unit_slug(u) for u in ("MB/s", "files/s", "MiB", "", "wal_bytes")]
    ['MB-per-s', 'files-per-s', 'MiB', 'count', 'wal_bytes']
    """
    return re.sub(r"[^A-Za-z0-9_]+", "-", unit.replace("/", "-per-")).strip("-") or "count"


def charts_of(sc: Scenario) -> list[Chart]:
    """One chart per unit, in the order the units first appear; a unit with
    more than MAX_BARS measures is split into parts of at most that many."""
    by_unit: dict[str, list[str]] = {}
    for key, m in sc.measures.items():
        if m.runs:
            by_unit.setdefault(m.unit, []).append(key)
    out = []
    for unit, keys in by_unit.items():
        n = math.ceil(len(keys) / MAX_BARS)
        size = math.ceil(len(keys) / n)
        for i in range(n):
            part = keys[i * size:(i + 1) * size]
            slug = f"{sc.id}-{unit_slug(unit)}" + (f"-{i + 1}" if n > 1 else "")
            out.append(Chart(slug, unit, [sc.measures[k] for k in part], part, (i + 1, n)))
    return out


def is_ours(sc: Scenario, key: str) -> bool:
    """Ours unless the measure only ever serves as a comparison's reference
    and does not name our binaries (rclone, sha256sum, a jobs-off baseline)."""
    if any(c.ours == key for c in sc.comparisons):
        return True
    if any(c.ref == key for c in sc.comparisons):
        return any(n in sc.measures[key].label for n in OUR_NAMES)
    return True


def markers(sc: Scenario, key: str) -> list[tuple[float, str, bool | None]]:
    """(value, text, met) for each comparison of `key` that has a target:
    the value the measure has to reach or stay under."""
    out = []
    for c in sc.comparisons:
        if c.ours != key or c.target is None:
            continue
        _, _, met = sc.evaluate(c)
        verdict = {True: "met", False: "missed", None: "no verdict"}[met]
        if c.op == "==":
            out.append((c.target, f"must be {tick_text(c.target)}: {verdict}", met))
            continue
        ref = _reference(sc, c)
        if ref is None:
            continue
        sign = "≥" if c.op == ">=" else "≤"
        word = "target" if c.ref else "limit"
        out.append((ref * c.target, f"{word} {sign} {tick_text(ref * c.target) if float(ref * c.target).is_integer() else num(ref * c.target)}: {verdict}", met))
    return out


def _reference(sc: Scenario, c: Comparison) -> float | None:
    if c.ref is None:
        return c.limit
    m = sc.measures.get(c.ref)
    return m.median if m and m.runs else None


def num(v: float) -> str:
    """A value as the tables show it (3 significant digits, thousands
    separated).

    >>> [num(v) for v in (0.0941, 4.27, 16.6, 172.0, 43941.0)]
    ['0.0941', '4.27', '16.6', '172', '43,941']
    """
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def nice_ticks(top: float) -> list[float]:
    """Round axis ticks from 0 to at least `top`, about five of them.

    >>> nice_ticks(175.0)
    [0, 50, 100, 150, 200]
    >>> nice_ticks(0.9)
    [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if top <= 0:
        return [0, 1]
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [0] + [round(step * i, 10) for i in range(1, n + 1)]


def tick_text(t: float) -> str:
    """An axis tick without trailing zeros.

    >>> [tick_text(t) for t in (0, 0.2, 2.5, 50, 250000)]
    ['0', '0.2', '2.5', '50', '250,000']
    """
    return f"{t:,.0f}" if float(t).is_integer() else f"{t:g}"


def _width(text: str, size: float = FONT) -> float:
    return len(text) * 0.6 * size


def _value_text(m: Measure) -> str:
    """`137 MB/s (134–141)`: the median and, when the runs differ, their range."""
    unit = f" {m.unit}" if m.unit else ""
    lo, hi = num(min(m.runs)), num(max(m.runs))
    spread = f" ({lo}–{hi})" if lo != hi else ""
    runs = " (1 run)" if len(m.runs) == 1 else ""
    return f"{num(m.median)}{unit}{spread}{runs}"


def svg(sc: Scenario, chart: Chart) -> str:
    """The chart as SVG text."""
    rows = []
    for key, m in zip(chart.keys, chart.measures):
        marks = markers(sc, key)
        right = _value_text(m) + "".join(f" · {t}" for _, t, _ in marks)
        rows.append((key, m, marks, right))
    right_w = max(_width(r[3]) for r in rows) + 8
    plot_x = MARGIN
    plot_w = max(WIDTH - 2 * MARGIN - right_w, 240)
    ticks = nice_ticks(max([max(m.runs) for m in chart.measures] +
                           [v for r in rows for v, _, _ in r[2]]))
    top = ticks[-1]

    def x(v: float) -> float:
        return plot_x + plot_w * max(v, 0) / top

    label_chars = int((WIDTH - 2 * MARGIN) / CHAR_W)
    body: list[str] = []
    desc: list[str] = []
    y = 30.0
    title = chart.caption(sc)
    body.append(f'<text class="fg title" x="{MARGIN}" y="{y - 8:.0f}">{escape(title)}</text>')
    y += _legend(body, y, sc, chart)
    grid_top = y
    for key, m, marks, right in rows:
        for line in textwrap.wrap(m.label, label_chars) or [""]:
            y += FONT + 2
            body.append(f'<text class="fg lbl" x="{MARGIN}" y="{y:.0f}">{escape(line)}</text>')
        y += 6
        cls = "ours" if is_ours(sc, key) else "peer"
        cy = y + BAR_H / 2
        body.append(f'<rect class="{cls}" x="{plot_x}" y="{y:.0f}" width="{x(m.median) - plot_x:.1f}"'
                    f' height="{BAR_H}" rx="2"/>')
        lo, hi = min(m.runs), max(m.runs)
        end = x(max(hi, m.median))
        if hi > lo:
            body.append(f'<path class="whisk" stroke-width="1.5" fill="none" d="M{x(lo):.1f} {cy:.1f}'
                        f'H{x(hi):.1f}M{x(lo):.1f} {cy - 4:.1f}v8M{x(hi):.1f} {cy - 4:.1f}v8"/>')
        # The value right after the whisker (past a marker it would cover),
        # then each marker's text: in the same line, or after its marker when
        # that lies further right (widths are over-estimated, never overlap).
        vt = _value_text(m)
        tx = end + 6
        for v, _, _ in marks:
            if tx - 4 <= x(v) <= tx + _width(vt) + 4:
                tx = x(v) + 6
        line = [f'<text class="fg lbl" x="{tx:.1f}" y="{cy + 4:.1f}">{escape(vt)}']
        mx = tx + _width(vt)
        for v, t, met in marks:
            mc = {True: "met", False: "missed", None: "whisk"}[met]
            body.append(f'<path class="halo" stroke-width="6" d="M{x(v):.1f} {y - 1:.1f}'
                        f'V{y + BAR_H + 1:.1f}"/><path class="{mc}" stroke-width="2.5" '
                        f'd="M{x(v):.1f} {y - 1:.1f}V{y + BAR_H + 1:.1f}"/>')
            if x(v) + 6 > mx:
                mx = x(v) + 6
                line += ["</text>", f'<text class="lbl {_mark_class(met)}" x="{mx:.1f}" '
                         f'y="{cy + 4:.1f}">{escape(t)}']
            else:
                line.append(f'<tspan class="{_mark_class(met)}"> · {escape(t)}</tspan>')
            mx += _width(" · " + t)
        body.append("".join(line) + "</text>")
        desc.append(f"{m.label}: {right}")
        y += BAR_H + GAP
    y += 2
    for t in ticks:
        gx = x(t)
        body.insert(0, f'<path class="grid" stroke-width="1" d="M{gx:.1f} {grid_top:.0f}V{y:.0f}"/>')
        body.append(f'<text class="mute" x="{gx:.1f}" y="{y + 14:.0f}" text-anchor="middle">'
                    f'{tick_text(t)}</text>')
    height = math.ceil(y + 24)
    label = f"{title}. " + "; ".join(desc)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="t d" '
            f'aria-label="{escape(label, {chr(34): "&quot;"})}">\n'
            f'<title id="t">{escape(title)}</title>\n<desc id="d">{escape("; ".join(desc))}</desc>\n'
            f'<style>{STYLE}</style>\n'
            f'<rect class="bg" width="{WIDTH}" height="{height}" rx="6"/>\n')
    return head + "\n".join(body) + "\n</svg>\n"


def _mark_class(met: bool | None) -> str:
    return {True: "tmet", False: "tmissed", None: "mute"}[met]


def _legend(body: list[str], y: float, sc: Scenario, chart: Chart) -> float:
    """A one-line key under the title; returns the height it took."""
    y += 12
    kinds = {is_ours(sc, k) for k in chart.keys}
    items = []
    if True in kinds:
        items.append(("rect", "ours", "ours (median)"))
    if False in kinds:
        items.append(("rect", "peer", "compared against (median)"))
    if any(max(m.runs) > min(m.runs) for m in chart.measures):
        n = max(len(m.runs) for m in chart.measures)
        items.append(("whisk", "whisk", f"min–max of {n} runs"))
    if any(markers(sc, k) for k in chart.keys):
        items.append(("mark", "mute", "target or limit"))
    lx = float(MARGIN)
    for kind, cls, text in items:
        if kind == "rect":
            body.append(f'<rect class="{cls}" x="{lx:.0f}" y="{y - 9:.0f}" width="14" height="10" rx="2"/>')
        elif kind == "whisk":
            body.append(f'<path class="whisk" stroke-width="1.5" fill="none" d="M{lx:.0f} {y - 4:.0f}'
                        f'h14M{lx:.0f} {y - 8:.0f}v8M{lx + 14:.0f} {y - 8:.0f}v8"/>')
        else:
            body.append(f'<path class="missed" stroke-width="2.5" d="M{lx + 5:.0f} {y - 11:.0f}v13"/>'
                        f'<path class="met" stroke-width="2.5" d="M{lx + 10:.0f} {y - 11:.0f}v13"/>')
        body.append(f'<text class="mute" x="{lx + 19:.0f}" y="{y:.0f}">{escape(text)}</text>')
        lx += 19 + _width(text) * 0.85 + 16
    return 24


def write(scenarios: list[Scenario], out_dir: Path, link_from: Path) -> dict[str, list[str]]:
    """Write every scenario's charts into `out_dir` (replacing that
    scenario's earlier ones) and return, per scenario id, the Markdown image
    lines with paths relative to `link_from` (the report's directory)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images: dict[str, list[str]] = {}
    for sc in scenarios:
        for old in out_dir.glob(f"{sc.id}-*.svg"):
            old.unlink()
        lines = []
        for chart in charts_of(sc):
            path = out_dir / f"{chart.slug}.svg"
            path.write_text(svg(sc, chart))
            rel = Path(os.path.relpath(path, link_from)).as_posix()
            alt = re.sub(r"[\[\]]", "", chart.caption(sc))
            lines.append(f"![{alt}]({rel})")
        if lines:
            images[sc.id] = lines
    return images


def charts_dir(report: Path, repo: Path) -> Path:
    """bench/charts/ for the repository's BENCHMARKS.md; `<name>-charts/`
    beside any other report (a quick run's target/bench/BENCHMARKS.quick.md)."""
    report = report.resolve()
    if report.parent == repo.resolve():
        return repo.resolve() / "bench" / "charts"
    return report.parent / f"{report.stem}-charts"
