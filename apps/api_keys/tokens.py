"""MediaRouter API tokens: ``mr_<prefix>_<secret>``. The prefix finds the row; the SHA-256 of the
whole token is compared in constant time. The secret part has 256 bits of entropy, so a plain hash
is enough and tokens survive a SECRET_KEY rotation."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "mr_"


def make_token() -> tuple[str, str, str]:
    """Return (token, lookup prefix, digest)."""
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return token, prefix, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_prefix(token: str) -> str | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, rest = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not rest:
        return None
    return prefix


def matches(token: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(token), expected_digest)
