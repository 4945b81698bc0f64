"""Request plumbing every app shares (the tenant scope of pages is ``apps.accounts.middleware``)."""

from __future__ import annotations

import re
import uuid

from csp.middleware import CSPMiddleware

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# The JSON API's own prefix (mediarouter/urls.py): every answer there is JSON or a stored file.
API_PREFIX = "/v1/"
# What an API answer may load or be framed by: nothing (the policy OWASP recommends for APIs).
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class RequestIdMiddleware:
    """Give every request an id (or keep a sane incoming one) and echo it as ``x-request-id``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if _REQUEST_ID_RE.match(incoming) else f"req_{uuid.uuid4().hex}"
        response = self.get_response(request)
        response["x-request-id"] = request.request_id
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware for the pages (``CONTENT_SECURITY_POLICY`` in settings), and one fixed,
    stricter policy for the JSON API, which loads nothing and is never framed.

    django-csp builds its header from the settings on every response (~0.1 ms, a tenth of an API
    retrieve's CPU: ``bench/api_overhead.py --profile``); an API answer needs no script, style or
    nonce, so it gets :data:`API_CSP` as a constant instead."""

    def process_request(self, request):
        if not request.path_info.startswith(API_PREFIX):
            super().process_request(request)

    def process_response(self, request, response):
        if request.path_info.startswith(API_PREFIX):
            response.headers.setdefault("Content-Security-Policy", API_CSP)
            return response
        return super().process_response(request, response)
