"""Process, timing and HTTP helpers shared by every scenario.

Everything here is bounded: every wait has a deadline, every child is
tracked so the harness can stop it on exit, and nothing listens anywhere
but 127.0.0.1.
"""

from __future__ import annotations

from http.client import HTTPException
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_children: list[subprocess.Popen] = []


class BenchError(RuntimeError):
    """A scenario could not run; the message says why."""


def clean_env() -> dict:
    """The caller's environment without anything that would point a client
    elsewhere (AWS_*/RCLONE_* settings, proxies): everything stays on loopback."""
    drop = ("AWS_", "RCLONE_", "GARAGE_", "ASSET_WATCHER__", "ASSET_CATALOG__")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop) and not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Timed:
    """One finished command: wall seconds, exit status, peak RSS, output,
    and its CPU time (user + system, from wait4)."""

    seconds: float
    returncode: int
    maxrss_kib: int
    stdout: str
    stderr: str
    cpu_s: float = 0.0


def run_timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None,
              timeout: float = 1800.0, stdout_path: Path | None = None) -> Timed:
    """Run `cmd` to completion; wall time, the child's peak RSS and its CPU.

    The peak RSS is the child's VmHWM, read as it runs (every poll, so at
    most ~2 ms of growth before its exit can be missed). wait4's ru_maxrss
    is not it: Linux keeps the high-water mark of the memory a process had
    before exec, and a child forked from this harness starts with the
    harness's own (B3's rescan showed 165 MiB for a watcher whose VmHWM was
    15 MiB). ru_maxrss is only the fallback for a child gone before a read.

    Output goes to temporary files (not pipes) so a chatty tool is never
    slowed by the harness reading it.
    """
    out_path = stdout_path or Path(os.environ.get("BENCH_LOGDIR", "/tmp")) / "last.stdout"
    err_path = out_path.with_suffix(".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        _children.append(proc)
        deadline = start + timeout
        hwm = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, peak_rss_kib(proc.pid))
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                _children.remove(proc)
                raise BenchError(f"timed out after {timeout:.0f}s: {' '.join(cmd)}")
            time.sleep(0.002)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    _children.remove(proc)
    return Timed(seconds, proc.returncode, hwm or usage.ru_maxrss,
                 out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                 usage.ru_utime + usage.ru_stime)


def check(t: Timed, what: str) -> Timed:
    if t.returncode != 0:
        tail = "\n".join((t.stderr or t.stdout).strip().splitlines()[-15:])
        raise BenchError(f"{what} exited with {t.returncode}:\n{tail}")
    return t


def spawn(cmd: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a long-running service, output to `log_path`; stopped by stop()/stop_all()."""
    logf = open(log_path, "ab")
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    logf.close()
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        if proc in _children:
            _children.remove(proc)
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc in _children:
        _children.remove(proc)


def stop_all() -> None:
    for proc in list(_children):
        stop(proc, grace=5.0)


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (its peak resident set so far), KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_json(method: str, url: str, payload=None, headers: dict | None = None):
    body = None if payload is None else json.dumps(payload).encode()
    h = {"content-type": "application/json", **(headers or {})}
    status, data = http(method, url, body, h)
    if status >= 300:
        raise BenchError(f"{method} {url} -> {status}: {data[:300]!r}")
    return json.loads(data) if data else None


def wait_until(pred, what: str, timeout: float, proc: subprocess.Popen | None = None,
               log_path: Path | None = None, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
            raise BenchError(f"{what}: the process exited ({proc.returncode})\n{tail}")
        try:
            if pred():
                return
        except (OSError, urllib.error.URLError, HTTPException):
            pass
        time.sleep(interval)
    raise BenchError(f"{what}: not ready after {timeout:.0f}s")


def drop_caches(enabled: bool) -> bool:
    """Write back and drop the page cache so a 'cold' run reads from disk."""
    if not enabled:
        return False
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"
