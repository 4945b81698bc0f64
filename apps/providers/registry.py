"""The provider registry: slug -> adapter class, imported lazily (healthchecks ``TRANSPORTS``).

Everything that varies per provider lives in the provider's own module; this file only knows the
slugs, their labels (for choices, without importing anything) and the dotted paths.

Adding a provider: write ``apps/providers/<slug>.py`` (copy a sibling adapter), add the models to
``catalog.py``, add one line here, and add ``tests/providers/test_<slug>.py`` plus an emulator.
"""

from __future__ import annotations

import threading
from importlib import import_module

from django.conf import settings

from .base import Credentials, ProviderError, VideoProvider

PROVIDERS: dict[str, tuple[str, str]] = {
    "sora": ("OpenAI Sora", "apps.providers.sora.SoraProvider"),
    "runway": ("Runway", "apps.providers.runway.RunwayProvider"),
    "kling": ("Kling", "apps.providers.kling.KlingProvider"),
    "sandbox": ("Sandbox", "apps.providers.sandbox.SandboxProvider"),
}

# Other names accepted in "provider/model" ids.
ALIASES: dict[str, str] = {"openai": "sora"}

# Settings that switch a provider off, where the name is not ``PROVIDER_<SLUG>_ENABLED``.
ENABLE_SETTINGS: dict[str, str] = {"sandbox": "SANDBOX_PROVIDER_ENABLED"}

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


def enable_setting(slug: str) -> str:
    """The boolean setting that switches a provider on (``PROVIDER_<SLUG>_ENABLED`` by default)."""
    key = canonical_slug(slug)
    return ENABLE_SETTINGS.get(key, f"PROVIDER_{key.upper()}_ENABLED")


def is_enabled(slug: str) -> bool:
    return bool(getattr(settings, enable_setting(slug), True))


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
            module_name, class_name = PROVIDERS[key][1].rsplit(".", maxsplit=1)
            cls = getattr(import_module(module_name), class_name)
            _classes[key] = cls
    return cls


def base_url_for(slug: str) -> str:
    """The configured base URL (``OPENAI_BASE_URL`` includes ``/v1``; the others do not)."""
    cls = get_provider_class(slug, allow_disabled=True)
    if cls.base_url_setting is None:
        return cls.default_base_url
    value = getattr(settings, cls.base_url_setting, None) or cls.default_base_url
    return str(value).rstrip("/")


def credentials_fit(cls: type[VideoProvider], credentials: Credentials | None) -> bool:
    """True when ``credentials`` fill exactly one of the provider's key shapes."""
    if not cls.requires_key:
        return True
    if credentials is None:
        return False
    return any(all(getattr(credentials, name, None) for name in shape) for shape in cls.key_shapes)


def build(slug: str, credentials: Credentials | None, *, base_url: str | None = None) -> VideoProvider:
    """An adapter for ``slug`` with a decrypted key, pointed at the configured base URL.

    Raises :class:`UnknownProvider`/:class:`ProviderDisabled` for a bad slug, and a permanent
    :class:`ProviderError` (``missing_credentials``) when the key does not fit the provider.
    """
    cls = get_provider_class(slug)
    if not credentials_fit(cls, credentials):
        shapes = " or ".join(" + ".join(shape) for shape in cls.key_shapes)
        raise ProviderError(f"{cls.label} needs credentials: {shapes}.", code="missing_credentials", permanent=True)
    return cls(credentials, base_url if base_url is not None else base_url_for(slug))


__all__ = [
    "ALIASES",
    "PROVIDERS",
    "ProviderDisabled",
    "UnknownProvider",
    "base_url_for",
    "build",
    "canonical_slug",
    "credentials_fit",
    "enable_setting",
    "enabled_slugs",
    "get_provider_class",
    "is_enabled",
    "provider_choices",
]
