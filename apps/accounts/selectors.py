"""Reads for accounts. Membership lookups by user cross organizations by nature, so they use the
explicitly unscoped manager and always filter on the user."""

from __future__ import annotations

import hashlib

from apps.accounts.models import Invitation, Membership, Organization, User


def membership_for(*, user: User, org_slug: str) -> Membership | None:
    return (
        Membership.all_orgs.select_related("organization", "user")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )


def memberships_for_user(*, user: User) -> list[Membership]:
    return list(Membership.all_orgs.select_related("organization").filter(user=user).order_by("organization__name"))


def member_list(*, org: Organization) -> list[Membership]:
    return list(Membership.objects.filter(organization=org).select_related("user").order_by("created_at"))


def member_get(*, org: Organization, public_id: str) -> Membership | None:
    return Membership.objects.filter(organization=org, public_id=public_id).select_related("user").first()


def invitation_list(*, org: Organization) -> list[Invitation]:
    return list(Invitation.objects.filter(organization=org).select_related("created_by", "accepted_by"))


def invitation_get(*, org: Organization, public_id: str) -> Invitation | None:
    return Invitation.objects.filter(organization=org, public_id=public_id).first()


def invitation_by_token(*, token: str) -> Invitation | None:
    """An invitation link is valid across organizations by design: looked up by its secret."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Invitation.all_orgs.select_related("organization").filter(token_digest=digest).first()


def owner_count(*, org: Organization) -> int:
    return Membership.objects.filter(organization=org, role="owner").count()
