"""API throttling: separate budgets for creates and reads, per API token and per organization, on
every API view (both API shapes).

A client that creates a few videos and then polls them must not be refused for polling, so reads
(``GET``, ``HEAD``, ``OPTIONS``) and creates (every other method: creating and remixing videos,
adding keys, estimates, deletes) are counted apart, each per token and per organization:

- ``API_THROTTLE_CREATE_RATE`` (default ``120/min``) and ``API_THROTTLE_READ_RATE`` (``3000/min``),
  per token;
- ``API_THROTTLE_ORG_CREATE_RATE`` (``600/min``) and ``API_THROTTLE_ORG_READ_RATE``
  (``12000/min``), per organization, all its members' tokens together.

``"<requests>/<sec|min|hour|day>"``; empty disables that budget. Read on every request, so an
operator's change (or a test's) applies without a restart. The read default lets one token follow
the ``openai-poll-after-ms`` hint (2 s by default) for 100 jobs at once. The deprecated
``API_THROTTLE_TOKEN_RATE`` / ``API_THROTTLE_ORG_RATE``, when set (even empty), replace both budgets
of their level with one shared budget, as before.

Counting is a fixed window per counter, aligned to the clock (``floor(now / window)``); at most
``<requests>`` pass in a window. The token's counter is checked first, and a request it refuses does
not count against the organization (one member's runaway client does not spend the others'
budget). Every throttled response carries OpenAI's ``x-ratelimit-limit-requests``,
``x-ratelimit-remaining-requests`` and ``x-ratelimit-reset-requests`` (for the counter with the least
left); a refused one is a 429 with ``Retry-After`` (the time left in the refusing window) in the
API's error envelope (``apps.core.api``).

Where counts live, atomically in both cases (a count is never lost to a concurrent request):

- **Redis** (``REDIS_URL``; the default cache is django-redis): one Lua script (``INCR`` +
  ``PEXPIRE`` per counter), one round trip, on ``django_redis.get_redis_connection``.
- **Otherwise** (the embedded default): a small SQLite file, ``<MEDIAROUTER_VAR_DIR>/throttle.sqlite3``,
  shared by the processes of the host: one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per
  counter inside ``BEGIN IMMEDIATE``. Kept apart from the main database so that counting never
  waits on its write lock.

**Blocks.** A process does not go to the store for every request of a large budget: it takes a
block of ``limit // 100`` counts (at most 50; 1, so exact, for budgets under 200 a window) and
spends it locally, and goes back when the block is spent or the window ends. The store still never
hands out more than ``limit`` counts a window, so no more than ``limit`` requests pass; a block
another process has not spent yet counts as used, so a client at the very edge of a budget may be
refused up to ``(block - 1) x processes`` requests early (30 of 3,000 reads a minute per web
process at the default). ``x-ratelimit-remaining-requests`` is this process's view: the store's
count when the block was taken, less what is left of it. One store round trip then serves 30 reads
(bench/RESULTS.md: the SQLite write was 38 % of a ``make run`` web process's time).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from rest_framework.throttling import BaseThrottle

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_PREFIX = "throttle_api_"

_clock = time.time  # the window clock (wall time: shared by every process); tests move it


@lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/min"`` -> (120, 60). Same syntax as DRF's rates."""
    num, period = rate.split("/")
    return int(num), DURATIONS[period.strip()[0]]


@dataclass(frozen=True)
class Counter:
    """One budget: ``limit`` requests per ``window`` seconds, counted under ``key``."""

    key: str
    limit: int
    window: int


@dataclass(frozen=True)
class Outcome:
    """A counted request: ``refused`` is the counter that refused it (None: allowed). ``limit``,
    ``remaining`` and ``reset`` (seconds) describe the refusing counter, or the one with the least
    left."""

    refused: Counter | None
    limit: int
    remaining: int
    reset: float

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": format_duration(self.reset),
        }


def format_duration(seconds: float) -> str:
    """OpenAI's style for ``x-ratelimit-reset-*``: ``"120ms"``, ``"1.5s"``, ``"6m0s"``."""
    if seconds < 1:
        return f"{max(round(seconds * 1000), 1)}ms"
    if seconds < 60:
        return f"{round(seconds, 2):g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


# KEYS: the counters (window number included), in order. ARGV: limit, key lifetime (ms) and amount
# of each. Returns the count of each counter it added to; stops after the first one that was already
# at its limit (it grants nothing: the ones after it are not counted).
_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[3 * i])
  local n = redis.call('INCRBY', key, amount)
  if n == amount then
    redis.call('PEXPIRE', key, ARGV[3 * i - 1])
  end
  counts[i] = n
  if n - amount >= tonumber(ARGV[3 * i - 2]) then
    break
  end
end
return counts
"""


class RedisCounters:
    """Counters in the default cache's Redis (django-redis), one Lua call per request. Clients come
    from ``django_redis.get_redis_connection`` (django-redis shares one connection pool per URL)."""

    def __init__(self) -> None:
        self._script = None  # redis-py's Script: EVALSHA, loading the script again after NOSCRIPT

    def hit(self, counters: list[Counter], now: float, amounts: list[int] | None = None) -> list[int]:
        """Add ``amounts`` (1 each by default) to the counters, in order, up to the first that was
        already at its limit; returns each counter's count after its addition."""
        cache = caches["default"]
        keys, args = [], []
        for c, amount in zip(counters, amounts or [1] * len(counters), strict=True):
            number = int(now // c.window)
            keys.append(cache.make_and_validate_key(f"{c.key}:{number}"))
            lifetime = (number + 1) * c.window - now + 1  # until the window ends, and a second
            args += [c.limit, math.ceil(lifetime * 1000), amount]
        client = get_redis_connection("default")
        if self._script is None:
            self._script = client.register_script(_SCRIPT)
        return [int(n) for n in self._script(keys=keys, args=args, client=client)]

    def clear(self) -> None:
        """Forget every API throttle count (tests; an operator after changing rates)."""
        _blocks.clear()
        client = get_redis_connection("default")
        for key in client.scan_iter(match=caches["default"].make_key(f"{KEY_PREFIX}*"), count=1000):
            client.delete(key)


class SqliteCounters:
    """Counters in a SQLite file shared by this host's processes (one connection per thread and
    process). A row per counter (token or organization, and kind): its current window number and
    its count in that window; rows are reused window after window, so the file stays small."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)  # autocommit; BEGIN by hand
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # counts, not money: no fsync per request
        conn.execute(
            "CREATE TABLE IF NOT EXISTS counters "
            "(key TEXT PRIMARY KEY, window_no INTEGER NOT NULL, count INTEGER NOT NULL) WITHOUT ROWID"
        )
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    # A newer window starts the count again; a request stamped with an older window (a process
    # whose clock is behind) counts in the current one.
    _UPSERT = (
        "INSERT INTO counters (key, window_no, count) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        "count = CASE WHEN excluded.window_no > window_no THEN excluded.count ELSE count + excluded.count END, "
        "window_no = max(window_no, excluded.window_no) "
        "RETURNING count"
    )

    def hit(self, counters: list[Counter], now: float, amounts: list[int] | None = None) -> list[int]:
        """As :meth:`RedisCounters.hit`: one transaction for every counter."""
        conn = self._connection()
        counts = []
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: no reader-turned-writer deadlock
        try:
            for c, amount in zip(counters, amounts or [1] * len(counters), strict=True):
                ((n,),) = conn.execute(self._UPSERT, (c.key, int(now // c.window), amount)).fetchall()
                counts.append(n)
                if n - amount >= c.limit:
                    break
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return counts

    def clear(self) -> None:
        """Forget every API throttle count (tests; an operator after changing rates)."""
        _blocks.clear()
        self._connection().execute("DELETE FROM counters WHERE key LIKE ?", (f"{KEY_PREFIX}%",))


_redis_counters = RedisCounters()
_sqlite_counters: dict[Path, SqliteCounters] = {}


def counter_store() -> RedisCounters | SqliteCounters:
    """Redis when the default cache is django-redis, else the SQLite file in the var directory."""
    if isinstance(caches["default"], RedisCache):
        return _redis_counters
    path = Path(settings.VAR_DIR) / "throttle.sqlite3"
    store = _sqlite_counters.get(path)
    if store is None:
        store = _sqlite_counters.setdefault(path, SqliteCounters(path))
    return store


BLOCK_MAX = 50


def block_size(counter: Counter) -> int:
    """How many counts one trip to the store takes for this counter (see the module's docstring)."""
    return max(1, min(counter.limit // 100, BLOCK_MAX))


class Blocks:
    """This process's unspent blocks: ``key -> [window number, counts left, store count]``. A forked
    child starts with none (a block belongs to the process that took it)."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[str, list[int]] = {}

    def take(self, c: Counter, number: int) -> tuple[int, int] | None:
        """Spend one count of this window's block: ``(left, store count)``, or None (none left)."""
        entry = self.held.get(c.key)
        if entry is None or entry[0] != number or entry[1] <= 0:
            return None
        entry[1] -= 1
        return entry[1], entry[2]

    def add(self, c: Counter, number: int, left: int, count: int) -> tuple[int, int]:
        entry = self.held.get(c.key)
        if entry is not None and entry[0] == number:
            entry[1], entry[2] = entry[1] + left, max(entry[2], count)
        else:
            if len(self.held) >= self.MAX_KEYS:  # drop the blocks of windows that have ended
                self.held = {k: e for k, e in self.held.items() if e[0] == number}
            entry = self.held[c.key] = [number, left, count]
        return entry[1], entry[2]

    def give_back(self, c: Counter, number: int) -> None:
        entry = self.held.get(c.key)
        if entry is not None and entry[0] == number:
            entry[1] += 1

    def clear(self) -> None:
        with self.lock:
            self.held.clear()


_blocks = Blocks()
os.register_at_fork(after_in_child=lambda: _blocks.held.clear())


def hit(counters: list[Counter]) -> Outcome:
    """Count one request on each counter, in order, up to the first that refuses it: from this
    process's blocks where it has counts left, else with one trip to the store for every counter
    that needs a new block. A refused request gives back what it took from the counters before."""
    now = _clock()
    numbers = [int(now // c.window) for c in counters]
    with _blocks.lock:
        local = [_blocks.take(c, number) for c, number in zip(counters, numbers, strict=True)]
    spent = [got is not None for got in local]  # taken from a block held before this request
    need = [i for i, got in enumerate(local) if got is None]
    fetched: dict[int, tuple[int, int]] = {}  # index -> (granted, store count)
    if need:
        sizes = [block_size(counters[i]) for i in need]
        counts = counter_store().hit([counters[i] for i in need], now, sizes)
        for i, size, n in zip(need, sizes, counts, strict=False):
            fetched[i] = (max(0, min(size, counters[i].limit - (n - size))), min(n, counters[i].limit))
    outcomes = []
    with _blocks.lock:
        for i, c in enumerate(counters):
            reset = (numbers[i] + 1) * c.window - now
            if local[i] is None:
                granted, count = fetched.get(i, (0, c.limit))
                if granted == 0:  # refused: undo this request's counts, keep the blocks it took
                    for j in range(len(counters)):
                        if spent[j]:
                            _blocks.give_back(counters[j], numbers[j])
                        elif j in fetched and fetched[j][0] > 0:
                            _blocks.add(counters[j], numbers[j], *fetched[j])
                    return Outcome(refused=c, limit=c.limit, remaining=0, reset=reset)
                local[i] = (granted - 1, count)
            left, count = local[i]
            outcomes.append(Outcome(refused=None, limit=c.limit, remaining=max(c.limit - count, 0) + left, reset=reset))
        for i in fetched:  # every counter allowed it: keep the rest of each new block
            _blocks.add(counters[i], numbers[i], local[i][0], local[i][1])
    return min(outcomes, key=lambda o: (o.remaining, -o.reset))


def budget(level: str, kind: str) -> tuple[str | None, str]:
    """``(rate, counter kind)`` of one budget; ``level`` is ``"token"`` or ``"org"``, ``kind``
    ``"create"`` or ``"read"``. The deprecated per-level setting, when set, is one budget for both
    kinds (counter kind ``"all"``)."""
    legacy = getattr(settings, f"API_THROTTLE_{level.upper()}_RATE", None)
    if legacy is not None:
        return legacy, "all"
    name = f"API_THROTTLE_ORG_{kind.upper()}_RATE" if level == "org" else f"API_THROTTLE_{kind.upper()}_RATE"
    return getattr(settings, name, None), kind


def request_kind(request) -> str:
    return "read" if request.method in READ_METHODS else "create"


def counters_for(token, kind: str) -> list[Counter]:
    """The token's counters for a request of this kind: the token's first, then its organization's."""
    counters = []
    for level, ident in (("token", token.public_id), ("org", token.organization_id)):
        rate, counted_as = budget(level, kind)
        if rate:
            limit, window = parse_rate(rate)
            counters.append(Counter(f"{KEY_PREFIX}{level}_{counted_as}_{ident}", limit, window))
    return counters


class ApiRateThrottle(BaseThrottle):
    """Creates and reads per API token and per organization (all its members' tokens together); see
    the module's docstring for the settings. Keys: ``throttle_api_<token|org>_<create|read>_<token
    public id | organization id>``. The outcome's headers are put on the response by
    ``apps.core.api.OrgScopedAPIView``."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        token = getattr(request, "auth", None)
        if token is None or getattr(token, "organization_id", None) is None:
            return True  # unauthenticated requests are refused (401) before throttling matters
        counters = counters_for(token, request_kind(request))
        if not counters:
            return True
        outcome = hit(counters)
        request.ratelimit_headers = outcome.headers()
        if outcome.refused is None:
            return True
        self._wait = outcome.reset
        return False

    def wait(self) -> float | None:
        return self._wait
