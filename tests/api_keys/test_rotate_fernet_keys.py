"""manage.py rotate_fernet_keys: re-encrypt with the newest Fernet key, idempotent, --dry-run."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from apps.api_keys import crypto, services
from apps.api_keys.models import ProviderKey
from apps.providers.base import Credentials

pytestmark = pytest.mark.django_db

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def _run(*args) -> str:
    out = StringIO()
    call_command("rotate_fernet_keys", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _fresh(key) -> ProviderKey:
    return ProviderKey.all_orgs.get(pk=key.pk)


def test_it_works(tenants, make_key, settings):
    settings.FERNET_KEYS = [OLD]
    a = make_key(secret="fake-key-written-under-old-01")
    b = make_key(
        org=tenants.org_b, provider="kling", fields={"access_key": "ak-old-000001", "secret_key": "sk-old-000001"}
    )
    old_ciphertext = a.ciphertext

    # a new key in front: old ciphertext is still readable, new writes use the new key
    settings.FERNET_KEYS = [NEW, OLD]
    assert services.provider_key_credentials(key=_fresh(a)) == Credentials(api_key="fake-key-written-under-old-01")
    assert crypto.is_current(crypto.encrypt("x")) and not crypto.is_current(old_ciphertext)

    out = _run()
    assert "re-encrypted 2 key(s); 0 already current; 0 unreadable." in out
    assert _fresh(a).ciphertext != old_ciphertext

    # the old key removed: everything is still readable
    settings.FERNET_KEYS = [NEW]
    assert services.provider_key_credentials(key=_fresh(a)) == Credentials(api_key="fake-key-written-under-old-01")
    assert services.provider_key_credentials(key=_fresh(b)) == Credentials(
        access_key="ak-old-000001", secret_key="sk-old-000001"
    )


def test_without_rotation_dropping_the_old_key_breaks_reads(tenants, make_key, settings):
    settings.FERNET_KEYS = [OLD]
    key = make_key()
    settings.FERNET_KEYS = [NEW]
    with pytest.raises(crypto.DecryptionError):
        services.provider_key_credentials(key=_fresh(key))
    with pytest.raises(CommandError, match="1 key"):
        _run()


def test_it_is_idempotent(tenants, make_key, settings):
    settings.FERNET_KEYS = [OLD]
    key = make_key()
    settings.FERNET_KEYS = [NEW, OLD]
    _run()
    rotated = _fresh(key).ciphertext
    out = _run()
    assert "re-encrypted 0 key(s); 1 already current; 0 unreadable." in out
    assert _fresh(key).ciphertext == rotated


def test_dry_run_changes_nothing(tenants, make_key, settings):
    settings.FERNET_KEYS = [OLD]
    key = make_key()
    settings.FERNET_KEYS = [NEW, OLD]
    out = _run("--dry-run")
    assert f"would re-encrypt {key.public_id} ({tenants.org_a.slug}, sora)" in out
    assert "would re-encrypt 1 key(s)" in out
    assert _fresh(key).ciphertext == key.ciphertext
    assert "sk-" not in out and key.ciphertext not in out


def test_a_keys_callback_signing_secret_is_rotated_too(tenants, make_key, settings):
    """Replicate's webhook signing secret is kept encrypted on the key: rotation covers it."""
    settings.FERNET_KEYS = [OLD]
    key = make_key(secret="fake-key-written-under-old-02")
    ProviderKey.all_orgs.filter(pk=key.pk).update(callback_secret_ciphertext=crypto.encrypt("whsec_c2VjcmV0LXRlc3Q="))
    settings.FERNET_KEYS = [NEW, OLD]
    assert "re-encrypted 2 key(s)" in _run()  # the credentials and the signing secret
    settings.FERNET_KEYS = [NEW]
    assert crypto.decrypt(_fresh(key).callback_secret_ciphertext) == "whsec_c2VjcmV0LXRlc3Q="
    assert "0 key(s); 2 already current" in _run()
