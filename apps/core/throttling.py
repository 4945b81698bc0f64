"""API throttling, per API token and per organization, for every API view (both API shapes).

Rates come from settings (``API_THROTTLE_TOKEN_RATE``, ``API_THROTTLE_ORG_RATE``; ``"120/min"``
style, empty to disable) and are read on every request, so an operator's change (or a test's)
applies without a restart. Counts live in Django's default cache: Redis when ``REDIS_URL`` is set,
the file cache otherwise, so web processes share them. An over-rate request gets 429 with
``Retry-After`` in the API's error envelope (``apps.core.api.exception_handler``).

Counting is a fixed window per key: the first request starts a window of the rate's length, and
at most ``<requests>`` are allowed in it; ``Retry-After`` is the time left in the window. The token
is checked first and a request it refuses does not count against the organization (so one
member's runaway client does not spend the others' budget). On Redis both counters are one
round trip (a Lua script: ``INCR`` + ``PEXPIRE``, atomic); DRF's ``SimpleRateThrottle`` kept a
list of timestamps per key, read and rewritten whole (two round trips and up to 600 pickled
floats per counter and request at the default organization rate).
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache, caches
from rest_framework.throttling import BaseThrottle

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# KEYS: the counters, in order. ARGV: limit and window (ms) of each. Stops at the first counter
# over its limit: returns {index (1-based), ms left in its window}; {0, 0} when all allow.
_SCRIPT = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local left = redis.call('PTTL', key)
  if left < 0 then
    left = tonumber(ARGV[2 * i])
    redis.call('PEXPIRE', key, left)
  end
  if n > tonumber(ARGV[2 * i - 1]) then
    return {i, left}
  end
end
return {0, 0}
"""

_local = threading.local()


@lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/min"`` -> (120, 60). Same syntax as DRF's rates."""
    num, period = rate.split("/")
    return int(num), DURATIONS[period.strip()[0]]


def _redis_script():
    """The registered Lua script on the default cache's Redis connection pool, or None when the
    cache is not Django's RedisCache. One client per thread, built once (Django's RedisCache
    builds a new ``redis.Redis`` for every operation)."""
    backend = caches["default"]
    cached = getattr(_local, "script", None)
    if cached is not None and cached[0] is backend:
        return cached[1]
    script = None
    client_factory = getattr(getattr(backend, "_cache", None), "get_client", None)
    if type(backend).__name__ == "RedisCache" and client_factory is not None:
        script = client_factory(write=True).register_script(_SCRIPT)
    _local.script = (backend, script)
    return script


def hit(counters: list[tuple[str, int, int]]) -> float | None:
    """Count one request on each ``(key, limit, window seconds)``, in order. Returns None when
    every counter allows it, else the seconds until the refusing counter's window ends."""
    script = _redis_script()
    if script is not None:
        keys = [cache.make_and_validate_key(key) for key, _limit, _window in counters]
        args = [v for _key, limit, window in counters for v in (limit, window * 1000)]
        index, left_ms = script(keys=keys, args=args)
        return None if index == 0 else max(int(left_ms), 1) / 1000
    # Any other cache (the file cache of the embedded default): read, count, write. Not atomic
    # across processes, like DRF's throttles were; Redis is the production setting.
    now = time.time()
    for key, limit, window in counters:
        entry = cache.get(key)
        ends, count = entry if isinstance(entry, tuple) and len(entry) == 2 else (0.0, 0)
        if ends <= now:
            ends, count = now + window, 0
        count += 1
        cache.set(key, (ends, count), timeout=max(ends - now, 1))
        if count > limit:
            return ends - now
    return None


class ApiRateThrottle(BaseThrottle):
    """Requests per API token (``API_THROTTLE_TOKEN_RATE``) and per organization, all its members'
    tokens together (``API_THROTTLE_ORG_RATE``). Keys: ``throttle_api_token_<token public id>``
    and ``throttle_api_org_<organization id>``."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        token = getattr(request, "auth", None)
        if token is None or getattr(token, "organization_id", None) is None:
            return True  # unauthenticated requests are refused (401) before throttling matters
        counters = []
        for setting, key in (
            ("API_THROTTLE_TOKEN_RATE", f"throttle_api_token_{token.public_id}"),
            ("API_THROTTLE_ORG_RATE", f"throttle_api_org_{token.organization_id}"),
        ):
            rate = getattr(settings, setting, None)
            if rate:
                limit, window = parse_rate(rate)
                counters.append((key, limit, window))
        if not counters:
            return True
        self._wait = hit(counters)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
