"""Fernet encryption of provider keys, with rotation (MultiFernet over FERNET_KEYS, newest first).

FERNET_KEYS is independent of SECRET_KEY: rotating one never bricks the other. Only this module
and the service that builds an adapter ever see plaintext.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _multifernet() -> MultiFernet:
    keys = list(settings.FERNET_KEYS)
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS is empty.")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FERNET_KEYS must be comma-separated Fernet keys (32 url-safe base64-encoded bytes each)."
        ) from exc


def encrypt(plaintext: str) -> str:
    return _multifernet().encrypt(plaintext.encode()).decode()


class DecryptionError(Exception):
    """Raised when no configured key can decrypt a value. Carries no ciphertext or plaintext."""


def decrypt(ciphertext: str) -> str:
    try:
        return _multifernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret could not be decrypted with any key in FERNET_KEYS "
            "(was an old key removed before rotate_fernet_keys ran?)."
        ) from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the newest key (MultiFernet.rotate keeps the original timestamp)."""
    try:
        return _multifernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored secret could not be decrypted with any key in FERNET_KEYS.") from None


def is_current(ciphertext: str) -> bool:
    """True when ``ciphertext`` is already encrypted with the newest key (nothing to rotate)."""
    keys = list(settings.FERNET_KEYS)
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS is empty.")
    try:
        Fernet(keys[0]).decrypt(ciphertext.encode())
    except (InvalidToken, ValueError):
        return False
    return True
