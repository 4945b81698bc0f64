"""Reads for share links. Org pages and the API pass the organization; the public page finds a
link by its token's digest only (like an API token or an invitation link: the token is the proof)."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Organization
from apps.generations.models import State
from apps.sharing.models import ShareLink


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def share_list(*, org: Organization, generation=None) -> QuerySet[ShareLink]:
    """The organization's links (one video's, given ``generation``), newest first, with their maker."""
    qs = ShareLink.objects.filter(organization=org).select_related("created_by", "generation")
    if generation is not None:
        qs = qs.filter(generation=generation)
    return qs


def share_get(*, org: Organization, public_id: str) -> ShareLink | None:
    return share_list(org=org).filter(public_id=public_id).first()


def share_open(*, token: str) -> ShareLink | None:
    """The link ``token`` opens, with its video and organization, or None: unknown, revoked, expired,
    sharing switched off for the organization, or a video that is no longer there to show.

    The token is never compared as such: its SHA-256 is looked up through the unique index, so
    timing tells nothing about how much of a guess was right. Every refusal is the same None."""
    if not token or len(token) > 200:
        return None
    share = (
        ShareLink.all_orgs.select_related("generation", "organization")
        .filter(token_digest=token_digest(token), revoked_at=None, expires_at__gt=timezone.now())
        .first()
    )
    if share is None or not share.organization.sharing_enabled:
        return None
    gen = share.generation
    if gen is None or gen.deleted_at is not None or gen.state != State.COMPLETED or not gen.video_file:
        return None
    return share
