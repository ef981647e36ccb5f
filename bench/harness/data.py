"""Test data, generated on the spot: random bytes, so no tool can win by
deduplicating or compressing; only what a scenario says is shared is."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 8 * 1024 * 1024


def small_files(root: Path, count: int, size: int, per_dir: int = 1000) -> list[str]:
    """`count` files of `size` random bytes in subdirectories of `per_dir`.

    Returns their SHA-256 hex digests in creation order.
    """
    root.mkdir(parents=True, exist_ok=True)
    digests = []
    for i in range(count):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(exist_ok=True)
        data = os.urandom(size)
        (d / f"f{i:06d}.bin").write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return digests


def big_file(path: Path, size: int) -> None:
    """One file of `size` random bytes, written in 8 MiB chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n


def split_file(src: Path, parts: int, out_dir: Path) -> list[Path]:
    """Cut `src` into `parts` files of (almost) equal size in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    total = src.stat().st_size
    each = -(-total // parts)
    paths = []
    with open(src, "rb") as f:
        for i in range(parts):
            p = out_dir / f"part{i}.bin"
            with open(p, "wb") as out:
                left = min(each, total - i * each)
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    out.write(chunk)
                    left -= len(chunk)
            paths.append(p)
    return paths


def warm(paths: list[Path]) -> None:
    """Read files once so the page cache holds them (for warm measurements)."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(CHUNK):
                pass


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
