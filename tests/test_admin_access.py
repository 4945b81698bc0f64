import pytest

pytestmark = pytest.mark.django_db


def test_admin_requires_staff(tenants):
    charlie = tenants.client_for(tenants.charlie)
    for url in ("/admin/", "/admin/accounts/organization/", "/admin/api_keys/providerkey/"):
        r = charlie.get(url)
        assert r.status_code == 302 and "/admin/login/" in r["Location"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/",
        "/admin/accounts/organization/",
        "/admin/accounts/membership/",
        "/admin/accounts/invitation/",
        "/admin/api_keys/providerkey/",
        "/admin/api_keys/apitoken/",
    ],
)
def test_operator_sees_every_tenant_in_admin(tenants, url, django_user_model):
    staff = django_user_model.objects.create_superuser("ops@example.com", "pw")
    client = tenants.client_for(staff)
    r = client.get(url)
    assert r.status_code == 200
    r = client.get(url + "?q=alice")
    assert r.status_code == 200


def test_admin_org_search_and_detail(tenants, django_user_model):
    staff = django_user_model.objects.create_superuser("ops@example.com", "pw")
    client = tenants.client_for(staff)
    r = client.get("/admin/accounts/organization/?q=charlie")
    assert b"Charlie Studio" in r.content and b"Alice Films" not in r.content
    r = client.get(f"/admin/accounts/organization/{tenants.org_a.pk}/change/")
    assert r.status_code == 200 and b"bob@example.com" in r.content
