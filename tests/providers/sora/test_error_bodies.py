"""Sora: any error or status body is a ProviderError or a JobStatus (issue 18, item 14)."""

from __future__ import annotations

import pytest
import responses
from hypothesis import HealthCheck, given, settings

from apps.providers.base import Credentials, ProviderError
from apps.providers.sora.adapter import SoraProvider
from tests.providers.error_bodies import BODIES, STATUSES, check_any_answer

BASE = "https://gateway.example.com/v1"
KEY = "fake-key-test-unit-openai-0000"


@pytest.fixture
def sora():
    return SoraProvider(Credentials(api_key=KEY), BASE)


@responses.activate
def test_a_429_whose_error_code_is_a_list_is_a_rate_limit_not_a_type_error(sora):
    body = {"error": {"code": ["insufficient_quota"], "type": {"x": 1}, "message": ["slow down"], "param": [1]}}
    responses.get(f"{BASE}/videos", json=body, status=429)
    with pytest.raises(ProviderError) as info:
        sora.validate_key()
    assert (info.value.code, info.value.permanent) == ("rate_limited", False)


@responses.activate
def test_an_infinite_progress_is_no_progress(sora):
    responses.get(f"{BASE}/videos/v1", body=b'{"id": "v1", "status": "in_progress", "progress": 1e400}')
    assert sora.status("v1").progress is None


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=BODIES, status=STATUSES)
def test_any_answer_is_a_status_or_a_provider_error(sora, body, status):
    check_any_answer(sora, base=BASE, job_id="v1", secrets=(KEY,), body=body, status=status)
