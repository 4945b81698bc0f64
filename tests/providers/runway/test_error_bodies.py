"""Runway: any error or task body is a ProviderError or a JobStatus (issue 18, item 14)."""

from __future__ import annotations

import pytest
import responses
from hypothesis import HealthCheck, given, settings

from apps.providers.base import Credentials, ProviderError
from apps.providers.runway.adapter import RunwayProvider, progress_percent
from tests.providers.error_bodies import BODIES, STATUSES, check_any_answer

BASE = "https://api.runway.example.com"
KEY = "rw-test-unit-runway-0000"


@pytest.fixture
def runway():
    return RunwayProvider(Credentials(api_key=KEY), BASE)


@responses.activate
def test_issues_whose_path_is_not_a_list_are_still_spelled_out(runway):
    body = {
        "error": "Invalid input",
        "issues": [{"path": "promptText", "message": "Too long"}, {"path": 7, "message": {"x": 1}}, {"path": None}],
    }
    responses.get(f"{BASE}/v1/organization", json=body, status=400)
    with pytest.raises(ProviderError) as info:
        runway.validate_key()
    assert info.value.code == "invalid_request"
    assert "promptText: Too long" in info.value.message and "7: " in info.value.message


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_progress_is_no_progress(value):
    assert progress_percent(value) is None


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=BODIES, status=STATUSES)
def test_any_answer_is_a_status_or_a_provider_error(runway, body, status):
    check_any_answer(runway, base=BASE, job_id="task-1", secrets=(KEY,), body=body, status=status)
