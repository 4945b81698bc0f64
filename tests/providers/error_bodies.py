"""Property-based checks of an adapter's error parsing (issue 18, item 14): whatever a provider
answers (any JSON shape, any non-JSON body, any status), ``validate_key`` and ``status`` end in a
JobStatus or a ProviderError that does not carry the key; never a TypeError or another crash."""

from __future__ import annotations

import json
import re

import responses
from hypothesis import strategies as st

from apps.providers.base import JobStatus, ProviderError

# the keys providers' error and task bodies use, so the odd values land where parsers look
KEYS = st.sampled_from(
    ["error", "code", "message", "type", "param", "status", "issues", "path", "progress", "failure",
     "failureCode", "data", "task_status", "task_status_msg", "task_result", "videos", "url", "output",
     "outputs", "id", "task_id", "detail", "details", "reason"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "failed", "FAILED", "SUCCEEDED", "succeed", "completed", "in_progress", "insufficient_quota"]),
)
ODD_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=14,
)
RAW = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"<html>502 Bad Gateway</html>", b"null", b"[", b"1e400", b'{"code": 1e400}',
                     b'{"error": {"code": ["a", "b"]}}', b'{"issues": [{"path": "prompt"}]}', b'{"progress": 1e400}',
                     b'{"code": 0, "data": {"task_status": "succeed", "task_result": {"videos": 5}}}']),
)  # fmt: skip
BODIES = st.one_of(ODD_JSON.map(lambda value: json.dumps(value).encode()), RAW)
STATUSES = st.sampled_from([200, 201, 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503])


def check_any_answer(provider, *, base: str, job_id: str, secrets: tuple[str, ...], body: bytes, status: int):
    """Answer every GET under ``base`` with ``body``/``status``; both calls must end cleanly."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, re.compile(re.escape(base.rstrip("/")) + r".*"), body=body, status=status)
        for call in (provider.validate_key, lambda: provider.status(job_id)):
            try:
                result = call()
            except ProviderError as exc:
                assert all(secret not in exc.message for secret in secrets), exc.message
            else:
                assert result is None or isinstance(result, JobStatus), result
