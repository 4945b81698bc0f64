"""What the API's hot path (issue 17: a retrieve in 3 ms as a keep-alive client sees it) leaves out,
and the premises that make leaving it out safe: the pages' CSP and tenant middleware stay off
``/v1/``, database connections outlive a request, PostgreSQL's health check costs no round trip."""

from __future__ import annotations

import select
import time

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.backends.postgresql import base as django_postgresql
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts import middleware as tenant_middleware
from apps.core.middleware import API_CSP, API_PREFIX

pytestmark = pytest.mark.django_db


def _routes(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _routes(entry, route)
        else:
            found.append((route, entry))
    return found


def test_no_api_url_takes_an_org_slug():
    """The tenant middleware skips ``/v1/`` because the API's scope comes from the token: an
    ``org_slug`` there would be a page-style URL the middleware never checks."""
    api = [route for route, _ in _routes(get_resolver()) if route.startswith(API_PREFIX.lstrip("/"))]
    assert len(api) > 20
    assert not [route for route in api if "org_slug" in route]


def test_api_requests_skip_the_tenant_middleware_resolve_and_pages_do_not(tenants, monkeypatch):
    calls = []
    real = tenant_middleware.resolve
    monkeypatch.setattr(tenant_middleware, "resolve", lambda path: calls.append(path) or real(path))
    client = tenants.api_client_for(tenants.alice_token)
    assert client.get("/v1/videos").status_code == 200
    assert client.get("/v1/nothing-here").status_code == 404
    assert calls == []
    # a page still goes through it: an outsider gets the 404, never the organization
    client.force_login(tenants.charlie)
    assert client.get(f"/o/{tenants.org_a.slug}/videos/").status_code == 404
    assert calls == [f"/o/{tenants.org_a.slug}/videos/"]


def test_api_answers_carry_a_fixed_policy_that_allows_nothing_and_pages_the_full_one(tenants):
    client = tenants.api_client_for(tenants.alice_token)
    for response in (client.get("/v1/videos"), client.get("/v1/nothing-here"), client.post("/v1/videos", {})):
        assert response["Content-Security-Policy"] == API_CSP == "default-src 'none'; frame-ancestors 'none'"
    page = client.get("/login/")
    assert page.status_code == 200
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_database_connections_outlive_a_request_on_both_databases():
    """Opening a SQLite connection (its PRAGMAs, Django's SQL functions) cost about 1 ms of every
    embedded request; PostgreSQL's connections were already kept."""
    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] >= 60 and database["CONN_HEALTH_CHECKS"] is True
    if connection.vendor == "postgresql":
        assert database["ENGINE"] == "apps.core.backends.postgresql"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL leg only (pg_terminate_backend)")
def test_the_postgresql_health_check_polls_the_socket_and_replaces_a_terminated_connection(monkeypatch):
    """A healthy idle connection is usable without a statement; one PostgreSQL terminated is found
    unusable, and Django's per-request check opens a new one before the request runs a query."""
    full_checks = []
    real = django_postgresql.DatabaseWrapper.is_usable
    monkeypatch.setattr(
        django_postgresql.DatabaseWrapper, "is_usable", lambda self: full_checks.append(self.alias) or real(self)
    )
    other = connections.create_connection("default")  # its own connection, outside the test's transaction
    try:
        other.ensure_connection()
        assert other.is_usable() and full_checks == []  # idle and quiet: no round trip
        pid = other.connection.info.backend_pid
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone() == (True,)
        deadline = time.monotonic() + 10
        while not select.select([other.connection.fileno()], [], [], 0.1)[0]:
            assert time.monotonic() < deadline, "PostgreSQL did not hang up"
        assert other.is_usable() is False and full_checks == ["default"]  # the socket spoke: Django's check ran
        other.health_check_enabled, other.health_check_done = True, False  # what a new request sets
        other.close_if_health_check_failed()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != pid
    finally:
        other.close()
