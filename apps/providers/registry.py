"""The provider registry: slug -> adapter class, imported lazily (healthchecks ``TRANSPORTS``).

Everything that varies per provider lives in the provider's own folder, ``apps/providers/<slug>/``:
``adapter.py`` (the :class:`VideoProvider` subclass, its credential fields and settings) and
``catalog.py`` (its models and prices). This file only knows the slugs, their labels (for choices,
without importing anything) and where the adapter class is. ``CONTRIBUTING.md`` has the checklist.

Operator settings follow one rule for every provider, read from the Django settings when defined
there (tests) and otherwise from the environment:

- ``PROVIDER_<SLUG>_ENABLED`` (default true) switches a provider on or off;
- ``<SLUG>_BASE_URL`` overrides its base URL (or a name in the adapter's ``base_url_aliases``);
- ``<SLUG>_<NAME>`` for each of the adapter's ``extra_settings``.
"""

from __future__ import annotations

import os
import threading
from importlib import import_module

from django.conf import settings

from .base import Credentials, ProviderError, VideoProvider

# slug -> (label, class name in apps/providers/<slug>/adapter.py). The order is the catalog's order
# and the router's default supplier order (the models' makers first, then aggregators, then the
# sandbox).
PROVIDERS: dict[str, tuple[str, str]] = {
    "sora": ("OpenAI Sora", "SoraProvider"),
    "runway": ("Runway", "RunwayProvider"),
    "kling": ("Kling", "KlingProvider"),
    "byteplus": ("BytePlus ModelArk", "BytePlusProvider"),
    "minimax": ("MiniMax", "MinimaxProvider"),
    "vertex": ("Google Vertex AI", "VertexProvider"),
    "gemini": ("Google Gemini API", "GeminiProvider"),
    # aggregators after the models' makers: the catalog's default supplier order is "direct first"
    "fal": ("fal.ai", "FalProvider"),
    "replicate": ("Replicate", "ReplicateProvider"),
    "sandbox": ("Sandbox", "SandboxProvider"),
}

# Other names accepted in "provider/model" ids.
ALIASES: dict[str, str] = {"openai": "sora"}

# Older names of a provider's on/off switch, still honoured after PROVIDER_<SLUG>_ENABLED.
ENABLE_ALIASES: dict[str, tuple[str, ...]] = {"sandbox": ("SANDBOX_PROVIDER_ENABLED",)}

_FALSE = {"0", "false", "no", "off", ""}

_classes: dict[str, type[VideoProvider]] = {}
_lock = threading.Lock()


class UnknownProvider(ValueError):
    """No provider with this slug."""


class ProviderDisabled(UnknownProvider):
    """The provider exists but the operator switched it off."""


def canonical_slug(slug: str) -> str:
    """``slug`` itself, or the provider an alias names (``openai`` -> ``sora``)."""
    key = slug.strip().lower()
    key = ALIASES.get(key, key)
    if key not in PROVIDERS:
        raise UnknownProvider(f"Unknown provider {slug!r}; known providers: {', '.join(PROVIDERS)}.")
    return key


def _lookup(name: str) -> object | None:
    """A Django setting of that name when defined, else the environment variable, else None."""
    if hasattr(settings, name):
        return getattr(settings, name)
    return os.environ.get(name)


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


def enable_setting(slug: str) -> str:
    """The switch that turns a provider on or off: ``PROVIDER_<SLUG>_ENABLED``."""
    return f"PROVIDER_{canonical_slug(slug).upper()}_ENABLED"


def is_enabled(slug: str) -> bool:
    key = canonical_slug(slug)
    for name in (enable_setting(key), *ENABLE_ALIASES.get(key, ())):
        value = _lookup(name)
        if value is not None:
            return _as_bool(value)
    return True


def provider_setting(slug: str, name: str, default: str = "") -> str:
    """The operator setting ``<SLUG>_<NAME>`` of a provider (``FAL_JWKS_URL``), or ``default``."""
    value = _lookup(f"{canonical_slug(slug).upper()}_{name.upper()}")
    return default if value in (None, "") else str(value)


def enabled_slugs() -> tuple[str, ...]:
    return tuple(slug for slug in PROVIDERS if is_enabled(slug))


def provider_choices() -> list[tuple[str, str]]:
    """``(slug, label)`` for every provider, enabled or not (stable model field choices)."""
    return [(slug, label) for slug, (label, _path) in PROVIDERS.items()]


def get_provider_class(slug: str, *, allow_disabled: bool = False) -> type[VideoProvider]:
    key = canonical_slug(slug)
    if not allow_disabled and not is_enabled(key):
        raise ProviderDisabled(f"The {PROVIDERS[key][0]} provider is disabled on this server.")
    cls = _classes.get(key)
    if cls is None:
        with _lock:
            cls = getattr(import_module(f"apps.providers.{key}.adapter"), PROVIDERS[key][1])
            _classes[key] = cls
    return cls


def catalog_module(slug: str):
    """``apps.providers.<slug>.catalog`` (its ``MODELS``)."""
    return import_module(f"apps.providers.{canonical_slug(slug)}.catalog")


def base_url_for(slug: str) -> str:
    """The operator's base URL for ``slug`` (``<SLUG>_BASE_URL`` or an alias), else the default.

    ``OPENAI_BASE_URL`` includes ``/v1``, following the openai SDK; the others do not."""
    key = canonical_slug(slug)
    cls = get_provider_class(key, allow_disabled=True)
    for name in (f"{key.upper()}_BASE_URL", *cls.base_url_aliases):
        value = _lookup(name)
        if value:
            return str(value).rstrip("/")
    return cls.default_base_url.rstrip("/")


def options_for(slug: str) -> dict[str, str]:
    """The values of the adapter's ``extra_settings``, by setting name."""
    cls = get_provider_class(slug, allow_disabled=True)
    return {opt.name: provider_setting(slug, opt.name, opt.default) for opt in cls.extra_settings}


def credentials_fit(cls: type[VideoProvider], credentials: Credentials | None) -> bool:
    """True when ``credentials`` fill the required fields of one of the provider's key shapes."""
    if not cls.requires_key:
        return True
    if credentials is None:
        return False
    return any(all(credentials.get(name) for name in shape) for shape in cls.key_shapes)


def build(
    slug: str, credentials: Credentials | None, *, base_url: str | None = None, allow_disabled: bool = False
) -> VideoProvider:
    """An adapter for ``slug`` with a decrypted key, pointed at the configured base URL.

    A key may carry its own ``base_url`` (a team's OpenAI-compatible gateway): it was checked when
    the key was stored (https in production, never a private address) and is checked again here,
    so a host that now resolves to a private address is refused before any call.

    ``allow_disabled``: build it even when the operator switched the provider off (the engine does
    so for jobs the provider already accepted, so they finish and are not lost).

    Raises :class:`UnknownProvider`/:class:`ProviderDisabled` for a bad slug, and a permanent
    :class:`ProviderError` (``missing_credentials``) when the key does not fit the provider.
    """
    cls = get_provider_class(slug, allow_disabled=allow_disabled)
    if not credentials_fit(cls, credentials):
        shapes = " or ".join(" + ".join(shape) for shape in cls.key_shapes)
        raise ProviderError(f"{cls.label} needs credentials: {shapes}.", code="missing_credentials", permanent=True)
    tenant_url = credentials.get("base_url") if credentials is not None and cls.key_field("base_url") else None
    if base_url is None and tenant_url:
        from . import http

        http.check_tenant_url(tenant_url)
        adapter = cls(credentials, tenant_url, options=options_for(slug))
        adapter.base_url_trusted = False
        return adapter
    return cls(credentials, base_url if base_url is not None else base_url_for(slug), options=options_for(slug))


__all__ = [
    "ALIASES",
    "PROVIDERS",
    "ProviderDisabled",
    "UnknownProvider",
    "base_url_for",
    "build",
    "canonical_slug",
    "catalog_module",
    "credentials_fit",
    "enable_setting",
    "enabled_slugs",
    "get_provider_class",
    "is_enabled",
    "options_for",
    "provider_choices",
    "provider_setting",
]
