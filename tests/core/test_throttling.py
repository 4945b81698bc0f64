"""The API throttle (apps.core.throttling): creates and reads have their own budgets, so a client
polling its jobs is never refused for it; every throttled answer carries OpenAI's x-ratelimit-*
headers; and counting is atomic on both stores (Redis on the Redis leg, the SQLite counter file on
the embedded default), across threads and processes.

Time is simulated (``throttling._clock``): the tests count, they never sleep."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter as Tally

import pytest
import requests
from django.conf import settings as django_settings

from apps.core import throttling
from tests.openai_compat.helpers import assert_error

T0 = 1_800_000_000.0  # a minute boundary (and an hour's): windows start here
SANDBOX = {"model": "sandbox-video", "prompt": "a red fox in the snow", "seconds": "2", "size": "1280x720"}
HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")


@pytest.fixture
def clock(monkeypatch):
    now = [T0]
    monkeypatch.setattr(throttling, "_clock", lambda: now[0])
    return now


@pytest.fixture
def rates(settings, clock):
    """The production defaults, counts cleared before and after (only the throttle's own keys: on
    the Redis leg the cache shares its database with the broker)."""
    from mediarouter import settings as base

    for name in ("CREATE", "READ", "ORG_CREATE", "ORG_READ"):
        setattr(settings, f"API_THROTTLE_{name}_RATE", getattr(base, f"API_THROTTLE_{name}_RATE"))
    settings.API_THROTTLE_TOKEN_RATE = settings.API_THROTTLE_ORG_RATE = None
    throttling.counter_store().clear()
    yield settings
    throttling.counter_store().clear()


def _create(client):
    return client.post("/v1/videos", SANDBOX, content_type="application/json")


def test_the_store_is_redis_on_the_redis_leg_and_the_sqlite_file_otherwise(rates):
    store = throttling.counter_store()
    if django_settings.REDIS_URL:
        assert isinstance(store, throttling.RedisCounters)
    else:
        assert isinstance(store, throttling.SqliteCounters)
        assert store.path == django_settings.VAR_DIR / "throttle.sqlite3"


def test_a_client_polling_50_jobs_every_2_seconds_is_never_refused(tenants, rates, clock):
    """The program of issue 17: create 50 videos, then poll each at the server's
    ``openai-poll-after-ms`` hint (2 s at the default engine settings), 1,500 reads a minute, for a
    whole window and into the next. With the default budgets nothing is refused, and the hint
    leaves the read budget room to spare."""
    from mediarouter import settings as base

    rates.GENERATION_POLL_MIN_SECONDS = base.GENERATION_POLL_MIN_SECONDS
    client = tenants.api_client_for(tenants.alice_token)
    ids = []
    for _ in range(50):
        r = _create(client)
        assert r.status_code == 200, r.content
        ids.append(r.json()["id"])
        clock[0] += 0.01
    hint = int(client.get(f"/v1/videos/{ids[0]}")["openai-poll-after-ms"]) / 1000
    assert hint == 2.0
    limit, window = throttling.parse_rate(base.API_THROTTLE_READ_RATE)
    assert 50 * window / hint <= limit / 2
    statuses = Tally()
    for _round in range(31):  # t = 0.5 … 60.5 s: 30 rounds (1,500 reads) in the first minute, 1 after
        for video_id in ids:
            statuses[client.get(f"/v1/videos/{video_id}").status_code] += 1
        clock[0] += hint
    assert statuses == {200: 31 * 50}


def test_the_same_program_under_one_shared_budget_is_refused(tenants, rates, clock):
    """The deprecated single budget (the old default, 120/min per token for everything) refuses the
    same program within its first minute: the split is what lets it through."""
    rates.API_THROTTLE_TOKEN_RATE = "120/min"
    client = tenants.api_client_for(tenants.alice_token)
    ids = [_create(client).json()["id"] for _ in range(50)]
    refused_at = None
    for n in range(30):
        codes = {client.get(f"/v1/videos/{video_id}").status_code for video_id in ids}
        if 429 in codes:
            refused_at = n
            break
        clock[0] += 2.0
    assert refused_at == 1  # 50 creates + 50 reads, then the 21st read of the second round


def test_creates_beyond_their_budget_get_429_with_the_headers_and_reads_go_on(tenants, rates, clock):
    rates.API_THROTTLE_CREATE_RATE = "3/min"
    client = tenants.api_client_for(tenants.alice_token)
    answers = [_create(client) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r["x-ratelimit-remaining-requests"] for r in answers] == ["2", "1", "0"]
    assert {r["x-ratelimit-limit-requests"] for r in answers} == {"3"}
    clock[0] += 20.5
    r = _create(client)
    error = assert_error(r, 429, code="throttled")
    assert error["type"] == "rate_limit_error"
    assert r["Retry-After"] == "40"  # ceil(39.5): the time left in the window
    assert (r["x-ratelimit-limit-requests"], r["x-ratelimit-remaining-requests"]) == ("3", "0")
    assert r["x-ratelimit-reset-requests"] == "39.5s"
    assert "x-should-retry" not in r  # retrying later is the right thing to do
    # reads have their own budget; the native shape's creates share the create budget
    video_id = answers[0].json()["id"]
    assert client.get(f"/v1/videos/{video_id}").status_code == 200
    assert client.get("/v1/video/generations").status_code == 200
    r = client.post(
        "/v1/video/generations",
        {"model": "sandbox-video", "prompt": "a kite", "duration": 2, "size": "1280x720"},
        content_type="application/json",
    )
    assert_error(r, 429)
    assert all(r[h] for h in HEADERS)
    # the next window allows creates again
    clock[0] += 40
    assert _create(client).status_code == 200


def test_every_answer_of_a_throttled_route_carries_the_headers(tenants, rates, clock):
    client = tenants.api_client_for(tenants.alice_token)
    clock[0] += 15.25
    for url in ("/v1/videos", "/v1/video/generations", "/v1/models", "/v1/me", "/v1/keys", "/v1/videos/video_nope"):
        r = client.get(url)
        assert r.status_code in (200, 404), (url, r.status_code)
        limit = int(r["x-ratelimit-limit-requests"])
        assert limit == 3000, url  # the token's read budget: less left than the organization's
        assert 0 <= int(r["x-ratelimit-remaining-requests"]) < limit
        assert r["x-ratelimit-reset-requests"] == "44.75s"
    # an unauthenticated request is refused before it is counted: no budget to report
    r = tenants.api_client_for("mr_nope").get("/v1/videos")
    assert r.status_code == 401 and "x-ratelimit-limit-requests" not in r


def test_an_organizations_creates_and_reads_are_counted_across_its_tokens(tenants, rates, clock):
    rates.API_THROTTLE_ORG_CREATE_RATE = "3/min"
    rates.API_THROTTLE_ORG_READ_RATE = "5/min"
    alice, bob = (tenants.api_client_for(t) for t in (tenants.alice_token, tenants.bob_token))
    assert [_create(c).status_code for c in (alice, bob, alice)] == [200, 200, 200]
    r = _create(bob)
    assert_error(r, 429)
    assert r["x-ratelimit-limit-requests"] == "3"  # the organization's budget refused it
    assert [c.get("/v1/models").status_code for c in (alice, bob, alice, bob, alice)] == [200] * 5
    assert_error(bob.get("/v1/models"), 429)
    # another organization has its own budgets
    charlie = tenants.api_client_for(tenants.charlie_token)
    assert _create(charlie).status_code == 200 and charlie.get("/v1/models").status_code == 200


def test_the_deprecated_settings_still_work(tenants, rates, clock):
    """When set, API_THROTTLE_TOKEN_RATE / API_THROTTLE_ORG_RATE are one budget for both kinds at
    their level; empty switches that level off, as before."""
    rates.API_THROTTLE_TOKEN_RATE = "2/min"
    alice = tenants.api_client_for(tenants.alice_token)
    assert [_create(alice).status_code, alice.get("/v1/models").status_code] == [200, 200]
    assert_error(alice.get("/v1/models"), 429)
    assert_error(_create(alice), 429)
    rates.API_THROTTLE_TOKEN_RATE = ""
    rates.API_THROTTLE_ORG_RATE = ""
    assert {alice.get("/v1/models").status_code for _ in range(5)} == {200}


# --- atomicity ------------------------------------------------------------------------------


def _burst(n: int) -> int:
    """``n`` hits on one shared counter (limit 30 a minute); how many were allowed."""
    counters = [throttling.Counter("throttle_api_token_create_burst", 30, 60)]
    return sum(throttling.hit(counters).refused is None for _ in range(n))


def test_parallel_processes_never_let_more_than_the_limit_through(rates):
    """Four processes (as gunicorn's workers are) hit one counter 25 times each: exactly 30 pass.
    The file cache's read-then-write let 1,005 through a 120/min budget in 15 s."""
    throttling.counter_store()  # create the SQLite table before the fork, as a web process would
    with multiprocessing.get_context("fork").Pool(4) as pool:
        allowed = pool.map(_burst, [25] * 4)
    assert sum(allowed) == 30, allowed


def test_parallel_requests_never_let_more_than_the_limit_through(tenants, rates, live_server):
    """40 requests at once against a live (threaded) server with a budget of 10: exactly 10 pass,
    30 are 429s."""
    rates.API_THROTTLE_READ_RATE = "10/min"
    url = f"{live_server.url}/v1/models"
    headers = {"Authorization": f"Bearer {tenants.alice_token}"}
    start = threading.Barrier(40)
    codes: list[int] = []

    def one() -> None:
        with requests.Session() as session:
            start.wait()
            codes.append(session.get(url, headers=headers, timeout=30).status_code)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Tally(codes) == {200: 10, 429: 30}


# --- units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0004, "1ms"), (0.12, "120ms"), (1.0, "1s"), (39.5, "39.5s"), (360, "6m0s"), (61.2, "1m2s")]
)
def test_reset_durations_are_written_as_openai_writes_them(seconds, text):
    assert throttling.format_duration(seconds) == text


def test_a_request_counts_as_a_read_only_when_it_cannot_change_anything():
    class R:
        def __init__(self, method):
            self.method = method

    assert [throttling.request_kind(R(m)) for m in ("GET", "HEAD", "OPTIONS", "POST", "DELETE", "PATCH")] == [
        "read", "read", "read", "create", "create", "create",
    ]  # fmt: skip


# --- blocks: one trip to the store for many requests of a large budget ------------------------------


def _trips(monkeypatch) -> list[int]:
    """Counts each trip to the store (whichever it is)."""
    store = throttling.counter_store()
    trips: list[int] = []
    real = store.hit

    def counted(counters, now, amounts=None):
        trips.append(len(counters))
        return real(counters, now, amounts)

    monkeypatch.setattr(store, "hit", counted)
    return trips


def test_a_large_budget_is_counted_in_blocks_with_exact_headers(rates, clock, monkeypatch):
    trips = _trips(monkeypatch)
    counters = [throttling.Counter("throttle_api_token_read_blocks", 3000, 60)]
    assert throttling.block_size(counters[0]) == 30
    remaining = [throttling.hit(counters).remaining for _ in range(100)]
    assert remaining == list(range(2999, 2899, -1))  # one less per request, as without blocks
    assert len(trips) == 4  # 30 + 30 + 30 + 10: four trips for 100 requests
    clock[0] += 60  # a new window: a new block, the full budget again
    assert throttling.hit(counters).remaining == 2999 and len(trips) == 5


def test_small_budgets_are_counted_one_by_one(rates, clock, monkeypatch):
    trips = _trips(monkeypatch)
    counters = [throttling.Counter("throttle_api_token_create_small", 120, 60)]
    assert throttling.block_size(counters[0]) == 1
    assert [throttling.hit(counters).remaining for _ in range(3)] == [119, 118, 117]
    assert len(trips) == 3


def test_a_refused_request_gives_back_what_it_took_from_the_blocks(rates, clock):
    token = throttling.Counter("throttle_api_token_read_giveback", 3000, 60)
    org = throttling.Counter("throttle_api_org_read_giveback", 2, 60)
    assert [throttling.hit([token, org]).refused for _ in range(2)] == [None, None]
    refused = [throttling.hit([token, org]).refused for _ in range(5)]
    assert refused == [org] * 5
    # the five refused requests cost the token nothing: the third allowed one leaves 2,997
    roomy = throttling.Counter("throttle_api_org_read_giveback_roomy", 3000, 60)
    assert throttling.hit([token]).remaining == 2997
    assert throttling.hit([token, roomy]).refused is None


def _burst_large(n: int) -> int:
    counters = [throttling.Counter("throttle_api_token_read_burst", 1000, 60)]  # blocks of 10
    return sum(throttling.hit(counters).refused is None for _ in range(n))


def test_blocks_never_let_more_than_the_limit_through_across_processes(rates):
    """The parent takes a block, then four forked processes (gunicorn's workers) spend 400 each of a
    1,000 budget counted in blocks of 10: at most 1,000 pass in all (a child does not inherit the
    parent's block), and at most 9 per process are held unspent when the budget runs out."""
    allowed_here = _burst_large(1)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        allowed = pool.map(_burst_large, [400] * 4)
    total = allowed_here + sum(allowed)
    assert 1000 - 5 * 9 <= total <= 1000, (allowed_here, allowed)
