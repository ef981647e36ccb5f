"""A private PostgreSQL 15 for B7, the way testkit/src/pg.rs starts one for
the tests: Debian's binaries run as the `postgres` user (PostgreSQL refuses
root), `initdb` with scram-sha-256 only, `pg_ctl` on a free port of
127.0.0.1 with its socket in its own directory. Unlike the tests' cluster it
keeps `fsync` on (a deployment's durability, like the SQLite baseline's
`synchronous=FULL`) and loads `pg_stat_statements`, whose counters say what
each upload asked of the index.

Also here: `WireCounter`, a loopback proxy that counts the messages a server
sends to PostgreSQL, for the round trips per upload.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from util import BenchError, free_port, log

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
# psql -At output separators that no statement text contains.
FIELD, RECORD = "\x1f", "\x1e"


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """One cluster in a temporary directory of its own (the `postgres` user
    must reach it, and the harness's scratch directory is private)."""

    def __init__(self, password_file: Path):
        self.password = secrets.token_hex(16)
        self.password_file = password_file
        self.root: Path | None = None
        self.port = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> "Postgres":
        if not (BIN / "pg_ctl").exists():
            raise BenchError("PostgreSQL 15 is missing: apt-get install postgresql")
        self.root = Path(tempfile.mkdtemp(prefix="asset-catalog-bench-pg-"))
        self.root.chmod(0o755)
        (self.root / "run").mkdir()
        initdb_pw = self.root / "initdb.pw"
        initdb_pw.write_text(self.password)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.root / "run", "postgres", "postgres")
            shutil.chown(initdb_pw, "postgres", "postgres")
        self._run(_as_postgres([str(BIN / "initdb"), "-D", str(self.data), "--locale=C.UTF-8",
                                "-E", "UTF8", "-A", "scram-sha-256", "-U", SUPERUSER,
                                "--no-sync", "--pwfile", str(initdb_pw)]), "initdb")
        initdb_pw.unlink()
        self.password_file.write_text(self.password)
        self.password_file.chmod(0o600)
        self.port = free_port()
        options = (f"-p {self.port} -k '{self.root / 'run'}' -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200 -c shared_preload_libraries=pg_stat_statements "
                   "-c pg_stat_statements.track_utility=on")
        self._run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-l",
                                str(self.root / "run" / "postgresql.log"), "-o", options,
                                "-w", "-t", "60", "start"]), "pg_ctl start")
        self.psql("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-m",
                                         "fast", "-w", "-t", "60", "stop"]),
                           capture_output=True, timeout=90)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _run(self, cmd: list[str], what: str) -> None:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if out.returncode != 0:
            logged = self.root / "run" / "postgresql.log"
            tail = logged.read_text(errors="replace")[-1500:] if logged.exists() else ""
            raise BenchError(f"{what} exited with {out.returncode}: "
                             f"{(out.stderr or out.stdout).strip()[-800:]}\n{tail}")

    def psql(self, db: str, sql: str) -> list[list[str]]:
        """Rows of `sql` run in `db` as the superuser, each a list of fields."""
        out = subprocess.run(
            [str(BIN / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-F", FIELD, "-R", RECORD,
             "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", db, "-c", sql],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"})
        if out.returncode != 0:
            raise BenchError(f"psql -d {db}: {out.stderr.strip()[:500]}")
        return [r.split(FIELD) for r in out.stdout.rstrip("\n").split(RECORD) if r.strip("\n")]

    def create_database(self, name: str, port: int | None = None) -> str:
        """A new database; its URL for the superuser (no password in it),
        through `port` (a proxy) when given."""
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return f"postgres://{SUPERUSER}@127.0.0.1:{port or self.port}/{name}"

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    # --- what the index did -------------------------------------------------

    def reset_statements(self) -> None:
        self.psql("postgres", "SELECT pg_stat_statements_reset()")

    def statements(self, db: str) -> dict[str, dict]:
        """Each statement run in `db` since the last reset: its calls, the WAL
        bytes it wrote and the milliseconds spent executing it."""
        rows = self.psql("postgres", (
            "SELECT sum(calls), sum(wal_bytes), sum(total_exec_time), "
            "regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
            f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{db}') GROUP BY 4"))
        return {q: {"calls": int(c), "wal_bytes": int(w), "exec_ms": float(ms)}
                for c, w, ms, q in rows}

    def counters(self, db: str) -> dict[str, int]:
        """Cumulative transaction and WAL counters (`db`'s and the cluster's)."""
        [xact] = self.psql("postgres", "SELECT xact_commit, xact_rollback FROM pg_stat_database "
                           f"WHERE datname = '{db}'")
        [wal] = self.psql("postgres", "SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal")
        keys = ["xact_commit", "xact_rollback", "wal_records", "wal_bytes", "wal_sync"]
        return dict(zip(keys, (int(v) for v in xact + wal)))


class WireCounter:
    """A proxy on 127.0.0.1 in front of PostgreSQL that counts the client's
    protocol messages by type (frontend messages: a type byte, then a length).

    Every `Sync` ('S') or simple `Query` ('Q') asks for a ReadyForQuery: a
    turn of the conversation. tokio-postgres closes a statement it prepared
    for one use with `Close` + `Sync` sent without waiting for the answer, so
    round trips the client waits for = Q + S - C.
    """

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.counts: Counter[str] = Counter()
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.connections = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {"connections": self.connections, **dict(self.counts)}

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError as e:
                log(f"WireCounter: cannot reach PostgreSQL: {e}")
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()
            threading.Thread(target=self._frontend, args=(client, server), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        _shut(src, dst)

    def _frontend(self, src: socket.socket, dst: socket.socket) -> None:
        buf = b""
        started = False
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
                buf += chunk
                buf, started = self._parse(buf, started)
        except OSError:
            pass
        _shut(src, dst)

    def _parse(self, buf: bytes, started: bool) -> tuple[bytes, bool]:
        while True:
            if not started:
                # Untyped: SSLRequest/GSSENCRequest (answered with one byte), then StartupMessage.
                if len(buf) < 8:
                    return buf, started
                length, code = struct.unpack("!II", buf[:8])
                if len(buf) < length:
                    return buf, started
                buf = buf[length:]
                started = code == 196608
                continue
            if len(buf) < 5:
                return buf, started
            kind = chr(buf[0])
            (length,) = struct.unpack("!I", buf[1:5])
            if len(buf) < 1 + length:
                return buf, started
            buf = buf[1 + length:]
            with self.lock:
                self.counts[kind] += 1


def _shut(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
