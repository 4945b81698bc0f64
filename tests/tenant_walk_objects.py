"""Alice's objects for the tenant walk (tests/test_tenant_walk.py), one per URL kwarg kind.

Every feature that adds a URL with an object id adds its kwarg here.
"""

from __future__ import annotations


def build(tenants) -> dict[str, str]:
    from apps.api_keys.models import ApiToken

    objects: dict[str, str] = {}
    token = ApiToken.all_orgs.filter(organization=tenants.org_a).first()
    objects["token_id"] = token.public_id
    return objects
