"""Writes for share links: create, revoke, and count a view. Keyword-only, as every service."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Membership
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, NotFound, PermissionDeniedError
from apps.core.ids import public_id
from apps.generations.models import Generation, State
from apps.sharing import selectors
from apps.sharing.models import ShareLink

# the lifetimes a member may choose, in days; SHARE_LINK_MAX_DAYS caps them (and the default)
EXPIRY_CHOICES_DAYS = (1, 7, 30)


def expiry_choices() -> tuple[int, ...]:
    """The lifetimes on offer now: the standard ones up to ``SHARE_LINK_MAX_DAYS``, and the maximum
    itself when it is not one of them."""
    top = max(1, int(settings.SHARE_LINK_MAX_DAYS))
    return tuple(sorted({d for d in EXPIRY_CHOICES_DAYS if d <= top} | {top}))


def share_create(
    *, by: Membership, generation: Generation, expires_in_days: int = 7, include_prompt: bool = False
) -> tuple[ShareLink, str]:
    """A new link to one finished video of ``by``'s organization. Returns the link and its token,
    which is never stored (only its digest): the caller shows the URL once.

    Members, admins and owners may share any video of the organization (they can all see it);
    viewers may not, since a link shows it outside the team. Refused while the organization has
    sharing switched off."""
    org = by.organization
    if generation.organization_id != org.pk:
        raise NotFound("No such video in this organization.", param="id")
    if not org.sharing_enabled:
        raise PermissionDeniedError(
            "Sharing is switched off for this organization; an owner or admin can switch it on in Settings.",
            code="sharing_disabled",
        )
    if not by.can_generate:
        raise PermissionDeniedError("Viewers cannot share videos.")
    if generation.state != State.COMPLETED or not generation.video_file:
        raise ApplicationError("Only a finished video can be shared.", code="video_not_ready")
    if expires_in_days not in expiry_choices():
        days = ", ".join(str(d) for d in expiry_choices())
        raise ApplicationError(f"expires_in_days must be one of {days}.", param="expires_in_days", code="invalid_value")
    token = secrets.token_urlsafe(32)
    share = ShareLink.objects.create(
        organization=org,
        public_id=public_id("shr"),
        token_digest=selectors.token_digest(token),
        generation=generation,
        include_prompt=include_prompt,
        created_by=by.user,
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    audit_record(
        org=org,
        actor=by.user,
        action="share.created",
        target=share.public_id,
        detail={
            "video": generation.public_id,
            "expires_at": share.expires_at.isoformat(timespec="seconds"),
            "include_prompt": include_prompt,
        },
    )
    return share, token


def share_revoke(*, by: Membership, public_id: str) -> ShareLink:
    """Stop a link now. Owners and admins revoke any; a member revokes the links they made. Revoking
    a link that has already ended is a no-op (not audited again)."""
    share = selectors.share_get(org=by.organization, public_id=public_id)
    if share is None:
        raise NotFound("No such share link in this organization.", param="id")
    if not (by.can_manage or share.created_by_id == by.user_id):
        raise PermissionDeniedError("Only the member who made a link, an owner or an admin can revoke it.")
    if share.revoked_at is None:
        now = timezone.now()
        if ShareLink.objects.filter(pk=share.pk, revoked_at=None).update(revoked_at=now, revoked_by=by.user):
            share.revoked_at, share.revoked_by = now, by.user
            audit_record(
                org=by.organization,
                actor=by.user,
                action="share.revoked",
                target=share.public_id,
                detail={"video": share.generation.public_id if share.generation_id else None},
            )
    return share


def share_viewed(*, share: ShareLink) -> None:
    """Count one opening of the page (one UPDATE; the video's range requests are not counted)."""
    now = timezone.now()
    ShareLink.all_orgs.filter(pk=share.pk).update(view_count=F("view_count") + 1, last_viewed_at=now)
