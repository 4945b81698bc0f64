"""Zip stream: a batch's finished videos served as one zip (``apps.generations.archive``), from
local files and from S3 (moto), with the memory it takes.

Measured side by side in one run. Writes ``--files`` videos of ``--size`` bytes each (20 x 50 MiB
by default; ``--quick``: 20 x 5 MiB) into a temporary media folder and into a moto S3 bucket, then,
for each storage, a fresh Python process builds the zip of 2 of them and of all of them and reads
the stream to its end (hashing it, as a client would receive it). Each child reports the zip's
size against its announced ``Content-Length``, the time, the throughput and its resident memory
growth: the ``VmHWM`` peak (reset via ``/proc/self/clear_refs``) minus ``VmRSS`` before.

Target: memory growth <= 50 MB, and flat: the zip of all the files grows memory no more than the
zip of two (within 16 MB), whatever the total size.

Run:  .venv/bin/python bench/zip_stream.py [--quick] [--files 20] [--size 50M]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MB = 1024 * 1024
BUCKET = "mediarouter-bench"
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_S3_REGION_NAME": "us-east-1"}


def _size(text: str) -> int:
    text = text.strip().upper()
    for suffix, factor in (("G", 1024 * MB), ("M", MB), ("K", 1024)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset VmHWM to the current RSS
        fh.write("5")


def child(count: int, size: int) -> None:
    """Runs in a fresh process configured by the environment; prints one JSON line."""
    import django

    django.setup()
    from decimal import Decimal

    from django.utils import timezone

    from apps.generations import archive
    from apps.generations.models import Batch, Generation, State
    from apps.generations.selectors import BatchSummary

    items = [
        Generation(
            pk=i + 1,
            public_id=f"video_bench{i:04d}",
            state=State.COMPLETED,
            video_file=f"orgs/bench/videos/video_bench{i:04d}.mp4",
            bytes=size,
            batch_index=i,
            estimated_cost=Decimal("0"),
        )
        for i in range(count)
    ]
    batch = Batch(public_id="batch_bench", concurrency=4, item_count=count, created_at=timezone.now())
    summary = BatchSummary(
        batch=batch,
        items=items,
        attempts=count,
        estimated=Decimal("0"),
        held=Decimal("0"),
        charged=Decimal("0"),
        counts={},
    )
    before = c.status_kb("self", "VmRSS")
    _reset_peak()
    started = time.perf_counter()
    stream = archive.batch_zip(summary)
    announced = len(stream)
    digest, received = hashlib.sha256(), 0
    for chunk in stream:
        digest.update(chunk)
        received += len(chunk)
    elapsed = time.perf_counter() - started
    peak = c.status_kb("self", "VmHWM")
    print(
        json.dumps(
            {
                "files": count,
                "bytes": received,
                "announced": announced,
                "seconds": elapsed,
                "growth_mb": (peak - before) / 1024,
            }
        )
    )


def _moto(procs: c.Procs, work: Path) -> str:
    import urllib.request

    port = c.free_port()
    procs.start("moto", [c.PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=dict(os.environ),
                log=work / "moto.log")  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            return endpoint
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("moto did not start")


def _write_files(media: Path, count: int, size: int) -> list[Path]:
    folder = media / "orgs" / "bench" / "videos"
    folder.mkdir(parents=True)
    block = os.urandom(MB)  # incompressible, like MP4
    paths = []
    for i in range(count):
        path = folder / f"video_bench{i:04d}.mp4"
        with open(path, "wb") as fh:
            left = size
            while left > 0:
                fh.write(block[: min(left, MB)])
                left -= MB
        paths.append(path)
    return paths


def _upload(endpoint: str, paths: list[Path]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDS["AWS_S3_REGION_NAME"],
    )
    s3.create_bucket(Bucket=BUCKET)
    for path in paths:
        s3.upload_file(str(path), BUCKET, f"orgs/bench/videos/{path.name}")


def _run_child(env: dict, count: int, size: int) -> dict:
    out = subprocess.run(
        [c.PYTHON, __file__, "--child", str(count), "--size", str(size)],
        cwd=c.ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 files of 5 MiB")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size", default="50M")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, int(args.size))
        return
    size = 5 * MB if args.quick else _size(args.size)
    count = args.files
    c.print_machine()
    procs = c.Procs()
    work = c.workdir("zip")
    try:
        media = work / "media"
        paths = _write_files(media, count, size)
        endpoint = _moto(procs, work)
        _upload(endpoint, paths)
        base = dict(os.environ)
        for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "AWS_STORAGE_BUCKET_NAME"):
            base.pop(name, None)
        base.update(
            {
                "DJANGO_SETTINGS_MODULE": "mediarouter.settings",
                "MEDIAROUTER_VAR_DIR": str(work / "var"),
                "MEDIA_ROOT": str(media),
                "PYTHONPATH": str(c.ROOT),
            }
        )
        envs = {
            "local files": base,
            "S3 (moto)": {**base, **CREDS, "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": endpoint},
        }
        rows = []
        for label, env in envs.items():
            few, every = _run_child(env, 2, size), _run_child(env, count, size)
            for result in (few, every):
                rows.append(
                    (
                        f"{label}: {result['files']} x {size / MB:.0f} MiB",
                        f"{result['bytes'] / MB:.0f} MiB",
                        "yes" if result["bytes"] == result["announced"] else "NO",
                        f"{result['bytes'] / MB / result['seconds']:.0f} MiB/s",
                        f"{result['growth_mb']:.1f} MB",
                        c.ok(result["growth_mb"] <= 50),
                    )
                )
            flat = every["growth_mb"] - few["growth_mb"]
            rows.append((f"{label}: growth, all - two", "", "", "", f"{flat:+.1f} MB", c.ok(flat <= 16)))
        c.print_table(
            f"Zip of a batch's videos, streamed ({count} x {size / MB:.0f} MiB, ZIP_STORED)",
            rows,
            headers=("zip", "size", "= Content-Length", "throughput", "memory growth", "ok (<= 50 MB, flat)"),
        )
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
