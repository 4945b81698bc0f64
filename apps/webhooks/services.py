"""Writes for team webhooks: endpoints (create, delete, rotate, enable), events into the outbox
(:func:`video_event`, called inside the generation engine's ``transition``), and sending one
delivery (:func:`delivery_send`, run by a Celery task).

Secrets: a signing secret (``whsec_…``) exists in plaintext only in what :func:`endpoint_create`
and :func:`endpoint_rotate` return (shown once) and inside :func:`_signature`. It is never
logged, never put in an exception, a payload or a delivery record.

Sending is at-least-once: a delivery is claimed with a conditional UPDATE (a lease), the receiver
is called outside any transaction, and the outcome is recorded; a worker that dies in between
leaves the lease to expire and beat sends it again, with the same ``webhook-id`` (the event id).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from standardwebhooks import Webhook

from apps.accounts.models import Membership, Role
from apps.api_keys import crypto
from apps.core.errors import ApplicationError, NotFound, PermissionDeniedError
from apps.core.ids import public_id as make_public_id
from apps.metrics import instruments as metrics
from apps.providers import http
from apps.providers.base import ProviderError
from apps.webhooks import selectors
from apps.webhooks.models import (
    TEST_EVENT_TYPE,
    VIDEO_EVENT_TYPES,
    DeliveryState,
    VideoWebhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

MAX_ENDPOINTS = 20
MAX_URL_LENGTH = 2000
RESPONSE_EXCERPT = 500
REPLAY_MAX_EVENTS = 1000
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0
SCHEDULE_AT_ONCE_SECONDS = 300.0  # retries due sooner get a task with a countdown; later ones: beat
BUSY_RETRY_SECONDS = 2.0  # the endpoint's concurrency cap is reached: try again this soon
PROGRESS_STEP = 10  # at most one video.in_progress per job per 10 % of progress

# the engine's states that become events (the generation's state names, as plain strings)
_TERMINAL_EVENTS = {"completed": "video.completed", "failed": "video.failed", "canceled": "video.canceled"}


# --- clocks (tests replace these) ---------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


def _jitter(delay: float) -> float:
    """Full jitter in the upper half: many failing deliveries do not retry in step."""
    return random.uniform(delay / 2, delay)


def _setting(name: str) -> float:
    return float(getattr(settings, name))


# --- endpoints -----------------------------------------------------------------------------------


def _require_manager(by: Membership) -> None:
    if not by.can_manage:
        raise PermissionDeniedError("Only owners and admins can manage webhooks.")


def _endpoint(by: Membership, public_id: str) -> WebhookEndpoint:
    endpoint = selectors.endpoint_get(org=by.organization, public_id=public_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", param="webhook_id")
    return endpoint


def _make_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _allowed_private(url: str) -> tuple[str, ...]:
    return (http.origin(url),) if getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False) else ()


def check_endpoint_url(url: str) -> None:
    """Refuse a URL MediaRouter must not call, like any URL it fetches (``http.check_url``):
    https (http too outside production, ``PROVIDER_ALLOW_HTTP``), and a host that resolves only
    to public addresses unless ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES``. Raises ApplicationError."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise ApplicationError(f"Give a URL of at most {MAX_URL_LENGTH} characters.", param="url", code="invalid_url")
    try:
        http.check_url(url, allowed_private_hosts=_allowed_private(url))
    except ProviderError as exc:
        if exc.code == "dns_error":
            raise ApplicationError(
                f"The webhook host of {http.redacted(url)} could not be resolved.", param="url", code="invalid_url"
            ) from None
        raise ApplicationError(
            f"Refusing the webhook URL {http.redacted(url)}: it must be "
            + ("https" if not getattr(settings, "PROVIDER_ALLOW_HTTP", False) else "http(s)")
            + " and reach only public addresses (private, loopback and link-local addresses are refused).",
            param="url",
            code="unsafe_url",
        ) from None


def _clean_events(events) -> list[str]:
    if events is None:
        return []
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ApplicationError("events must be a list of event types.", param="events", code="invalid_events")
    unknown = sorted(set(events) - set(VIDEO_EVENT_TYPES))
    if unknown:
        raise ApplicationError(
            f"Unknown event type {unknown[0]!r}; use any of {', '.join(VIDEO_EVENT_TYPES)}.",
            param="events",
            code="invalid_events",
        )
    return [e for e in VIDEO_EVENT_TYPES if e in events]


@sensitive_variables("secret")
def endpoint_create(*, by: Membership, url: str, events=None, description: str = "") -> tuple[WebhookEndpoint, str]:
    """Add an endpoint (owners and admins). Returns it and its signing secret, shown once."""
    _require_manager(by)
    url = (url or "").strip()
    check_endpoint_url(url)
    events = _clean_events(events)
    if WebhookEndpoint.objects.filter(organization=by.organization).count() >= MAX_ENDPOINTS:
        raise ApplicationError(f"An organization can have at most {MAX_ENDPOINTS} webhook endpoints.", param="url")
    secret = _make_secret()
    endpoint = WebhookEndpoint.objects.create(
        organization=by.organization,
        public_id=make_public_id("whep"),
        url=url,
        events=events,
        description=(description or "").strip()[:200],
        secret_ciphertext=crypto.encrypt(secret),
        created_by=by.user,
    )
    logger.info("webhook endpoint %s added to org %s", endpoint.public_id, by.organization_id)
    return endpoint, secret


def endpoint_delete(*, by: Membership, public_id: str) -> None:
    _require_manager(by)
    endpoint = _endpoint(by, public_id)
    endpoint.delete()
    logger.info("webhook endpoint %s deleted from org %s", public_id, by.organization_id)


@sensitive_variables("secret")
def endpoint_rotate(*, by: Membership, public_id: str) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (shown once). Until ``WEBHOOK_SECRET_OVERLAP_HOURS`` have passed the
    old one signs too: each delivery carries both signatures (Standard Webhooks allows several)."""
    _require_manager(by)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=_endpoint(by, public_id).pk).first()
        secret = _make_secret()
        endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
        endpoint.previous_secret_expires_at = _now() + timedelta(hours=_setting("WEBHOOK_SECRET_OVERLAP_HOURS"))
        endpoint.secret_ciphertext = crypto.encrypt(secret)
        endpoint.save(update_fields=["secret_ciphertext", "previous_secret_ciphertext", "previous_secret_expires_at"])
    return endpoint, secret


def endpoint_enable(*, by: Membership, public_id: str) -> WebhookEndpoint:
    """Switch a disabled endpoint back on (its failure clock starts again)."""
    _require_manager(by)
    endpoint = _endpoint(by, public_id)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=None, disabled_reason="", failing_since=None)
    endpoint.refresh_from_db()
    return endpoint


def endpoint_test(*, by: Membership, public_id: str) -> WebhookDelivery:
    """Send a ``webhook.test`` event to this endpoint only."""
    _require_manager(by)
    endpoint = _endpoint(by, public_id)
    if not endpoint.is_active:
        raise ApplicationError("This endpoint is disabled; enable it first.", param="webhook_id", code="disabled")
    with transaction.atomic():
        event = _event_create(
            org_id=endpoint.organization_id, type_=TEST_EVENT_TYPE, data={"id": endpoint.public_id}, video_id=""
        )
        (delivery,) = _deliveries_create(event, [endpoint])
    return delivery


# --- events: the outbox --------------------------------------------------------------------------


def _video_event_type(from_state: str, state: str, progress, previous_progress) -> tuple[str | None, str]:
    """(event type, dedupe suffix) for a state change, or (None, "") when it is no event."""
    if state in _TERMINAL_EVENTS and from_state != state:
        return _TERMINAL_EVENTS[state], ""
    if state == "queued" and from_state not in ("queued", "in_progress", "downloading"):
        return "video.queued", ""
    if state == "in_progress":
        bucket = int(progress or 0) // PROGRESS_STEP
        if from_state != "in_progress" or bucket > int(previous_progress or 0) // PROGRESS_STEP:
            return "video.in_progress", f"in_progress:{bucket}"
    return None, ""


def makes_event(*, from_state, state, progress, previous_progress) -> bool:
    """Whether a state change is a team-webhook event at all (no query): the engine opens a
    transaction for the outbox row only then."""
    return _video_event_type(str(from_state), str(state), progress, previous_progress)[0] is not None


def video_event(
    *,
    org_id: int,
    video_id: str,
    from_state: str,
    state: str,
    progress: int | None = None,
    previous_progress: int | None = None,
) -> WebhookEvent | None:
    """Record the event a generation's state change makes, with one delivery per endpoint that
    wants it, in the caller's transaction (the engine's ``transition``); they are sent after the
    commit. Nothing happens (and at most one query runs) when no endpoint wants it."""
    type_, dedupe = _video_event_type(str(from_state), str(state), progress, previous_progress)
    if type_ is None:
        return None
    active = selectors.active_endpoints(org_id=org_id)
    if not active:
        return None  # no endpoint: no per-request webhook_url either (it signs with the default)
    endpoints = [e for e in active if e.wants(type_)]
    request_urls = selectors.video_webhook_urls(org_id=org_id, video_id=video_id)
    if not endpoints and not request_urls:
        return None
    data: dict = {"id": video_id}
    if type_ == "video.in_progress":
        data["progress"] = int(progress or 0)
    event = _event_create(
        org_id=org_id, type_=type_, data=data, video_id=video_id, dedupe_key=f"{video_id}:{dedupe}" if dedupe else ""
    )
    if event is None:
        return None
    if endpoints:
        _deliveries_create(event, endpoints)
    for url in request_urls:  # signed with the default (oldest enabled) endpoint's secret
        _deliveries_create(event, [active[0]], url=url)
    return event


def request_webhook_check(*, org_id: int, url: str) -> None:
    """A per-request ``webhook_url`` (the native create): checked like an endpoint URL, and only
    when the organization has an enabled endpoint, whose secret will sign its deliveries."""
    if selectors.default_endpoint(org_id=org_id) is None:
        raise ApplicationError(
            "webhook_url needs a webhook endpoint in this organization: its secret signs the deliveries. "
            "Add one with POST /v1/webhooks first.",
            param="webhook_url",
            code="no_webhook_endpoint",
        )
    try:
        check_endpoint_url(url)
    except ApplicationError as exc:
        exc.param = "webhook_url"
        raise


def video_webhook_add(*, org_id: int, video_id: str, url: str) -> None:
    """Send this video's events to ``url`` too (call in the create's transaction)."""
    VideoWebhook.all_orgs.get_or_create(organization_id=org_id, video_id=video_id, url=url)


def _event_create(*, org_id: int, type_: str, data: dict, video_id: str, dedupe_key: str = "") -> WebhookEvent | None:
    now = _now()
    event_id = make_public_id("evt")
    # OpenAI's event shape: the openai SDK's client.webhooks.unwrap() parses it
    body = json.dumps(
        {"id": event_id, "object": "event", "type": type_, "created_at": int(now.timestamp()), "data": data},
        separators=(",", ":"),
    )
    try:
        with transaction.atomic():  # a savepoint: a repeated dedupe key leaves the caller's transaction intact
            return WebhookEvent.all_orgs.create(
                organization_id=org_id,
                public_id=event_id,
                type=type_,
                video_id=video_id,
                body=body,
                dedupe_key=dedupe_key,
                created_at=now,
            )
    except IntegrityError:
        if not dedupe_key:
            raise
        return None


def _deliveries_create(event: WebhookEvent, endpoints, *, url: str = "") -> list[WebhookDelivery]:
    now = _now()
    deliveries = WebhookDelivery.all_orgs.bulk_create(
        [
            WebhookDelivery(
                organization_id=event.organization_id,
                public_id=make_public_id("whdl"),
                endpoint=endpoint,
                event=event,
                url=url,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ]
    )
    for delivery in deliveries:
        _send_after_commit(delivery.public_id, delivery.organization_id)
    return deliveries


def _send_after_commit(delivery_public_id: str, org_id: int, delay: float = 0.0) -> None:
    from apps.webhooks import tasks

    kwargs = {"delivery_id": delivery_public_id, "org_id": org_id}
    # robust: a broker hiccup must not fail the state change; beat re-sends due deliveries
    transaction.on_commit(lambda: tasks.deliver.apply_async(kwargs=kwargs, countdown=max(delay, 0)), robust=True)


# --- sending one delivery ------------------------------------------------------------------------


@dataclass
class _Outcome:
    status_code: int | None = None
    latency_ms: int = 0
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _lease_seconds() -> float:
    return 2 * _setting("WEBHOOK_TIMEOUT_SECONDS") + 5


def _claim(delivery_public_id: str, now: datetime) -> WebhookDelivery | None:
    """Take the delivery for one send (a lease), within the endpoint's concurrency cap."""
    with transaction.atomic():
        delivery = selectors.delivery_for_send(public_id=delivery_public_id)
        if delivery is None or delivery.state not in (DeliveryState.PENDING, DeliveryState.SENDING):
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None  # not due (a retry waiting, or a send in flight)
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=delivery.endpoint_id).first()
        if endpoint is None:
            return None
        if not endpoint.is_active:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=DeliveryState.FAILED, next_attempt_at=None, last_error="The endpoint is disabled."
            )
            return None
        in_flight = WebhookDelivery.objects.filter(
            Q(endpoint_id=endpoint.pk, state=DeliveryState.SENDING, next_attempt_at__gt=now) & ~Q(pk=delivery.pk)
        ).count()
        if in_flight >= int(getattr(settings, "WEBHOOK_MAX_CONCURRENCY", 4)):
            delay = _jitter(BUSY_RETRY_SECONDS * 2)
            WebhookDelivery.objects.filter(pk=delivery.pk, state=delivery.state).update(
                state=DeliveryState.PENDING, next_attempt_at=now + timedelta(seconds=delay)
            )
            _send_after_commit(delivery.public_id, delivery.organization_id, delay)
            return None
        claimed = WebhookDelivery.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            pk=delivery.pk,
            state=delivery.state,
        ).update(state=DeliveryState.SENDING, next_attempt_at=now + timedelta(seconds=_lease_seconds()))
        if not claimed:
            return None
    delivery.endpoint = endpoint
    return delivery


@sensitive_variables("signing_secrets")
def _signature(endpoint: WebhookEndpoint, msg_id: str, timestamp: datetime, body: str, now: datetime) -> str:
    signing_secrets = [crypto.decrypt(endpoint.secret_ciphertext)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_ciphertext and expires is not None and expires > now:
        signing_secrets.append(crypto.decrypt(endpoint.previous_secret_ciphertext))
    return " ".join(Webhook(s).sign(msg_id=msg_id, timestamp=timestamp, data=body) for s in signing_secrets)


def signed_headers(endpoint: WebhookEndpoint, event: WebhookEvent, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (a fresh timestamp each time; the id stays)."""
    timestamp = datetime.fromtimestamp(int(time.time()), tz=UTC)  # wall time: receivers check it
    return {
        "Content-Type": "application/json",
        "User-Agent": "MediaRouter-Webhooks/1",
        "webhook-id": event.public_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": _signature(endpoint, event.public_id, timestamp, event.body, now),
    }


def _post(delivery: WebhookDelivery, now: datetime) -> _Outcome:
    """One POST, no redirects followed, the address checked before (DNS) and after connecting."""
    url = delivery.target_url
    allowed = _allowed_private(url)
    try:
        http.check_url(url, allowed_private_hosts=allowed)  # again: DNS may answer differently now
    except ProviderError as exc:
        reason = "could not resolve the host" if exc.code == "dns_error" else "refused: not a public address"
        return _Outcome(error=f"Not sent ({reason}).")
    headers = signed_headers(delivery.endpoint, delivery.event, now)
    timeout = _setting("WEBHOOK_TIMEOUT_SECONDS")
    started = time.monotonic()
    try:
        response = http.request(
            "POST",
            url,
            headers=headers,
            data=delivery.event.body.encode(),
            timeout=(timeout, timeout),
            stream=True,
            allow_redirects=False,
        )
    except ProviderError as exc:
        return _Outcome(latency_ms=int((time.monotonic() - started) * 1000), error=exc.message[:300])
    try:
        http._check_peer(response, url, set(allowed))  # DNS rebinding: the address we reached
        try:
            raw = response.raw.read(RESPONSE_EXCERPT, decode_content=True) or b""
        except Exception:  # noqa: BLE001 - a broken answer body is still an answer with a status
            raw = b""
        retry_after = http.parse_retry_after(response.headers) if response.status_code in (429, 503) else None
        outcome = _Outcome(
            status_code=response.status_code,
            latency_ms=int((time.monotonic() - started) * 1000),
            excerpt=raw.decode("utf-8", errors="replace")[:RESPONSE_EXCERPT],
            retry_after=retry_after,
        )
        if 300 <= response.status_code < 400:
            outcome.error = "Redirects are not followed."
        return outcome
    except ProviderError:
        return _Outcome(error="Not sent (refused: connected to a private address).")
    finally:
        response.close()


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (5 s, 10 s, 20 s… up to an hour), at least ``Retry-After``."""
    delay = _jitter(min(FIRST_RETRY_SECONDS * (2 ** max(attempts - 1, 0)), MAX_RETRY_SECONDS))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_SECONDS))
    return delay


def delivery_send(*, delivery_id: str) -> WebhookDelivery | None:
    """Send one due delivery and record the outcome; schedules the retry when it failed. Returns
    the delivery as recorded, or None when there was nothing to send (not due, taken, done)."""
    now = _now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    outcome = _post(delivery, now)
    return _record(delivery, outcome, _now())


def _record(delivery: WebhookDelivery, outcome: _Outcome, now: datetime) -> WebhookDelivery:
    endpoint = delivery.endpoint
    with transaction.atomic():
        fields: dict = {
            "attempts": F("attempts") + 1,
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": (outcome.error or ("" if outcome.ok else f"HTTP {outcome.status_code}"))[:300],
        }
        if outcome.ok:
            fields.update(state=DeliveryState.SUCCEEDED, delivered_at=now, next_attempt_at=None)
            if endpoint.failing_since is not None and not delivery.url:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            delay = None
        else:
            delay = retry_delay(delivery.attempts + 1, outcome.retry_after)
            give_up_at = delivery.created_at + timedelta(hours=_setting("WEBHOOK_RETRY_HOURS"))
            if now + timedelta(seconds=delay) > give_up_at:
                fields.update(state=DeliveryState.FAILED, next_attempt_at=None)
                delay = None
            else:
                fields.update(state=DeliveryState.PENDING, next_attempt_at=now + timedelta(seconds=delay))
        # the UPDATE first: it locks the row, so a deletion of the endpoint (and its deliveries)
        # waits for this record or has already happened (then there is nothing to record)
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.SENDING).update(**fields)
        if not updated and not WebhookDelivery.objects.filter(pk=delivery.pk).exists():
            return delivery
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_excerpt=outcome.excerpt,
            error=outcome.error[:300],
        )
        if not outcome.ok and not delivery.url:  # a per-request URL's failures are not the endpoint's
            _endpoint_failed(endpoint, now)
        if delay is not None and delay <= SCHEDULE_AT_ONCE_SECONDS:
            _send_after_commit(delivery.public_id, delivery.organization_id, delay)
    metrics.webhook_attempt(
        outcome=_outcome_name(fields["state"]), status_code=outcome.status_code, latency_ms=outcome.latency_ms
    )
    delivery.refresh_from_db()
    logger.info(
        "webhook %s to endpoint %s: %s (attempt %s)",
        delivery.event.public_id,
        endpoint.public_id,
        outcome.status_code or outcome.error,
        delivery.attempts,
    )
    return delivery


def _outcome_name(state: str) -> str:
    """The attempt's outcome as apps.metrics counts it, from the state it left the delivery in."""
    return {DeliveryState.SUCCEEDED: "delivered", DeliveryState.FAILED: "gave_up"}.get(state, "retrying")


def _endpoint_failed(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Start the endpoint's failure clock; after ``WEBHOOK_DISABLE_AFTER_DAYS`` of failing (no
    success in between) disable it and tell its owners."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=now)
    endpoint.refresh_from_db(fields=["failing_since", "disabled_at"])
    if endpoint.disabled_at is not None or endpoint.failing_since is None:
        return
    if now - endpoint.failing_since < timedelta(days=_setting("WEBHOOK_DISABLE_AFTER_DAYS")):
        return
    reason = f"Every delivery failed for {_setting('WEBHOOK_DISABLE_AFTER_DAYS'):g} days."
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at=None).update(
        disabled_at=now, disabled_reason=reason
    ):
        return
    WebhookDelivery.objects.filter(
        endpoint_id=endpoint.pk, state__in=[DeliveryState.PENDING, DeliveryState.SENDING]
    ).update(state=DeliveryState.FAILED, next_attempt_at=None, last_error="The endpoint was disabled.")
    endpoint.disabled_at, endpoint.disabled_reason = now, reason
    logger.warning("webhook endpoint %s disabled: %s", endpoint.public_id, reason)
    transaction.on_commit(lambda: _tell_owners(endpoint), robust=True)


def _tell_owners(endpoint: WebhookEndpoint) -> None:
    owners = Membership.all_orgs.filter(organization_id=endpoint.organization_id, role=Role.OWNER).select_related(
        "user", "organization"
    )
    emails = [m.user.email for m in owners if m.user.email]
    if not emails:
        return
    org = owners[0].organization
    send_mail(
        subject=f"MediaRouter: webhook endpoint disabled for {org.name}",
        message=(
            f"The webhook endpoint {endpoint.public_id} ({http.redacted(endpoint.url)}) of {org.name} was disabled: "
            f"{endpoint.disabled_reason}\n\nFix the receiver, then enable it again in Settings → Webhooks: "
            f"{settings.SITE_URL}/o/{org.slug}/settings/webhooks/\n"
        ),
        from_email=None,
        recipient_list=emails,
        fail_silently=True,
    )


# --- the delivery log: manual retry and replay ------------------------------------------------------


def delivery_retry(*, by: Membership, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again now (whatever its state, unless a send is in flight)."""
    _require_manager(by)
    endpoint = _endpoint(by, webhook_id)
    delivery = selectors.delivery_get(endpoint=endpoint, public_id=delivery_id)
    if delivery is None:
        raise NotFound("No such delivery.", param="delivery_id")
    if not endpoint.is_active:
        raise ApplicationError("This endpoint is disabled; enable it first.", param="webhook_id", code="disabled")
    now = _now()
    with transaction.atomic():
        moved = WebhookDelivery.objects.filter(
            Q(state__in=[DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.SUCCEEDED])
            | Q(state=DeliveryState.SENDING, next_attempt_at__lte=now),
            pk=delivery.pk,
        ).update(state=DeliveryState.PENDING, next_attempt_at=now)
        if not moved:
            raise ApplicationError("This delivery is being sent right now.", param="delivery_id", code="in_flight")
        _send_after_commit(delivery.public_id, delivery.organization_id)
    delivery.refresh_from_db()
    return delivery


def endpoint_replay(*, by: Membership, public_id: str, since: datetime, until: datetime) -> int:
    """Send this endpoint every event of the organization from ``since`` to ``until`` again (the
    types it wants; the same event ids, so a receiver that has one already can drop it).
    Returns how many deliveries were made."""
    _require_manager(by)
    endpoint = _endpoint(by, public_id)
    if until <= since:
        raise ApplicationError("until must be after since.", param="until", code="invalid_range")
    if not endpoint.is_active:
        raise ApplicationError("This endpoint is disabled; enable it first.", param="webhook_id", code="disabled")
    events = [
        e
        for e in selectors.events_between(org=by.organization, since=since, until=until, limit=REPLAY_MAX_EVENTS + 1)
        if endpoint.wants(e.type) and e.type != TEST_EVENT_TYPE
    ]
    if len(events) > REPLAY_MAX_EVENTS:
        raise ApplicationError(
            f"More than {REPLAY_MAX_EVENTS} events in that range; replay a shorter one.", param="since", code="too_many"
        )
    with transaction.atomic():
        for event in events:
            _deliveries_create(event, [endpoint])
    return len(events)


def deliveries_dispatch_due(*, limit: int = 500) -> int:
    """Beat's safety net across organizations: every delivery due (a retry whose time has come,
    a send whose lease expired, one whose task was lost) gets its task sent again. The task's
    claim makes duplicates harmless."""
    from apps.webhooks import tasks

    due = selectors.due_deliveries(
        before=_now() - timedelta(seconds=_setting("WEBHOOK_DISPATCH_INTERVAL_SECONDS")), limit=limit
    )
    for public_id, org_id in due:
        tasks.deliver.apply_async(kwargs={"delivery_id": public_id, "org_id": org_id})
    return len(due)
