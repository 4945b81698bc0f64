"""Django's PostgreSQL backend (psycopg 3), with a health check that needs no round trip.

``CONN_HEALTH_CHECKS`` makes Django check a persistent connection before each request reuses it,
with ``SELECT 1``: one round trip to PostgreSQL per request, as many as an API retrieve's own
query. On a busy host each round trip waits for PostgreSQL to be scheduled: ``bench/api_overhead.py``
measured a retrieve at 12.5 ms p50 with the ``SELECT 1`` and 4.9-6.7 ms without it (2 cores under
load; see bench/RESULTS.md).

Here a connection that is idle between two requests is usable unless its socket has something to
read: PostgreSQL sends nothing unasked, so readable means it hung up (a restart, a failover, an
idle timeout, ``pg_terminate_backend``) or sent a notice. Only then does the check run Django's own
``SELECT 1`` (which fails on a dead connection, so Django opens a new one before the request uses
it). A connection that is not cleanly idle, or whose state psycopg already knows is bad, gets the
full check too. What the poll cannot see is a peer that vanished without a word (a network cut);
the ``SELECT 1`` would hang on it as well, until the operating system's timeouts.

Subclassing the built-in backend is the way Django documents for changing a backend's behaviour;
``is_usable()`` is the one method overridden. ``tests/core/test_api_hot_path.py`` holds what it must
keep doing: a connection PostgreSQL terminated is replaced before a request uses it, and a healthy
one costs no statement.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # the socket is gone
            return False
        return super().is_usable() if readable else True
