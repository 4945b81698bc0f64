"""The BytePlus adapter against the emulator: create to downloaded bytes, and every quirk of
seedance-byteplus.md §10/§11 (ModelNotOpen, dated ids only, queued-only DELETE, expired tasks,
expiring URLs, moderation both ways, unsigned callbacks, the base's faults)."""

from __future__ import annotations

import base64
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.byteplus.adapter import TASKS, BytePlusProvider
from apps.providers.catalog import get_model
from tests.emulators.base import sample_image, sample_mp4
from tests.emulators.byteplus import DAY


def spec(**kwargs):
    values = {"model": "seedance-2.0", "prompt": "a lighthouse at dusk", "seconds": 5, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def adapter(emu, **options):
    return BytePlusProvider(Credentials(api_key=emu.api_key), emu.base_url, options=options)


def finish(emu, bp, job):
    emu.advance(2)
    return bp.status(job.job_id, job_data=job.data)


def raw(emu, method, path="", **kwargs):
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    return requests.request(
        method, f"{emu.base_url}/contents/generations/tasks{path}", headers=headers, timeout=5, **kwargs
    )


def test_create_to_downloaded_bytes_with_tokens_priced_like_the_catalog(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    bp.validate_key()
    job = bp.submit(spec(seed=11))
    assert job.job_id.startswith("cgt-") and emu.stats()["jobs_created"] == 1
    assert bp.status(job.job_id, job_data=job.data).state is JobState.QUEUED
    emu.advance(0.5)
    assert bp.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    status = finish(emu, bp, job)
    assert status.state is JobState.COMPLETED
    model = get_model("byteplus/seedance-2.0")
    # the emulator bills w x h x 24 x s / 1024 = 1280 x 720 x 24 x 5 / 1024 = 108,000 tokens
    assert status.usage["total_tokens"] == 108000
    assert Decimal(status.usage["cost_usd"]) == model.cost(seconds=5, size="1280x720") == Decimal("1.08")
    with bp.download(job.job_id, url=status.output_urls[0], job_data=job.data) as download:
        assert b"".join(download.chunks) == sample_mp4()
    with bp.download(job.job_id, job_data=job.data) as download:  # no URL: re-read the task
        assert b"".join(download.chunks) == sample_mp4()
    assert emu.deletes == []  # DELETE is never sent for a finished task


def test_image_to_video_data_uri_is_accepted(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    job = bp.submit(spec(image=InputImage(data=sample_image("PNG"), content_type="image/png"), audio=False))
    content = emu.last_requests["create"].json()["content"]
    assert content[1]["role"] == "first_frame" and content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert emu.last_requests["create"].json()["generate_audio"] is False
    assert finish(emu, bp, job).state is JobState.COMPLETED


def test_the_emulator_refuses_an_upper_case_data_uri_and_undated_ids(byteplus_emulator):
    emu = byteplus_emulator
    image = "data:image/PNG;base64," + base64.b64encode(sample_image("PNG")).decode()
    body = {
        "model": "dreamina-seedance-2-0-260128",
        "content": [
            {"type": "text", "text": "x"},
            {"type": "image_url", "image_url": {"url": image}, "role": "first_frame"},
        ],
    }
    r = raw(emu, "POST", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidParameter"
    for model in ("seedance-2.0", "dreamina-seedance-2-0", "doubao-seedance-2-0-260128"):
        r = raw(emu, "POST", json={"model": model, "content": [{"type": "text", "text": "x"}]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "InvalidEndpointOrModel.NotFound", model
    r = raw(emu, "POST", json={"model": "dreamina-seedance-2-0-fast-260128", "content": [{"type": "text", "text": "x"}],
                               "resolution": "1080p"})  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["param"] == "resolution"
    assert emu.stats()["jobs_created"] == 0


def test_an_unknown_model_maps_to_model_not_available(byteplus_emulator):
    bp = adapter(byteplus_emulator)
    with pytest.raises(ProviderError) as info:
        bp._call(
            "POST", TASKS, json={"model": "seedance-2.0", "content": [{"type": "text", "text": "x"}]}, creating=True
        )
    assert info.value.code == "model_not_available" and info.value.permanent and not info.value.uncertain


def test_model_not_open_is_permanent_and_says_to_activate(byteplus_emulator):
    emu = byteplus_emulator
    emu.not_activated.add("dreamina-seedance-2-0-260128")
    bp = adapter(emu)
    bp.validate_key()  # the key itself is fine
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    error = info.value
    assert error.code == "model_not_open" and error.permanent and not error.uncertain and not error.is_auth_error
    assert "Activate the model in the BytePlus ModelArk console" in error.message and "ModelNotOpen" in error.message
    assert emu.stats()["jobs_created"] == 0
    bp.submit(spec(model="seedance-2.0-fast"))  # another, activated model still works


def test_a_wrong_key_is_an_auth_error(byteplus_emulator):
    bp = BytePlusProvider(Credentials(api_key="ark-wrong-key-000000"), byteplus_emulator.base_url)
    with pytest.raises(ProviderError) as info:
        bp.validate_key()
    assert info.value.code == "invalid_api_key" and info.value.is_auth_error and info.value.permanent
    assert "ark-wrong-key-000000" not in str(info.value)


def test_cancel_deletes_only_a_queued_task(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    queued = bp.submit(spec())
    bp.cancel(queued.job_id)
    assert emu.deletes == [(queued.job_id, "queued")]
    assert bp.status(queued.job_id).state is JobState.CANCELED
    bp.cancel(queued.job_id)  # already cancelled: no second DELETE
    assert len(emu.deletes) == 1

    running = bp.submit(spec())
    emu.advance(0.5)
    with pytest.raises(ProviderError) as info:
        bp.cancel(running.job_id)
    assert info.value.code == "not_cancelable"
    done = finish(emu, bp, running)
    assert done.state is JobState.COMPLETED
    with pytest.raises(ProviderError) as info:
        bp.cancel(running.job_id)
    assert info.value.code == "invalid_state"
    assert emu.deletes == [(queued.job_id, "queued")]  # never a DELETE on the running or the finished task
    with bp.download(running.job_id, job_data=running.data) as download:  # the record is still there
        assert b"".join(download.chunks) == sample_mp4()


def test_delete_on_a_finished_task_removes_it_which_is_why_the_adapter_never_sends_it(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    job = bp.submit(spec())
    finish(emu, bp, job)
    assert raw(emu, "DELETE", f"/{job.job_id}").status_code == 200
    assert emu.deletes == [(job.job_id, "succeeded")]
    with pytest.raises(ProviderError) as info:
        bp.status(job.job_id)
    assert info.value.code == "not_found" and info.value.permanent and info.value.status_code == 404


def test_expired_task_fails_without_output(byteplus_emulator):
    emu = byteplus_emulator
    emu.expires_after = 0.5  # shorter than the job (1 s)
    bp = adapter(emu)
    job = bp.submit(spec())
    status = finish(emu, bp, job)
    assert (status.state, status.raw_status, status.error_code) == (JobState.FAILED, "expired", "expired")
    assert status.usage == {} and not status.output_urls


def test_the_expiry_setting_reaches_ark(byteplus_emulator):
    emu = byteplus_emulator
    emu.job_seconds = 10 * DAY
    bp = adapter(emu, EXECUTION_EXPIRES_AFTER="7200")
    job = bp.submit(spec())
    assert emu.last_requests["create"].json()["execution_expires_after"] == 7200
    emu.advance(7201)
    assert bp.status(job.job_id).error_code == "expired"


def test_output_urls_expire_after_a_day_and_tasks_after_a_week(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    job = bp.submit(spec())
    url = finish(emu, bp, job).output_urls[0]
    emu.advance(DAY + 1)
    with pytest.raises(ProviderError) as info:
        bp.download(job.job_id, url=url, job_data=job.data)
    assert info.value.code == "output_expired" and info.value.permanent
    status = bp.status(job.job_id, job_data=job.data)
    assert status.state is JobState.FAILED and status.error_code == "output_expired"
    emu.advance(7 * DAY)
    with pytest.raises(ProviderError) as info:
        bp.status(job.job_id)
    assert info.value.code == "not_found"


def test_moderation_on_create_and_on_the_task(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    with pytest.raises(ProviderError) as info:
        bp.submit(spec(prompt="[sensitive] words"))
    assert info.value.code == "content_policy" and info.value.permanent
    emu.reject_images = True
    with pytest.raises(ProviderError) as info:
        bp.submit(spec(image=InputImage(data=sample_image("PNG"), content_type="image/png")))
    assert info.value.code == "content_policy" and "InputImageSensitiveContentDetected" in info.value.message
    job = bp.submit(spec(prompt="[fail] a clip"))
    status = finish(emu, bp, job)
    assert status.state is JobState.FAILED and status.error_code == "content_policy"
    assert "OutputVideoSensitiveContentDetected.PolicyViolation" in status.error_message and status.usage == {}


def test_base_faults(byteplus_emulator, settings):
    emu = byteplus_emulator
    bp = adapter(emu)
    emu.add_fault("create", status=429, body=emu.error_body(429, "slow down"), headers={"Retry-After": "2"})
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert (info.value.code, info.value.retry_after, info.value.uncertain) == ("rate_limited", 2.0, False)
    emu.add_fault("create", status=429, body=emu.error_body(429, "free quota used", code="QuotaExceeded"))
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert info.value.code == "quota_exceeded" and info.value.permanent
    emu.add_fault("create", status=500)
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert info.value.code == "server_error" and info.value.uncertain
    job = bp.submit(spec())
    emu.add_fault("task", malformed=True)
    with pytest.raises(ProviderError) as info:
        bp.status(job.job_id)
    assert info.value.code == "bad_response" and not info.value.permanent
    url = finish(emu, bp, job).output_urls[0]
    emu.add_fault("file", truncate=1000)
    with pytest.raises(ProviderError) as info:
        with bp.download(job.job_id, url=url) as download:
            b"".join(download.chunks)
    assert info.value.code == "download_interrupted"
    settings.PROVIDER_READ_TIMEOUT = 0.3
    emu.add_fault("create", delay=1.0)
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert info.value.code == "timeout" and info.value.uncertain


class _Receiver:
    """A local endpoint that records callbacks, answering the queued statuses in order."""

    def __init__(self, answers):
        self.bodies: list[tuple[dict, bytes]] = []
        self.answers = list(answers)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append((dict(self.headers), body))
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/byteplus/per-generation-token"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_unsigned_callbacks_on_each_change_with_terminal_retries(byteplus_emulator):
    emu = byteplus_emulator
    receiver = _Receiver(answers=[200, 200, 500, 503])  # queued, running, then succeeded fails twice
    try:
        bp = adapter(emu)
        job = bp.submit(spec(callback_url=receiver.url))
        assert emu.last_requests["create"].json()["callback_url"] == receiver.url
        emu.deliver_callbacks()
        emu.advance(0.5)
        emu.deliver_callbacks()
        emu.advance(2)
        emu.deliver_callbacks()
        emu.deliver_callbacks()  # nothing new: each change is announced once (plus retries)
        statuses = [json.loads(body)["status"] for _headers, body in receiver.bodies]
        assert statuses == ["queued", "running", "succeeded", "succeeded", "succeeded"]
        assert [a.answer for a in emu.callbacks_sent] == [200, 200, 500, 503, 200]
        for headers, body in receiver.bodies:
            assert not any(name.lower().startswith(("x-signature", "signature", "authorization")) for name in headers)
            assert bp.verify_callback(headers=headers, body=body).job_id == job.job_id
        final = json.loads(receiver.bodies[-1][1])
        assert final["usage"]["completion_tokens"] == 108000 and final["content"]["video_url"]
    finally:
        receiver.close()


def test_terminal_callbacks_are_retried_three_times_at_most(byteplus_emulator):
    emu = byteplus_emulator
    emu.job_seconds = 0.001
    receiver = _Receiver(answers=[200, 200] + [500] * 10)
    try:
        bp = adapter(emu)
        bp.submit(spec(callback_url=receiver.url, prompt="[fail] x"))
        emu.advance(1)
        emu.deliver_callbacks()
        failed = [a for a in emu.callbacks_sent if a.status == "failed"]
        assert [a.answer for a in failed] == [500, 500, 500, 500]  # the first try and 3 retries
    finally:
        receiver.close()


def test_list_endpoint_and_validation_hook(byteplus_emulator):
    emu = byteplus_emulator
    bp = adapter(emu)
    ids = [bp.submit(spec()).job_id for _ in range(3)]
    page = raw(emu, "GET", params={"page_num": 1, "page_size": 2}).json()
    assert page["total"] == 3 and [t["id"] for t in page["items"]] == ids[::-1][:2]
    assert type(emu).validation_ok_body() == {"total": 0, "items": []}
