"""The run's settings (sizes for a full or a quick run), the binaries, and
helpers that start a fresh Garage + server stack for one measurement."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from garage import Garage
from product import Server, Watcher
from util import clean_env

KIB, MIB, GIB = 1024, 1024 ** 2, 1024 ** 3


@dataclass
class Params:
    """Sizes from issue #6; `quick()` shrinks them for a smoke run."""

    b1_files: int = 10_000
    b1_size: int = 4 * KIB
    b2_size: int = 2 * GIB
    b3_files: int = 100_000
    b3_size: int = 1 * KIB
    b4_files: int = 1_000
    b4_rate: float = 20.0
    b5_size: int = 1 * GIB
    b6_hashes: int = 10_000
    b6_requests: int = 10
    wrk_seconds: int = 10
    wrk_threads: int = 2
    wrk_connections: int = 32
    # The watcher's default `upload_concurrency` (client/src/config). It is
    # passed to the watcher explicitly, and to the object_store baseline, so
    # "the same concurrency" holds even if the default changes.
    concurrency: int = 4
    # Direct multipart baseline with the server's own settings: storage.part_size_bytes
    # default (server/src/config) and PARTS_IN_FLIGHT (server/src/storage/multipart.rs).
    part_size_mib: int = 16
    part_concurrency: int = 2
    # B8: the index at 1M assets (3 sightings each on average), both backends.
    b8_assets: int = 1_000_000
    b8_reps: int = 20
    b8_insert_seconds: float = 20.0
    b8_insert_tasks: int = 16
    # B9: background jobs. Scrub over b9_objects random objects; thumbnails of
    # b9_images JPEGs of b9_image_px; B1's ingest beside a backlog of
    # b9_backlog_images JPEGs and b9_backlog_objects of those objects.
    b9_objects: int = 16
    b9_object_size: int = 64 * MIB
    b9_images: int = 24
    b9_image_px: tuple[int, int] = (4000, 3000)
    b9_backlog_images: int = 96
    b9_backlog_objects: int = 8
    # B11: the web UI on the B8 index (b8_assets): loads per page and mode.
    b11_runs: int = 10

    @classmethod
    def quick(cls) -> "Params":
        return cls(b1_files=300, b2_size=64 * MIB, b3_files=3_000, b4_files=40,
                   b5_size=64 * MIB, b6_requests=3, wrk_seconds=2,
                   b8_assets=20_000, b8_reps=5, b8_insert_seconds=3.0,
                   b9_objects=4, b9_object_size=16 * MIB, b9_images=4,
                   b9_backlog_images=8, b9_backlog_objects=2, b11_runs=3)


@dataclass
class Bins:
    server: Path
    watcher: Path
    objbench: Path
    garage: Path
    shim: Path | None
    indexbench: Path = Path("index-bench")
    rclone: str = "/usr/bin/rclone"
    aws: str = "/usr/bin/aws"
    wrk: str = "/usr/bin/wrk"
    # Debian's python3 with python3-pil (B9 draws its JPEGs with it); the
    # harness itself needs only the standard library.
    pil_python: str = "/usr/bin/python3"


@dataclass
class Ctx:
    bins: Bins
    work: Path
    runs: int
    params: Params
    drop_caches: bool
    base_env: dict = field(default_factory=lambda: clean_env())

    def dir(self, *parts: str) -> Path:
        p = self.work.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def garage(self, name: str) -> Garage:
        return Garage(self.bins.garage, self.bins.shim, self.work / "garage" / name).start()

    def stack(self, name: str, jobs: str = "") -> tuple[Garage, Server]:
        """A fresh Garage and a fresh server on it (empty bucket, empty index);
        `jobs` is its `[jobs]` section (default: none, the defaults)."""
        g = self.garage(name)
        try:
            s = Server(self.bins.server, self.work / "server" / name, g, jobs=jobs).start()
        except BaseException:
            g.wipe()
            raise
        return g, s

    def file_server(self, name: str, jobs: str = "") -> Server:
        """A fresh server on its default file store (no Garage)."""
        return Server(self.bins.server, self.work / "server" / name, None, jobs=jobs).start()

    def watcher(self, name: str, server: Server, watch_dir: Path) -> Watcher:
        w = Watcher(self.bins.watcher, self.work / "watcher" / name, server, watch_dir,
                    self.params.concurrency)
        return w.init()

    def peer_home(self, name: str) -> Path:
        return self.dir("home", name)
