"""A fuller team for role tests: org A with two owners, two admins, a member and a viewer, each
with an API token. Built on the shared ``tenants`` fixture (alice owns A, bob is a member of A,
charlie owns B)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Membership, Role, User
from apps.api_keys import services as key_services
from apps.api_keys.models import ApiToken
from apps.core.ids import public_id
from apps.core.scoping import org_scope
from tests.conftest import PASSWORD


@dataclass
class Team:
    tenants: object
    users: dict[str, User]  # name -> user
    tokens: dict[str, str]  # name -> API token (the secret)

    @property
    def org(self):
        return self.tenants.org_a

    def client(self, name: str) -> Client:
        return self.tenants.client_for(self.users[name])

    def membership(self, name: str) -> Membership:
        return Membership.all_orgs.select_related("user").get(organization=self.org, user=self.users[name])

    def token_row(self, name: str) -> ApiToken:
        return ApiToken.all_orgs.get(organization=self.org, user=self.users[name])

    def url(self, route: str, **kwargs) -> str:
        return reverse(route, kwargs={"org_slug": self.org.slug, **kwargs})


# who is who in org A, by role
ROLES = {
    "alice": Role.OWNER,
    "olga": Role.OWNER,
    "adam": Role.ADMIN,
    "ada": Role.ADMIN,
    "bob": Role.MEMBER,
    "vera": Role.VIEWER,
}


@pytest.fixture
def team(tenants) -> Team:
    users = {"alice": tenants.alice, "bob": tenants.bob}
    with org_scope(tenants.org_a):
        for name, role in ROLES.items():
            if name in users:
                continue
            users[name] = User.objects.create_user(f"{name}@example.com", PASSWORD, name=name.title())
            Membership.objects.create(
                organization=tenants.org_a, user=users[name], role=role, public_id=public_id("mem")
            )
    tokens = {"alice": tenants.alice_token, "bob": tenants.bob_token}
    for name, user in users.items():
        if name not in tokens:
            _, tokens[name] = key_services.api_token_create(org=tenants.org_a, user=user, name=name)
    return Team(tenants=tenants, users=users, tokens=tokens)
