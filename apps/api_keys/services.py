"""Writes for provider keys (a team's own provider credentials) and API tokens (MediaRouter's own).

Provider keys are secrets. Plaintext exists only in the arguments of :func:`provider_key_create`
and in what :func:`provider_key_credentials` returns (the one place a stored key is decrypted, used
to build an adapter). It is never put in exceptions, logs, ``last_error`` or reprs: messages from a
provider are scrubbed of the key before they are kept or shown.
"""

from __future__ import annotations

import base64
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
from apps.providers import http, registry
from apps.providers.base import Credentials, KeyField, ProviderError, VideoProvider

logger = logging.getLogger(__name__)


def _audit(**kwargs) -> None:
    from apps.audit.services import audit_record

    audit_record(**kwargs)


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
    if api_token.user_id != by.user_id:
        if not by.can_manage:
            raise PermissionDeniedError("Only owners and admins can revoke other members' tokens.")
        # admins act on members and viewers only: not on an owner's or another admin's tokens
        holder = Membership.objects.filter(organization=by.organization, user_id=api_token.user_id).first()
        if holder is not None and not by.can_act_on(holder):
            raise PermissionDeniedError("Admins can revoke only their own tokens and those of members and viewers.")
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


def _clean_field(cls: type[VideoProvider], field: KeyField, value: str) -> str:
    """One credential field, checked by its declared kind; raises ApplicationError(param=name)."""
    name = field.name
    if len(value) < field.min_length or len(value) > field.max_length:
        raise ApplicationError(
            f"The {field.label.lower()} should be {field.min_length} to {field.max_length} characters long.",
            param=name,
            code="invalid_key_format",
        )
    if field.kind == "choice":
        allowed = [choice for choice, _label in field.choices]
        if value not in allowed:
            raise ApplicationError(
                f"The {field.label.lower()} must be one of {', '.join(allowed)}.", param=name, code="invalid_key_format"
            )
    elif field.kind == "url":
        try:
            http.check_tenant_url(value)
        except ProviderError as exc:
            raise ApplicationError(exc.message, param=name, code="unsafe_url") from None
    elif field.kind == "textarea":
        if not value.isprintable() and any(not (ch.isprintable() or ch in "\r\n\t") for ch in value):
            raise ApplicationError(
                f"The {field.label.lower()} contains characters it cannot have.", param=name, code="invalid_key_format"
            )
    elif not value.isascii() or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ApplicationError(
            f"The {field.label.lower()} contains spaces or characters a key cannot have.",
            param=name,
            code="invalid_key_format",
        )
    return value


@sensitive_variables("fields", "given", "value", "credentials")
def _credentials_for(cls: type[VideoProvider], fields: dict[str, str | None]) -> tuple[Credentials, tuple[str, ...]]:
    """Fit the given fields to exactly one of the provider's key shapes (plus its optional fields)."""
    declared = {f.name: f for f in cls.key_fields}
    given = {name: (value or "").strip() for name, value in fields.items() if (value or "").strip()}
    for name in given:
        if name not in declared:
            raise ApplicationError(
                f"{cls.label} takes {_describe_shapes(cls)}, not {name}.", param=name, code="invalid_key_shape"
            )
    given = {name: _clean_field(cls, declared[name], value) for name, value in given.items()}
    optional = {f.name for f in cls.key_fields if not f.required}
    required_given = set(given) - optional
    for shape in cls.key_shapes:
        if set(shape) - optional <= set(given) and required_given <= set(shape):
            credentials = Credentials(**given)
            problems = cls.check_credentials(credentials)
            if problems:
                param, message = next(iter(problems.items()))
                raise ApplicationError(message, param=param, code="invalid_key_format")
            return credentials, shape
    # say which field is missing or extra
    fitting = [shape for shape in cls.key_shapes if required_given <= set(shape)]
    if fitting:
        param = next(name for name in fitting[0] if name not in given)
    else:
        param = cls.key_shapes[0][0]
    raise ApplicationError(
        f"{cls.label} takes {_describe_shapes(cls)} (one of these, not several).", param=param, code="invalid_key_shape"
    )


def _encoded_forms(secret: str) -> set[str]:
    """The ways a provider may echo a secret: as is, URL- or JSON-escaped, and base64 (standard
    and URL-safe) at each of the three byte alignments it can take inside a longer encoded string
    (a Kling JWT carries the access key base64url-encoded in its payload)."""
    forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    raw = secret.encode()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + raw).decode().rstrip("=")
            # drop the characters that mix the padding or the following bytes into the secret
            start = (pad * 8 + 5) // 6 + (1 if pad else 0)
            stable = encoded[start : len(encoded) - 2]
            if len(stable) >= MIN_SECRET_LENGTH:
                forms.add(stable)
    return {form for form in forms if form}


def _secrets_of(credentials: Credentials, cls: type[VideoProvider] | None = None) -> list[str]:
    if cls is not None:
        names = set(cls.secret_field_names())
        return [value for name, value in credentials.as_dict().items() if name in names]
    return list(credentials.as_dict().values())


@sensitive_variables("credentials")
def _scrub(text: str, credentials: Credentials, cls: type[VideoProvider] | None = None) -> str:
    """Remove the key from a message (providers sometimes echo it, also encoded), then cut it."""
    for secret in sorted(_secrets_of(credentials, cls), key=len, reverse=True):
        for form in sorted(_encoded_forms(secret), key=len, reverse=True):
            text = text.replace(form, "***")
    return text[:LAST_ERROR_LENGTH]


@dataclass(frozen=True)
class _Check:
    status: str  # valid | unverified (could not check) | invalid (refused)
    error: str = ""
    code: str = ""
    facts: dict | None = None  # what the key may use, where the provider says (key_details_refresh)


@sensitive_variables("credentials", "adapter")
def _check(slug: str, credentials: Credentials) -> _Check:
    """One cheap authenticated call to the provider through its adapter."""
    try:
        adapter = registry.build(slug, credentials)
        adapter.validate_key()
    except registry.UnknownProvider as exc:
        raise ApplicationError(str(exc), param="provider", code="unknown_provider") from None
    except ProviderError as exc:
        cls = registry.get_provider_class(slug, allow_disabled=True)
        message = _scrub(exc.message, credentials, cls)
        if exc.permanent or exc.is_auth_error:
            return _Check(KeyStatus.INVALID, message, exc.code)
        return _Check(KeyStatus.UNVERIFIED, _scrub(f"Could not check the key: {message}", credentials, cls), exc.code)
    return _Check(KeyStatus.VALID, facts=_key_facts(adapter))


def _key_facts(adapter: VideoProvider) -> dict | None:
    """``adapter.key_details_refresh()``, or None when the provider has nothing to say or could
    not say it now (the facts recorded before are kept)."""
    try:
        return adapter.key_details_refresh()
    except ProviderError:
        return None


@sensitive_variables("credentials")
def provider_key_refresh_details(*, key: ProviderKey) -> bool:
    """Check again what a key may use (the daily task, for providers that report it) and keep it
    with the key's details. False when nothing changed or it could not be checked."""
    try:
        adapter = registry.build(key.provider, provider_key_credentials(key=key), allow_disabled=True)
    except (registry.UnknownProvider, ProviderError, crypto.DecryptionError):
        return False
    facts = _key_facts(adapter)
    if not facts:
        return False
    details = {**(key.details or {}), **facts}
    if details == key.details:
        return False
    ProviderKey.all_orgs.filter(pk=key.pk).update(details=details)
    key.details = details
    return True


# --- provider keys: services ----------------------------------------------------------------


@sensitive_variables("fields", "credentials", "plaintext")
def provider_key_create(
    *,
    by: Membership,
    provider: str,
    label: str = "",
    make_default: bool | None = None,
    **fields: str | None,
) -> ProviderKey:
    """Store a provider key (owners and admins), after checking it with the provider.

    - ``fields`` are the provider's credential fields (``KeyField`` names: ``api_key``; Kling's
      ``access_key`` + ``secret_key``; Vertex's ``service_account_json`` + ``location``; an
      optional ``base_url``). They must fill one of the provider's ``key_shapes``; they are
      encrypted together as one JSON document. Non-secret fields are also kept readable in
      ``ProviderKey.details`` so Settings can show them.
    - A key the provider refuses (a permanent or authentication error) is not saved: the
      ApplicationError carries the provider's reason, with the key scrubbed out.
    - A key that cannot be checked now (network, 5xx, timeout) is saved as ``unverified`` with the
      reason in ``last_error``.
    - The first key of a provider becomes its default; ``make_default=True`` makes it so anyway.
    """
    _require_manager(by)
    org = by.organization
    cls = _provider_class(provider)
    credentials, shape = _credentials_for(cls, dict(fields))
    check = _check(cls.slug, credentials)
    if check.status == KeyStatus.INVALID:
        logger.info("provider key refused: org=%s provider=%s code=%s", org.slug, cls.slug, check.code)
        raise ApplicationError(
            f"{cls.label} refused this key: {check.error}", param=shape[0], code="invalid_provider_key"
        )

    plaintext = json.dumps(credentials.as_dict(), separators=(",", ":"))
    secret_names = [name for name in shape if name in cls.secret_field_names()] or list(shape)
    last4 = _last4(cls, credentials.get(secret_names[-1]) or "")
    details = {name: value for name, value in credentials.as_dict().items() if name not in cls.secret_field_names()}
    details.update(check.facts or {})
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
            details=details,
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
        detail={
            "provider": key.provider,
            "label": key.label,
            "key": key.masked,
            "status": key.status,
            **({"settings": details} if details else {}),
        },
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
    if check.facts:
        changes["details"] = {**(key.details or {}), **check.facts}
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
    return Credentials(**{str(name): value for name, value in data.items() if isinstance(value, str) and value})


@sensitive_variables("secret")
def provider_key_callback_secret(*, key: ProviderKey, adapter: VideoProvider | None = None) -> str | None:
    """The key's callback signing secret (Replicate's ``whsec_…``), kept encrypted on the key.

    Stored: decrypted and returned. Not stored and an ``adapter`` given (built with this key):
    fetched once with ``adapter.callback_secret()`` and stored encrypted (the first writer wins).
    None when the provider needs no secret, or none is stored and no adapter was given (the
    callback endpoint never fetches). Raises ProviderError from the fetch and
    :class:`apps.api_keys.crypto.DecryptionError`; neither carries the secret."""
    if key.callback_secret_ciphertext:
        return crypto.decrypt(key.callback_secret_ciphertext)
    if adapter is None:
        return None
    secret = adapter.callback_secret()
    if not secret:
        return None
    ciphertext = crypto.encrypt(secret)
    ProviderKey.all_orgs.filter(pk=key.pk, callback_secret_ciphertext="").update(callback_secret_ciphertext=ciphertext)
    key.callback_secret_ciphertext = ciphertext
    return secret


def _last4(cls: type[VideoProvider], value: str) -> str:
    """The four characters Settings shows of a secret. A JSON document (a service account)
    shows the end of its ``private_key_id`` rather than a closing brace."""
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if isinstance(document, dict):
        value = str(document.get("private_key_id") or document.get("client_email") or "json")
    return value[-4:]
