"""The MiniMax adapter against the MiniMax emulator: both generations from create to bytes, and
every quirk of the contract (minimax.md §9-§10): HTTP-200 ``base_resp`` errors, the file step with
an expiring URL, numeric file ids, plan keys, the other region's key, the 7-day window, callbacks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from apps.providers import registry
from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from tests.emulators.base import sample_image, sample_mp4

PNG = InputImage(data=sample_image("PNG"), content_type="image/png")


def spec(**kwargs):
    values = {"model": "hailuo-2.3", "prompt": "a lighthouse at dusk", "seconds": 6, "size": "1366x768"}
    return GenerationSpec(**{**values, **kwargs})


def finish(adapter, emulator, job):
    emulator.advance(2)
    return adapter.status(job.job_id, job_data=job.data)


def read(adapter, job, url=None):
    with adapter.download(job.job_id, url=url, job_data=job.data) as dl:
        return b"".join(dl.chunks)


@pytest.mark.parametrize(
    ("kwargs", "api"),
    [
        ({}, "v1"),
        ({"seconds": 10}, "v1"),
        ({"size": "1920x1080"}, "v1"),
        ({"image": PNG}, "v1"),
        ({"model": "hailuo-2.3-fast", "image": PNG, "seconds": 10}, "v1"),
        ({"model": "minimax-h3", "seconds": 5}, "v2"),
        ({"model": "minimax-h3", "seconds": 15, "size": "1440x2560"}, "v2"),
        ({"model": "minimax-h3", "seconds": 8, "size": "3360x1440", "image": PNG}, "v2"),
    ],
)
def test_create_poll_download(minimax, minimax_emulator, kwargs, api):
    minimax.validate_key()
    job = minimax.submit(spec(**kwargs))
    assert job.data["api"] == api and job.job_id in minimax_emulator.jobs
    first = minimax.status(job.job_id, job_data=job.data)
    assert first.state is JobState.QUEUED and first.raw_status in ("Preparing", "queued")
    minimax_emulator.advance(0.5)
    assert minimax.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    done = finish(minimax, minimax_emulator, job)
    assert done.state is JobState.COMPLETED
    url = done.output_urls[0] if done.output_urls else None
    assert read(minimax, job, url) == sample_mp4()
    calls = minimax_emulator.stats()["calls"]
    if api == "v1":
        assert calls["retrieve"] == 1 and calls["query"] == 4  # three polls, then step 1 of the download
    else:
        assert "retrieve" not in calls and calls["query_v2"] == 3


def test_the_v1_file_step_gives_a_fresh_url_that_expires(minimax, minimax_emulator):
    job = minimax.submit(spec())
    finish(minimax, minimax_emulator, job)
    file_id = str(minimax.status(job.job_id, job_data=job.data).usage["file_id"])
    old = minimax.retrieve_url(file_id)
    minimax_emulator.advance(minimax_emulator.url_ttl + 10)
    assert requests.get(old, timeout=5).status_code == 403  # the signed URL expired
    assert minimax.retrieve_url(file_id) != old
    # the download runs the file step itself, so a stale URL handed in is never used
    assert read(minimax, job, old) == sample_mp4()
    assert minimax_emulator.stats()["calls"]["retrieve"] == 3


def test_file_id_as_a_number(minimax, minimax_emulator):
    minimax_emulator.file_id_as_number = True
    job = minimax.submit(spec())
    done = finish(minimax, minimax_emulator, job)
    assert isinstance(minimax_emulator.v1_body(minimax_emulator.jobs[job.job_id])["file_id"], int)
    assert isinstance(done.usage["file_id"], str)
    assert read(minimax, job) == sample_mp4()


def test_v2_urls_rotate_per_query(minimax, minimax_emulator):
    job = minimax.submit(spec(model="minimax-h3", seconds=5))
    a = finish(minimax, minimax_emulator, job).output_urls[0]
    b = minimax.status(job.job_id, job_data=job.data).output_urls[0]
    assert a != b and read(minimax, job, b) == sample_mp4()


@pytest.mark.parametrize(("model", "seconds"), [("hailuo-2.3", 6), ("minimax-h3", 5)])
@pytest.mark.parametrize(("marker", "code"), [("[fail]", 1026), ("[fail-output]", 1027)])
def test_moderated_tasks_fail(minimax, minimax_emulator, model, seconds, marker, code):
    job = minimax.submit(spec(model=model, seconds=seconds, prompt=f"{marker} a forbidden scene"))
    done = finish(minimax, minimax_emulator, job)
    assert done.state is JobState.FAILED and done.error_code == "content_policy"
    assert f"({code})" in done.error_message


@pytest.mark.parametrize(
    ("code", "ours", "permanent"),
    [(1002, "rate_limited", False), (1004, "invalid_api_key", True), (1008, "insufficient_balance", True),
     (2013, "invalid_request", True), (2061, "model_not_available", True), (1033, "server_error", False)],
)  # fmt: skip
@pytest.mark.parametrize(
    ("endpoint", "model", "seconds"), [("create", "hailuo-2.3", 6), ("create_v2", "minimax-h3", 5)]
)
def test_injected_codes_on_create(minimax, minimax_emulator, code, ours, permanent, endpoint, model, seconds):
    minimax_emulator.add_code_fault(endpoint, code)
    with pytest.raises(ProviderError) as info:
        minimax.submit(spec(model=model, seconds=seconds))
    assert (info.value.code, info.value.permanent) == (ours, permanent)
    assert info.value.status_code == (
        200
        if endpoint == "create"
        else {1002: 429, 1004: 401, 1008: 402}.get(code, 400 if code in (2013, 2061) else 500)
    )
    assert minimax_emulator.stats()["jobs_created"] == 0
    assert minimax.submit(spec(model=model, seconds=seconds)).job_id  # the fault was one-shot


def test_codes_on_poll_and_on_the_file_step(minimax, minimax_emulator):
    job = minimax.submit(spec())
    minimax_emulator.add_code_fault("query", 1002)
    with pytest.raises(ProviderError) as info:
        minimax.status(job.job_id, job_data=job.data)
    assert info.value.code == "rate_limited" and info.value.retry_after
    finish(minimax, minimax_emulator, job)
    minimax_emulator.add_code_fault("retrieve", 1024)
    with pytest.raises(ProviderError) as info:
        read(minimax, job)
    assert info.value.code == "server_error" and not info.value.permanent
    assert read(minimax, job) == sample_mp4()


def test_a_v2_429_and_a_400_with_its_code(minimax, minimax_emulator):
    minimax_emulator.add_fault(
        "create_v2", status=429, headers={"Retry-After": "4"},
        body=minimax_emulator.error_body(429, "rate limit exceeded (1002)"),
    )  # fmt: skip
    with pytest.raises(ProviderError) as info:
        minimax.submit(spec(model="minimax-h3", seconds=5))
    assert info.value.code == "rate_limited" and info.value.retry_after == 4.0
    # a mapping the emulator refuses by itself: adaptive without an image is impossible from the
    # adapter, so send a raw bad duration
    with pytest.raises(ProviderError) as info:
        minimax.submit(spec(model="minimax-h3", seconds=4))
    assert info.value.code == "invalid_request"


def test_a_plan_key_reaches_768p_6s_hailuo_only(minimax_emulator, settings):
    for name, value in minimax_emulator.settings().items():
        setattr(settings, name, value)
    plan = registry.build("minimax", Credentials(api_key=minimax_emulator.plan_key))
    assert plan.submit(spec()).job_id
    for kwargs in ({"size": "1920x1080"}, {"seconds": 10}, {"model": "minimax-h3", "seconds": 5}):
        with pytest.raises(ProviderError) as info:
            plan.submit(spec(**kwargs))
        assert info.value.code == "model_not_available" and "plan cannot reach" in info.value.message
        assert not info.value.is_auth_error  # the key stays valid


@pytest.mark.parametrize("key_name", ["foreign_key", "wrong"])
def test_the_other_regions_key_and_a_wrong_key_are_refused(minimax_emulator, settings, key_name):
    for name, value in minimax_emulator.settings().items():
        setattr(settings, name, value)
    key = getattr(minimax_emulator, key_name, "mm-not-a-key-at-all-0000")
    adapter = registry.build("minimax", Credentials(api_key=key))
    with pytest.raises(ProviderError) as info:
        adapter.validate_key()
    assert info.value.is_auth_error and info.value.status_code == 200 and "(1004)" in info.value.message
    with pytest.raises(ProviderError) as info:
        adapter.submit(spec(model="minimax-h3", seconds=5))
    assert info.value.is_auth_error and info.value.status_code == 401
    assert key not in info.value.message


def test_the_seven_day_window(minimax, minimax_emulator):
    job = minimax.submit(spec(model="minimax-h3", seconds=5))
    minimax_emulator.advance(8 * 86400)
    gone = minimax.status(job.job_id, job_data={"api": "v2"})  # undated: the emulator's invalid task_id
    assert gone.state is JobState.FAILED and gone.error_code == "output_expired"
    dated = minimax.status(job.job_id, job_data={**job.data, "created_at": time.time() - 8 * 86400})
    assert dated.error_code == "output_expired"
    assert minimax_emulator.stats()["calls"]["query_v2"] == 1  # the dated one made no call


def test_base_faults(minimax, minimax_emulator):
    minimax_emulator.add_fault("query", status=503, headers={"Retry-After": "2"})
    job = minimax.submit(spec())
    with pytest.raises(ProviderError) as info:
        minimax.status(job.job_id, job_data=job.data)
    assert info.value.code == "server_error" and info.value.retry_after == 2.0
    minimax_emulator.add_fault("create", malformed=True)
    with pytest.raises(ProviderError) as info:
        minimax.submit(spec())
    assert info.value.uncertain and info.value.code == "bad_response"
    minimax_emulator.add_fault("query", patch={"status": "Rendering"})
    assert minimax.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    finish(minimax, minimax_emulator, job)
    minimax_emulator.add_fault("file", truncate=100)
    with pytest.raises(ProviderError) as info:
        read(minimax, job)
    assert info.value.code == "download_interrupted"
    assert read(minimax, job) == sample_mp4()


class Receiver:
    """A callback endpoint that answers through the adapter's ``verify_callback``."""

    def __init__(self, adapter, *, delay=0.0, tamper=False):
        self.bodies = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delivery = adapter.verify_callback(headers=dict(self.headers), body=body)
                receiver.bodies.append((json.loads(body), delivery))
                time.sleep(delay)
                reply = dict(delivery.reply or {})
                if tamper and reply:
                    reply["challenge"] = "wrong"
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/minimax/gen/token"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(("model", "seconds"), [("hailuo-2.3", 6), ("minimax-h3", 5)])
def test_callbacks_handshake_then_push(minimax, minimax_emulator, model, seconds):
    receiver = Receiver(minimax)
    try:
        job = minimax.submit(spec(model=model, seconds=seconds, callback_url=receiver.url))
        assert wait_for(lambda: minimax_emulator.handshakes)
        assert minimax_emulator.handshakes == [(job.job_id, True)]
        minimax_emulator.advance(2)
        assert wait_for(lambda: len(receiver.bodies) == 2)
        (challenge, first), (push, second) = receiver.bodies
        assert set(challenge) == {"challenge"} and first.reply == challenge
        assert second.job_id == job.job_id and second.reply is None
        status = push.get("status") or push["task"]["status"]
        assert status == "success"  # the documented lower-case spelling
        assert minimax.status(job.job_id, job_data=job.data).state is JobState.COMPLETED
    finally:
        receiver.stop()


@pytest.mark.parametrize(("delay", "tamper"), [(0.0, True), (3.5, False)])
def test_a_wrong_or_late_echo_drops_the_callbacks(minimax, minimax_emulator, delay, tamper):
    minimax_emulator.challenge_timeout = 1.0 if delay else 3.0
    receiver = Receiver(minimax, delay=1.5 if delay else 0.0, tamper=tamper)
    try:
        job = minimax.submit(spec(callback_url=receiver.url))
        assert wait_for(lambda: minimax_emulator.handshakes)
        assert minimax_emulator.handshakes == [(job.job_id, False)]
        minimax_emulator.advance(2)
        time.sleep(0.4)
        assert minimax_emulator.callbacks_sent == [] and len(receiver.bodies) == 1
        assert minimax.status(job.job_id, job_data=job.data).state is JobState.COMPLETED  # polling still works
    finally:
        receiver.stop()
