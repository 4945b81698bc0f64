import pytest
from django.db import OperationalError

from mediarouter.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthy(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"database": "ok", "broker": "ok", "status": "ok"}
    assert r["x-request-id"].startswith("req_")


def test_broker_down_is_503_naming_the_broker(client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    r = client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["database"] == "ok" and body["broker"].startswith("broker unavailable")


def test_database_down_is_503_naming_the_database(client, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"].startswith("database unavailable")
