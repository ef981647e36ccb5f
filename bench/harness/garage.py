"""Garage, the real S3 server every tool uploads to, plus the environment
each S3 client (rclone, aws-cli, objstore-bench) needs to reach it.

A fresh Garage (new metadata and data directories) is started for every
measured upload, so every run is "cold": an empty bucket. Garage runs under
the TCP_NODELAY LD_PRELOAD shim (bench/nodelay.c); the shim's mark file
proves it was active.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

from util import BenchError, clean_env, free_port, http, spawn, stop, wait_until

REGION = "garage"
BUCKET = "bench"
ACCESS_KEY = "GKbenchharness0001"


class Garage:
    """One single-node Garage on 127.0.0.1, started fresh in `root`."""

    def __init__(self, binary: Path, shim: Path | None, root: Path):
        self.binary = binary
        self.shim = shim
        self.root = root
        self.secret = secrets.token_hex(20)
        self.proc = None
        self.s3_port = 0
        self.admin_port = 0
        self.nodelay_active = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> "Garage":
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "meta").mkdir(parents=True)
        (self.root / "data").mkdir()
        self.s3_port, rpc, admin = free_port(), free_port(), free_port()
        self.admin_port = admin
        config = self.root / "garage.toml"
        config.write_text(
            f'metadata_dir = "{self.root}/meta"\n'
            f'data_dir = "{self.root}/data"\n'
            'db_engine = "lmdb"\n'
            "replication_factor = 1\n"
            f'rpc_bind_addr = "127.0.0.1:{rpc}"\n'
            f'rpc_public_addr = "127.0.0.1:{rpc}"\n'
            f'rpc_secret = "{secrets.token_hex(32)}"\n'
            "[s3_api]\n"
            f'api_bind_addr = "127.0.0.1:{self.s3_port}"\n'
            f's3_region = "{REGION}"\n'
            "[admin]\n"
            f'api_bind_addr = "127.0.0.1:{admin}"\n'
        )
        mark = self.root / "nodelay.mark"
        env = {
            **clean_env(),
            "GARAGE_DEFAULT_ACCESS_KEY": ACCESS_KEY,
            "GARAGE_DEFAULT_SECRET_KEY": self.secret,
            "GARAGE_DEFAULT_BUCKET": BUCKET,
            "RUST_LOG": "warn",
            "TCP_NODELAY_SHIM_MARK": str(mark),
        }
        if self.shim:
            env["LD_PRELOAD"] = str(self.shim)
        log_path = self.root / "garage.log"
        self.proc = spawn([str(self.binary), "-c", str(config), "server", "--single-node",
                           "--default-bucket"], log_path, env)
        health = f"http://127.0.0.1:{admin}/health"
        wait_until(lambda: http("GET", health, timeout=2)[0] == 200, "garage /health", 60,
                   self.proc, log_path)
        # One request through the S3 port: the shim marks its first accept.
        http("GET", self.endpoint + "/", timeout=5)
        self.nodelay_active = mark.exists()
        if self.shim and not self.nodelay_active:
            raise BenchError(f"TCP_NODELAY shim {self.shim} did not take effect in garage")
        self.secret_file = self.root / "s3-secret"
        self.secret_file.write_text(self.secret)
        self.secret_file.chmod(0o600)
        return self

    def s3_requests(self) -> dict[str, int]:
        """S3 requests served so far, by operation (`PutObject`, ...), from
        the admin API's Prometheus metrics."""
        status, body = http("GET", f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10)
        if status != 200:
            raise BenchError(f"garage /metrics answered {status}")
        found = re.findall(r'^api_s3_request_counter\{api_endpoint="(\w+)"\} (\d+)$',
                           body.decode(), re.M)
        return {op: int(n) for op, n in found}

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- how each client reaches this Garage -------------------------------

    def objstore_env(self, base: dict) -> dict:
        return {
            **base,
            "BENCH_S3_ENDPOINT": self.endpoint,
            "BENCH_S3_REGION": REGION,
            "BENCH_S3_BUCKET": BUCKET,
            "BENCH_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "BENCH_S3_SECRET_ACCESS_KEY_FILE": str(self.secret_file),
        }

    def rclone_env(self, base: dict, home: Path) -> dict:
        """rclone remote `garage:` from environment variables only."""
        conf = home / "rclone.conf"
        conf.touch()
        return {
            **base,
            "HOME": str(home),
            "RCLONE_CONFIG": str(conf),
            "RCLONE_CACHE_DIR": str(home / "rclone-cache"),
            "RCLONE_CONFIG_GARAGE_TYPE": "s3",
            "RCLONE_CONFIG_GARAGE_PROVIDER": "Other",
            "RCLONE_CONFIG_GARAGE_ENV_AUTH": "false",
            "RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID": ACCESS_KEY,
            "RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY": self.secret,
            "RCLONE_CONFIG_GARAGE_ENDPOINT": self.endpoint,
            "RCLONE_CONFIG_GARAGE_REGION": REGION,
            "RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE": "true",
        }

    def aws_env(self, base: dict, home: Path) -> dict:
        """aws-cli with config and credentials in `home`, never the user's."""
        aws_dir = home / ".aws"
        aws_dir.mkdir(parents=True, exist_ok=True)
        (aws_dir / "config").write_text(
            f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
        creds = aws_dir / "credentials"
        creds.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\n"
                         f"aws_secret_access_key = {self.secret}\n")
        creds.chmod(0o600)
        return {
            **base,
            "HOME": str(home),
            "AWS_CONFIG_FILE": str(aws_dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(creds),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        }
