from __future__ import annotations

import pytest

from apps.accounts.models import Membership
from apps.core.scoping import org_scope
from apps.providers import http
from tests.webhooks.helpers import install_clock
from tests.webhooks.receiver import Receiver

PUBLIC_IP = "93.184.215.14"


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def start(behave=None, path: str = "/hooks/mediarouter") -> Receiver:
        r = Receiver(behave, path)
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


@pytest.fixture
def alice_m(tenants) -> Membership:
    return Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)


@pytest.fixture
def in_a(tenants):
    with org_scope(tenants.org_a):
        yield


@pytest.fixture
def public_dns(monkeypatch):
    """Resolve every host to a public address (as tests/providers/conftest.py does)."""
    monkeypatch.setattr(http, "_resolve", lambda host, port: [PUBLIC_IP])


@pytest.fixture
def strict(settings):
    """Production's refusals: no private addresses."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for the sender's schedule (and jitter pinned to its upper bound)."""
    return install_clock(monkeypatch)
