"""Alice's objects for the tenant walk (tests/test_tenant_walk.py), one per URL kwarg kind.

Every feature that adds a URL with an object id adds its kwarg here.
"""

from __future__ import annotations


def build(tenants) -> dict[str, str]:
    from apps.api_keys import crypto
    from apps.api_keys.models import ApiToken, ProviderKey

    objects: dict[str, str] = {}
    token = ApiToken.all_orgs.filter(organization=tenants.org_a).first()
    objects["token_id"] = token.public_id
    key = ProviderKey.all_orgs.create(
        organization=tenants.org_a,
        public_id="key_alice0walk0000000000000",
        provider="sora",
        label="alice walk key",
        ciphertext=crypto.encrypt('{"api_key":"sk-alice-walk-0000"}'),
        last4="0000",
        is_default=True,
        created_by=tenants.alice,
    )
    objects["key_id"] = key.public_id
    objects["video_id"] = _alice_video(tenants).public_id
    return objects


def _alice_video(tenants):
    """A completed, stored video of alice's (sandbox), as the engine leaves it."""
    from apps.core.scoping import org_scope
    from apps.generations import services
    from tests.generations.helpers import run_steps

    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.alice,
            request=services.GenerationRequest(model="sandbox-video", prompt="alice's secret video", seconds=2),
        )
    return run_steps(gen)
