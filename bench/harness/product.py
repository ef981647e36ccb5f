"""Our two daemons as the benchmark drives them: asset-catalog-server on
Garage, and asset-watcher with its own XDG tree. Everything the harness
assumes about their command lines, config files and outputs is here, in one
place, so a CLI change means one edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from garage import ACCESS_KEY, BUCKET, REGION, Garage
from util import (BenchError, Timed, check, clean_env, free_port, http, http_json, peak_rss_kib,
                  run_timed, spawn, stop, wait_until)


# Set by --perf: record CPU profiles of our daemons into this directory.
PERF_DIR: Path | None = None
PERF_ARGS = ["-F", "299", "--call-graph", "dwarf,16384", "-q"]


def perf_attach(pid: int, label: str, log_path: Path):
    """`perf record -p PID` into PERF_DIR/label.data; None without --perf."""
    if PERF_DIR is None:
        return None
    PERF_DIR.mkdir(parents=True, exist_ok=True)
    return spawn(["perf", "record", *PERF_ARGS, "-o", str(PERF_DIR / f"{label}.data"),
                  "-p", str(pid)], log_path)


def perf_wrap(cmd: list[str], label: str) -> list[str]:
    """Prefix a short-lived command with `perf record` under --perf."""
    if PERF_DIR is None:
        return cmd
    PERF_DIR.mkdir(parents=True, exist_ok=True)
    return ["perf", "record", *PERF_ARGS, "-o", str(PERF_DIR / f"{label}.data"), "--", *cmd]


def perf_stop(proc) -> None:
    """Stop a `perf record -p` cleanly (SIGINT makes it write its file)."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    stop(proc, grace=60.0)


class Server:
    """asset-catalog-server with its index in `root`, storing into `garage`
    (None: the default file store, `root/state/objects`); `index` is an
    `[index]` section for another index (B7: PostgreSQL), `jobs` a `[jobs]`
    section (B9; none: the defaults)."""

    def __init__(self, binary: Path, root: Path, garage: Garage | None, index: str = "",
                 jobs: str = ""):
        self.binary = binary
        self.root = root
        self.garage = garage
        self.index = index
        self.jobs = jobs
        self.proc = None
        self.perf = None
        self.port = 0
        self.token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def config(self) -> Path:
        return self.root / "server.toml"

    @property
    def objects_dir(self) -> Path:
        """Where the file store keeps an asset's object, as `objects_dir / key`."""
        return self.root / "state" / "objects"

    def write_config(self, fresh: bool = True) -> Path:
        """The config file; `fresh` also empties the state and picks a port."""
        if fresh:
            if self.root.exists():
                shutil.rmtree(self.root)
            (self.root / "state").mkdir(parents=True)
            self.port = free_port()
        storage = "" if self.garage is None else (
            "[storage]\n"
            f'url = "s3://{BUCKET}"\n'
            f'endpoint = "{self.garage.endpoint}"\n'
            f'region = "{REGION}"\n'
            "path_style = true\n"
            "allow_http = true\n"
            f'access_key_id = "{ACCESS_KEY}"\n'
            f'secret_access_key_file = "{self.garage.secret_file}"\n')
        self.config.write_text(
            "[server]\n"
            f'listen = "127.0.0.1:{self.port}"\n'
            f'state_dir = "{self.root}/state"\n'
            + storage + self.index + self.jobs
        )
        return self.config

    def start(self) -> "Server":
        config = self.write_config()
        self.token = create_token(self.binary, config)
        return self._spawn()

    def restart(self, jobs: str) -> "Server":
        """Stop, and start again on the same state and port with `jobs` as
        the `[jobs]` section."""
        self.stop()
        self.jobs = jobs
        self.write_config(fresh=False)
        return self._spawn()

    def _spawn(self) -> "Server":
        log_path = self.root / "server.log"
        # The server's default log level, as deployed; BENCH_SERVER_LOG overrides it.
        env = clean_env()
        env.pop("RUST_LOG", None)
        env.pop("JOURNAL_STREAM", None)
        if os.environ.get("BENCH_SERVER_LOG"):
            env["RUST_LOG"] = os.environ["BENCH_SERVER_LOG"]
        self.proc = spawn([str(self.binary), "--config", str(self.config)], log_path, env)
        wait_until(lambda: http("GET", self.url + "/readyz", timeout=2)[0] == 200,
                   "asset-catalog-server /readyz", 60, self.proc, log_path)
        self.perf = perf_attach(self.proc.pid, f"server-{self.root.name}", log_path)
        return self

    def put(self, path: Path) -> str:
        """Upload one file with `PUT /v1/assets/{sha256}` (named after the
        file, content type from its suffix); its SHA-256."""
        body = path.read_bytes()
        sha = hashlib.sha256(body).hexdigest()
        kind = {".jpg": "image/jpeg"}.get(path.suffix, "application/octet-stream")
        status, out = http("PUT", f"{self.url}/v1/assets/{sha}", body, timeout=300, headers={
            **self.auth, "content-type": kind, "x-asset-name": path.name,
            "x-asset-path": f"{path.parent.name}/{path.name}"})
        if status not in (200, 201):
            raise BenchError(f"PUT {path.name} -> {status}: {out[:300]!r}")
        return sha

    def assets(self) -> list[dict]:
        """Every asset in the index, by walking `GET /v1/assets` pages."""
        items, cursor = [], None
        for _ in range(100_000):
            q = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = http_json("GET", f"{self.url}/v1/assets?{q}", headers=self.auth)
            items += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
        raise BenchError("GET /v1/assets did not finish paging")

    def metrics(self) -> str:
        status, body = http("GET", f"{self.url}/metrics", headers=self.auth, timeout=10)
        if status != 200:
            raise BenchError(f"{self.url}/metrics answered {status}")
        return body.decode()

    def scrub_now_cmd(self) -> list[str]:
        """`scrub --now` of every asset (unthrottled), run with the server stopped."""
        return [str(self.binary), "--config", str(self.config), "scrub", "--now"]

    def queue_scrubs(self, hashes: list[str]) -> None:
        """`scrub SHA256…`: queue scrub jobs for the server's jobs to run."""
        t = check(run_timed([str(self.binary), "--config", str(self.config), "scrub", *hashes],
                            stdout_path=self.root / "queue-scrubs.out"), "scrub (queue)")
        if f"queued {len(hashes)} scrubs" not in t.stdout:
            raise BenchError(f"scrub (queue): {t.stdout.strip()[:300]}")

    def peak_rss_kib(self) -> int:
        return peak_rss_kib(self.proc.pid) if self.proc else 0

    def count_assets(self) -> int:
        """Assets in the index."""
        return len(self.assets())

    def stop(self) -> None:
        perf_stop(self.perf)
        self.perf = None
        stop(self.proc, grace=20.0)
        self.proc = None


_JOB_RUNS = re.compile(r'^asset_catalog_job_duration_seconds_(count|sum)'
                       r'\{kind="(\w+)",outcome="(\w+)"\} (\S+)$', re.M)
_SCRUB_READ = re.compile(r"^asset_catalog_scrub_read_bytes_total (\S+)$", re.M)


def job_figures(metrics: str) -> dict:
    """From a `/metrics` text: `jobs[kind][outcome]` = (count, seconds) of
    the jobs this server ran, and `scrub_bytes` its scrub read."""
    jobs: dict[str, dict[str, list[float]]] = {}
    for what, kind, outcome, value in _JOB_RUNS.findall(metrics):
        pair = jobs.setdefault(kind, {}).setdefault(outcome, [0.0, 0.0])
        pair[0 if what == "count" else 1] = float(value)
    found = _SCRUB_READ.search(metrics)
    return {"jobs": jobs, "scrub_bytes": float(found.group(1)) if found else 0.0}


def jobs_done(figures: dict, kind: str) -> tuple[float, float]:
    """(jobs, seconds) of `kind` that ran to `done`, from `job_figures`."""
    count, secs = figures["jobs"].get(kind, {}).get("done", (0.0, 0.0))
    return count, secs


def create_token(binary: Path, config: Path) -> str | None:
    """A token with every scope, when the server has token management.

    Returns None when the server runs without authentication.
    """
    out = subprocess.run([str(binary), "--config", str(config), "token", "create",
                          "--name", "bench", "--scope", "upload", "--scope", "read",
                          "--scope", "admin"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return None
    match = re.search(r"\b([A-Za-z0-9_\-.]{20,})\b", out.stdout)
    return match.group(1) if match else None


class Watcher:
    """asset-watcher with config, state and cache under `root` (XDG env)."""

    def __init__(self, binary: Path, root: Path, server: Server, watch_dir: Path,
                 concurrency: int):
        self.binary = binary
        self.root = root
        self.server = server
        self.watch_dir = watch_dir
        self.concurrency = concurrency
        self.proc = None
        self.perf = None
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        self.env = {
            **clean_env(),
            "XDG_CONFIG_HOME": str(root / "config"),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "XDG_DATA_HOME": str(root / "data"),
            "ASSET_WATCHER__UPLOAD_CONCURRENCY": str(concurrency),
            "NO_COLOR": "1",
        }
        for var in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "INVOCATION_ID", "RUST_LOG"):
            self.env.pop(var, None)
        # The watcher's default log level, as deployed; BENCH_WATCHER_LOG overrides it.
        if os.environ.get("BENCH_WATCHER_LOG"):
            self.env["ASSET_WATCHER_LOG"] = os.environ["BENCH_WATCHER_LOG"]

    def init(self) -> "Watcher":
        cmd = [str(self.binary), "init", "--server", self.server.url,
               "--watch", str(self.watch_dir)]
        if self.server.token:
            token_file = self.root / "token"
            token_file.write_text(self.server.token)
            token_file.chmod(0o600)
            cmd += ["--token-file", str(token_file)]
        check(run_timed(cmd, env=self.env, stdout_path=self.root / "init.out"),
              "asset-watcher init")
        return self

    def scan(self, label: str) -> Timed:
        """`asset-watcher scan`: one-shot sync, timed end to end."""
        cmd = perf_wrap([str(self.binary), "scan", "--no-progress"], f"watcher-scan-{label}")
        t = run_timed(cmd, env=self.env, stdout_path=self.root / f"scan-{label}.out")
        return check(t, "asset-watcher scan")

    def status(self) -> dict:
        """`asset-watcher status --json` (the state's lifetime counters)."""
        t = run_timed([str(self.binary), "status", "--json"], env=self.env,
                      stdout_path=self.root / "status.out")
        if t.returncode != 0:
            return {}
        try:
            return json.loads(t.stdout)
        except ValueError:
            return {}

    def bytes_hashed_total(self) -> int | None:
        """Lifetime bytes hashed, from the status report; None if not shown."""
        value = self.status().get("bytes_hashed")
        return int(value) if isinstance(value, int) else None

    def start_daemon(self) -> None:
        self.proc = spawn([str(self.binary), "run"], self.root / "run.log", self.env)
        self.perf = perf_attach(self.proc.pid, f"watcher-run-{self.root.name}",
                                self.root / "run.log")

    def daemon_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop_daemon(self) -> int:
        """Stop `asset-watcher run`; returns its peak RSS in KiB."""
        rss = peak_rss_kib(self.proc.pid) if self.proc else 0
        perf_stop(self.perf)
        self.perf = None
        stop(self.proc)
        self.proc = None
        return rss


_HASHED = [
    re.compile(r'"hashed_bytes"\s*:\s*(\d+)'),
    re.compile(r"hashed_bytes=(\d+)"),
    re.compile(r"bytes_hashed=(\d+)"),
    re.compile(r"(\d+) bytes hashed"),
    re.compile(r"hashed (\d+) bytes"),
]


def hashed_bytes(t: Timed) -> int | None:
    """The scan's hashed-bytes counter, from its output; None if absent."""
    text = t.stdout + "\n" + t.stderr
    for rx in _HASHED:
        found = rx.findall(text)
        if found:
            return int(found[-1])
    try:
        return int(json.loads(t.stdout.strip().splitlines()[-1])["hashed_bytes"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
