"""Our two daemons as the benchmark drives them: asset-catalog-server on
Garage, and asset-watcher with its own XDG tree. Everything the harness
assumes about their command lines, config files and outputs is here, in one
place, so a CLI change means one edit.
"""

from __future__ import annotations

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
    """asset-catalog-server with its index in `root`, storing into `garage`;
    `index` is an `[index]` section for another index (B7: PostgreSQL)."""

    def __init__(self, binary: Path, root: Path, garage: Garage, index: str = ""):
        self.binary = binary
        self.root = root
        self.garage = garage
        self.index = index
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

    def write_config(self) -> Path:
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "state").mkdir(parents=True)
        self.port = free_port()
        config = self.root / "server.toml"
        config.write_text(
            "[server]\n"
            f'listen = "127.0.0.1:{self.port}"\n'
            f'state_dir = "{self.root}/state"\n'
            "[storage]\n"
            f'url = "s3://{BUCKET}"\n'
            f'endpoint = "{self.garage.endpoint}"\n'
            f'region = "{REGION}"\n'
            "path_style = true\n"
            "allow_http = true\n"
            f'access_key_id = "{ACCESS_KEY}"\n'
            f'secret_access_key_file = "{self.garage.secret_file}"\n'
            + self.index
        )
        return config

    def start(self) -> "Server":
        config = self.write_config()
        self.token = create_token(self.binary, config)
        log_path = self.root / "server.log"
        # The server's default log level, as deployed; BENCH_SERVER_LOG overrides it.
        env = clean_env()
        env.pop("RUST_LOG", None)
        env.pop("JOURNAL_STREAM", None)
        if os.environ.get("BENCH_SERVER_LOG"):
            env["RUST_LOG"] = os.environ["BENCH_SERVER_LOG"]
        self.proc = spawn([str(self.binary), "--config", str(config)], log_path, env)
        wait_until(lambda: http("GET", self.url + "/readyz", timeout=2)[0] == 200,
                   "asset-catalog-server /readyz", 60, self.proc, log_path)
        self.perf = perf_attach(self.proc.pid, f"server-{self.root.name}", log_path)
        return self

    def peak_rss_kib(self) -> int:
        return peak_rss_kib(self.proc.pid) if self.proc else 0

    def count_assets(self) -> int:
        """Assets in the index, by walking `GET /v1/assets` pages."""
        total, cursor = 0, None
        for _ in range(100_000):
            q = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = http_json("GET", f"{self.url}/v1/assets?{q}", headers=self.auth)
            total += len(page.get("items", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return total
        raise BenchError("GET /v1/assets did not finish paging")

    def stop(self) -> None:
        perf_stop(self.perf)
        self.perf = None
        stop(self.proc, grace=20.0)
        self.proc = None


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
