from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone

from apps.core.scoping import TenantScopedModel


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with an email address; belongs to organizations through memberships."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the operators' admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email


class Organization(models.Model):
    """The tenant. Everything a team owns hangs off one of these."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    monthly_budget = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="USD per calendar month; empty = no limit."
    )
    member_monthly_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Default USD per member per calendar month; empty = no limit.",
    )
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Delete stored videos older than this; empty = keep forever."
    )
    sharing_enabled = models.BooleanField(
        default=True,
        db_default=True,  # old code (a rolling deploy, the migration test) inserts without it
        help_text="Members may share videos by link with people outside the organization. Off: no link "
        "opens and none can be made; links neither expired nor revoked open again when it is back on.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(TenantScopedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    public_id = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    monthly_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per calendar month for this member; empty = the organization's default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage keys, members and budgets."""
        return self.has_role(Role.ADMIN)

    def can_act_on(self, target: Membership) -> bool:
        """Whether this member may change ``target``'s role or monthly limit, remove it, or revoke its
        API tokens: owners act on everyone; admins only on members and viewers (not on owners, other
        admins or themselves); members and viewers on nobody."""
        if self.role == Role.OWNER:
            return True
        return self.role == Role.ADMIN and target.role in (Role.MEMBER, Role.VIEWER)

    @property
    def can_generate(self) -> bool:
        return self.has_role(Role.MEMBER)

    def effective_monthly_limit(self) -> Decimal | None:
        return self.monthly_limit if self.monthly_limit is not None else self.organization.member_monthly_limit


class InvitationKind(models.TextChoices):
    EMAIL = "email", "Email address"
    LINK = "link", "Anyone with the link"


# An "anyone with the link" invitation may be used at most this many times.
LINK_INVITATION_MAX_USES = 50


class Invitation(TenantScopedModel):
    """An invitation link, valid until it expires, is revoked or has been used ``max_uses`` times.

    ``email`` invitations (the default) can be accepted only by the account with that email address
    (case-insensitive), once. ``link`` invitations, which the creator must choose explicitly, can be
    accepted by anyone holding the link, up to ``max_uses`` times."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    public_id = models.CharField(max_length=40, unique=True)
    token_digest = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=10, choices=InvitationKind.choices, default=InvitationKind.EMAIL)
    email = models.EmailField(blank=True, help_text="The only account that may accept (email invitations).")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    max_uses = models.PositiveSmallIntegerField(default=1)
    use_count = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True, help_text="The latest acceptance.")
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="link", email="") | (models.Q(kind="email", max_uses=1) & ~models.Q(email="")),
                name="invitation_kind_email",
            ),
            models.CheckConstraint(
                condition=models.Q(max_uses__gte=1, use_count__lte=models.F("max_uses")),
                name="invitation_uses_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation to {self.organization} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return self.use_count < self.max_uses and self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.use_count >= self.max_uses:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_link(self) -> bool:
        return self.kind == InvitationKind.LINK

    def is_for(self, user) -> bool:
        """Whether ``user`` may accept: anyone for a link invitation, else only the invited address."""
        if self.is_link:
            return True
        return bool(self.email) and self.email.casefold() == (user.email or "").casefold()

    @property
    def masked_email(self) -> str:
        """The invited address with most of its local part hidden (``d•••@example.com``)."""
        local, _, domain = self.email.partition("@")
        return f"{local[:1]}•••@{domain}" if domain else ""
