"""Writes for provider keys (a team's own provider credentials) and API tokens (MediaRouter's own).

Provider keys are secrets. Plaintext exists only in the arguments of :func:`provider_key_create`
and in what :func:`provider_key_credentials` returns (the one place a stored key is decrypted, used
to build an adapter). It is never put in exceptions, logs, ``last_error`` or reprs: messages from a
provider are scrubbed of the key before they are kept or shown.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import quote

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apps.accounts.models import Membership, Organization, User
from apps.api_keys import crypto, selectors, tokens
from apps.api_keys.authentication import invalidate_identities
from apps.api_keys.models import ApiToken, KeyStatus, ProviderKey
from apps.core.errors import ApplicationError, NotFound, PermissionDeniedError
from apps.core.ids import public_id as make_public_id
from apps.core.scoping import org_scope
from apps.providers import registry
from apps.providers.base import Credentials, ProviderError, VideoProvider

logger = logging.getLogger(__name__)


def _audit(**kwargs) -> None:
    from apps.audit.services import audit_record

    audit_record(**kwargs)


SECRET_FIELDS = ("api_key", "access_key", "secret_key")
MIN_SECRET_LENGTH = 8  # shorter than this, "…last4" would show half of it
MAX_SECRET_LENGTH = 4096
LAST_ERROR_LENGTH = 500  # ProviderKey.last_error max_length

# --- API tokens -----------------------------------------------------------------------------


def api_token_create(*, org: Organization, user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``user`` in ``org``. Returns the row and the token, shown once."""
    if not Membership.all_orgs.filter(organization=org, user=user).exists():
        raise ApplicationError("The user is not a member of this organization.")
    token, prefix, digest = tokens.make_token()
    api_token = ApiToken.objects.create(
        organization=org,
        user=user,
        public_id=make_public_id("tok"),
        name=(name or "API token").strip()[:100],
        prefix=prefix,
        digest=digest,
    )
    _audit(org=org, actor=user, action="token.created", target=api_token.public_id, detail={"name": api_token.name})
    return api_token, token


def api_token_revoke(*, by: Membership, public_id: str) -> ApiToken:
    api_token = ApiToken.objects.filter(organization=by.organization, public_id=public_id).first()
    if api_token is None:
        raise NotFound("No such token.", param="token_id")
    if api_token.user_id != by.user_id and not by.can_manage:
        raise PermissionDeniedError("Only owners and admins can revoke other members' tokens.")
    if ApiToken.objects.filter(pk=api_token.pk, revoked_at=None).update(revoked_at=timezone.now()):
        invalidate_identities()  # this process at once; the others within API_TOKEN_CACHE_SECONDS
        _audit(
            org=by.organization,
            actor=by.user,
            action="token.revoked",
            target=api_token.public_id,
            detail={"name": api_token.name, "owner": api_token.user.email},
        )
    api_token.refresh_from_db()
    return api_token


def api_token_touch(*, token: ApiToken, at) -> None:
    ApiToken.all_orgs.filter(pk=token.pk).update(last_used_at=at)


# --- provider keys: helpers -----------------------------------------------------------------


def _require_manager(by: Membership) -> None:
    if not by.can_manage:
        raise PermissionDeniedError("Only owners and admins can add, test or remove provider keys.")


def _lock_org(org: Organization) -> None:
    """Serialize default-key changes of one organization (the row lock; SQLite's IMMEDIATE
    transactions serialize writers anyway)."""
    Organization.objects.select_for_update().filter(pk=org.pk).first()


def _key_get(*, org: Organization, public_id: str) -> ProviderKey:
    key = selectors.provider_key_get(org=org, public_id=public_id)
    if key is None:
        raise NotFound("No such provider key.", param="key_id")
    return key


def _provider_class(provider: str, *, needs_key: bool = True) -> type[VideoProvider]:
    try:
        cls = registry.get_provider_class(provider or "")
    except registry.UnknownProvider as exc:  # also ProviderDisabled
        raise ApplicationError(str(exc), param="provider", code="unknown_provider") from None
    if needs_key and not cls.requires_key:
        raise ApplicationError(f"{cls.label} needs no key.", param="provider", code="key_not_needed")
    return cls


def _describe_shapes(cls: type[VideoProvider]) -> str:
    return " or ".join(" and ".join(shape) for shape in cls.key_shapes)


@sensitive_variables("fields", "given", "value")
def _credentials_for(cls: type[VideoProvider], fields: dict[str, str | None]) -> tuple[Credentials, tuple[str, ...]]:
    """Fit the given fields to exactly one of the provider's key shapes."""
    given = {name: (value or "").strip() for name, value in fields.items() if (value or "").strip()}
    for name, value in given.items():
        if len(value) < MIN_SECRET_LENGTH or len(value) > MAX_SECRET_LENGTH:
            raise ApplicationError(
                f"The {name} should be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters long.",
                param=name,
                code="invalid_key_format",
            )
        if not value.isascii() or any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ApplicationError(
                f"The {name} contains spaces or characters a key cannot have.", param=name, code="invalid_key_format"
            )
    for shape in cls.key_shapes:
        if set(shape) == set(given):
            return Credentials(**{name: given[name] for name in shape}), shape
    # say which field is missing or extra
    fitting = [shape for shape in cls.key_shapes if set(given) <= set(shape)]
    if fitting:
        param = next(name for name in fitting[0] if name not in given)
    else:
        extra = [name for name in given if not any(name in shape for shape in cls.key_shapes)]
        param = extra[0] if extra else cls.key_shapes[0][0]
    raise ApplicationError(
        f"{cls.label} takes {_describe_shapes(cls)} (one of these, not several).", param=param, code="invalid_key_shape"
    )


def _secrets_of(credentials: Credentials) -> list[str]:
    return [value for value in (credentials.api_key, credentials.access_key, credentials.secret_key) if value]


@sensitive_variables("credentials")
def _scrub(text: str, credentials: Credentials) -> str:
    """Remove the key from a message (providers sometimes echo it), then cut it to size."""
    for secret in _secrets_of(credentials):
        for form in {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}:
            text = text.replace(form, "***")
    return text[:LAST_ERROR_LENGTH]


@dataclass(frozen=True)
class _Check:
    status: str  # valid | unverified (could not check) | invalid (refused)
    error: str = ""
    code: str = ""


@sensitive_variables("credentials", "adapter")
def _check(slug: str, credentials: Credentials) -> _Check:
    """One cheap authenticated call to the provider through its adapter."""
    try:
        adapter = registry.build(slug, credentials)
        adapter.validate_key()
    except registry.UnknownProvider as exc:
        raise ApplicationError(str(exc), param="provider", code="unknown_provider") from None
    except ProviderError as exc:
        message = _scrub(exc.message, credentials)
        if exc.permanent or exc.is_auth_error:
            return _Check(KeyStatus.INVALID, message, exc.code)
        return _Check(KeyStatus.UNVERIFIED, _scrub(f"Could not check the key: {message}", credentials), exc.code)
    return _Check(KeyStatus.VALID)


# --- provider keys: services ----------------------------------------------------------------


@sensitive_variables("api_key", "access_key", "secret_key", "credentials", "plaintext")
def provider_key_create(
    *,
    by: Membership,
    provider: str,
    label: str = "",
    api_key: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    make_default: bool | None = None,
) -> ProviderKey:
    """Store a provider key (owners and admins), after checking it with the provider.

    - The fields must fill one of the provider's ``key_shapes`` (Kling: ``api_key``, or
      ``access_key`` + ``secret_key``); they are encrypted together as one JSON document.
    - A key the provider refuses (a permanent or authentication error) is not saved: the
      ApplicationError carries the provider's reason, with the key scrubbed out.
    - A key that cannot be checked now (network, 5xx, timeout) is saved as ``unverified`` with the
      reason in ``last_error``.
    - The first key of a provider becomes its default; ``make_default=True`` makes it so anyway.
    """
    _require_manager(by)
    org = by.organization
    cls = _provider_class(provider)
    credentials, shape = _credentials_for(cls, {"api_key": api_key, "access_key": access_key, "secret_key": secret_key})
    check = _check(cls.slug, credentials)
    if check.status == KeyStatus.INVALID:
        logger.info("provider key refused: org=%s provider=%s code=%s", org.slug, cls.slug, check.code)
        raise ApplicationError(
            f"{cls.label} refused this key: {check.error}", param=shape[0], code="invalid_provider_key"
        )

    plaintext = json.dumps({name: getattr(credentials, name) for name in shape}, separators=(",", ":"))
    last4 = getattr(credentials, shape[-1])[-4:]
    now = timezone.now()
    with transaction.atomic():
        _lock_org(org)
        siblings = ProviderKey.objects.filter(organization=org, provider=cls.slug)
        has_default = siblings.filter(is_default=True).exists()
        is_default = bool(make_default) or not has_default
        if is_default and has_default:
            siblings.filter(is_default=True).update(is_default=False)
        key = ProviderKey.objects.create(
            organization=org,
            public_id=make_public_id("key"),
            provider=cls.slug,
            label=(label or "").strip()[:100],
            ciphertext=crypto.encrypt(plaintext),
            last4=last4,
            status=check.status,
            last_validated_at=now if check.status == KeyStatus.VALID else None,
            last_error=check.error,
            is_default=is_default,
            created_by=by.user,
        )
    logger.info(
        "provider key added: org=%s key=%s provider=%s status=%s default=%s",
        org.slug,
        key.public_id,
        key.provider,
        key.status,
        key.is_default,
    )
    _audit(
        org=org,
        actor=by.user,
        action="key.added",
        target=key.public_id,
        detail={"provider": key.provider, "label": key.label, "key": key.masked, "status": key.status},
    )
    return key


@sensitive_variables("credentials")
def provider_key_validate(*, by: Membership, public_id: str) -> ProviderKey:
    """Check a stored key with its provider now (owners and admins).

    Valid: ``valid``, error cleared. Refused: ``invalid`` with the reason. Could not check
    (transient): the status is kept and ``last_error`` says why.
    """
    _require_manager(by)
    key = _key_get(org=by.organization, public_id=public_id)
    credentials = provider_key_credentials(key=key)
    check = _check(key.provider, credentials)
    changes: dict = {"last_error": check.error}
    if check.status != KeyStatus.UNVERIFIED:
        changes.update(status=check.status, last_validated_at=timezone.now())
    if not ProviderKey.objects.filter(organization=by.organization, pk=key.pk).update(**changes):
        raise NotFound("No such provider key.", param="key_id")
    for field, value in changes.items():
        setattr(key, field, value)
    logger.info("provider key checked: key=%s provider=%s result=%s", key.public_id, key.provider, check.status)
    _audit(
        org=by.organization,
        actor=by.user,
        action="key.validated",
        target=key.public_id,
        detail={"provider": key.provider, "key": key.masked, "result": check.status},
    )
    return key


def provider_key_set_default(*, by: Membership, public_id: str) -> ProviderKey:
    """Make this key the one used for its provider (owners and admins)."""
    _require_manager(by)
    org = by.organization
    with transaction.atomic():
        _lock_org(org)
        key = _key_get(org=org, public_id=public_id)
        if not key.is_default:
            # one statement clears the old default, the next sets the new one: the partial unique
            # constraint holds after each, and the transaction makes the swap atomic
            ProviderKey.objects.filter(organization=org, provider=key.provider, is_default=True).update(
                is_default=False
            )
            ProviderKey.objects.filter(organization=org, pk=key.pk).update(is_default=True)
            key.is_default = True
            _audit(
                org=org,
                actor=by.user,
                action="key.default_changed",
                target=key.public_id,
                detail={"provider": key.provider, "key": key.masked},
            )
    return key


_PROMOTION_ORDER = {KeyStatus.VALID: 0, KeyStatus.UNVERIFIED: 1, KeyStatus.INVALID: 2}


def provider_key_delete(*, by: Membership, public_id: str) -> None:
    """Delete a key (owners and admins). If it was the default, another key of the same provider
    (a valid one first, then the oldest) becomes the default."""
    _require_manager(by)
    org = by.organization
    with transaction.atomic():
        _lock_org(org)
        key = _key_get(org=org, public_id=public_id)
        key.delete()
        if key.is_default:
            rest = list(ProviderKey.objects.filter(organization=org, provider=key.provider))
            if rest:
                successor = min(rest, key=lambda k: (_PROMOTION_ORDER.get(k.status, 3), k.created_at))
                ProviderKey.objects.filter(organization=org, pk=successor.pk).update(is_default=True)
    logger.info("provider key deleted: org=%s key=%s provider=%s", org.slug, public_id, key.provider)
    _audit(
        org=org,
        actor=by.user,
        action="key.deleted",
        target=public_id,
        detail={"provider": key.provider, "label": key.label, "key": key.masked},
    )


def provider_key_mark_invalid(*, key: ProviderKey, error: str) -> None:
    """Record that the provider refused this key during a job (the engine calls this on an
    authentication error). ``error`` is scrubbed of the key before it is stored."""
    try:
        message = _scrub(error or "The provider refused the key.", provider_key_credentials(key=key))
    except crypto.DecryptionError:
        message = (error or "The provider refused the key.")[:LAST_ERROR_LENGTH]
    now = timezone.now()
    with org_scope(key.organization_id):
        ProviderKey.objects.filter(organization=key.organization_id, pk=key.pk).update(
            status=KeyStatus.INVALID, last_error=message, last_validated_at=now
        )
    key.status, key.last_error, key.last_validated_at = KeyStatus.INVALID, message, now
    logger.warning("provider key marked invalid: key=%s provider=%s", key.public_id, key.provider)
    with org_scope(key.organization_id):
        _audit(
            org=key.organization_id,
            action="key.marked_invalid",
            target=key.public_id,
            detail={"provider": key.provider, "key": key.masked, "error": message[:200]},
        )


@sensitive_variables("plaintext", "data")
def provider_key_credentials(*, key: ProviderKey) -> Credentials:
    """Decrypt a stored key for an adapter: the only place plaintext is read back.

    Raises :class:`apps.api_keys.crypto.DecryptionError` (which carries no secret) when no key in
    FERNET_KEYS can read it.
    """
    plaintext = crypto.decrypt(key.ciphertext)
    try:
        data = json.loads(plaintext)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Credentials(api_key=plaintext)  # a bare key string
    return Credentials(**{name: (data.get(name) or None) for name in SECRET_FIELDS})
