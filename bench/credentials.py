"""Content credentials: what reading a stored video's C2PA manifest costs (time, peak memory).

Measured side by side in one run. Builds, in a temporary folder, a C2PA-signed MP4 of ``--size``
bytes (the sandbox's real MP4 plus a media box of filler, signed with a test certificate by
c2pa-python's Builder, as the tests do), then reads it with ``apps.generations.credentials.read``
in fresh child processes, ``--rounds`` times each:

1. verified (the file is under ``C2PA_MAX_BYTES``): signature, trust and every byte's hash checked;
2. manifest only (the file is over ``C2PA_MAX_BYTES``): the ``unverified`` path.

Peak memory growth is ``VmHWM`` (reset via ``/proc/self/clear_refs``) minus ``VmRSS`` before the
read. Targets: manifest only <= 50 MB and < 1 s whatever the size; verified growth <= the file's
size + 64 MB (the SDK reads the media box whole: this is why ``C2PA_MAX_BYTES`` exists).

Run:  .venv/bin/python bench/credentials.py [--quick] [--size 200M|<bytes>] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MB = 1024 * 1024


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": MB, "G": 1024 * MB}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset VmHWM to the current RSS
        fh.write("5")


def child(path: str, anchors: str, max_bytes: int) -> None:
    """Runs in a fresh process; prints one JSON line."""
    from django.conf import settings

    settings.configure(C2PA_TRUST_ANCHORS=anchors, C2PA_MAX_BYTES=max_bytes)
    from apps.generations import credentials

    with open(path, "rb") as fh:  # warm up: the SDK's library and context
        credentials.read(fh)
    base = c.status_kb("self", "VmRSS")
    _reset_peak()
    started = time.perf_counter()
    with open(path, "rb") as fh:
        found = credentials.read(fh)
    elapsed = time.perf_counter() - started
    peak = c.status_kb("self", "VmHWM")
    print(json.dumps({"seconds": elapsed, "growth_mb": (peak - base) / 1024, "state": found["state"]}))


def build(folder: Path, size: int) -> tuple[Path, Path]:
    """A signed MP4 of about ``size`` bytes and the PEM of its root CA."""
    from apps.providers.sandbox.adapter import render_mp4
    from tests.generations import c2pa_assets

    identity = c2pa_assets.signing_identity("OpenAI")
    source = folder / "source.mp4"
    with open(source, "wb") as fh:
        fh.write(render_mp4("content credentials bench", 2, "1280x720"))
        filler = max(0, size - fh.tell() - 8)
        fh.write(struct.pack(">I4s", 8 + filler, b"mdat"))  # a second media box: hashed like the first
        chunk = bytes(range(256)) * 4096
        while filler > 0:
            fh.write(chunk[: min(len(chunk), filler)])
            filler -= min(len(chunk), filler)
    signed = folder / "signed.mp4"
    import c2pa

    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.key_pem, None)
    )
    manifest = {
        "claim_generator_info": [{"name": "bench", "version": "1"}],
        "title": "bench.mp4",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": c2pa_assets.AI_CREATED}]},
            }
        ],
    }
    with signer, c2pa.Builder(manifest) as builder, open(source, "rb") as src, open(signed, "w+b") as out:
        builder.sign(signer, "video/mp4", src, out)
    source.unlink()
    anchors = folder / "anchors.pem"
    anchors.write_bytes(identity.root_pem)
    return signed, anchors


def run_child(path: Path, anchors: Path, max_bytes: int) -> dict:
    out = subprocess.run(
        [c.PYTHON, __file__, "--child", str(path), str(anchors), str(max_bytes)],
        cwd=c.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 MiB, one round")
    parser.add_argument("--size", default="200M")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    size = 20 * MB if args.quick else _parse_size(args.size)
    rounds = 1 if args.quick else args.rounds

    import django
    from django.conf import settings

    settings.configure()
    django.setup()
    c.print_machine()
    folder = c.workdir("credentials")
    try:
        path, anchors = build(folder, size)
        actual = path.stat().st_size
        verified, manifest_only = [], []
        for _ in range(rounds):  # alternating, as the other benches do
            verified.append(run_child(path, anchors, actual))
            manifest_only.append(run_child(path, anchors, actual - 1))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    v_s, v_mb = median(verified, "seconds"), max(r["growth_mb"] for r in verified)
    m_s, m_mb = median(manifest_only, "seconds"), max(r["growth_mb"] for r in manifest_only)
    size_mb = actual / MB
    c.print_table(
        f"Content credentials read of a {size_mb:.0f} MiB signed MP4 ({rounds} round(s), median time, worst memory)",
        [
            ("verified: state", verified[0]["state"], "valid", c.ok(all(r["state"] == "valid" for r in verified))),
            ("verified: time", f"{v_s:.2f} s ({size_mb / v_s:.0f} MB/s)", "—", "—"),
            ("verified: peak memory growth", f"{v_mb:.1f} MB", f"<= {size_mb + 64:.0f} MB", c.ok(v_mb <= size_mb + 64)),
            (
                "manifest only: state",
                manifest_only[0]["state"],
                "unverified",
                c.ok(all(r["state"] == "unverified" for r in manifest_only)),
            ),
            ("manifest only: time", f"{m_s * 1000:.1f} ms", "< 1 s", c.ok(m_s < 1)),
            ("manifest only: peak memory growth", f"{m_mb:.1f} MB", "<= 50 MB", c.ok(m_mb <= 50)),
        ],
    )


if __name__ == "__main__":
    main()
