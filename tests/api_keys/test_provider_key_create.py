"""provider_key_create: role, provider, key shapes, encryption, validation through the adapter."""

from __future__ import annotations

import json

import pytest

from apps.api_keys import crypto, services
from apps.api_keys.models import KeyStatus
from apps.core.errors import ApplicationError, PermissionDeniedError
from apps.core.scoping import org_scope
from apps.providers.base import Credentials

from .helpers import defaults_of, keys_of

pytestmark = pytest.mark.django_db


def _create(membership, **kwargs):
    with org_scope(membership.organization):
        return services.provider_key_create(by=membership, **kwargs)


def test_it_works(tenants, members, sora):
    key = _create(members.alice, provider="sora", api_key=sora.api_key, label="main")
    assert key.provider == "sora" and key.label == "main"
    assert key.status == KeyStatus.VALID and key.last_validated_at is not None and key.last_error == ""
    assert key.is_default
    assert key.last4 == sora.api_key[-4:] and key.masked == "…" + sora.api_key[-4:]
    assert key.public_id.startswith("key_")
    assert key.created_by == tenants.alice
    assert sora.api_key not in key.ciphertext
    assert json.loads(crypto.decrypt(key.ciphertext)) == {"api_key": sora.api_key}
    assert sora.api_key not in repr(key) and sora.api_key not in str(key)


def test_it_requires_admin(tenants, members, sora):
    with pytest.raises(PermissionDeniedError) as info:
        _create(members.bob, provider="sora", api_key=sora.api_key)
    assert info.value.status_code == 403
    assert keys_of(tenants.org_a) == []
    assert sora.stats()["calls"].get("list", 0) == 0  # refused before calling the provider


def test_admins_may_add(tenants, members, sora):
    members.bob.role = "admin"
    members.bob.save()
    assert _create(members.bob, provider="sora", api_key=sora.api_key).status == KeyStatus.VALID


@pytest.mark.parametrize("provider", ["nope", "", "sandbox"])
def test_it_requires_a_provider_that_takes_a_key(members, provider):
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider=provider, api_key="sk-whatever-1234")
    assert info.value.param == "provider"


def test_it_refuses_a_disabled_provider(members, settings):
    settings.PROVIDER_RUNWAY_ENABLED = False
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider="runway", api_key="rw-whatever-1234")
    assert info.value.param == "provider" and "disabled" in info.value.message


def test_it_accepts_the_alias(members, sora):
    assert _create(members.alice, provider="openai", api_key=sora.api_key).provider == "sora"


def test_it_validates_runway(members, runway):
    key = _create(members.alice, provider="runway", api_key=runway.api_key)
    assert key.status == KeyStatus.VALID and key.provider == "runway"


def test_kling_takes_a_plain_api_key(members, kling):
    key = _create(members.alice, provider="kling", api_key=kling.api_key)
    assert key.status == KeyStatus.VALID
    assert services.provider_key_credentials(key=key) == Credentials(api_key=kling.api_key)


def test_kling_takes_an_access_key_and_a_secret_key(members, kling):
    key = _create(members.alice, provider="kling", access_key=kling.access_key, secret_key=kling.secret_key)
    assert key.status == KeyStatus.VALID
    assert key.last4 == kling.secret_key[-4:]
    # the pair is one JSON document, encrypted together
    assert json.loads(crypto.decrypt(key.ciphertext)) == {
        "access_key": kling.access_key,
        "secret_key": kling.secret_key,
    }
    creds = services.provider_key_credentials(key=key)
    assert creds == Credentials(access_key=kling.access_key, secret_key=kling.secret_key)


def test_kling_refuses_a_wrong_secret_key(tenants, members, kling):
    with pytest.raises(ApplicationError) as info:
        _create(
            members.alice,
            provider="kling",
            access_key=kling.access_key,
            secret_key="fake-key-not-the-right-secret-for-this-access-key",
        )
    assert info.value.code == "invalid_provider_key" and "Kling" in info.value.message
    assert keys_of(tenants.org_a) == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "api_key"),
        ({"access_key": "ak-only-half-000"}, "secret_key"),
        ({"secret_key": "sk-only-half-000"}, "access_key"),
        ({"api_key": "kling-key-0000", "access_key": "ak-also-00000", "secret_key": "sk-also-00000"}, "api_key"),
    ],
)
def test_kling_fields_must_fit_one_shape(members, fields, param):
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider="kling", **fields)
    assert info.value.param == param and info.value.code == "invalid_key_shape"
    assert "api_key" in info.value.message and "access_key and secret_key" in info.value.message


def test_sora_takes_no_access_key(members):
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider="sora", access_key="ak-not-for-sora", secret_key="sk-not-for-sora")
    assert info.value.param == "access_key"


@pytest.mark.parametrize("bad", ["short", "has space inside-key", "tab\there-00000", "ключ-не-ascii-0000", "x" * 5000])
def test_it_refuses_malformed_keys_before_calling_the_provider(members, sora, bad):
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider="sora", api_key=bad)
    assert info.value.param == "api_key" and info.value.code == "invalid_key_format"
    assert bad not in info.value.message
    assert sora.stats()["calls"].get("list", 0) == 0


def test_it_strips_surrounding_whitespace(members, sora):
    key = _create(members.alice, provider="sora", api_key=f"  {sora.api_key}\n")
    assert services.provider_key_credentials(key=key).api_key == sora.api_key


def test_a_refused_key_is_not_saved(tenants, members, sora):
    wrong = "fake-key-wrong-key-echoed-back-1234"
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider="sora", api_key=wrong)
    exc = info.value
    assert exc.status_code == 400 and exc.param == "api_key" and exc.code == "invalid_provider_key"
    # the provider's reason, with the key it echoed scrubbed out
    assert "OpenAI Sora refused this key" in exc.message and "Incorrect API key provided" in exc.message
    assert wrong not in exc.message and wrong not in repr(exc)
    assert exc.__cause__ is None and exc.__context__ is None  # no ProviderError chained on
    assert keys_of(tenants.org_a) == []


def test_a_permanent_provider_error_refuses_the_key(tenants, members, sora):
    sora.add_fault(endpoint="list", status=403, body={"error": {"message": "Project lacks video access."}})
    with pytest.raises(ApplicationError) as info:
        _create(members.alice, provider="sora", api_key=sora.api_key)
    assert "Project lacks video access" in info.value.message
    assert keys_of(tenants.org_a) == []


def test_a_transient_failure_saves_the_key_as_unverified(tenants, members, sora):
    sora.add_fault(endpoint="list", status=503, body={"error": {"message": "Overloaded, try later."}})
    key = _create(members.alice, provider="sora", api_key=sora.api_key)
    assert key.status == KeyStatus.UNVERIFIED and key.last_validated_at is None
    assert key.last_error.startswith("Could not check the key:") and "Overloaded" in key.last_error
    assert keys_of(tenants.org_a) == [key]


def test_an_unreachable_provider_saves_the_key_as_unverified(members):
    key = _create(members.alice, provider="sora", api_key="fake-key-cannot-check-now-1234")
    assert key.status == KeyStatus.UNVERIFIED
    assert "could not connect" in key.last_error.lower() or "network" in key.last_error.lower()


def test_the_key_is_scrubbed_from_a_transient_error(members, sora):
    sora.add_fault(endpoint="list", status=502, body={"error": {"message": f"gateway choked on {sora.api_key}"}})
    key = _create(members.alice, provider="sora", api_key=sora.api_key)
    assert key.status == KeyStatus.UNVERIFIED and sora.api_key not in key.last_error and "***" in key.last_error


def test_the_first_key_of_a_provider_becomes_default(tenants, members, sora, runway):
    first = _create(members.alice, provider="sora", api_key=sora.api_key)
    second = _create(members.alice, provider="sora", api_key=sora.api_key, make_default=False)
    other = _create(members.alice, provider="runway", api_key=runway.api_key)
    assert first.is_default and not second.is_default and other.is_default
    assert defaults_of(tenants.org_a, "sora") == [first.public_id]


def test_make_default_takes_over(tenants, members, sora):
    first = _create(members.alice, provider="sora", api_key=sora.api_key)
    second = _create(members.alice, provider="sora", api_key=sora.api_key, make_default=True)
    assert defaults_of(tenants.org_a, "sora") == [second.public_id]
    assert first.public_id != second.public_id


def test_keys_of_each_org_are_separate(tenants, members, sora):
    mine = _create(members.alice, provider="sora", api_key=sora.api_key)
    theirs = _create(members.charlie, provider="sora", api_key=sora.api_key)
    assert mine.is_default and theirs.is_default
    assert keys_of(tenants.org_b) == [theirs]
