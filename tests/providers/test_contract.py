"""The registry contract: every adapter implements the interface and classifies errors alike.

Driven by the registry: a new provider is covered as soon as it has a registry line and an emulator
(``tests/emulators/<slug>.py`` with ``EMULATOR``), whose ``error_body`` gives its error envelope and
whose optional ``contract_credentials``/``validation_ok_body`` hooks adapt the generic checks."""

from __future__ import annotations

import re

import pytest
import requests
import responses

from apps.providers import registry
from apps.providers.base import Credentials, KeyField, ProviderError, VideoProvider
from tests.emulators import emulator_class

KEY = "fake-key-test-contract-key-0000"
KEYED = [slug for slug in registry.PROVIDERS if registry.get_provider_class(slug, allow_disabled=True).requires_key]
ANY_URL = re.compile(r"https://api\.example\.com/.*")
METHODS = (responses.GET, responses.POST, responses.PUT, responses.DELETE)


def error_body(slug: str, status: int, message: str):
    """Each provider's own error envelope, from its emulator (docs/providers/<slug>.md, Errors)."""
    return emulator_class(slug).error_body(status, message)


def contract_credentials(slug: str) -> Credentials:
    hook = getattr(emulator_class(slug), "contract_credentials", None)
    return Credentials(**hook(KEY)) if hook else Credentials(api_key=KEY)


def validation_ok_body(slug: str):
    hook = getattr(emulator_class(slug), "validation_ok_body", None)
    return hook() if hook else {"object": "list", "data": []}


def add_any(**kwargs) -> None:
    for method in METHODS:
        responses.add(method, ANY_URL, **kwargs)


def test_every_keyed_provider_has_an_emulator():
    missing = [slug for slug in KEYED if emulator_class(slug) is None]
    assert not missing, f"providers without tests/emulators/<slug>.py: {missing}"


@pytest.mark.parametrize("slug", list(registry.PROVIDERS))
def test_every_adapter_implements_the_interface(slug):
    cls = registry.get_provider_class(slug)
    assert issubclass(cls, VideoProvider)
    assert cls.slug == slug
    assert cls.label == registry.PROVIDERS[slug][0]
    for method in ("validate_key", "submit", "status", "download"):
        assert getattr(cls, method) is not getattr(VideoProvider, method), f"{slug} must implement {method}"
    for flag, method in (("supports_cancel", "cancel"), ("supports_remix", "remix"), ("supports_delete", "delete")):
        overridden = getattr(cls, method) is not getattr(VideoProvider, method)
        assert getattr(cls, flag) == overridden, f"{slug}.{flag} must match whether {method} is implemented"
    assert cls.supports_lookup == (cls.find_by_reference is not VideoProvider.find_by_reference)
    assert cls.supports_price_lookup == (cls.fetch_prices is not VideoProvider.fetch_prices)
    if cls.supports_callbacks and cls.callback_verification == "signature":
        assert cls.verify_callback is not VideoProvider.verify_callback, f"{slug} must verify its callbacks"
    if cls.requires_key:
        assert cls.key_shapes and all(shape for shape in cls.key_shapes)
        declared = {f.name for f in cls.key_fields}
        assert all(isinstance(f, KeyField) for f in cls.key_fields)
        for shape in cls.key_shapes:
            assert set(shape) <= declared, f"{slug}: a shape names an undeclared field"
        assert cls.secret_field_names(), f"{slug} declares no secret field"


def test_registry_is_lazy_and_cached():
    assert registry.get_provider_class("runway") is registry.get_provider_class("runway")


def test_provider_choices_list_every_provider(settings):
    settings.PROVIDER_SANDBOX_ENABLED = False
    assert registry.provider_choices() == [(slug, label) for slug, (label, _cls) in registry.PROVIDERS.items()]
    assert "sandbox" not in registry.enabled_slugs()
    assert set(registry.enabled_slugs()) == set(registry.PROVIDERS) - {"sandbox"}


@pytest.mark.parametrize("slug", list(registry.PROVIDERS))
def test_every_provider_switches_off_by_the_generic_rule(slug, settings, monkeypatch):
    name = f"PROVIDER_{slug.upper()}_ENABLED"
    monkeypatch.setenv(name, "false")
    assert not registry.is_enabled(slug)
    monkeypatch.setenv(name, "true")
    assert registry.is_enabled(slug)
    setattr(settings, name, False)  # a Django setting of the same name wins over the environment
    assert not registry.is_enabled(slug)


def test_the_old_sandbox_switch_still_works(settings):
    settings.SANDBOX_PROVIDER_ENABLED = False
    assert not registry.is_enabled("sandbox")


def test_unknown_and_disabled_slugs_raise_clear_errors(settings):
    with pytest.raises(registry.UnknownProvider, match="Unknown provider 'acme'"):
        registry.build("acme", None)
    settings.PROVIDER_SANDBOX_ENABLED = False
    with pytest.raises(registry.ProviderDisabled, match="disabled"):
        registry.build("sandbox", None)
    settings.PROVIDER_SANDBOX_ENABLED = True
    assert registry.build("sandbox", None).slug == "sandbox"


def test_aliases():
    assert registry.canonical_slug("openai") == "sora"
    assert registry.get_provider_class("OpenAI").slug == "sora"


@pytest.mark.parametrize("slug", KEYED)
def test_every_base_url_follows_the_generic_rule(slug, monkeypatch, settings):
    cls = registry.get_provider_class(slug)
    for name in (f"{slug.upper()}_BASE_URL", *cls.base_url_aliases):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delattr(settings, name, raising=False)
    assert registry.base_url_for(slug) == cls.default_base_url.rstrip("/")
    monkeypatch.setenv(f"{slug.upper()}_BASE_URL", "https://gateway.example.com/x/")
    assert registry.base_url_for(slug) == "https://gateway.example.com/x"


def test_base_urls_default_and_follow_settings(settings, monkeypatch):
    for name in ("OPENAI_BASE_URL", "SORA_BASE_URL", "RUNWAY_BASE_URL", "KLING_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delattr(settings, name, raising=False)
    assert registry.base_url_for("sora") == "https://api.openai.com/v1"
    assert registry.base_url_for("runway") == "https://api.dev.runwayml.com"
    assert registry.base_url_for("kling") == "https://api-singapore.klingai.com"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9101/v1/"
    settings.KLING_BASE_URL = "https://api-beijing.klingai.com"
    assert registry.base_url_for("sora") == "http://127.0.0.1:9101/v1"
    assert registry.build("sora", Credentials(api_key=KEY)).base_url == "http://127.0.0.1:9101/v1"
    assert registry.build("kling", Credentials(api_key=KEY)).base_url == "https://api-beijing.klingai.com"


def test_build_checks_key_shapes():
    with pytest.raises(ProviderError) as info:
        registry.build("runway", Credentials())
    assert info.value.code == "missing_credentials" and info.value.permanent
    with pytest.raises(ProviderError, match="api_key or access_key \\+ secret_key"):
        registry.build("kling", Credentials(access_key="ak-only"))
    registry.build("kling", Credentials(access_key="ak", secret_key="sk"))
    registry.build("kling", Credentials(api_key="k"))


def test_adapter_repr_hides_credentials():
    provider = registry.build("sora", Credentials(api_key=KEY), base_url="https://api.example.com/v1")
    assert KEY not in repr(provider) and KEY not in repr(provider.credentials)


@pytest.mark.parametrize("slug", KEYED)
@pytest.mark.parametrize(
    ("status", "permanent", "auth"),
    [
        (400, True, False),
        (401, True, True),
        (403, True, True),
        (404, True, False),
        (429, False, False),
        (500, False, False),
        (502, False, False),
        (503, False, False),
    ],
)
@responses.activate
def test_errors_are_classified_permanent_or_transient(slug, status, permanent, auth):
    message = f"upstream says no; your key was {KEY}"
    add_any(status=status, json=error_body(slug, status, message), headers={"Retry-After": "3"})
    provider = registry.build(slug, contract_credentials(slug), base_url="https://api.example.com")
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    error = info.value
    assert error.permanent is permanent
    assert error.status_code == status
    assert error.is_auth_error is auth
    assert error.retry_after == (None if permanent else 3.0)
    assert KEY not in str(error) and KEY not in repr(error)
    assert "upstream says no" in str(error)  # the provider's own words reach the person


@pytest.mark.parametrize("slug", KEYED)
@responses.activate
def test_network_failures_are_transient(slug):
    add_any(body=requests.ConnectionError("reset"))
    provider = registry.build(slug, contract_credentials(slug), base_url="https://api.example.com")
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    assert not info.value.permanent and info.value.code == "connection_error"


@pytest.mark.parametrize("slug", KEYED)
@responses.activate
def test_successful_validation_returns_none(slug):
    add_any(json=validation_ok_body(slug))
    provider = registry.build(slug, contract_credentials(slug), base_url="https://api.example.com")
    assert provider.validate_key() is None
    assert responses.calls, "validation made no call"
