"""The operator's on/off switch, ``PROVIDER_<SLUG>_ENABLED``, read from the environment of a real
server process: a switched-off provider disappears from ``GET /v1/models``, ``GET /v1/providers``,
the Playground's model picker and key creation, while the organization's existing key of it stays
listed (so it can be deleted) and the other providers are unaffected."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.api_keys.models import ProviderKey
from apps.core.scoping import org_scope
from apps.providers import catalog
from tests.utils import PYTHON, ROOT, subprocess_env

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_without_kling(transactional_db, tmp_path):
    """A gunicorn process on this run's test database, with Kling switched off in its environment."""
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "mediarouter.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=subprocess_env(PROVIDER_KLING_ENABLED="false"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "server.log").read_text())
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_a_provider_switched_off_in_the_environment_disappears(tenants, server_without_kling, kling_emulator):
    # alice's org already has a Kling key from before the switch
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    django_settings.KLING_BASE_URL = kling_emulator.base_url
    try:
        with org_scope(tenants.org_a):
            old_key = key_services.provider_key_create(by=alice, provider="kling", api_key=kling_emulator.api_key)
    finally:
        del django_settings.KLING_BASE_URL
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {tenants.alice_token}"

    models = api.get(f"{server_without_kling}/v1/models", timeout=10).json()["data"]
    ids = {m["id"] for m in models}
    kling_models = {m.id for m in catalog.all_models() if m.provider == "kling"}
    assert ids and not ids & kling_models, ids
    assert "sandbox-video" in ids
    providers = {p["id"] for p in api.get(f"{server_without_kling}/v1/providers", timeout=10).json()["data"]}
    assert "kling" not in providers and "runway" in providers

    created = api.post(
        f"{server_without_kling}/v1/keys", json={"provider": "kling", "api_key": "kling-new-key-0000"}, timeout=10
    )
    assert created.status_code == 400
    assert created.json()["error"]["param"] == "provider" and "disabled" in created.json()["error"]["message"]
    listed = {k["id"] for k in api.get(f"{server_without_kling}/v1/keys", timeout=10).json()["data"]}
    assert old_key.public_id in listed  # existing keys stay visible, so they can be removed
    assert ProviderKey.all_orgs.filter(provider="kling").count() == 1

    video = api.post(
        f"{server_without_kling}/v1/videos", json={"model": "kling-v2-5-turbo", "prompt": "a cat"}, timeout=10
    )
    assert video.status_code == 400 and video.json()["error"]["param"] == "model"

    # the pages: a session made here is valid in the server process (same database)
    client = Client()
    client.force_login(tenants.alice)
    page = requests.Session()
    page.cookies.set(django_settings.SESSION_COOKIE_NAME, client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    playground = page.get(f"{server_without_kling}/o/{tenants.org_a.slug}/playground/", timeout=10)
    assert playground.status_code == 200 and "sandbox-video" in playground.text
    assert not any(f'value="{m}"' in playground.text or f'value="kling/{m}"' in playground.text for m in kling_models)
    keys_page = page.get(f"{server_without_kling}/o/{tenants.org_a.slug}/settings/keys/", timeout=10)
    assert keys_page.status_code == 200
    assert 'value="kling"' not in keys_page.text  # not offered in the add-key form
    assert old_key.masked in keys_page.text  # but the existing key is listed
