"""Schemathesis against our own OpenAPI schema (both API shapes): generated requests, authenticated
as alice, must never produce a 5xx, and every documented response must match the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from mediarouter.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def auth_headers(tenants, settings):
    settings.API_THROTTLE_TOKEN_RATE = ""
    settings.API_THROTTLE_ORG_RATE = ""
    return {"Authorization": f"Bearer {tenants.alice_token}"}


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_5xx_and_matches_its_schema(case, auth_headers):
    response = case.call(headers=auth_headers)
    case.validate_response(response, checks=(not_a_server_error, response_schema_conformance, content_type_conformance))
