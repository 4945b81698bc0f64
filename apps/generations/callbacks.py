"""Provider callbacks in: ``POST /hooks/providers/<slug>/<token>``.

A provider that can push completion (fal, Replicate, BytePlus, MiniMax, Kling: the adapter's
``supports_callbacks``) is given a URL with an unguessable token (``secrets.token_urlsafe(32)``) tied
to one generation; only its SHA-256 is stored (``Generation.callback_digest``), so the token is
looked up like an API token: unscoped, by its own secret.

A delivery is never trusted for what it says. The adapter verifies it (``verify_callback``: fal's
ED25519 signature, Replicate's Standard Webhooks signature with the key's stored secret; for the
unsigned providers the token is the only proof), and a verified delivery only schedules an
immediate status read through the engine, exactly as a poll would, conditional on the job still
being queued or in progress: the state always comes from the provider's own status answer. So a
forged, replayed, duplicated or out-of-order callback can do no harm. The endpoint makes no
provider call itself (fal's key set is cached by the adapter) and answers at once; the work runs
on the worker.

- :func:`request_callback` — the submit step's half: the URL to give the provider, or None (poll).
- :func:`receive` — the endpoint's work; :func:`provider_callback` — the thin view.
- :func:`arrived_early` — whether a callback came while the submit's answer was not yet stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.api_keys import services as key_services
from apps.api_keys.crypto import DecryptionError
from apps.core.scoping import org_scope
from apps.generations.models import POLLING_STATES, Generation, GenerationEvent
from apps.providers.base import CallbackRejected, ProviderError, VideoProvider

logger = logging.getLogger(__name__)

PATH = "hooks/providers"
# the history note of a verified delivery; _accept_job looks for it (arrived_early)
NOTE = "Provider callback received"
_TOKEN_MAX = 100  # token_urlsafe(32) is 43 characters


class CallbackNotFound(Exception):
    """No generation has this token (or it is another provider's): 404."""


@dataclass(frozen=True)
class Received:
    """What the endpoint answers: ``reply`` as JSON (MiniMax's challenge), else 200 and nothing."""

    reply: Mapping[str, Any] | None = None
    polled: bool = False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the submit step's half -------------------------------------------------------------------


def base_url() -> str | None:
    """Where providers can reach this server: ``PROVIDER_CALLBACK_BASE_URL`` as given, else
    ``SITE_URL`` when it is https on a public host name or address; None: no callbacks."""
    configured = (getattr(settings, "PROVIDER_CALLBACK_BASE_URL", "") or "").rstrip("/")
    if configured:
        return configured
    site = (settings.SITE_URL or "").rstrip("/")
    parts = urlsplit(site)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith((".localhost", ".local")):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return site  # a host name: the operator says it is where MediaRouter is reached
    if not address.is_global:
        return None
    return site


def request_callback(gen: Generation, adapter: VideoProvider) -> str | None:
    """Before a submit: the callback URL to send (a new token, its digest stored on ``gen``), or
    None when the adapter cannot call back, no public URL is known, or the key's signing secret
    cannot be had (the job then polls). Clears a digest a previous supplier's submit left."""
    url = None
    digest = ""
    base = base_url() if adapter.supports_callbacks else None
    if base is not None and _secret_ready(gen, adapter):
        token = secrets.token_urlsafe(32)
        digest = token_digest(token)
        url = f"{base}/{PATH}/{adapter.slug}/{token}"
    if digest != gen.callback_digest:
        Generation.all_orgs.filter(pk=gen.pk).update(callback_digest=digest)
        gen.callback_digest = digest
    return url


def _secret_ready(gen: Generation, adapter: VideoProvider) -> bool:
    """Fetch (once per key) the signing secret a provider's deliveries are checked with."""
    if gen.provider_key is None:
        return True  # a provider that needs no key needs no secret
    try:
        key_services.provider_key_callback_secret(key=gen.provider_key, adapter=adapter)
    except (ProviderError, DecryptionError) as exc:
        from apps.generations import engine

        engine.note(gen, f"No callback for this job (polling): the signing secret is unavailable ({exc}).")
        return False
    return True


def arrived_early(gen: Generation) -> bool:
    """A verified callback was recorded for ``gen`` (the accept step polls at once when it came
    before the submit's answer was stored)."""
    return GenerationEvent.all_orgs.filter(generation_id=gen.pk, message__startswith=NOTE).exists()


# --- the endpoint -----------------------------------------------------------------------------


def _same_job(stored: str, named: str) -> bool:
    """The body names the generation's job. An adapter may keep its job id qualified
    (``<kind>:<task id>``) while the provider's body names the bare task id."""
    return named == stored or stored.rpartition(":")[2] == named


def receive(*, slug: str, token: str, headers: Mapping[str, str], body: bytes) -> Received:
    """Verify one delivery and, when it is genuine, have the worker read the job's status now.

    Raises :class:`CallbackNotFound` (unknown token, another provider's) and
    :class:`CallbackRejected` (not genuine)."""
    from apps.generations import engine

    if not token or len(token) > _TOKEN_MAX:
        raise CallbackNotFound
    gen = (
        Generation.all_orgs.select_related("provider_key", "organization")
        .filter(callback_digest=token_digest(token))
        .first()
    )
    if gen is None or gen.provider != slug:
        raise CallbackNotFound
    with org_scope(gen.organization):
        try:
            adapter = engine.adapter_for(gen)
            secret = key_services.provider_key_callback_secret(key=gen.provider_key) if gen.provider_key else None
        except (ProviderError, DecryptionError) as exc:
            raise CallbackRejected(f"cannot check it: {getattr(exc, 'code', type(exc).__name__)}") from None
        delivery = adapter.verify_callback(headers=headers, body=body, secret=secret)
        if delivery.reply is not None:
            return Received(reply=delivery.reply)
        # the same delivery again (a provider's retry, a replay) changes nothing
        note = f"{NOTE} from {adapter.label} (delivery {hashlib.sha256(body).hexdigest()[:16]})."
        if GenerationEvent.all_orgs.filter(generation_id=gen.pk, message=note).exists():
            return Received()
        # recorded before the state is read: a submit that stores its answer meanwhile sees it
        engine.note(gen, note)
        current = Generation.all_orgs.filter(pk=gen.pk).values("state", "provider_job_id").first() or {}
        if current.get("state") not in POLLING_STATES:
            return Received()  # still submitting (the accept step polls at once), or already on
        if delivery.job_id and not _same_job(current["provider_job_id"], delivery.job_id):
            logger.info("provider callback for %s names another job; ignored", gen.public_id)
            return Received()
        engine.schedule("poll", gen, 0)
    return Received(polled=True)


def _refusal(status: int, message: str, code: str) -> JsonResponse:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return JsonResponse({"error": error}, status=status)


@csrf_exempt
@require_POST
def provider_callback(request: HttpRequest, provider: str, callback_token: str) -> HttpResponse:
    """A provider's push. 200 (with MiniMax's challenge echoed), 401 not genuine, 404 unknown."""
    try:
        outcome = receive(slug=provider, token=callback_token, headers=dict(request.headers), body=request.body)
    except CallbackNotFound:
        logger.warning("provider callback refused (404): no generation has this %s callback URL", provider[:20])
        return _refusal(404, "No such callback.", "not_found")
    except CallbackRejected as exc:
        # the reason only: never the body, the headers or the token
        logger.warning("provider callback refused (401) for %s: %s", provider[:20], str(exc)[:300])
        return _refusal(401, "The callback could not be verified.", "invalid_signature")
    if outcome.reply is not None:
        return JsonResponse(dict(outcome.reply))
    return HttpResponse(status=200)
