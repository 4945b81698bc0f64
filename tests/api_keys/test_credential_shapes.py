"""Credentials of any shape: a provider declares its fields and the key form, the keys API, the
Settings page and the stored document follow. Proved with the shapes MediaRouter's providers use
(a single key, a key pair, an optional per-key base URL) and with a service-account document plus
a location, declared by a provider registered only for this test."""

from __future__ import annotations

import base64
import json

import pytest
import responses

from apps.accounts.models import Membership
from apps.api_keys import services
from apps.api_keys.models import ProviderKey
from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope
from apps.providers import catalog, registry
from apps.providers.base import Credentials, KeyField, ProviderError, VideoProvider

pytestmark = pytest.mark.django_db

SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "acme-video",
    "private_key_id": "0123456789abcdef0123456789abcdef9f3e",
    "private_key": "-----BEGIN FAKE KEY-----\nnot-a-real-key-test-only\n-----END FAKE KEY-----\n",
    "client_email": "mediarouter@acme-video.iam.example.com",
    "token_uri": "https://oauth2.example.com/token",
}


class CloudProvider(VideoProvider):
    """A provider with a service-account document and a region, like Veo on Vertex AI."""

    slug = "testcloud"
    label = "Test Cloud"
    key_fields = (
        KeyField("service_account_json", "Service account JSON", kind="textarea", max_length=16384),
        KeyField(
            "location",
            "Location",
            secret=False,
            kind="choice",
            choices=(("us-central1", "us-central1"), ("europe-west4", "europe-west4")),
            min_length=2,
        ),
    )
    key_shapes = (("service_account_json", "location"),)
    default_base_url = "https://cloud.example.com"
    seen: list[Credentials] = []

    @classmethod
    def check_credentials(cls, credentials):
        try:
            document = json.loads(credentials.service_account_json or "")
        except ValueError:
            return {"service_account_json": "The service account is not valid JSON."}
        if not isinstance(document, dict) or document.get("type") != "service_account":
            return {"service_account_json": "This JSON is not a service account key."}
        return {}

    def validate_key(self):
        CloudProvider.seen.append(self.credentials)
        if json.loads(self.credentials.service_account_json)["project_id"] == "refused":
            raise ProviderError("refused by the cloud", code="permission_denied", permanent=True)


@pytest.fixture
def testcloud(monkeypatch, settings):
    catalog.all_models()  # load the real catalogs before the registry grows a provider without one
    monkeypatch.setitem(registry.PROVIDERS, "testcloud", ("Test Cloud", "CloudProvider"))
    monkeypatch.setitem(registry._classes, "testcloud", CloudProvider)
    from apps.api_keys import api

    # the keys API derives its request serializer from the registry once, at import
    monkeypatch.setattr(api.KeyCreateApi, "InputSerializer", api._key_input_serializer())
    CloudProvider.seen = []
    return CloudProvider


def _alice(tenants):
    return Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)


def test_a_document_and_a_location_are_one_encrypted_key(tenants, testcloud):
    document = json.dumps(SERVICE_ACCOUNT, indent=2)
    with org_scope(tenants.org_a):
        key = services.provider_key_create(
            by=_alice(tenants), provider="testcloud", service_account_json=document, location="europe-west4"
        )
        stored = ProviderKey.objects.get(pk=key.pk)
        credentials = services.provider_key_credentials(key=stored)
    assert testcloud.seen[0].location == "europe-west4"
    assert json.loads(credentials.service_account_json) == SERVICE_ACCOUNT
    assert credentials.location == "europe-west4"
    assert stored.details == {"location": "europe-west4"}  # the non-secret field stays readable
    assert stored.masked == "…9f3e"  # the end of private_key_id, not a closing brace
    assert SERVICE_ACCOUNT["private_key"].split("\n")[1] not in stored.ciphertext


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"service_account_json": "{not json", "location": "us-central1"}, "service_account_json", "not valid JSON"),
        (
            {"service_account_json": json.dumps({"type": "user"}), "location": "us-central1"},
            "service_account_json",
            "not a service account",
        ),
        (
            {"service_account_json": json.dumps(SERVICE_ACCOUNT), "location": "mars-north1"},
            "location",
            "must be one of",
        ),
        ({"service_account_json": json.dumps(SERVICE_ACCOUNT)}, "location", "takes"),
        (
            {"service_account_json": json.dumps(SERVICE_ACCOUNT), "location": "us-central1", "api_key": "k" * 20},
            "api_key",
            "not api_key",
        ),
    ],
)
def test_each_field_is_checked_by_its_kind(tenants, testcloud, fields, param, message):
    with org_scope(tenants.org_a), pytest.raises(ApplicationError) as info:
        services.provider_key_create(by=_alice(tenants), provider="testcloud", **fields)
    assert info.value.param == param and message in info.value.message
    assert not testcloud.seen  # refused before any call to the provider
    assert not ProviderKey.all_orgs.exists()


def test_the_keys_api_takes_the_declared_fields(tenants, testcloud):
    api = tenants.api_client_for(tenants.alice_token)
    r = api.post(
        "/v1/keys",
        {"provider": "testcloud", "service_account_json": json.dumps(SERVICE_ACCOUNT), "location": "us-central1"},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["settings"] == {"location": "us-central1"} and body["last4"] == "…9f3e"
    assert SERVICE_ACCOUNT["private_key_id"] not in r.content.decode()


def test_the_settings_page_offers_the_declared_fields_and_an_upload(tenants, testcloud):
    client = tenants.client_for(tenants.alice)
    page = client.get(f"/o/{tenants.org_a.slug}/settings/keys/").content.decode()
    assert 'name="service_account_json"' in page and 'name="service_account_json_file"' in page
    assert 'name="location"' in page and 'value="europe-west4"' in page
    upload = ("sa.json", json.dumps(SERVICE_ACCOUNT).encode(), "application/json")
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = client.post(
        f"/o/{tenants.org_a.slug}/settings/keys/add/",
        {
            "provider": "testcloud",
            "location": "europe-west4",
            "service_account_json_file": SimpleUploadedFile(*upload),
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    key = ProviderKey.all_orgs.get(provider="testcloud")
    assert key.details == {"location": "europe-west4"}
    listing = client.get(f"/o/{tenants.org_a.slug}/settings/keys/").content.decode()
    assert "europe-west4" in listing and SERVICE_ACCOUNT["client_email"] not in listing


def test_a_key_the_provider_refuses_is_not_stored(tenants, testcloud):
    document = json.dumps({**SERVICE_ACCOUNT, "project_id": "refused"})
    with org_scope(tenants.org_a), pytest.raises(ApplicationError, match="refused by the cloud"):
        services.provider_key_create(
            by=_alice(tenants), provider="testcloud", service_account_json=document, location="us-central1"
        )
    assert not ProviderKey.all_orgs.exists()


# --- the per-key base URL of an OpenAI-compatible gateway ----------------------------------


def test_a_sora_key_may_point_at_its_own_gateway(tenants, sora, settings):
    settings.SORA_BASE_URL = "http://127.0.0.1:9/v1"  # the operator's default: not where this key goes
    with org_scope(tenants.org_a):
        key = services.provider_key_create(
            by=_alice(tenants), provider="sora", api_key=sora.api_key, base_url=sora.base_url
        )
        credentials = services.provider_key_credentials(key=key)
    assert key.status == "valid"  # validated against the key's own gateway
    assert key.details == {"base_url": sora.base_url}
    adapter = registry.build("sora", credentials)
    assert adapter.base_url == sora.base_url and adapter.base_url_trusted is False
    assert adapter._private_hosts() == ()  # a tenant's host gets no private-address exemption


@pytest.mark.parametrize("url", ["http://10.0.0.5/v1", "https://127.0.0.1/v1", "https://169.254.169.254/v1"])
def test_a_gateway_on_a_private_address_is_refused(tenants, settings, url):
    settings.TENANT_URL_ALLOW_PRIVATE_ADDRESSES = False
    with org_scope(tenants.org_a), pytest.raises(ApplicationError) as info:
        services.provider_key_create(by=_alice(tenants), provider="sora", api_key="sk-test-" + "x" * 20, base_url=url)
    assert info.value.param == "base_url" and info.value.code == "unsafe_url"
    assert not ProviderKey.all_orgs.exists()


def test_a_gateway_must_be_https_in_production(tenants, settings):
    settings.PROVIDER_ALLOW_HTTP = False
    with org_scope(tenants.org_a), pytest.raises(ApplicationError) as info:
        services.provider_key_create(
            by=_alice(tenants), provider="sora", api_key="sk-test-" + "x" * 20, base_url="http://gateway.example.com/v1"
        )
    assert info.value.param == "base_url" and "https" in info.value.message


def test_a_gateway_that_later_resolves_to_a_private_address_is_refused_at_build(monkeypatch, settings):
    settings.TENANT_URL_ALLOW_PRIVATE_ADDRESSES = False
    from apps.providers import http

    monkeypatch.setattr(http, "_resolve", lambda host, port: ["10.1.2.3"])
    with pytest.raises(ProviderError) as info:
        registry.build("sora", Credentials(api_key="sk-test-key-0000", base_url="https://gw.example.com/v1"))
    assert info.value.code == "unsafe_url" and info.value.permanent


# --- scrubbing encoded forms -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "x", "xy", '{"iss":"'])
def test_an_echoed_key_is_scrubbed_also_base64_encoded(prefix):
    secret = "AKtest-access-key-0123456789"
    credentials = Credentials(access_key=secret, secret_key="fake-secret-kling-000000")
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        echoed = encode((prefix + secret + '","exp":1}').encode()).decode()
        scrubbed = services._scrub(f"bad token {echoed} refused", credentials)
        assert echoed not in scrubbed and "***" in scrubbed
    jwt_like = "eyJhbGciOiJIUzI1NiJ9." + base64.urlsafe_b64encode(f'{{"iss":"{secret}"}}'.encode()).decode()
    assert jwt_like.split(".")[1] not in services._scrub(jwt_like, credentials)


@responses.activate
def test_the_kling_jwt_never_reaches_last_error(tenants, settings):
    """A provider that echoes the whole Authorization header (a JWT that carries the access key)."""
    settings.KLING_BASE_URL = "https://kling.example.com"
    access, secret = "ak-test-echo-0123456789", "fake-secret-echo-0123456789"

    def echo(request):
        return (401, {}, json.dumps({"code": 1000, "message": f"bad {request.headers['Authorization']}"}))

    responses.add_callback(responses.GET, __import__("re").compile(r"https://kling\.example\.com/.*"), callback=echo)
    with org_scope(tenants.org_a), pytest.raises(ApplicationError) as info:
        services.provider_key_create(by=_alice(tenants), provider="kling", access_key=access, secret_key=secret)
    token = responses.calls[0].request.headers["Authorization"].removeprefix("Bearer ")
    payload = token.split(".")[1]
    assert payload not in info.value.message and token not in info.value.message
    decoded_payload = base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==")).decode().rstrip("=")
    assert decoded_payload not in info.value.message
