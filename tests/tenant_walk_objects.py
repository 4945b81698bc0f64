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
    video = _alice_video(tenants)
    objects["video_id"] = video.public_id
    objects.update(_alice_callback(video))
    objects["token"] = _alice_input_url_token(tenants, video)
    objects.update(_alice_webhook(tenants))
    objects.update(_alice_share(tenants, video))
    objects["batch_id"] = _alice_batch(tenants)
    return objects


def _alice_share(tenants, video) -> dict[str, str]:
    """One live share link of alice's video (without its prompt). ``share_id`` is an object id
    (charlie: 404 on the revoke page and ``DELETE /v1/shares/{id}``). ``share_token`` is a
    capability, like ``token`` above: whoever holds it sees the video, charlie included, so the
    walk checks that its public page carries none of alice's ids, prompt or organization."""
    from apps.accounts.models import Membership
    from apps.core.scoping import org_scope
    from apps.sharing import services

    with org_scope(tenants.org_a):
        alice = Membership.objects.select_related("organization", "user").get(user=tenants.alice)
        share, token = services.share_create(by=alice, generation=video, include_prompt=False)
    return {"share_id": share.public_id, "share_token": token}


def _alice_batch(tenants) -> str:
    """A batch of alice's with one finished item (so its zip exists)."""
    from apps.accounts.models import Membership
    from apps.core.scoping import org_scope
    from apps.generations import batches
    from apps.generations.resolve import GenerationRequest
    from tests.generations.helpers import run_steps

    with org_scope(tenants.org_a):
        batch = batches.batch_create(
            by=Membership.objects.select_related("organization", "user").get(user=tenants.alice),
            requests=[GenerationRequest(model="sandbox-video", prompt="alice's secret batch", seconds=2)],
            concurrency=1,
        )
        run_steps(batch.items.get())
    return batch.public_id


def _alice_webhook(tenants) -> dict[str, str]:
    """One of alice's webhook endpoints with one delivery (a test event)."""
    from apps.accounts.models import Membership
    from apps.core.scoping import org_scope
    from apps.webhooks import services

    with org_scope(tenants.org_a):
        alice = Membership.objects.get(user=tenants.alice)
        endpoint, _secret = services.endpoint_create(by=alice, url="http://127.0.0.1:9/alice-hooks")
        delivery = services.endpoint_test(by=alice, public_id=endpoint.public_id)
    return {"webhook_id": endpoint.public_id, "delivery_id": delivery.public_id}


def _alice_input_url_token(tenants, video) -> str:
    """``/inputs/<token>/``: a signed, expiring URL of one stored input image, handed to the
    supplier that fetches it (a capability, like an S3 presigned URL: whoever holds it may read
    that one image until it expires). The walk signs the key of an input alice never uploaded."""
    from apps.generations import inputs, storage

    return inputs.signed_token(storage.input_key(tenants.org_a.slug, video.public_id, "png"))


def _alice_callback(video) -> dict[str, str]:
    """``/hooks/providers/<provider>/<callback_token>``: a provider callback URL of alice's video
    (only its digest is stored). The token alone reaches it, never an organization's session."""
    from apps.generations import callbacks
    from apps.generations.models import Generation

    token = "walk-callback-token-alice-0000000000000000"
    Generation.all_orgs.filter(pk=video.pk).update(callback_digest=callbacks.token_digest(token))
    # the slug is no secret of alice's (it is in /v1/providers): a placeholder the leak check ignores
    return {"provider": "walk-provider", "callback_token": token}


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
