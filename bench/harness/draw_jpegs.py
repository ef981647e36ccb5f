"""Draw camera-like JPEGs for B9: a smooth random picture (a 16 × 12 grid of
random colours, upscaled bicubic) with film-grain noise, quality 90, and the
EXIF a camera writes (make, model, time taken), so the metadata and
thumbnail jobs do the work a photo gives them. Every image is different.

Run by Debian's python3 with python3-pil (the harness itself needs only the
standard library), not imported:

    /usr/bin/python3 draw_jpegs.py OUT_DIR FIRST COUNT WIDTH HEIGHT
"""

import random
import sys
from pathlib import Path

from PIL import Image, ImageChops

GRAIN = 24  # standard deviation of the noise, in 8-bit levels


def draw(path: Path, width: int, height: int, seed: int) -> None:
    rnd = random.Random(seed)
    grid = Image.frombytes("RGB", (16, 12), rnd.randbytes(16 * 12 * 3))
    base = grid.resize((width, height), Image.BICUBIC)
    grain = Image.effect_noise((width, height), GRAIN).convert("RGB")
    picture = ImageChops.add(base, grain, scale=1.0, offset=-128)
    taken = f"2025:{1 + seed % 12:02d}:{1 + seed % 28:02d} 12:{seed % 60:02d}:00"
    exif = Image.Exif()
    exif[0x010F] = "asset-catalog bench"  # Make
    exif[0x0110] = "B9"  # Model
    exif[0x0132] = taken  # DateTime
    exif[0x8769] = {0x9003: taken}  # Exif IFD: DateTimeOriginal
    picture.save(path, "JPEG", quality=90, exif=exif)


def main(argv: list[str]) -> int:
    out, first, count, width, height = Path(argv[0]), *map(int, argv[1:5])
    out.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        draw(out / f"img{i:04d}.jpg", width, height, i)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
