"""Reads for provider keys and API tokens. Every tenant read takes the organization."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.db.models import F, FilteredRelation, Q

from apps.accounts.models import Membership, Organization
from apps.api_keys import tokens
from apps.api_keys.models import ApiToken, ProviderKey
from apps.core.prepared import PreparedGet
from apps.providers import registry
from apps.providers.base import KeyField

_MEMBER_FIELDS = tuple(f.attname for f in Membership._meta.concrete_fields)

# compiled to SQL once per thread (apps.core.prepared): compiling this four-table query cost more
# than running it, on every API request
_token_by_prefix = PreparedGet(
    lambda prefix: (
        ApiToken.all_orgs.select_related("user", "organization")
        .annotate(
            member=FilteredRelation("user__memberships", condition=Q(user__memberships__organization=F("organization")))
        )
        .filter(prefix=prefix, revoked_at=None, user__is_active=True, member__isnull=False)
        .annotate(**{f"_member_{name}": F(f"member__{name}") for name in _MEMBER_FIELDS})
        .order_by()
    ),
    prefix="prepared-placeholder:prefix",
)


def api_token_authenticate(*, token: str) -> ApiToken | None:
    """Find the active token for this secret, or None. Tokens are identity: looked up across
    organizations (by their own secret), through the explicitly unscoped manager.

    One query: the token with its user, its organization and the user's membership of that
    organization (an inner join, so a token of an ex-member finds nothing). No ORDER BY: the
    prefix is unique."""
    prefix = tokens.parse_prefix(token)
    if prefix is None:
        return None
    api_token = _token_by_prefix(ApiToken.all_orgs.db, prefix=prefix)
    if api_token is None or not tokens.matches(token, api_token.digest):
        return None
    # the caller's role in the token's organization, for API views (no second query)
    membership = Membership.from_db(
        ApiToken.all_orgs.db, _MEMBER_FIELDS, [getattr(api_token, f"_member_{name}") for name in _MEMBER_FIELDS]
    )
    for name in _MEMBER_FIELDS:
        delattr(api_token, f"_member_{name}")
    membership.organization = api_token.organization
    membership.user = api_token.user
    api_token.membership = membership
    return api_token


def api_token_list(*, org: Organization, user=None) -> list[ApiToken]:
    qs = ApiToken.objects.filter(organization=org).select_related("user")
    if user is not None:
        qs = qs.filter(user=user)
    return list(qs)


def provider_key_list(*, org: Organization, provider: str | None = None) -> list[ProviderKey]:
    qs = ProviderKey.objects.filter(organization=org)
    if provider:
        qs = qs.filter(provider=provider)
    return list(qs)


def provider_key_get(*, org: Organization, public_id: str) -> ProviderKey | None:
    return ProviderKey.objects.filter(organization=org, public_id=public_id).first()


def provider_key_for(*, org: Organization, provider: str, public_id: str | None = None) -> ProviderKey | None:
    """The key the engine should use for ``provider``: the one asked for by ``public_id`` (it must be
    this provider's), else the organization's default for the provider. None when there is none.

    The key is returned whatever its status; the caller decides what to do with an invalid one.
    """
    qs = ProviderKey.objects.filter(organization=org, provider=provider)
    if public_id is not None:
        return qs.filter(public_id=public_id).first()
    # there is always a default when the provider has keys; the fallback is belt and braces
    return qs.order_by("-is_default", "created_at").first()


def provider_key_pick(keys, *, provider: str, public_id: str | None = None) -> ProviderKey | None:
    """:func:`provider_key_for` on keys already read (the organization's ``provider_key_list``, as
    the router read them for this request): no query, the same choice."""
    mine = [key for key in keys if key.provider == provider]
    if public_id is not None:
        return next((key for key in mine if key.public_id == public_id), None)
    return min(mine, key=lambda key: (not key.is_default, key.created_at), default=None)


@dataclass(frozen=True)
class KeyProviderOption:
    """A provider a key can be added for, with the fields and shapes its key form takes."""

    slug: str
    label: str
    key_shapes: tuple[tuple[str, ...], ...]
    key_fields: tuple[KeyField, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.key_fields)


def key_provider_options(*, include_disabled: bool = False) -> list[KeyProviderOption]:
    """Providers that take a key (enabled ones unless ``include_disabled``), in registry order
    (no database). The key form, the keys API serializer and the Settings page derive from this."""
    options = []
    for slug in registry.PROVIDERS if include_disabled else registry.enabled_slugs():
        cls = registry.get_provider_class(slug, allow_disabled=True)
        if cls.requires_key:
            options.append(
                KeyProviderOption(
                    slug=slug, label=cls.label, key_shapes=tuple(cls.key_shapes), key_fields=tuple(cls.key_fields)
                )
            )
    return options


@dataclass(frozen=True)
class KeyFieldUse:
    """One credential field name across providers: its declaration (the first provider's) and
    which providers take it."""

    field: KeyField
    providers: tuple[str, ...]
    labels: tuple[str, ...]


def key_field_union(options: list[KeyProviderOption]) -> list[KeyFieldUse]:
    """Every credential field the given providers declare, once per name, in declaration order.
    Choices of a ``choice`` field are merged across providers."""
    found: dict[str, tuple[KeyField, list[str], list[str]]] = {}
    for option in options:
        for field in option.key_fields:
            if field.name not in found:
                found[field.name] = (field, [], [])
            entry = found[field.name]
            if field.kind == "choice" and entry[0].choices != field.choices:
                merged = dict(entry[0].choices) | dict(field.choices)
                found[field.name] = (replace(entry[0], choices=tuple(merged.items())), entry[1], entry[2])
                entry = found[field.name]
            entry[1].append(option.slug)
            entry[2].append(option.label)
    return [KeyFieldUse(field=f, providers=tuple(p), labels=tuple(names)) for f, p, names in found.values()]


@dataclass(frozen=True)
class KeyGroup:
    provider: str
    label: str
    keys: list[ProviderKey]


def provider_key_groups(*, org: Organization) -> list[KeyGroup]:
    """The organization's keys grouped by provider (registry order), in one query."""
    labels = dict(registry.provider_choices())
    grouped: dict[str, list[ProviderKey]] = {}
    for key in provider_key_list(org=org):
        grouped.setdefault(key.provider, []).append(key)
    order = {slug: i for i, slug in enumerate(labels)}
    return [
        KeyGroup(provider=slug, label=labels.get(slug, slug), keys=keys)
        for slug, keys in sorted(grouped.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    ]
