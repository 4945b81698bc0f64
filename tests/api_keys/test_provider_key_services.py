"""provider_key_validate, _set_default, _delete, _mark_invalid, _credentials and the selector
provider_key_for (what the generation engine uses)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from apps.api_keys import crypto, selectors, services
from apps.api_keys.models import KeyStatus, ProviderKey
from apps.core.errors import NotFound, PermissionDeniedError
from apps.core.scoping import org_scope
from apps.providers import registry
from apps.providers.base import Credentials

from .helpers import defaults_of, keys_of

pytestmark = pytest.mark.django_db


def _as(membership, service, **kwargs):
    with org_scope(membership.organization):
        return service(by=membership, **kwargs)


# --- validate -------------------------------------------------------------------------------


def test_validate_works(members, make_key, sora):
    key = make_key(secret=sora.api_key, status=KeyStatus.UNVERIFIED, last_error="Could not check the key: down")
    checked = _as(members.alice, services.provider_key_validate, public_id=key.public_id)
    assert checked.status == KeyStatus.VALID and checked.last_error == "" and checked.last_validated_at
    key.refresh_from_db()
    assert key.status == KeyStatus.VALID and key.last_error == "" and key.last_validated_at


def test_validate_marks_a_refused_key_invalid(members, make_key, sora):
    key = make_key(secret="fake-key-revoked-at-provider-0000")
    checked = _as(members.alice, services.provider_key_validate, public_id=key.public_id)
    assert checked.status == KeyStatus.INVALID and "Incorrect API key" in checked.last_error
    assert "fake-key-revoked-at-provider-0000" not in checked.last_error
    key.refresh_from_db()
    assert key.status == KeyStatus.INVALID and key.last_validated_at is not None


def test_validate_keeps_the_status_when_the_provider_cannot_be_reached(members, make_key):
    key = make_key(secret="fake-key-fine-but-offline-0000", status=KeyStatus.VALID)
    checked = _as(members.alice, services.provider_key_validate, public_id=key.public_id)
    key.refresh_from_db()
    assert key.status == checked.status == KeyStatus.VALID
    assert key.last_error.startswith("Could not check the key")
    assert key.last_validated_at is None


def test_validate_works_for_kling_pairs(members, make_key, kling):
    key = make_key(
        provider="kling",
        fields={"access_key": kling.access_key, "secret_key": kling.secret_key},
        status=KeyStatus.UNVERIFIED,
    )
    assert _as(members.alice, services.provider_key_validate, public_id=key.public_id).status == KeyStatus.VALID


def test_validate_requires_admin(members, make_key, sora):
    key = make_key(secret=sora.api_key)
    with pytest.raises(PermissionDeniedError):
        _as(members.bob, services.provider_key_validate, public_id=key.public_id)
    assert sora.stats()["calls"].get("list", 0) == 0


def test_validate_checks_ownership(members, make_key, sora):
    key = make_key(secret=sora.api_key)
    with pytest.raises(NotFound):
        _as(members.charlie, services.provider_key_validate, public_id=key.public_id)
    assert sora.stats()["calls"].get("list", 0) == 0


# --- default --------------------------------------------------------------------------------


def test_set_default_swaps_the_default(tenants, members, make_key):
    first, second = make_key(), make_key()
    other = make_key(provider="runway")
    assert defaults_of(tenants.org_a, "sora") == [first.public_id]
    result = _as(members.alice, services.provider_key_set_default, public_id=second.public_id)
    assert result.is_default
    assert defaults_of(tenants.org_a, "sora") == [second.public_id]
    assert defaults_of(tenants.org_a, "runway") == [other.public_id]
    # again: nothing changes
    _as(members.alice, services.provider_key_set_default, public_id=second.public_id)
    assert defaults_of(tenants.org_a, "sora") == [second.public_id]


def test_the_database_allows_one_default_per_provider(tenants, make_key):
    make_key()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_key(is_default=True)


def test_set_default_requires_admin(tenants, members, make_key):
    first, second = make_key(), make_key()
    with pytest.raises(PermissionDeniedError):
        _as(members.bob, services.provider_key_set_default, public_id=second.public_id)
    assert defaults_of(tenants.org_a, "sora") == [first.public_id]


def test_set_default_checks_ownership(tenants, members, make_key):
    first, second = make_key(), make_key()
    with pytest.raises(NotFound):
        _as(members.charlie, services.provider_key_set_default, public_id=second.public_id)
    assert defaults_of(tenants.org_a, "sora") == [first.public_id]


# --- delete ---------------------------------------------------------------------------------


def test_delete_works(tenants, members, make_key):
    first, second = make_key(), make_key()
    _as(members.alice, services.provider_key_delete, public_id=second.public_id)
    assert [k.public_id for k in keys_of(tenants.org_a)] == [first.public_id]


def test_deleting_the_default_promotes_another_key(tenants, members, make_key):
    default = make_key()
    invalid = make_key(status=KeyStatus.INVALID)
    valid = make_key(status=KeyStatus.VALID)
    make_key(provider="runway")
    _as(members.alice, services.provider_key_delete, public_id=default.public_id)
    assert defaults_of(tenants.org_a, "sora") == [valid.public_id]  # a valid one before an invalid one
    _as(members.alice, services.provider_key_delete, public_id=valid.public_id)
    assert defaults_of(tenants.org_a, "sora") == [invalid.public_id]
    _as(members.alice, services.provider_key_delete, public_id=invalid.public_id)
    assert keys_of(tenants.org_a, "sora") == [] and len(defaults_of(tenants.org_a, "runway")) == 1


def test_delete_requires_admin(tenants, members, make_key):
    key = make_key()
    with pytest.raises(PermissionDeniedError):
        _as(members.bob, services.provider_key_delete, public_id=key.public_id)
    assert keys_of(tenants.org_a) == [key]


def test_delete_checks_ownership(tenants, members, make_key):
    key = make_key()
    with pytest.raises(NotFound):
        _as(members.charlie, services.provider_key_delete, public_id=key.public_id)
    assert keys_of(tenants.org_a) == [key]


# --- for the engine -------------------------------------------------------------------------


def test_provider_key_for_returns_the_default_or_the_one_asked_for(tenants, make_key):
    default, other = make_key(), make_key()
    runway = make_key(provider="runway")
    theirs = make_key(org=tenants.org_b)
    with org_scope(tenants.org_a):
        assert selectors.provider_key_for(org=tenants.org_a, provider="sora") == default
        assert selectors.provider_key_for(org=tenants.org_a, provider="sora", public_id=other.public_id) == other
        # a key of another provider or another organization is not found
        assert selectors.provider_key_for(org=tenants.org_a, provider="sora", public_id=runway.public_id) is None
        assert selectors.provider_key_for(org=tenants.org_a, provider="sora", public_id=theirs.public_id) is None
        assert selectors.provider_key_for(org=tenants.org_a, provider="kling") is None


def test_credentials_round_trip(make_key):
    api = make_key(secret="sk-plain-api-key-0001")
    pair = make_key(provider="kling", fields={"access_key": "ak-kling-000001", "secret_key": "sk-kling-000001"})
    assert services.provider_key_credentials(key=api) == Credentials(api_key="sk-plain-api-key-0001")
    creds = services.provider_key_credentials(key=pair)
    assert creds == Credentials(access_key="ak-kling-000001", secret_key="sk-kling-000001")
    assert "sk-kling" not in repr(creds) and "sk-kling" not in str(creds)


def test_credentials_read_a_bare_key(tenants, make_key):
    key = make_key()
    ProviderKey.all_orgs.filter(pk=key.pk).update(ciphertext=crypto.encrypt("sk-bare-string-key-01"))
    key.refresh_from_db()
    assert services.provider_key_credentials(key=key) == Credentials(api_key="sk-bare-string-key-01")


def test_credentials_build_a_working_adapter(make_key, kling):
    key = make_key(provider="kling", fields={"access_key": kling.access_key, "secret_key": kling.secret_key})
    registry.build("kling", services.provider_key_credentials(key=key)).validate_key()


def test_credentials_fail_closed_without_the_fernet_key(make_key, settings):
    from cryptography.fernet import Fernet

    key = make_key(secret="sk-locked-away-000001")
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError) as info:
        services.provider_key_credentials(key=key)
    assert "sk-locked-away" not in str(info.value) and key.ciphertext not in str(info.value)


def test_mark_invalid_works(tenants, make_key):
    key = make_key(secret="fake-key-went-bad-at-provider-01")
    with org_scope(tenants.org_a):
        services.provider_key_mark_invalid(
            key=key, error="Incorrect API key provided: fake-key-went-bad-at-provider-01."
        )
    assert key.status == KeyStatus.INVALID
    key.refresh_from_db()
    assert key.status == KeyStatus.INVALID and key.last_validated_at is not None
    assert key.last_error == "Incorrect API key provided: ***."


def test_mark_invalid_works_outside_a_scope(tenants, make_key):
    key = make_key()
    other = make_key(org=tenants.org_b)
    services.provider_key_mark_invalid(key=key, error="x" * 2000)
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.status == KeyStatus.INVALID and len(key.last_error) == 500
    assert other.status == KeyStatus.VALID
