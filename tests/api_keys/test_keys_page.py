"""Settings → Keys & tokens: htmx fragments and plain forms, roles, tenancy, query counts."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.api_keys.models import ApiToken, KeyStatus

from .helpers import defaults_of, keys_of

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def url(tenants, suffix: str = "", org=None) -> str:
    return f"/o/{(org or tenants.org_a).slug}/settings/{suffix}"


class _Forms(HTMLParser):
    """Collect every form with its attributes and the names of its inputs."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"attrs": attrs, "inputs": []})
        elif tag in ("input", "select", "button") and self.forms:
            self.forms[-1]["inputs"].append(attrs.get("name"))


def forms_of(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


# --- the page -------------------------------------------------------------------------------


def test_it_works(tenants, make_key):
    make_key(secret="sk-shown-as-last4-abcd", label="main")
    make_key(status=KeyStatus.INVALID, last_error="The API key was rejected (HTTP 401).", secret="sk-second-zzzz9999")
    make_key(provider="kling", status=KeyStatus.UNVERIFIED, secret="kling-unchecked-1111")
    r = tenants.client_for(tenants.alice).get(url(tenants, "keys/"))
    assert r.status_code == 200
    html = r.content.decode()
    assert "<html" in html and "Keys &amp; tokens" in html
    assert 'aria-current="page">Keys &amp; tokens</a>' in html  # the nav link
    # grouped by provider, masked, with status badges and the last error
    assert html.index("<h3>OpenAI Sora</h3>") < html.index("<h3>Kling</h3>")
    assert "…abcd" in html and "…9999" in html and "…1111" in html
    assert 'class="badge ok">Valid<' in html and 'class="badge bad">Invalid<' in html
    assert 'class="badge warn">Unverified<' in html and "The API key was rejected (HTTP 401)." in html
    assert "sk-shown-as-last4-abcd" not in html
    # owners see the add form with the fields of every shape, and the actions
    assert 'name="api_key"' in html and 'name="access_key"' in html and 'name="secret_key"' in html
    assert 'data-fields="api_key access_key secret_key"' in html  # Kling's shapes, from the adapter
    assert 'data-fields="api_key"' in html
    assert ">Test</button>" in html and ">Make default</button>" in html and ">Delete</button>" in html


def test_every_form_posts_without_js_and_carries_csrf(tenants, make_key):
    make_key(), make_key()
    html = tenants.client_for(tenants.alice).get(url(tenants, "keys/")).content.decode()
    posts = [f for f in forms_of(html) if f["attrs"].get("method") == "post"]
    assert len(posts) >= 8
    for form in posts:
        assert "csrfmiddlewaretoken" in form["inputs"], form
        if "hx-post" in form["attrs"]:
            assert form["attrs"]["action"] == form["attrs"]["hx-post"], form
    deletes = [f for f in posts if f["attrs"]["action"].endswith("/delete/")]
    assert deletes and all("hx-confirm" in f["attrs"] for f in deletes)


def test_forms_are_refused_without_csrf(tenants, sora):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenants.alice)
    r = client.post(url(tenants, "keys/add/"), {"provider": "sora", "api_key": sora.api_key})
    assert r.status_code == 403 and keys_of(tenants.org_a) == []


def test_members_see_keys_read_only(tenants, make_key):
    make_key(secret="sk-visible-to-bob-7777")
    r = tenants.client_for(tenants.bob).get(url(tenants, "keys/"))
    assert r.status_code == 200
    html = r.content.decode()
    assert "…7777" in html
    assert 'name="api_key"' not in html and ">Test</button>" not in html and ">Delete</button>" not in html
    assert "Only owners and admins can add, test or delete provider keys." in html


@pytest.mark.parametrize("action", ["validate", "default", "delete"])
def test_it_requires_admin(tenants, make_key, sora, action):
    make_key(secret=sora.api_key)
    key = make_key(secret=sora.api_key)
    bob = tenants.client_for(tenants.bob)
    r = bob.post(url(tenants, f"keys/{key.public_id}/{action}/"))
    assert r.status_code == 403 and "owners and admins" in r.content.decode()
    r = bob.post(url(tenants, f"keys/{key.public_id}/{action}/"), headers=HX)
    assert r.status_code == 403 and "<html" not in r.content.decode() and 'id="keys-panel"' in r.content.decode()
    assert len(keys_of(tenants.org_a)) == 2 and defaults_of(tenants.org_a, "sora") != [key.public_id]
    assert sora.stats()["calls"].get("list", 0) == 0


def test_add_requires_admin(tenants, sora):
    r = tenants.client_for(tenants.bob).post(url(tenants, "keys/add/"), {"provider": "sora", "api_key": sora.api_key})
    assert r.status_code == 403 and keys_of(tenants.org_a) == []
    assert "Only owners and admins can add" in r.content.decode() and sora.api_key not in r.content.decode()


def test_it_checks_ownership(tenants, make_key, sora):
    key = make_key(secret=sora.api_key)
    charlie = tenants.client_for(tenants.charlie)
    for suffix in ("keys/", "keys/add/", *(f"keys/{key.public_id}/{a}/" for a in ("validate", "default", "delete"))):
        assert charlie.post(url(tenants, suffix), {"provider": "sora", "api_key": sora.api_key}).status_code == 404
    # nor through charlie's own organization's URLs
    for action in ("validate", "default", "delete"):
        assert charlie.post(url(tenants, f"keys/{key.public_id}/{action}/", org=tenants.org_b)).status_code == 404
    assert keys_of(tenants.org_a) == [key] and keys_of(tenants.org_b) == []


# --- adding ---------------------------------------------------------------------------------


def test_add_works_as_a_plain_form(tenants, sora):
    client = tenants.client_for(tenants.alice)
    r = client.post(url(tenants, "keys/add/"), {"provider": "sora", "api_key": sora.api_key, "label": "prod"})
    assert r.status_code == 302 and r["Location"] == url(tenants, "keys/") + "#keys-panel"
    [key] = keys_of(tenants.org_a)
    assert key.status == KeyStatus.VALID and key.label == "prod" and key.is_default
    html = client.get(r["Location"]).content.decode()
    assert "the provider accepted it" in html and key.masked in html and sora.api_key not in html


def test_add_works_with_htmx(tenants, sora):
    r = tenants.client_for(tenants.alice).post(
        url(tenants, "keys/add/"), {"provider": "sora", "api_key": sora.api_key}, headers=HX
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert html.lstrip().startswith('<section id="keys-panel"') and "<html" not in html
    assert "the provider accepted it" in html and "…" + sora.api_key[-4:] in html
    assert sora.api_key not in html


def test_add_takes_a_kling_pair(tenants, kling):
    r = tenants.client_for(tenants.alice).post(
        url(tenants, "keys/add/"),
        {"provider": "kling", "access_key": kling.access_key, "secret_key": kling.secret_key, "api_key": ""},
        headers=HX,
    )
    assert r.status_code == 200
    [key] = keys_of(tenants.org_a)
    assert key.provider == "kling" and key.status == KeyStatus.VALID and key.last4 == kling.secret_key[-4:]


def test_add_shows_the_providers_reason_and_never_the_key(tenants, sora):
    wrong = "fake-key-typo-in-this-key-0042"
    for headers in ({}, HX):
        r = tenants.client_for(tenants.alice).post(
            url(tenants, "keys/add/"), {"provider": "sora", "api_key": wrong, "label": "oops"}, headers=headers
        )
        assert r.status_code == 422
        html = r.content.decode()
        assert "OpenAI Sora refused this key" in html and "Incorrect API key provided: ***" in html
        assert wrong not in html  # not even in the re-rendered form
        assert 'value="oops"' in html  # the label is kept
    assert keys_of(tenants.org_a) == []


def test_add_saves_an_uncheckable_key_as_unverified(tenants):
    client = tenants.client_for(tenants.alice)
    r = client.post(url(tenants, "keys/add/"), {"provider": "runway", "api_key": "rw-offline-check-0001"})
    assert r.status_code == 302
    [key] = keys_of(tenants.org_a)
    assert key.status == KeyStatus.UNVERIFIED
    html = client.get(url(tenants, "keys/")).content.decode()
    assert "unchecked" in html and 'class="badge warn">Unverified<' in html and "Could not check the key" in html


def test_add_refuses_a_half_pair(tenants):
    r = tenants.client_for(tenants.alice).post(
        url(tenants, "keys/add/"), {"provider": "kling", "access_key": "ak-lonely-000000"}, headers=HX
    )
    assert r.status_code == 422 and "access_key and secret_key" in r.content.decode()
    assert "ak-lonely-000000" not in r.content.decode()


# --- actions on a key -----------------------------------------------------------------------


def test_validate_works(tenants, make_key, sora):
    key = make_key(secret=sora.api_key, status=KeyStatus.UNVERIFIED)
    client = tenants.client_for(tenants.alice)
    r = client.post(url(tenants, f"keys/{key.public_id}/validate/"), headers=HX)
    assert r.status_code == 200 and f"The key {key.masked} works." in r.content.decode()
    key.refresh_from_db()
    assert key.status == KeyStatus.VALID
    r = client.post(url(tenants, f"keys/{key.public_id}/validate/"))
    assert r.status_code == 302


def test_validate_shows_a_refusal(tenants, make_key, sora):
    key = make_key(secret="fake-key-since-revoked-000001")
    r = tenants.client_for(tenants.alice).post(url(tenants, f"keys/{key.public_id}/validate/"), headers=HX)
    html = r.content.decode()
    assert r.status_code == 200 and "is invalid" in html and 'class="badge bad">Invalid<' in html
    assert "fake-key-since-revoked-000001" not in html


def test_make_default_works(tenants, make_key):
    first, second = make_key(), make_key()
    client = tenants.client_for(tenants.alice)
    r = client.post(url(tenants, f"keys/{second.public_id}/default/"))
    assert r.status_code == 302 and defaults_of(tenants.org_a, "sora") == [second.public_id]
    r = client.post(url(tenants, f"keys/{first.public_id}/default/"), headers=HX)
    assert r.status_code == 200 and defaults_of(tenants.org_a, "sora") == [first.public_id]


def test_delete_works(tenants, make_key):
    first, second = make_key(), make_key()
    client = tenants.client_for(tenants.alice)
    r = client.post(url(tenants, f"keys/{first.public_id}/delete/"), headers=HX)
    assert r.status_code == 200 and "Key deleted." in r.content.decode()
    assert [k.public_id for k in keys_of(tenants.org_a)] == [second.public_id]
    assert defaults_of(tenants.org_a, "sora") == [second.public_id]
    r = client.post(url(tenants, f"keys/{second.public_id}/delete/"))
    assert r.status_code == 302 and keys_of(tenants.org_a) == []


def test_an_unknown_key_is_404(tenants):
    r = tenants.client_for(tenants.alice).post(url(tenants, "keys/key_nope/delete/"))
    assert r.status_code == 404


def test_get_on_actions_is_not_allowed(tenants, make_key):
    key = make_key()
    client = tenants.client_for(tenants.alice)
    for suffix in ("keys/add/", f"keys/{key.public_id}/delete/", "tokens/new/"):
        assert client.get(url(tenants, suffix)).status_code == 405
    assert keys_of(tenants.org_a) == [key]


# --- API tokens -----------------------------------------------------------------------------


def test_token_create_shows_the_token_once(tenants):
    client = tenants.client_for(tenants.bob)
    r = client.post(url(tenants, "tokens/new/"), {"name": "laptop"})
    assert r.status_code == 200
    html = r.content.decode()
    token = re.search(r'id="new-token-value" readonly value="(mr_[^"]+)"', html).group(1)
    assert 'data-copy="new-token-value"' in html
    row = ApiToken.all_orgs.get(organization=tenants.org_a, name="laptop")
    assert row.user == tenants.bob and token.startswith(f"mr_{row.prefix}_")
    # it works, and it is never shown again
    assert tenants.api_client_for(token).get("/v1/me").json()["user"] == "bob@example.com"
    again = client.get(url(tenants, "keys/")).content.decode()
    assert token not in again and f"mr_{row.prefix}_…" in again
    assert token not in str(client.cookies) and token not in str(dict(client.session))


def test_token_create_works_with_htmx(tenants):
    r = tenants.client_for(tenants.alice).post(url(tenants, "tokens/new/"), {"name": "ci"}, headers=HX)
    html = r.content.decode()
    assert r.status_code == 200 and html.lstrip().startswith('<section id="tokens-panel"') and "mr_" in html


def test_token_create_needs_a_name(tenants):
    r = tenants.client_for(tenants.alice).post(url(tenants, "tokens/new/"), {"name": ""}, headers=HX)
    assert r.status_code == 400 and "Give the token a name" in r.content.decode()


def test_token_list_shows_members_only_their_own(tenants):
    bob_html = tenants.client_for(tenants.bob).get(url(tenants, "keys/")).content.decode()
    alice_html = tenants.client_for(tenants.alice).get(url(tenants, "keys/")).content.decode()
    alice_row = ApiToken.all_orgs.get(organization=tenants.org_a, name="alice")
    bob_row = ApiToken.all_orgs.get(organization=tenants.org_a, name="bob")
    assert bob_row.public_id in bob_html and alice_row.public_id not in bob_html
    assert bob_row.public_id in alice_html and alice_row.public_id in alice_html and "bob@example.com" in alice_html


def test_token_revoke_works(tenants):
    bob_row = ApiToken.all_orgs.get(organization=tenants.org_a, name="bob")
    r = tenants.client_for(tenants.bob).post(url(tenants, f"tokens/{bob_row.public_id}/revoke/"), headers=HX)
    assert r.status_code == 200 and "revoked" in r.content.decode()
    bob_row.refresh_from_db()
    assert bob_row.revoked_at is not None
    assert tenants.api_client_for(tenants.bob_token).get("/v1/me").status_code == 401


def test_token_revoke_requires_ownership_or_admin(tenants):
    alice_row = ApiToken.all_orgs.get(organization=tenants.org_a, name="alice")
    r = tenants.client_for(tenants.bob).post(url(tenants, f"tokens/{alice_row.public_id}/revoke/"))
    assert r.status_code == 403
    alice_row.refresh_from_db()
    assert alice_row.revoked_at is None
    r = tenants.client_for(tenants.charlie).post(
        url(tenants, f"tokens/{alice_row.public_id}/revoke/", org=tenants.org_b)
    )
    assert r.status_code == 404
    alice_row.refresh_from_db()
    assert alice_row.revoked_at is None


# --- performance ----------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_keys(tenants, make_key, django_assert_num_queries):
    client = tenants.client_for(tenants.alice)
    make_key()
    make_key(provider="runway")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(tenants, "keys/")).status_code == 200
    for i in range(8):
        make_key(provider=("sora", "runway", "kling")[i % 3], status=(KeyStatus.VALID, KeyStatus.INVALID)[i % 2])
    for _ in range(4):
        from apps.api_keys.services import api_token_create

        api_token_create(org=tenants.org_a, user=tenants.bob, name="more")
    with django_assert_num_queries(len(few.captured_queries)):
        r = client.get(url(tenants, "keys/"))
    assert r.content.decode().count('data-key="') == 10
