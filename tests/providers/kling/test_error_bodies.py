"""Kling: any envelope or task body is a ProviderError or a JobStatus (issue 18, item 14)."""

from __future__ import annotations

import pytest
import responses
from hypothesis import HealthCheck, given, settings

from apps.providers.base import Credentials, JobState, ProviderError
from apps.providers.kling.adapter import KlingProvider
from tests.providers.error_bodies import BODIES, STATUSES, check_any_answer

BASE = "https://api.kling.example.com"
AK, SK = "ak-test-unit-kling-0000", "fake-key-test-unit-kling-secret-000000000"


@pytest.fixture
def kling():
    return KlingProvider(Credentials(access_key=AK, secret_key=SK), BASE)


@responses.activate
def test_an_infinite_business_code_is_an_unknown_code(kling):
    responses.get(f"{BASE}/v1/videos/text2video", body=b'{"code": 1e400, "message": ["x"]}', status=400)
    with pytest.raises(ProviderError) as info:
        kling.validate_key()
    assert info.value.code == "provider_error" and info.value.permanent


@responses.activate
def test_videos_that_are_not_a_list_mean_no_output(kling):
    data = {"task_id": "1", "task_status": "succeed", "task_result": {"videos": 5}}
    responses.get(f"{BASE}/v1/videos/text2video/1", json={"code": 0, "message": "ok", "data": data})
    job = kling.status("t2v:1")
    assert (job.state, job.error_code) == (JobState.FAILED, "no_output")


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=BODIES, status=STATUSES)
def test_any_answer_is_a_status_or_a_provider_error(kling, body, status):
    check_any_answer(kling, base=BASE, job_id="t2v:1", secrets=(AK, SK), body=body, status=status)
