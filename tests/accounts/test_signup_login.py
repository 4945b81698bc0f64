import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.models import Membership, Organization, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_creates_user_and_owned_org_and_logs_in(client):
    r = client.post(
        reverse("signup"),
        {"email": "New@Example.com", "name": "Nia", "password": PASSWORD, "org_name": "Nia's Pictures"},
    )
    org = Organization.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/o/{org.slug}/"
    user = User.objects.get()
    assert user.email == "new@example.com"
    assert Membership.all_orgs.get().role == "owner"
    assert client.get(r["Location"], follow=True).status_code == 200


def test_signup_rejects_weak_password_and_duplicate_email(client, tenants):
    r = client.post(reverse("signup"), {"email": "x@example.com", "password": "12345678", "org_name": "X"})
    assert r.status_code == 200 and b"too common" in r.content
    r = client.post(reverse("signup"), {"email": "alice@example.com", "password": PASSWORD, "org_name": "X"})
    assert b"already exists" in r.content
    assert User.objects.count() == 3


def test_login_with_email_and_logout(client, tenants):
    r = client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert r.status_code == 302
    r = client.get("/")
    assert r.status_code == 302 and r["Location"] == f"/o/{tenants.org_a.slug}/"
    client.post(reverse("logout"))
    assert client.get(f"/o/{tenants.org_a.slug}/").status_code == 302


def test_wrong_password_is_refused(client, tenants):
    r = client.post(reverse("login"), {"username": "alice@example.com", "password": "nope"})
    assert r.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_change(tenants):
    client = tenants.client_for(tenants.alice)
    r = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a much better secret 42",
            "new_password2": "a much better secret 42",
        },
    )
    assert r.status_code == 302
    tenants.alice.refresh_from_db()
    assert tenants.alice.check_password("a much better secret 42")


def test_password_reset_sends_mail_and_link_works(client, tenants):
    r = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert r.status_code == 302
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password/reset/" in line).strip()
    path = link.split("://", 1)[1].split("/", 1)[1]
    r = client.get("/" + path, follow=True)
    assert r.status_code == 200
    r = client.post(
        r.redirect_chain[-1][0], {"new_password1": "brand new secret 99", "new_password2": "brand new secret 99"}
    )
    assert r.status_code == 302
    tenants.alice.refresh_from_db()
    assert tenants.alice.check_password("brand new secret 99")


def test_user_in_several_orgs_switches_between_them(tenants):
    client = tenants.client_for(tenants.alice)
    r = client.post(reverse("org-list"), {"name": "Second Org"})
    second = Organization.objects.get(name="Second Org")
    assert r["Location"] == f"/o/{second.slug}/"
    page = client.get(f"/o/{tenants.org_a.slug}/", follow=True).content.decode()
    # the switcher lists both organizations, each a link into its own URL space
    assert f'href="/o/{second.slug}/"' in page and f'href="/o/{tenants.org_a.slug}/"' in page
    assert client.get(f"/o/{second.slug}/", follow=True).status_code == 200


def test_org_slugs_are_unique(tenants):
    client = tenants.client_for(tenants.charlie)
    client.post(reverse("org-list"), {"name": "Alice Films"})
    slugs = set(Organization.objects.filter(name="Alice Films").values_list("slug", flat=True))
    assert len(slugs) == 2


def test_login_attempts_are_throttled(client, tenants, settings):
    """After LOGIN_FAILURE_LIMIT failures for one account from one address, even the right
    password is refused for the cool-off period (django-axes)."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        r = client.post(reverse("login"), {"username": "alice@example.com", "password": "guess"})
        assert r.status_code == 200
    r = client.post(reverse("login"), {"username": "alice@example.com", "password": "guess"})
    assert r.status_code == 429  # the limit-th failure locks the account out from this address
    r = client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert r.status_code == 429
    assert "_auth_user_id" not in client.session
    # another account is not locked by alice's attacker
    r = client.post(reverse("login"), {"username": "bob@example.com", "password": PASSWORD})
    assert r.status_code == 302
