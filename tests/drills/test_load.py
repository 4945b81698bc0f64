"""A CI-sized load drill: 50 concurrent API clients for 10 s against a live server, creating,
listing and retrieving generations. No answer may be a 5xx (the full-size drill, 200 clients for
60 s against gunicorn with production settings, is ``bench/load_drill.py``)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
import requests

pytestmark = [pytest.mark.integration]

CLIENTS = 50
SECONDS = 10.0


def test_fifty_clients_for_ten_seconds_no_5xx(tenants, live_server, settings):
    from tests.worker import broker_mode, purge_queue

    settings.API_THROTTLE_TOKEN_RATE = ""  # measuring the server, not the rate limiter
    settings.API_THROTTLE_ORG_RATE = ""
    base = live_server.url
    headers = {"Authorization": f"Bearer {tenants.alice_token}"}
    body = {"model": "sandbox-video", "prompt": "load drill", "duration": 2, "size": "1280x720"}
    with broker_mode():  # creates send their first step to the broker (no worker: they stay queued)
        seed = requests.post(f"{base}/v1/video/generations", json=body, headers=headers, timeout=30)
        assert seed.status_code == 201, seed.text
        ids = [seed.json()["id"]]
        statuses: Counter[int] = Counter()
        errors: list[str] = []
        latencies: list[float] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + SECONDS

        def client(n: int) -> None:
            rnd = random.Random(n)
            session = requests.Session()
            session.headers.update(headers)
            while time.monotonic() < stop_at:
                roll = rnd.random()
                started = time.monotonic()
                try:
                    if roll < 0.1:
                        r = session.post(f"{base}/v1/video/generations", json=body, timeout=30)
                        if r.status_code == 201:
                            with lock:
                                ids.append(r.json()["id"])
                    elif roll < 0.25:
                        r = session.get(f"{base}/v1/video/generations", params={"limit": 20}, timeout=30)
                    else:
                        r = session.get(f"{base}/v1/video/generations/{rnd.choice(ids)}", timeout=30)
                except requests.RequestException as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                with lock:
                    statuses[r.status_code] += 1
                    latencies.append(time.monotonic() - started)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        purge_queue()  # nothing consumes these queued steps: do not leave them to the next test
    total = sum(statuses.values())
    assert total > CLIENTS, statuses
    assert not [s for s in statuses if s >= 500], statuses
    assert not errors, Counter(errors)
    assert set(statuses) <= {200, 201}, statuses
