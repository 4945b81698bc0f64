"""Peak memory of validating an uploaded input image (``apps.generations.images.validate_image``).

Each case runs in a fresh Python process (Django set up, nothing else): the bench resets the
process's resident high-water mark (``/proc/self/clear_refs``, Linux), validates the image once and
prints how far the peak rose above the resident size before the call, with the outcome and the wall
time. Cases: the worst images the default limits accept (8192 x 4882 = 39.99 megapixels, in each
format and the widest pixel mode; 4096 x 2441 for WebP, which may have a quarter of the pixels),
and refused images: bombs (small files declaring huge pictures) and a 40-megapixel WebP. The
"old path" rows run the previous check (``verify()`` then ``load()``, size checked after the decode)
on the same bytes, for comparison.

    .venv/bin/python bench/image_upload.py          # ~30 s
    .venv/bin/python bench/image_upload.py --quick  # the bombs only

Run it alone: other processes on the machine do not change the figures (each is one process's own
peak) but they do change the times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

MB = 1024 * 1024
LARGEST = (8192, 40_000_000 // 8192)
LARGEST_WEBP = (4096, 10_000_000 // 4096)  # a WebP may have a quarter of the pixels


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, mode: str) -> bytes:
    """A valid one-colour PNG written chunk by chunk (a bomb compresses to a few hundred KB)."""
    color_type, bit_depth, channels = {"1": (0, 1, 1), "L": (0, 8, 1), "RGB": (2, 8, 3), "RGBA": (6, 8, 4)}[mode]
    row = b"\0" * (1 + (width * channels * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def pillow_image(fmt: str, size: tuple[int, int], mode: str, **options) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, 90 if mode == "L" else (90,) * len(mode)).save(out, format=fmt, **options)
    return out.getvalue()


def webp_declaring(width: int, height: int) -> bytes:
    data = bytearray(pillow_image("WEBP", (64, 64), "RGB"))
    struct.pack_into("<HH", data, 26, width, height)  # the VP8 frame header's size
    return bytes(data)


def cases(quick: bool) -> list[tuple[str, str, Callable[[], bytes]]]:
    """(name, path: "new" is validate_image, "old" the check it replaced, builder)."""
    w, h = LARGEST
    ww, wh = LARGEST_WEBP
    bomb_81mp = lambda: png(9000, 9000, "RGB")  # noqa: E731
    webp_40mp = lambda: pillow_image("WEBP", (w, h), "RGBA", lossless=True)  # noqa: E731
    webp_10mp = lambda: pillow_image("WEBP", (ww, wh), "RGBA", lossless=True)  # noqa: E731
    progressive = lambda: pillow_image("JPEG", (w, h), "RGB", progressive=True)  # noqa: E731
    out = [
        ("bomb: PNG 1-bit 20000x20000 (400 MP)", "new", lambda: png(20000, 20000, "1")),
        ("bomb: PNG RGB 9000x9000 (81 MP, under Pillow's limit)", "new", bomb_81mp),
        ("bomb: PNG RGB 9000x9000 (81 MP, under Pillow's limit)", "old", bomb_81mp),
        ("bomb: WebP declaring 16383x16383", "new", lambda: webp_declaring(16383, 16383)),
    ]
    if not quick:
        out += [
            (f"largest PNG RGBA {w}x{h}", "new", lambda: png(w, h, "RGBA")),
            (f"largest PNG RGB {w}x{h}", "new", lambda: png(w, h, "RGB")),
            (f"largest JPEG CMYK {w}x{h}", "new", lambda: pillow_image("JPEG", (w, h), "CMYK", quality=85)),
            (f"largest JPEG RGB progressive {w}x{h}", "new", progressive),
            (f"largest WebP RGBA {ww}x{wh} (lossless)", "new", webp_10mp),
            (f"WebP RGBA {w}x{h} (lossless)", "new", webp_40mp),
            (f"WebP RGBA {w}x{h} (lossless)", "old", webp_40mp),
        ]  # fmt: skip
    return out


# --- one measurement, in its own process ------------------------------------------------------


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _old_validate(data: bytes) -> None:
    """The check before this change: decode first, look at the size afterwards."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if max(img.size) > 8192:
            raise ValueError(f"{img.size} refused after the decode")


def measure_one(path: str, file: Path) -> dict:
    import django

    django.setup()
    import gc

    from apps.core.errors import ApplicationError
    from apps.generations.images import validate_image

    data = file.read_bytes()
    validate_image(_small_png(), None)  # warm: Pillow's plugins imported, Django settings read
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _kb("VmRSS")
    started = time.perf_counter()
    try:
        if path == "old":
            _old_validate(data)
        else:
            validate_image(data, None)
        outcome = "accepted"
    except (ApplicationError, ValueError) as exc:
        outcome = "refused: " + str(getattr(exc, "code", "") or exc)[:40]
    wall = time.perf_counter() - started
    return {"peak_mb": (_kb("VmHWM") - before) / 1024, "wall_ms": wall * 1000, "outcome": outcome}


def _small_png() -> bytes:
    return png(32, 32, "RGB")


# --- the driver -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the bombs only")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], Path(args.one[1]))))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="mediarouter-bench-images-") as tmp:
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="mediarouter.settings",
            MEDIAROUTER_VAR_DIR=str(Path(tmp) / "var"),
            PYTHONPATH=str(c.ROOT),
        )
        for n, (name, path, build) in enumerate(cases(args.quick)):
            file = Path(tmp) / f"case{n}"
            file.write_bytes(build())
            size_kb = file.stat().st_size / 1024
            done = subprocess.run(
                [c.PYTHON, __file__, "--one", path, str(file)],
                env=env,
                cwd=c.ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            label = name if path == "new" else f"{name} — old path"
            rows.append(
                (
                    label,
                    f"{size_kb:,.0f} KB",
                    f"{result['peak_mb']:.1f} MB",
                    f"{result['wall_ms']:.1f} ms",
                    result["outcome"],
                )
            )
            file.unlink()
    c.print_machine()
    c.print_table(
        "Peak RSS growth of one validate_image() call (fresh process each)",
        rows,
        headers=("image", "file", "peak RSS growth", "wall", "outcome"),
    )


if __name__ == "__main__":
    main()
