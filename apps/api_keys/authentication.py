from __future__ import annotations

import threading
import time

from cachetools import TTLCache
from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.accounts.models import Membership, Organization, User
from apps.api_keys import selectors, tokens
from apps.api_keys.models import ApiToken


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mr_...``. Binds the request to the token's organization and user.

    A revoked token, or one whose user is no longer a member of its organization, is refused (401),
    at the latest ``API_TOKEN_CACHE_SECONDS`` after the change (see :class:`IdentityCache`).
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer mr_...'.")
        api_token = identity_cache.authenticate(token.strip())
        if api_token is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or orphaned API token.", code="invalid_api_key")
        now = timezone.now()
        if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
            # at most one write a minute per token, not one per request
            from apps.api_keys.services import api_token_touch

            api_token_touch(token=api_token, at=now)
            identity_cache.touched(api_token, now)
        return api_token.user, api_token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def _values(obj) -> tuple:
    return tuple(getattr(obj, f.attname) for f in obj._meta.concrete_fields)


def _attnames(model) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


def _monotonic() -> float:
    return time.monotonic()  # looked up per call, so tests can move the clock


class IdentityCache:
    """A per-process, short-lived memory of token → (token, user, organization, membership).

    Authenticating costs a database query (~1 ms of CPU, a third of a cached retrieve); a client
    polling its jobs sends the same token many times a second. Entries live
    ``API_TOKEN_CACHE_SECONDS`` (default 5 s; 0 turns the cache off), so a revoked token, a removed
    member or a deactivated user is refused at most that long after the change in every process;
    in the process that made the change (and on any save or delete of those rows in it) at once,
    through :func:`invalidate`.

    - Expiry and the size bound are ``cachetools.TTLCache``'s (at most ``MAX_ENTRIES``, least
      recently used out first), behind one lock (TTLCache is not thread-safe; gunicorn threads
      share it). A change of the setting starts a new, empty cache with the new lifetime.
    - Entries are keyed by the SHA-256 of the presented token, never by the token. A lookup that
      misses goes to the database, where the digest is compared with ``hmac.compare_digest``. Only
      tokens that authenticated are remembered (no negative entries: unknown tokens always cost a
      query, so guessing cannot fill the memory).
    - Entries hold a snapshot of plain column values; every request gets fresh model instances, so
      nothing one request does to its objects leaks into another's.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: TTLCache = TTLCache(self.MAX_ENTRIES, ttl=0, timer=_monotonic)
        self._names = None

    def _fields(self):
        if self._names is None:
            self._names = tuple(_attnames(m) for m in (ApiToken, User, Organization, Membership))
        return self._names

    def _cache(self, ttl: float) -> TTLCache:
        """The cache for this lifetime (call with the lock held)."""
        if self._entries.ttl != ttl:
            self._entries = TTLCache(self.MAX_ENTRIES, ttl=ttl, timer=_monotonic)
        return self._entries

    def authenticate(self, token: str) -> ApiToken | None:
        ttl = float(getattr(settings, "API_TOKEN_CACHE_SECONDS", 0) or 0)
        if ttl <= 0:
            return selectors.api_token_authenticate(token=token)
        key = tokens.digest(token)
        with self._lock:
            rows = self._cache(ttl).get(key)
            rows = tuple(rows) if rows is not None else None
        if rows is not None:
            api_token = self._build(rows)
            api_token._identity_key = key
            return api_token
        api_token = selectors.api_token_authenticate(token=token)
        if api_token is None:
            return None
        # a list, so that touched() can update the token's row without renewing the entry's life
        snapshot = [
            _values(api_token),
            _values(api_token.user),
            _values(api_token.organization),
            _values(api_token.membership),
        ]
        with self._lock:
            self._cache(ttl)[key] = snapshot
        api_token._identity_key = key
        return api_token

    def _build(self, rows: tuple) -> ApiToken:
        token_names, user_names, org_names, member_names = self._fields()
        db = ApiToken.all_orgs.db
        api_token = ApiToken.from_db(db, token_names, rows[0])
        user = User.from_db(db, user_names, rows[1])
        org = Organization.from_db(db, org_names, rows[2])
        membership = Membership.from_db(db, member_names, rows[3])
        api_token.user = membership.user = user
        api_token.organization = membership.organization = org
        api_token.membership = membership
        return api_token

    def touched(self, api_token: ApiToken, at) -> None:
        """Remember the new ``last_used_at``, so that cached hits do not write it again (the entry
        keeps its expiry: the snapshot is still as old as its last database read)."""
        key = getattr(api_token, "_identity_key", None)
        with self._lock:
            snapshot = self._entries.get(key) if key else None
            if snapshot is not None:
                token_row = list(snapshot[0])
                token_row[self._fields()[0].index("last_used_at")] = at
                snapshot[0] = tuple(token_row)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()


identity_cache = IdentityCache()


def invalidate_identities(**_kwargs) -> None:
    """Forget every cached identity in this process (signal receiver; also called directly)."""
    identity_cache.invalidate()
