"""The registry contract: every adapter implements the interface and classifies errors alike."""

from __future__ import annotations

import re

import pytest
import requests
import responses

from apps.providers import registry
from apps.providers.base import Credentials, ProviderError, VideoProvider

KEY = "fake-key-test-contract-key-0000"
KEYED = ["sora", "runway", "kling"]
ANY_URL = re.compile(r"https://api\.example\.com/.*")


def error_body(slug: str, status: int, message: str) -> dict:
    """Each provider's own error envelope (openai-videos.md §10, runway.md §8, kling.md §7)."""
    if slug == "sora":
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    if slug == "runway":
        return {"error": message}
    code = {400: 1200, 401: 1000, 403: 1103, 404: 1203, 429: 1302, 500: 5000, 502: 5000, 503: 5001}[status]
    return {"code": code, "message": message, "request_id": "r-1"}


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
    if cls.requires_key:
        assert cls.key_shapes and all(shape for shape in cls.key_shapes)
        for shape in cls.key_shapes:
            assert set(shape) <= {"api_key", "access_key", "secret_key"}


def test_registry_is_lazy_and_cached():
    assert registry.get_provider_class("runway") is registry.get_provider_class("runway")


def test_provider_choices_list_every_provider(settings):
    settings.SANDBOX_PROVIDER_ENABLED = False
    assert registry.provider_choices() == [
        ("sora", "OpenAI Sora"),
        ("runway", "Runway"),
        ("kling", "Kling"),
        ("sandbox", "Sandbox"),
    ]
    assert registry.enabled_slugs() == ("sora", "runway", "kling")


def test_unknown_and_disabled_slugs_raise_clear_errors(settings):
    with pytest.raises(registry.UnknownProvider, match="Unknown provider 'acme'"):
        registry.build("acme", None)
    settings.SANDBOX_PROVIDER_ENABLED = False
    with pytest.raises(registry.ProviderDisabled, match="disabled"):
        registry.build("sandbox", None)
    settings.SANDBOX_PROVIDER_ENABLED = True
    assert registry.build("sandbox", None).slug == "sandbox"


def test_aliases():
    assert registry.canonical_slug("openai") == "sora"
    assert registry.get_provider_class("OpenAI").slug == "sora"


def test_base_urls_default_and_follow_settings(settings):
    del settings.OPENAI_BASE_URL
    del settings.RUNWAY_BASE_URL
    del settings.KLING_BASE_URL
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
    responses.add(
        responses.GET, ANY_URL, status=status, json=error_body(slug, status, message), headers={"Retry-After": "3"}
    )
    provider = registry.build(slug, Credentials(api_key=KEY), base_url="https://api.example.com")
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
    responses.add(responses.GET, ANY_URL, body=requests.ConnectionError("reset"))
    provider = registry.build(slug, Credentials(api_key=KEY), base_url="https://api.example.com")
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    assert not info.value.permanent and info.value.code == "connection_error"


@pytest.mark.parametrize("slug", KEYED)
@responses.activate
def test_successful_validation_returns_none(slug):
    body = {"code": 0, "message": "ok", "data": []} if slug == "kling" else {"object": "list", "data": []}
    responses.add(responses.GET, ANY_URL, json=body)
    provider = registry.build(slug, Credentials(api_key=KEY), base_url="https://api.example.com")
    assert provider.validate_key() is None
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
