"""Download: a provider's video streamed into local files and S3, against curl and S3's ceiling.

Measured side by side in one run.

Starts, on 127.0.0.1: the OpenAI emulator serving a generated video of ``--size`` bytes (500 MiB by
default; ``/_emulator/video`` for curl, the job's ``/content`` for MediaRouter) and moto's S3 server
(``python -m moto.server``). Then ``--rounds`` times, alternating (page-cache allocation on this
VM makes a single write figure swing by 2-5x; the medians are compared):

1. ``curl -o file`` (the reference throughput) and ``curl | tee file | sha256sum``;
2. a fresh Python process with production settings streams the video with the Sora adapter's
   ``download()`` into ``apps.generations.storage.save_stream`` into local files; its resident
   memory growth is the ``VmHWM`` peak (reset via ``/proc/self/clear_refs``) minus ``VmRSS`` before
   (tracemalloc misses C buffers);
3. boto3 ``upload_file`` of a local file of the same size into moto with boto3's default
   ``TransferConfig`` (10 threads): the endpoint's own ceiling on this machine;
4. the same child process as 2, into S3 (django-storages, ``STORAGES`` from ``AWS_*``).

The local steps of a round (curl, MediaRouter, and with ``--buffered`` / ``--baseline`` / ``--dd``
save_stream with buffered writes, Django's ``Storage.save``, ``dd`` of zeros buffered and with
``oflag=direct``) run in an order that turns every round: at 2 GiB the step right after another
freed its file writes into page-cache pages the VM has not yet handed back to the host, and is
faster (bench/RESULTS.md). CPU seconds (user + system) of each download are printed per GiB.

Targets: local >= 80 % of curl; S3 >= 80 % of the ceiling; memory growth <= 50 MB.
``--profile DIR`` runs the children under py-spy (``record --native -f raw``) and prints their top
frames (self time) instead of timing alone; ``--perf DIR`` records them with ``perf record -g``
(kernel frames included; enabled only for the timed download) and prints self time by symbol.

Run:  .venv/bin/python bench/download.py [--quick] [--size 500M|2G|<bytes>] [--rounds 3] [--baseline]
      [--buffered] [--dd] [--only local|s3] [--perf DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MB = 1024 * 1024
PY_SPY = Path(c.PYTHON).with_name("py-spy")


def _rss_kb(field: str) -> int:
    return c.status_kb("self", field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset VmHWM to the current RSS
        fh.write("5")


def _perf_control(command: str) -> None:
    """Under ``--perf``: switch the recording on or off (perf's ``--control`` fifo)."""
    path = os.environ.get("BENCH_PERF_CONTROL")
    if path:
        with open(path, "w") as fh:
            fh.write(command + "\n")
        time.sleep(0.05)  # perf reads the fifo asynchronously


def child(mode: str, size: int) -> None:
    """Runs in a fresh process configured by the environment; prints one JSON line."""
    import django

    django.setup()
    import requests
    from django.core.files.storage import default_storage

    from apps.generations import storage
    from apps.providers import registry
    from apps.providers.base import Credentials
    from tests.emulators.sora import API_KEY

    adapter = registry.build("sora", Credentials(api_key=API_KEY))
    job = requests.post(
        f"{adapter.base_url}/videos",
        json={"model": "sora-2", "prompt": "big", "seconds": "4", "size": "1280x720"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    ).json()["id"]
    while adapter.status(job).state.value != "completed":
        time.sleep(0.1)
    # warm up: the storage backend's client and imports through the same path (9 MiB: over the
    # multipart threshold, so S3's transfer manager and its threads exist before the timing)
    with adapter.download(job, variant="thumbnail") as dl:
        storage.save_stream("bench/warmup.webp", dl.chunks)
    storage.save_stream("bench/warmup.bin", (bytes(MB) for _ in range(9)))
    key = f"bench/{mode}.mp4"
    base_rss = _rss_kb("VmRSS")
    _reset_peak()
    _perf_control("enable")
    cpu_before = os.times()
    started = time.perf_counter()
    with adapter.download(job, variant="video") as dl:
        if mode == "django":  # the first path: Django's Storage.save of the hashing file object
            stream = storage.StreamingFile(dl.chunks)
            default_storage.save(key, stream)
            stored = storage.StoredFile(key=key, size=stream.size, sha256=stream.sha256.hexdigest())
        elif mode == "buffered":  # save_stream through the page cache (the previous local path)
            storage.DIRECT_IO = False
            stored = storage.save_stream(key, dl.chunks)
        else:
            stored = storage.save_stream(key, dl.chunks)
    elapsed = time.perf_counter() - started
    cpu_after = os.times()
    _perf_control("disable")
    peak = _rss_kb("VmHWM")
    assert stored.size == size, (stored.size, size)
    assert default_storage.size(key) == size
    default_storage.delete(key)
    default_storage.delete("bench/warmup.webp")
    default_storage.delete("bench/warmup.bin")
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
                "growth_mb": (peak - base_rss) / 1024,
                "base_mb": base_rss / 1024,
                "size": size,
                "sha256": stored.sha256,
            }
        )
    )


def top_frames(raw: Path, focus: str = r"save_stream|Storage.save|s3transfer", n: int = 16) -> list[tuple[float, str]]:
    """Self time of the leaf frames in py-spy's raw (collapsed) output, in stacks under ``focus``
    (the download's own thread, s3transfer's upload threads)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(re.search(focus, f) for f in frames):
            continue
        leaf = frames[-1]
        m = re.match(r"(.*) \((.*?):\d+\)$", leaf)
        if m:
            leaf = f"{m.group(1)} ({'/'.join(m.group(2).split('/')[-2:])})"
        if re.match(r"0x[0-9a-f]+ \(", leaf):  # unsymbolised native code: group by library
            leaf = "native " + leaf.split("(", 1)[1].rstrip(")")
        counts[leaf] += int(count)
        total += int(count)
    return [(k / total, name) for name, k in counts.most_common(n)] if total else []


def run_child(mode: str, size: int, env: dict, profile: Path | None, round_no: int, perf: Path | None = None) -> dict:
    cmd = [c.PYTHON, __file__, "--child", mode, "--size", str(size)]
    if profile is not None:
        out = profile / f"{mode}-{round_no}.txt"
        cmd = [str(PY_SPY), "record", "-r", "250", "--native", "--threads", "-f", "raw", "-o", str(out), "--", *cmd]
    elif perf is not None:  # recording starts disabled; the child enables it for the timed part only
        control = perf / f"{mode}-{round_no}.ctl"
        control.unlink(missing_ok=True)
        os.mkfifo(control)
        env = dict(env, BENCH_PERF_CONTROL=str(control))
        data = str(perf / f"{mode}-{round_no}.data")
        cmd = [
            "perf",
            "record",
            "-q",
            "-F",
            "999",
            "-g",
            "-D",
            "-1",
            f"--control=fifo:{control}",
            "-o",
            data,
            "--",
            *cmd,
        ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=c.ROOT)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"{mode} download failed")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def boto_ceiling(endpoint: str, bucket: str, path: Path) -> float:
    """Seconds for boto3 to upload the local file ``path`` into moto (boto3's default config)."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    started = time.perf_counter()
    s3.upload_file(str(path), bucket, "bench/ceiling.bin", Config=TransferConfig())
    elapsed = time.perf_counter() - started
    s3.delete_object(Bucket=bucket, Key="bench/ceiling.bin")
    return elapsed


def parse_size(text: str) -> int:
    """``500M`` (MiB), ``2G`` (GiB: ``VIDEO_MAX_BYTES``'s default, the largest video accepted), bytes."""
    m = re.fullmatch(r"(\d+)([KMG]?)(?:i?B)?", text.strip(), flags=re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G, 524288000)")
    return int(m.group(1)) * 1024 ** " KMG".index((m.group(2) or " ").upper())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (50 MiB, 1 round)")
    parser.add_argument("--size", "--video-bytes", type=parse_size, default=500 * MB, dest="size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["local", "s3"], help="skip the other storage")
    parser.add_argument("--profile", type=Path, help="run the children under py-spy, raw profiles here")
    parser.add_argument(
        "--perf", type=Path, help="run the children under `perf record -g` (kernel and native frames), data here"
    )
    parser.add_argument(
        "--baseline", action="store_true", help="also time the previous local path (Django's Storage.save)"
    )
    parser.add_argument(
        "--buffered", action="store_true", help="also time save_stream with buffered writes (no O_DIRECT)"
    )
    parser.add_argument(
        "--dd", action="store_true", help="also time dd of zeros into a new file (the VM's write speed)"
    )
    parser.add_argument("--child", choices=["local", "s3", "django", "buffered"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size)
        return 0
    if args.quick:
        args.size, args.rounds = 50 * MB, 1
    size = args.size
    modes = [args.only] if args.only else ["local", "s3"]
    for directory in (args.profile, args.perf):
        if directory:
            directory.mkdir(parents=True, exist_ok=True)

    procs = c.Procs()
    work = c.workdir("download")
    try:
        _emu, emu_url = c.start_emulator(
            procs, work / "emulator.log", args=["--job-seconds", "0.1", "--video-bytes", str(size)]
        )
        s3_port = c.free_port()
        procs.start(
            "moto",
            [c.PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            env=dict(os.environ),
            log=work / "moto.log",
        )
        c.wait_port(s3_port)
        endpoint = f"http://127.0.0.1:{s3_port}"
        import boto3

        bucket = "mediarouter-bench"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)

        root = emu_url.rsplit("/v1", 1)[0]
        base_env = c.production_env(db_name="mediarouter_bench_unused", var_dir=work, OPENAI_BASE_URL=emu_url)
        s3_env = dict(
            base_env,
            AWS_STORAGE_BUCKET_NAME=bucket,
            AWS_S3_ENDPOINT_URL=endpoint,
            AWS_S3_REGION_NAME="us-east-1",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
        times: dict[str, list[float]] = collections.defaultdict(list)
        runs: dict[str, list[dict]] = collections.defaultdict(list)
        cpu: dict[str, list[float]] = collections.defaultdict(list)  # CPU seconds (user + system)
        out = work / "curl.mp4"
        # the emulator renders its sample MP4 on the first request: not in the first curl's time
        subprocess.run(["curl", "-sS", "-o", os.devnull, f"{root}/_emulator/video"], check=True)

        def curl() -> float:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(["curl", "-sS", "-o", str(out), f"{root}/_emulator/video"], check=True)
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu["curl"].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            assert out.stat().st_size == size
            out.unlink()
            return elapsed

        def dd(*flags: str) -> float:
            """Zeros into a new file, ``bs=8M``: what the VM's writes alone allow (no network)."""
            started = time.perf_counter()
            count = -(-size // (8 * MB))
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={out}", "bs=8M", f"count={count}", *flags, "status=none"], check=True
            )
            elapsed = time.perf_counter() - started
            out.unlink()
            return elapsed * size / (count * 8 * MB)

        local_modes = []
        if "local" in modes:
            local_modes = ["local", *(["buffered"] if args.buffered else []), *(["django"] if args.baseline else [])]
        steps = ["curl", *local_modes, *(["dd", "dd_direct"] if args.dd else [])]
        for round_no in range(args.rounds):
            # each into a new file, back to back; the order turns every round, so that no path is
            # always the one right after another's 2 GiB were freed (see bench/RESULTS.md)
            shift = round_no % len(steps)
            for step in steps[shift:] + steps[:shift]:
                if step == "curl":
                    times["curl"].append(curl())
                elif step == "dd":
                    times["dd"].append(dd())
                elif step == "dd_direct":
                    times["dd_direct"].append(dd("oflag=direct"))
                else:
                    r = run_child(step, size, base_env, args.profile, round_no, args.perf)
                    runs[step].append(r)
                    times[step].append(r["seconds"])
                    cpu[step].append(r["cpu_seconds"])
            if "s3" in modes:  # the ceiling: a local file of the same size, then MediaRouter
                subprocess.run(["curl", "-sS", "-o", str(out), f"{root}/_emulator/video"], check=True)
                times["ceiling"].append(boto_ceiling(endpoint, bucket, out))
                out.unlink()
                r = run_child("s3", size, s3_env, args.profile, round_no, args.perf)
                runs["s3"].append(r)
                times["s3"].append(r["seconds"])
            started = time.perf_counter()
            subprocess.run(
                f"curl -sS {root}/_emulator/video | tee {out} | sha256sum > /dev/null", shell=True, check=True
            )
            times["curl_hash"].append(time.perf_counter() - started)
            out.unlink()
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    def rate(key: str) -> float:
        return size / MB / statistics.median(times[key])

    def each(key: str) -> str:
        return " / ".join(f"{size / MB / s:.0f}" for s in times[key])

    rows = [
        ("curl -o file (reference)", f"{rate('curl'):.0f} MB/s (runs {each('curl')})", "", ""),
        ("curl | tee file | sha256sum", f"{rate('curl_hash'):.0f} MB/s (runs {each('curl_hash')})", "", ""),
    ]
    if args.dd:
        for key, label in (("dd", "dd bs=8M -> new file (buffered)"), ("dd_direct", "dd bs=8M oflag=direct")):
            rows.append((label, f"{rate(key):.0f} MB/s (runs {each(key)})", "", ""))
    if args.buffered and "local" in modes:
        ratio = rate("buffered") / rate("curl")
        rows.append(
            (
                "save_stream, buffered writes (no O_DIRECT)",
                f"{rate('buffered'):.0f} MB/s (runs {each('buffered')}) = {ratio:.0%} of curl",
                "",
                "",
            )
        )
    if args.baseline and "local" in modes:
        ratio = rate("django") / rate("curl")
        rows.append(
            (
                "first path: Django Storage.save -> local files",
                f"{rate('django'):.0f} MB/s (runs {each('django')}) = {ratio:.0%} of curl",
                "",
                "",
            )
        )
    if "local" in modes:
        ratio = rate("local") / rate("curl")
        rows.append(
            (
                "save_stream -> local files (O_DIRECT)",
                f"{rate('local'):.0f} MB/s (runs {each('local')}) = {ratio:.0%} of curl",
                ">= 80 % of curl",
                c.ok(ratio >= 0.8),
            )
        )
    if "s3" in modes:
        rows.append(
            ("boto3 upload_file -> moto (the ceiling)", f"{rate('ceiling'):.0f} MB/s (runs {each('ceiling')})", "", "")
        )
        ratio = rate("s3") / rate("ceiling")
        rows.append(
            (
                "save_stream -> S3 (moto)",
                f"{rate('s3'):.0f} MB/s (runs {each('s3')}) = {ratio:.0%} of the ceiling",
                ">= 80 % of the ceiling",
                c.ok(ratio >= 0.8),
            )
        )
    if local_modes:
        per_gib = ", ".join(
            f"{key} {statistics.median(cpu[key]) * 1024**3 / size:.2f}" for key in ["curl", *local_modes]
        )
        rows.append(("CPU seconds per GiB (median; the child's threads)", per_gib, "", ""))
    for mode in [*local_modes, *(["s3"] if "s3" in modes else [])]:
        growth = max(r["growth_mb"] for r in runs[mode])
        rows.append(
            (
                f"{mode}: peak memory growth (worst run)",
                f"{growth:.1f} MB (RSS before {runs[mode][0]['base_mb']:.0f} MB)",
                "<= 50 MB",
                c.ok(growth <= 50),
            )
        )
    c.print_machine()
    print(f"load average before/after: see `uptime`; {args.rounds} rounds, medians")
    c.print_table(f"Download of {size / MB:.0f} MiB ({size:,} bytes)", rows)
    if args.profile:
        for mode in [*local_modes, *(["s3"] if "s3" in modes else [])]:
            print(f"\n## py-spy, {mode}, round 1: self time of the download's threads\n")
            for share, name in top_frames(args.profile / f"{mode}-0.txt"):
                print(f"{share:6.1%}  {name}")
    if args.perf:
        for mode in [*local_modes, *(["s3"] if "s3" in modes else [])]:
            print(f"\n## perf, {mode}, round 1: self time by thread and symbol (all the child's threads)\n")
            for line in perf_top(args.perf / f"{mode}-0.data"):
                print(line)
    return 0


def perf_top(data: Path, n: int = 18) -> list[str]:
    """The child's self time by thread and symbol (kernel, libcrypto, libpython...), top ``n``."""
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,symbol", "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
    ).stdout
    shares: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        m = re.match(r"\s+(\d+\.\d+)%\s+(\S+)\s+\[.\]\s+(\S+)", line)
        if m:  # unsymbolised addresses (libcrypto's SHA-256) are summed per library
            share, dso, symbol = float(m.group(1)), m.group(2), m.group(3)
            shares[f"{dso} {'(all)' if symbol.startswith('0x') else symbol}"] += share
    return [f"{share:6.2f}%  {name}" for name, share in shares.most_common(n)]


if __name__ == "__main__":
    sys.exit(main())
