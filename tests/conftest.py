"""Shared fixtures. The three-user tenancy fixture (healthchecks style) is used by every endpoint
test: alice owns org A, bob is a member of org A, charlie owns org B and must reach nothing of A."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from apps.accounts import services as account_services
from apps.accounts.models import Organization, Role, User
from apps.api_keys import services as key_services
from apps.core.ids import public_id
from apps.core.scoping import org_scope

PASSWORD = "correct horse battery staple"

pytest_plugins = ["tests.emulators.fixtures", "tests.live"]


_REDIS_KEYS_BEFORE: set[bytes] | None = None


def _test_redis():
    """The Redis database of this run (REDIS_URL), or None on the embedded default."""
    import os

    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url)


def pytest_sessionstart(session):
    """Remember which keys the run's Redis database held, to leave it as found."""
    global _REDIS_KEYS_BEFORE
    client = _test_redis()
    if client is not None and not hasattr(session.config, "workerinput"):
        _REDIS_KEYS_BEFORE = set(client.scan_iter(count=1000))


def _leave_redis_as_found() -> None:
    """Delete the keys the run added (Celery results, kombu bindings, throttle counters, the
    circuits): Redis is a shared service and is left as the run found it."""
    client = _test_redis()
    if client is None or _REDIS_KEYS_BEFORE is None:
        return
    added = [key for key in client.scan_iter(count=1000) if key not in _REDIS_KEYS_BEFORE]
    for start in range(0, len(added), 500):
        client.delete(*added[start : start + 500])


def pytest_sessionfinish(session, exitstatus):
    """Leave Redis as found (see above), and remove the run's media folder (a temporary directory
    made by mediarouter/settings_test.py),
    in the process that made it only: not in an xdist worker nor in a session started by a test
    with the folder handed down to it."""
    import os
    import shutil

    from django.conf import settings

    if not hasattr(session.config, "workerinput"):
        _leave_redis_as_found()
    if hasattr(session.config, "workerinput") or not getattr(settings, "TEST_MEDIA_ROOT_OWNED", False):
        return
    media_root = os.environ.get("MEDIAROUTER_TEST_MEDIA_ROOT", "")
    if os.path.basename(media_root).startswith("mediarouter-test-media-"):
        shutil.rmtree(media_root, ignore_errors=True)


@dataclass
class Tenants:
    alice: User
    bob: User
    charlie: User
    org_a: Organization
    org_b: Organization
    alice_token: str
    bob_token: str
    charlie_token: str

    def client_for(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    def api_client_for(self, token: str) -> Client:
        return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def tenants(db) -> Tenants:
    alice = User.objects.create_user("alice@example.com", PASSWORD, name="Alice")
    bob = User.objects.create_user("bob@example.com", PASSWORD, name="Bob")
    charlie = User.objects.create_user("charlie@example.com", PASSWORD, name="Charlie")
    org_a = account_services.organization_create(owner=alice, name="Alice Films")
    org_b = account_services.organization_create(owner=charlie, name="Charlie Studio")
    from apps.accounts.models import Membership

    with org_scope(org_a):
        Membership.objects.create(organization=org_a, user=bob, role=Role.MEMBER, public_id=public_id("mem"))
    _, alice_token = key_services.api_token_create(org=org_a, user=alice, name="alice")
    _, bob_token = key_services.api_token_create(org=org_a, user=bob, name="bob")
    _, charlie_token = key_services.api_token_create(org=org_b, user=charlie, name="charlie")
    return Tenants(alice, bob, charlie, org_a, org_b, alice_token, bob_token, charlie_token)


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker process (prefork, 2 children) on this run's queue, with beat: polls are
    the beat-driven poll step's (apps.generations.polling), as in production. Tasks sent from the
    test go through the real broker while the fixture is active."""
    from tests.worker import WorkerProcess, broker_mode, purge_queue, wait_until_ready

    worker = WorkerProcess(tmp_path / "worker.log", beat=True)
    with broker_mode():
        purge_queue()  # messages an earlier test left behind would delay this worker
        worker.start()
        try:
            wait_until_ready(worker)
            yield worker
        finally:
            worker.discard()  # SIGKILL: a warm shutdown takes seconds for nothing


@pytest.fixture
def priced_sandbox():
    """The sandbox model at $0.50 a second for the test (it is free), so money tests see real
    amounts without a provider. Restored afterwards."""
    from decimal import Decimal

    from apps.providers import catalog

    model = catalog.get_model("sandbox-video")
    original = model.price_per_second
    object.__setattr__(model, "price_per_second", {size: Decimal("0.50") for size in model.sizes})
    yield model
    object.__setattr__(model, "price_per_second", original)
