"""Writes for accounts: sign-up, organizations, memberships and invitations."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts import selectors
from apps.accounts.models import (
    LINK_INVITATION_MAX_USES,
    Invitation,
    InvitationKind,
    Membership,
    Organization,
    Role,
    User,
)
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDeniedError
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


def _member_or_404(*, by: Membership, public_id: str) -> Membership:
    """A member of ``by``'s organization; any other id (another organization's too) is a 404."""
    target = selectors.member_get(org=by.organization, public_id=public_id)
    if target is None:
        raise NotFound("No such member.", param="member")
    return target


def _require_can_act_on(by: Membership, target: Membership) -> None:
    _require_manager(by)
    if not by.can_act_on(target):
        raise PermissionDeniedError("Admins can manage only members and viewers; owners manage everyone.")


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


def invitation_create(
    *, by: Membership, role: str, email: str = "", anyone_with_link: bool = False, max_uses: int | None = None
) -> tuple[Invitation, str]:
    """Create an invitation link. Returns the invitation and the secret token for the link.

    By default the invitation is addressed: only the account with ``email`` can accept it, once.
    ``anyone_with_link=True`` (an explicit choice) makes a link anyone holding it can accept, up to
    ``max_uses`` times (default 1); it cannot make owners. Both expire after INVITATION_TTL_HOURS."""
    _require_manager(by)
    if role not in Role.values:
        raise ApplicationError("Unknown role.", param="role")
    if role == Role.OWNER and by.role != Role.OWNER:
        raise PermissionDeniedError("Only owners can invite owners.")
    email = (email or "").strip().lower()
    if anyone_with_link:
        if email:
            raise ApplicationError(
                "An invitation for anyone with the link has no email address: leave it empty.", param="email"
            )
        if role == Role.OWNER:
            raise ApplicationError("Owners can only be invited by email address.", param="role")
        max_uses = 1 if max_uses is None else max_uses
        if not 1 <= max_uses <= LINK_INVITATION_MAX_USES:
            raise ApplicationError(f"A link can be used 1 to {LINK_INVITATION_MAX_USES} times.", param="max_uses")
        kind = InvitationKind.LINK
    else:
        if not email:
            raise ApplicationError(
                "Enter the email address of the person you invite (only that account can accept), "
                "or choose a link for anyone who has it.",
                param="email",
            )
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ApplicationError("Enter a valid email address.", param="email") from exc
        if max_uses not in (None, 1):
            raise ApplicationError("An invitation by email address is used once.", param="max_uses")
        kind, max_uses = InvitationKind.EMAIL, 1
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=by.organization,
        public_id=public_id("inv"),
        token_digest=hashlib.sha256(token.encode()).hexdigest(),
        kind=kind,
        email=email,
        role=role,
        max_uses=max_uses,
        created_by=by.user,
        expires_at=timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    _audit(
        org=by.organization,
        actor=by.user,
        action="member.invited",
        target=invitation.public_id,
        detail={
            "role": role,
            "kind": kind,
            "email": email or "(anyone with the link)",
            "max_uses": max_uses,
            "expires_at": invitation.expires_at.isoformat(),
        },
    )
    return invitation, token


def invitation_revoke(*, by: Membership, public_id: str) -> None:
    _require_manager(by)
    invitation = selectors.invitation_get(org=by.organization, public_id=public_id)
    if invitation is None:
        raise NotFound("No such invitation.", param="invitation")
    updated = Invitation.objects.filter(
        pk=invitation.pk, revoked_at=None, use_count__lt=F("max_uses"), expires_at__gt=timezone.now()
    ).update(revoked_at=timezone.now())
    if not updated:
        raise ApplicationError("This invitation is no longer pending.", param="invitation")
    _audit(org=by.organization, actor=by.user, action="invitation.revoked", target=public_id)


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the invitation's organization as ``user``: only the invited address for an email
    invitation; anyone for a link, while it has uses left. The use is claimed by one conditional
    UPDATE, so two accounts racing on the last use cannot both get in."""
    invitation = selectors.invitation_by_token(token=token)
    if invitation is None or not invitation.is_pending:
        raise ApplicationError("This invitation link is invalid, expired or already used.", code="invitation_invalid")
    if not invitation.is_for(user):
        raise PermissionDeniedError(
            f"This invitation was sent to {invitation.masked_email}, and you are signed in as {user.email}. "
            "Sign in with the invited address to accept it.",
            code="invitation_other_account",
        )
    org = invitation.organization
    with org_scope(org):
        existing = Membership.objects.filter(organization=org, user=user).first()
        if existing is not None:
            raise Conflict(f"You are already a member of {org.name}.")
        now = timezone.now()
        claimed = Invitation.objects.filter(
            pk=invitation.pk, revoked_at=None, expires_at__gt=now, use_count__lt=F("max_uses")
        ).update(use_count=F("use_count") + 1, accepted_at=now, accepted_by=user)
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
            detail={"role": invitation.role, "invitation": invitation.public_id, "kind": invitation.kind},
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
    target = _member_or_404(by=by, public_id=target_public_id)
    if (role == Role.OWNER or target.role == Role.OWNER) and by.role != Role.OWNER:
        raise PermissionDeniedError("Only owners can grant or take away the owner role.")
    _require_can_act_on(by, target)
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
    target = _member_or_404(by=by, public_id=target_public_id)
    _require_can_act_on(by, target)
    if monthly_limit is not None and monthly_limit < 0:
        raise ApplicationError("A monthly limit cannot be negative.", param="monthly_limit")
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
    target = _member_or_404(by=by, public_id=target_public_id)
    if target.pk != by.pk:
        _require_manager(by)
        if target.role == Role.OWNER and by.role != Role.OWNER:
            raise PermissionDeniedError("Only owners can remove an owner.")
        _require_can_act_on(by, target)
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
    sharing_enabled: bool | None = None,
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
        "sharing_enabled": sharing_enabled,
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
