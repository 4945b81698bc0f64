from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.scoping import TenantScopedModel


class KeyStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class ProviderKey(TenantScopedModel):
    """A team's own key for one provider. Only ciphertext is stored; only ``…last4`` is ever shown."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="provider_keys")
    public_id = models.CharField(max_length=40, unique=True)
    provider = models.CharField(max_length=20)
    label = models.CharField(max_length=100, blank=True)
    ciphertext = models.TextField(editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    status = models.CharField(max_length=12, choices=KeyStatus.choices, default=KeyStatus.UNVERIFIED)
    last_validated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    is_default = models.BooleanField(default=False)
    # the key's non-secret fields (a Vertex location, a gateway base URL), shown in Settings
    details = models.JSONField(default=dict, blank=True, editable=False)
    # the provider's callback signing secret for this key (Replicate's ``whsec_…``), Fernet-encrypted;
    # fetched once (services.provider_key_callback_secret), never shown
    callback_secret_ciphertext = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "-is_default", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider"],
                condition=models.Q(is_default=True),
                name="one_default_key_per_provider",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} key …{self.last4}"

    def __repr__(self) -> str:
        return f"<ProviderKey {self.public_id} {self.provider} …{self.last4}>"

    @property
    def masked(self) -> str:
        return f"…{self.last4}"

    @property
    def provider_label(self) -> str:
        from apps.providers.registry import PROVIDERS

        return PROVIDERS.get(self.provider, (self.provider,))[0]


class ApiToken(TenantScopedModel):
    """MediaRouter's own API token: identity, so hashed (never encrypted). Shown once as ``mr_...``."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    public_id = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (mr_{self.prefix}…)"

    def __repr__(self) -> str:
        return f"<ApiToken {self.public_id} mr_{self.prefix}…>"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
