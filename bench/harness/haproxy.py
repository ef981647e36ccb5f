"""HAProxy in front of N servers for B7: packaging/examples/haproxy.cfg, the
configuration operators get, on loopback — round robin, `GET /readyz` checks
every 500 ms, request bodies streamed — plus a stats page, so the harness can
wait until every server is UP."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from util import BenchError, free_port, http, spawn, stop, wait_until

BINARY = "/usr/sbin/haproxy"
EXAMPLE = Path(__file__).resolve().parents[2] / "packaging" / "examples" / "haproxy.cfg"


def config_text(port: int, stats_port: int, backends: list[int]) -> str:
    """The shipped example without its comments and syslog lines, bound to
    loopback, with our servers (and the example's check options) in place of
    its three, and a stats page."""
    out = []
    for line in EXAMPLE.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#") or words[0] == "log" or words[1:] == ["httplog"]:
            continue
        if words[0] == "bind":
            line = f"    bind 127.0.0.1:{port}"
        elif words[0] == "server":
            if out[-1].lstrip().startswith("server"):
                continue
            options = " ".join(words[3:])
            line = "\n".join(f"    server s{i + 1} 127.0.0.1:{p} {options}"
                             for i, p in enumerate(backends))
        out.append(line)
    out += ["frontend stats", f"    bind 127.0.0.1:{stats_port}", "    stats enable",
            "    stats uri /stats", ""]
    return "\n".join(out)


class Haproxy:
    def __init__(self, root: Path, backends: list[int]):
        self.root = root
        self.backends = backends
        self.proc = None
        self.port = 0
        self.stats_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Haproxy":
        if not Path(BINARY).exists():
            raise BenchError("HAProxy is missing: apt-get install haproxy")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.port, self.stats_port = free_port(), free_port()
        config = self.root / "haproxy.cfg"
        config.write_text(config_text(self.port, self.stats_port, self.backends))
        log_path = self.root / "haproxy.log"
        self.proc = spawn([BINARY, "-f", str(config), "-db"], log_path)
        # Every server passed its health checks (rise 2 at 500 ms: about 1 s).
        wait_until(lambda: self.servers_up() == len(self.backends),
                   f"HAProxy: all {len(self.backends)} servers UP", 30, self.proc, log_path)
        return self

    def servers_up(self) -> int:
        status, body = http("GET", f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=2)
        if status != 200:
            return 0
        rows = csv.DictReader(io.StringIO(body.decode().lstrip("# ")))
        return sum(1 for r in rows if r["pxname"] == "catalog_servers"
                   and r["svname"] not in ("FRONTEND", "BACKEND") and r["status"] == "UP")

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None
