"""BytePlus: any error or task body is a ProviderError or a JobStatus (issue 18, item 14). The
other new adapters have such a test in their test_adapter.py; this one had none."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from apps.providers.base import Credentials
from apps.providers.byteplus.adapter import BytePlusProvider, error_fields
from tests.providers.error_bodies import BODIES, ODD_JSON, STATUSES, check_any_answer

BASE = "https://ark.example.com/api/v3"
KEY = "ark-fake-key-test-unit-byteplus-0000"


@pytest.fixture
def bp():
    return BytePlusProvider(Credentials(api_key=KEY), BASE)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(body=ODD_JSON)
def test_error_fields_read_any_json(body):
    code, message, param = error_fields(body)
    assert all(isinstance(part, str) for part in (code, message, param))


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(body=BODIES, status=STATUSES)
def test_any_answer_is_a_status_or_a_provider_error(bp, body, status):
    check_any_answer(bp, base=BASE, job_id="cgt-1", secrets=(KEY,), body=body, status=status)
