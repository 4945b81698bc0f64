"""``make run`` and ``make dev``: web, worker and beat under supervisord, configured from the environment.

``python -m mediarouter.run`` (what ``make run`` executes) migrates, collects the static files into
``$MEDIAROUTER_VAR_DIR/staticfiles`` (WhiteNoise serves them, as in production), writes
``$MEDIAROUTER_VAR_DIR/run/supervisord.conf`` and replaces itself with ``supervisord -n``, which
starts

- ``web``: gunicorn, as in the ``Procfile`` but on 127.0.0.1 with gthread workers and a keep-alive
  (a browser or an SDK reuses its connection), a listen backlog of 2048, and ``DEBUG`` off;
- ``worker`` (the default and submit queues, ``WORKER_CONCURRENCY`` processes), ``polls`` (the poll
  queue, ``POLL_CONCURRENCY`` processes: each batched poll step asks up to
  ``GENERATION_POLL_CONCURRENCY`` providers at once in threads), ``downloads`` (the download queue,
  ``DOWNLOAD_CONCURRENCY`` processes: a long download never holds up a poll) and ``beat``: Celery,
  as in the ``Procfile``;

supervisord restarts any of them that exits (a crash, a kill) while the others keep running, and
stops all of them on Ctrl-C (SIGINT), SIGTERM or SIGQUIT; the children run in process groups of
their own, so a terminal's Ctrl-C reaches supervisord only, which stops beat, then the worker,
then web, each with its own graceful signal. ``supervisorctl -c $MEDIAROUTER_VAR_DIR/run/supervisord.conf
status`` (or ``restart worker``) talks to it over a unix socket that only the owner may open.

``--dev`` (``make dev``) runs Django's ``runserver`` (autoreload) with ``DEBUG`` on instead.

Settings: ``PORT`` (8000), ``WEB_CONCURRENCY`` (2 gunicorn workers), ``WEB_THREADS`` (4 threads each),
``WORKER_CONCURRENCY`` (2 Celery processes), ``POLL_CONCURRENCY`` (1), ``DOWNLOAD_CONCURRENCY`` (1),
``CELERY_QUEUE_PREFIX`` (``mediarouter``), ``MEDIAROUTER_VAR_DIR`` (``.var``). Every program writes its metrics into
``PROMETHEUS_MULTIPROC_DIR`` (default ``$MEDIAROUTER_VAR_DIR/prometheus``, emptied at each start), which
``/metrics`` adds up.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mediarouter.queues import queue_names

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
KEEPALIVE_SECONDS = 5
LISTEN_BACKLOG = 2048


@dataclass(frozen=True)
class Program:
    name: str
    argv: list[str]
    priority: int  # supervisord starts the lowest first and stops it last
    stopwaitsecs: int = 15  # then SIGKILL to the program's whole process group
    # Stop signal to the whole group, not just the main process: runserver's autoreloader parent
    # does not pass SIGTERM on to the child that holds the port. gunicorn and Celery pass it on
    # themselves (a worker's warm shutdown lets running tasks finish).
    stopasgroup: bool = False


def programs(
    *,
    dev: bool,
    port: int,
    web_workers: int,
    web_threads: int,
    worker_concurrency: int,
    download_concurrency: int = 1,
    poll_concurrency: int = 1,
    python: str = sys.executable,
) -> list[Program]:
    if dev:
        web = Program("web", [python, "manage.py", "runserver", f"{HOST}:{port}"], priority=100, stopasgroup=True)
    else:
        web = Program(
            "web",
            [
                python, "-m", "gunicorn", "mediarouter.wsgi",
                "--bind", f"{HOST}:{port}",
                "--workers", str(web_workers),
                "--worker-class", "gthread", "--threads", str(web_threads),
                "--keep-alive", str(KEEPALIVE_SECONDS),
                "--backlog", str(LISTEN_BACKLOG),
                "--graceful-timeout", "10",
                "--access-logfile", "-",
                "--logger-class", "mediarouter.logging.GunicornLogger",  # tokens redacted
            ],
            priority=100,
        )  # fmt: skip
    celery = [python, "-m", "celery", "-A", "mediarouter"]
    queues = queue_names()
    # each kind of step has its own pool: a burst of submits or a long download never holds up the
    # poll step (one process polls hundreds of jobs a second: apps.generations.polling)
    worker = [*celery, "worker", "--hostname", "worker@%h", "--queues", f"{queues['default']},{queues['submit']}"]
    polls = [*celery, "worker", "--hostname", "polls@%h", "--queues", queues["poll"]]
    downloads = [*celery, "worker", "--hostname", "downloads@%h", "--queues", queues["download"]]
    return [
        web,
        Program("worker", [*worker, "--loglevel", "INFO", "--concurrency", str(worker_concurrency)], 200),
        Program("polls", [*polls, "--loglevel", "INFO", "--concurrency", str(poll_concurrency)], 220),
        Program("downloads", [*downloads, "--loglevel", "INFO", "--concurrency", str(download_concurrency)], 250),
        Program("beat", [*celery, "beat", "--loglevel", "INFO"], 300),
    ]


def _value(text: str | Path) -> str:
    """A value for supervisord's config, which %-interpolates values (``%(ENV_X)s``) and ends them at
    a newline or a `` ;`` comment."""
    text = str(text)
    if "\n" in text or " ;" in text or "\t;" in text:
        raise SystemExit(f"mediarouter.run: cannot put {text!r} in supervisord's configuration")
    return text.replace("%", "%%")


def socket_path(run_dir: Path) -> Path:
    """supervisord's control socket: in the run directory, unless that path is too long for a unix
    socket (about 100 bytes), then in the temp directory under a name derived from it."""
    sock = run_dir / "supervisor.sock"
    if len(os.fsencode(sock)) <= 100:
        return sock
    digest = hashlib.sha256(os.fsencode(run_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mediarouter-{digest}.sock"


def supervisord_conf(*, run_dir: Path, programs: list[Program], directory: Path = BASE_DIR) -> str:
    sock = socket_path(run_dir)
    lines = [
        "; Written by mediarouter/run.py (make run / make dev) at every start; edits are lost.",
        "[supervisord]",
        "nodaemon=true",
        f"logfile={_value(run_dir / 'supervisord.log')}",
        "logfile_maxbytes=5MB",
        "logfile_backups=1",
        f"pidfile={_value(run_dir / 'supervisord.pid')}",
        f"childlogdir={_value(run_dir)}",
        f"directory={_value(directory)}",
        "",
        "[unix_http_server]",
        f"file={_value(sock)}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_value(sock)}",
    ]
    for program in programs:
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={_value(shlex.join(program.argv))}",
            f"directory={_value(directory)}",
            f"priority={program.priority}",
            "autostart=true",
            "autorestart=true",  # whatever the exit: a crash or a kill -9 brings it back
            "startsecs=2",
            "startretries=5",
            "stopsignal=TERM",
            f"stopwaitsecs={program.stopwaitsecs}",
            f"stopasgroup={'true' if program.stopasgroup else 'false'}",
            "killasgroup=true",
            # all output to supervisord's own stdout: the terminal of `make run`
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
        ]
    return "\n".join(lines) + "\n"


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _supervisord_running(run_dir: Path) -> bool:
    """Whether a supervisord answers on this var dir's socket (a stale socket file does not count)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path(run_dir)))
        except OSError:
            return False
    return True


def _int_env(name: str, default: int, highest: int = 1024) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"mediarouter.run: {name} must be a whole number, not {raw!r}") from None
    if not 1 <= value <= highest:
        raise SystemExit(f"mediarouter.run: {name} must be between 1 and {highest}")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mediarouter.run", description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="runserver (autoreload) with DEBUG on, instead of gunicorn")
    args = parser.parse_args(argv)

    port = _int_env("PORT", 8000, highest=65535)
    python = sys.executable
    progs = programs(
        dev=args.dev,
        port=port,
        web_workers=_int_env("WEB_CONCURRENCY", 2),
        web_threads=_int_env("WEB_THREADS", 4),
        worker_concurrency=_int_env("WORKER_CONCURRENCY", 2),
        download_concurrency=_int_env("DOWNLOAD_CONCURRENCY", 1),
        poll_concurrency=_int_env("POLL_CONCURRENCY", 1),
        python=python,
    )
    var_dir = Path(os.environ.get("MEDIAROUTER_VAR_DIR") or BASE_DIR / ".var").resolve()
    run_dir = var_dir / "run"
    if _supervisord_running(run_dir):
        raise SystemExit(
            f"mediarouter.run: already running for {var_dir}; "
            f"see {Path(sys.executable).parent / 'supervisorctl'} -c {run_dir / 'supervisord.conf'} status"
        )
    if _port_in_use(port):
        raise SystemExit(f"mediarouter.run: {HOST}:{port} is in use; choose another port, e.g. PORT=9000 make run")
    run_dir.mkdir(parents=True, exist_ok=True)
    # Inherited by every program through supervisord. DEBUG is never left to the caller's shell:
    # only `make dev` turns it on.
    os.environ.update(
        MEDIAROUTER_VAR_DIR=str(var_dir),
        PORT=str(port),
        DEBUG="true" if args.dev else "false",
        PYTHONUNBUFFERED="1",
    )
    steps = [[python, "manage.py", "migrate", "--noinput"]]
    if not args.dev:  # runserver serves static files itself when DEBUG is on
        steps.append([python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"])
    try:
        for step in steps:
            if subprocess.run(step, cwd=BASE_DIR).returncode:
                raise SystemExit(f"mediarouter.run: {shlex.join(step[1:])} failed")
    except KeyboardInterrupt:
        raise SystemExit(130) from None

    # Every program's counters and histograms, added up by /metrics (prometheus-client's multiprocess
    # mode). Set only now: migrate and collectstatic above leave no files there. Emptied at each
    # start: the files of processes that no longer run would otherwise be added up forever.
    metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or var_dir / "prometheus")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    conf = run_dir / "supervisord.conf"
    conf.write_text(supervisord_conf(run_dir=run_dir, programs=progs))
    server = "runserver, DEBUG on" if args.dev else "gunicorn"
    print(
        f"MediaRouter on http://{HOST}:{port}/ ({server}; sign up there). Ctrl-C stops web, workers and beat;\n"
        f"a process that dies is restarted. Status: {Path(python).parent / 'supervisorctl'} -c {conf} status",
        flush=True,
    )
    os.chdir(BASE_DIR)
    os.execv(python, [python, "-m", "supervisor.supervisord", "-n", "-c", str(conf)])  # noqa: S606 - fixed argv


if __name__ == "__main__":
    main()
