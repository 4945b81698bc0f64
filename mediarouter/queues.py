"""The Celery queues' names, from one prefix (``CELERY_QUEUE_PREFIX``, default ``mediarouter``).

Submits, polls and downloads each have a queue, so a long download never holds up a poll; the
default queue (the prefix itself) carries everything else: beat's dispatcher, webhooks, pings.
settings.py routes the tasks with these names and ``mediarouter/run.py`` starts ``make run``'s
workers on them (no Django import here: run.py reads it before Django is configured). The Procfile
and docker-compose.yml spell the same rule in the shell: ``${CELERY_QUEUE_PREFIX:-mediarouter}.poll``.
"""

from __future__ import annotations

import os

DEFAULT_PREFIX = "mediarouter"
KINDS = ("default", "submit", "poll", "download")


def queue_names(prefix: str | None = None) -> dict[str, str]:
    """``{kind: queue name}`` for every kind of :data:`KINDS`; ``prefix`` defaults to the environment's."""
    prefix = prefix or os.environ.get("CELERY_QUEUE_PREFIX") or DEFAULT_PREFIX
    return {kind: prefix if kind == "default" else f"{prefix}.{kind}" for kind in KINDS}
