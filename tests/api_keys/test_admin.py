"""The operators' admin shows provider keys masked and read-only: never plaintext or ciphertext."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

SECRET = "fake-key-admin-must-never-show-0001"


@pytest.fixture
def staff(tenants, django_user_model):
    return tenants.client_for(django_user_model.objects.create_superuser("ops@example.com", "pw"))


def test_it_never_shows_the_key(tenants, make_key, staff):
    key = make_key(secret=SECRET, label="prod")
    pair = make_key(
        org=tenants.org_b,
        provider="kling",
        fields={"access_key": "ak-admin-000001", "secret_key": "sk-admin-pair-000002"},
    )
    for url in (
        "/admin/api_keys/providerkey/",
        "/admin/api_keys/providerkey/?q=alice",
        f"/admin/api_keys/providerkey/{key.pk}/change/",
        f"/admin/api_keys/providerkey/{key.pk}/history/",
        f"/admin/api_keys/providerkey/{key.pk}/delete/",
        f"/admin/api_keys/providerkey/{pair.pk}/change/",
    ):
        r = staff.get(url)
        assert r.status_code == 200, url
        html = r.content.decode()
        for secret in (SECRET, key.ciphertext, pair.ciphertext, "ak-admin-000001", "sk-admin-pair-000002"):
            assert secret not in html, (url, secret[:8])
        assert "ciphertext" not in html.lower()
    html = staff.get(f"/admin/api_keys/providerkey/{key.pk}/change/").content.decode()
    assert key.masked in html and key.public_id in html


def test_it_is_read_only(tenants, make_key, staff):
    key = make_key(secret=SECRET)
    html = staff.get(f"/admin/api_keys/providerkey/{key.pk}/change/").content.decode()
    assert 'name="_save"' not in html and 'name="label"' not in html  # no editable field, no save
    r = staff.post(f"/admin/api_keys/providerkey/{key.pk}/change/", {"label": "changed"})
    assert r.status_code == 403
    assert staff.get("/admin/api_keys/providerkey/add/").status_code == 403
