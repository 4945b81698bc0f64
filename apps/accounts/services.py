"""Writes for accounts: sign-up, organizations, memberships and invitations."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts import selectors
from apps.accounts.models import Invitation, Membership, Organization, Role, User
from apps.core.errors import ApplicationError, Conflict, PermissionDeniedError
from apps.core.ids import public_id
from apps.core.scoping import org_scope


def _audit(**kwargs) -> None:
    from apps.audit.services import audit_record

    audit_record(**kwargs)


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "org"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def _require_manager(by: Membership) -> None:
    if not by.can_manage:
        raise PermissionDeniedError("Only owners and admins can do this.")


@transaction.atomic
def organization_create(*, owner: User, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise ApplicationError("An organization needs a name.", param="name")
    org = Organization.objects.create(name=name[:100], slug=_unique_slug(name))
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER, public_id=public_id("mem"))
    return org


@transaction.atomic
def user_signup(*, email: str, password: str, org_name: str, name: str = "") -> tuple[User, Organization]:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email=email).exists():
        raise Conflict("An account with this email address already exists.", param="email")
    user = User(email=email, name=name)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), param="password") from exc
    user.set_password(password)
    user.save()
    org = organization_create(owner=user, name=org_name)
    return user, org


def invitation_create(*, by: Membership, role: str, email: str = "") -> tuple[Invitation, str]:
    """Create an invitation link. Returns the invitation and the secret token for the link."""
    _require_manager(by)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", param="role")
    if role == Role.OWNER and by.role != Role.OWNER:
        raise PermissionDeniedError("Only owners can invite owners.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=by.organization,
        public_id=public_id("inv"),
        token_digest=hashlib.sha256(token.encode()).hexdigest(),
        email=email.strip().lower(),
        role=role,
        created_by=by.user,
        expires_at=timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    _audit(
        org=by.organization,
        actor=by.user,
        action="member.invited",
        target=invitation.public_id,
        detail={"role": role, "email": invitation.email or "(link)"},
    )
    return invitation, token


def invitation_revoke(*, by: Membership, public_id: str) -> None:
    _require_manager(by)
    updated = Invitation.objects.filter(
        organization=by.organization, public_id=public_id, accepted_at=None, revoked_at=None
    ).update(revoked_at=timezone.now())
    if not updated:
        raise ApplicationError("This invitation is no longer pending.", param="invitation")
    _audit(org=by.organization, actor=by.user, action="invitation.revoked", target=public_id)


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = selectors.invitation_by_token(token=token)
    if invitation is None or not invitation.is_pending:
        raise ApplicationError("This invitation link is invalid, expired or already used.", code="invitation_invalid")
    org = invitation.organization
    with org_scope(org):
        existing = Membership.objects.filter(organization=org, user=user).first()
        if existing is not None:
            raise Conflict(f"You are already a member of {org.name}.")
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
            accepted_at=timezone.now(), accepted_by=user
        )
        if claimed != 1:
            raise ApplicationError("This invitation link was just used.", code="invitation_invalid")
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    organization=org, user=user, role=invitation.role, public_id=public_id("mem")
                )
        except IntegrityError as exc:
            raise Conflict(f"You are already a member of {org.name}.") from exc
        _audit(
            org=org,
            actor=user,
            action="member.joined",
            target=membership.public_id,
            detail={"role": invitation.role, "invitation": invitation.public_id},
        )
        return membership


def _lock_owners(org: Organization) -> int:
    # Lock the organization row so two concurrent demotions cannot both pass the last-owner check.
    Organization.objects.select_for_update().filter(pk=org.pk).first()
    return selectors.owner_count(org=org)


@transaction.atomic
def membership_change_role(*, by: Membership, target_public_id: str, role: str) -> Membership:
    _require_manager(by)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", param="role")
    target = selectors.member_get(org=by.organization, public_id=target_public_id)
    if target is None:
        raise ApplicationError("No such member.", param="member", code="not_found")
    if (role == Role.OWNER or target.role == Role.OWNER) and by.role != Role.OWNER:
        raise PermissionDeniedError("Only owners can grant or take away the owner role.")
    if target.role == Role.OWNER and role != Role.OWNER and _lock_owners(by.organization) <= 1:
        raise ApplicationError("The last owner cannot be demoted. Make someone else an owner first.")
    previous = target.role
    target.role = role
    target.save(update_fields=["role"])
    _audit(
        org=by.organization,
        actor=by.user,
        action="member.role_changed",
        target=target.public_id,
        detail={"member": target.user.email, "from": previous, "to": role},
    )
    return target


@transaction.atomic
def membership_set_limit(*, by: Membership, target_public_id: str, monthly_limit) -> Membership:
    _require_manager(by)
    target = selectors.member_get(org=by.organization, public_id=target_public_id)
    if target is None:
        raise ApplicationError("No such member.", param="member", code="not_found")
    previous = target.monthly_limit
    target.monthly_limit = monthly_limit
    target.save(update_fields=["monthly_limit"])
    _audit(
        org=by.organization,
        actor=by.user,
        action="member.limit_changed",
        target=target.public_id,
        detail={"member": target.user.email, "from": _money(previous), "to": _money(monthly_limit)},
    )
    return target


@transaction.atomic
def membership_remove(*, by: Membership, target_public_id: str) -> None:
    target = selectors.member_get(org=by.organization, public_id=target_public_id)
    if target is None:
        raise ApplicationError("No such member.", param="member", code="not_found")
    if target.pk != by.pk:
        _require_manager(by)
        if target.role == Role.OWNER and by.role != Role.OWNER:
            raise PermissionDeniedError("Only owners can remove an owner.")
    if target.role == Role.OWNER and _lock_owners(by.organization) <= 1:
        raise ApplicationError("The last owner cannot leave or be removed. Make someone else an owner first.")
    left = target.pk == by.pk
    _audit(
        org=by.organization,
        actor=by.user,
        action="member.left" if left else "member.removed",
        target=target.public_id,
        detail={"member": target.user.email, "role": target.role},
    )
    target.delete()


def membership_leave(*, membership: Membership) -> None:
    membership_remove(by=membership, target_public_id=membership.public_id)


@transaction.atomic
def organization_update(
    *,
    by: Membership,
    name: str | None = None,
    monthly_budget=None,
    member_monthly_limit=None,
    retention_days=None,
    fields: tuple[str, ...] = (),
) -> Organization:
    """Update the organization's settings named in ``fields`` (owners and admins)."""
    _require_manager(by)
    org = by.organization
    values = {
        "name": name,
        "monthly_budget": monthly_budget,
        "member_monthly_limit": member_monthly_limit,
        "retention_days": retention_days,
    }
    changes = {}
    for field in fields:
        if getattr(org, field) != values[field]:
            changes[field] = {"from": _money(getattr(org, field)), "to": _money(values[field])}
        setattr(org, field, values[field])
    if "name" in fields and not (org.name or "").strip():
        raise ApplicationError("An organization needs a name.", param="name")
    org.save(update_fields=list(fields))
    if changes:
        _audit(org=org, actor=by.user, action="org.settings_changed", target=org.slug, detail=changes)
    return org


def _money(value):
    return None if value is None else str(value)


def user_update_profile(*, user: User, name: str) -> User:
    user.name = name.strip()
    user.save(update_fields=["name"])
    return user
