"""CPU time of running processes from /proc/PID/stat (utime + stime, every
thread included), for costs per upload: snapshot before, snapshot after,
subtract. A root's direct children are included (PostgreSQL's backends are
children of the postmaster), and so is the time of children that exited in
between (the root's cutime + cstime), so a backend that lived only during
the run is counted whole."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _field(fields: list[str], n: int) -> int:
    """Field `n` as numbered in proc(5) (`fields` starts at field 3)."""
    return int(fields[n - 3])


@dataclass
class Snapshot:
    # (pid, start time) -> utime + stime, in clock ticks
    own: dict[tuple[int, int], int] = field(default_factory=dict)
    # the roots' cutime + cstime: children that exited and were reaped
    reaped: int = 0


def snapshot(roots: list[int], children: bool = False) -> Snapshot:
    snap = Snapshot()
    wanted = set(roots)
    if children:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat(int(entry))
                if fields and _field(fields, 4) in roots:
                    wanted.add(int(entry))
    for pid in wanted:
        fields = _stat(pid)
        if fields is None:
            continue
        snap.own[(pid, _field(fields, 22))] = _field(fields, 14) + _field(fields, 15)
        if pid in roots:
            snap.reaped += _field(fields, 16) + _field(fields, 17)
    return snap


def seconds(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds used between two snapshots of the same roots."""
    ticks = sum(t - before.own.get(k, 0) for k, t in after.own.items())
    # Processes gone since: their whole life is in `reaped`, minus what was seen before.
    ticks += after.reaped - before.reaped
    ticks -= sum(t for k, t in before.own.items() if k not in after.own)
    return ticks / TICK


def children_seconds() -> float:
    """CPU seconds of this process's waited-for children so far."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime
