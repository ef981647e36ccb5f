"""What a scenario measured: named measures (one value per run, reported as
the median) and comparisons of ours against a peer or a fixed limit, each
with the issue's target."""

from __future__ import annotations

from dataclasses import dataclass, field

from util import median


@dataclass
class Measure:
    """One tool's figure in one scenario, one value per run."""

    label: str
    unit: str
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return median(self.runs)


@dataclass
class Comparison:
    """ours / reference, checked against `target` with `op` ('>=' or '<=').

    The reference is another measure (`ref`) or a fixed limit
    (`limit`, `limit_label`). With `op == '=='` the value itself must equal
    `target` (e.g. 0 bytes hashed) and no ratio is shown.
    """

    figure: str
    ours: str
    op: str
    target: float | None
    ref: str | None = None
    limit: float | None = None
    limit_label: str = ""


@dataclass
class Scenario:
    id: str
    title: str
    what: str
    measures: dict[str, Measure] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    # Markdown shown instead of the generic tables (a scenario with more
    # dimensions than tool × run, e.g. B8's queries × backends)...
    table: list[str] = field(default_factory=list)
    # ...and its tool's own raw output, kept in results.json.
    raw: dict | None = None

    def measure(self, key: str, label: str, unit: str, note: str = "") -> Measure:
        if key not in self.measures:
            self.measures[key] = Measure(label, unit, note=note)
        return self.measures[key]

    def add(self, key: str, value: float) -> None:
        self.measures[key].runs.append(value)

    def evaluate(self, c: Comparison) -> tuple[float | None, float | None, bool | None]:
        """(reference value, ratio, target met) for one comparison."""
        ours = self.measures.get(c.ours)
        if ours is None or not ours.runs:
            return None, None, None
        if c.op == "==":
            return None, None, ours.median == c.target
        if c.ref is not None:
            ref_m = self.measures.get(c.ref)
            ref = ref_m.median if ref_m and ref_m.runs else None
        else:
            ref = c.limit
        if not ref:
            return ref, None, None
        ratio = ours.median / ref
        if c.target is None:
            return ref, ratio, None
        met = ratio >= c.target if c.op == ">=" else ratio <= c.target
        return ref, ratio, met
