"""Emulator of Replicate's predictions API (``reference/providers/replicate.md`` §11).

Run: ``python -m tests.emulators.replicate --port 9105``. ``Authorization: Bearer <api_key>``.

- Create by official model (``POST /v1/models/{owner}/{name}/predictions``, 201) or by version
  (``POST /v1/predictions`` with ``version``: ``owner/name``, ``owner/name:<64 hex>`` or the bare
  hex); unknown models are 404 and inputs are checked against each model's schema (422, unknown
  fields refused). Poll ``GET /v1/predictions/{id}``, cancel ``POST /v1/predictions/{id}/cancel``.
- Lifecycle on the emulator clock: ``starting`` for the first 20 % of ``job_seconds``, then
  ``processing``, then ``succeeded`` (``failed`` with a moderation-style ``error`` for a prompt
  containing ``[fail]``). ``Cancel-After`` gives ``aborted`` when the deadline passes while
  ``starting`` and ``canceled`` while ``processing``; ``Prefer: wait=N`` holds the create up to N s.
- ``url_ttl`` (3600 s of emulator time, "one hour") after completion the prediction is purged
  (``data_removed: true``, ``input``/``output``/``logs`` null) and its output URL answers 404.
  ``output_as_list = True`` returns the output as a one-element list (some models do).
- RFC 7807 errors (``title``, ``detail``, ``status``); more than ``creates_per_minute`` creates in a
  minute of emulator time answer 429 with ``Retry-After`` and the throttle ``detail``.
- Webhooks: deliveries of the requested events (default ``output`` + ``completed``) are POSTed by a
  background thread, signed per Standard Webhooks with the ``whsec_`` secret served at
  ``GET /v1/webhooks/default/secret``, timestamped with the wall clock (receivers check it against
  theirs). ``webhook_tamper`` injects ``bad_signature``, ``stale`` (10 minutes old), ``duplicate``
  (each delivery sent twice) and ``late_start`` (``start`` sent after ``completed``); every signed
  delivery is kept in ``webhooks_sent``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from standardwebhooks import Webhook

from .base import Emulator, Fault, Request, Response, main

API_KEY = "r8_fake-key-test-emulator-replicate"
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthenticated",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
FAILURE = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
EVENTS = ("start", "output", "logs", "completed")
DEFAULT_EVENTS = ("output", "completed")
TERMINAL = ("succeeded", "failed", "canceled", "aborted")
_ID_ALPHABET = "abcdefghjkmnpqrstvwxyz0123456789"  # lower-case, base32-like (§1)
_DATA_URI = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,[A-Za-z0-9+/]+=*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Check = Callable[[Any], str | None]


# --- input schemas (§9), as the models' OpenAPI schemas would check them ---------------------------


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _integer(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"


def _one_of(*values: Any) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or value not in values or type(value) is not type(values[0]):
            return f"must be one of {', '.join(map(str, values))}"
        return None

    return check


def _int_range(low: int, high: int, *also: int) -> Check:
    def check(value: Any) -> str | None:
        if _integer(value) or not (low <= value <= high or value in also):
            extra = f" (or {', '.join(map(str, also))})" if also else ""
            return f"must be an integer from {low} to {high}{extra}"
        return None

    return check


def _uri(value: Any) -> str | None:
    if isinstance(value, str) and (value.startswith(("https://", "http://")) or _DATA_URI.match(value)):
        return None
    return "must be an http(s) URL or a data: URI"


def _uris(most: int) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not 1 <= len(value) <= most or any(_uri(v) for v in value):
            return f"must be a list of 1 to {most} URIs"
        return None

    return check


def _shots(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(s, dict) and isinstance(s.get("prompt"), str) for s in value)
    return None if ok else "must be a list of {prompt, duration}"


_VEO = {
    "prompt": _string,
    "aspect_ratio": _one_of("16:9", "9:16"),
    "duration": _one_of(4, 6, 8),
    "resolution": _one_of("720p", "1080p"),
    "generate_audio": _boolean,
    "image": _uri,
    "last_frame": _uri,
    "reference_images": _uris(3),
    "negative_prompt": _string,
    "seed": _integer,
}


def _veo_rules(inp: dict[str, Any]) -> list[str]:
    problems = []
    if "last_frame" in inp and "image" not in inp:
        problems.append("input.last_frame: needs image")
    if "reference_images" in inp and (inp.get("aspect_ratio", "16:9") != "16:9" or inp.get("duration", 8) != 8):
        problems.append("input.reference_images: only with 16:9 and 8 seconds")
    return problems


def _kling_rules(inp: dict[str, Any]) -> list[str]:
    problems = []
    if "prompt" not in inp and "multi_prompt" not in inp:
        problems.append("input.prompt: required (or multi_prompt)")
    if "start_image" in inp and "aspect_ratio" in inp:
        problems.append("input.aspect_ratio: not allowed with start_image (the image sets it)")
    return problems


def _seedance_rules(inp: dict[str, Any]) -> list[str]:
    frames = {"image", "last_frame_image"} & set(inp)
    references = {"reference_images", "reference_videos", "reference_audios"} & set(inp)
    problems = []
    if frames and references:
        problems.append("input.image: first/last frames cannot be combined with reference inputs")
    if "reference_audios" in inp and not ({"image", "reference_images", "reference_videos"} & set(inp)):
        problems.append("input.reference_audios: need an image or a video")
    return problems


@dataclass(frozen=True)
class Schema:
    fields: dict[str, Check]
    required: tuple[str, ...] = ("prompt",)
    rules: Callable[[dict[str, Any]], list[str]] = lambda inp: []


SCHEMAS: dict[str, Schema] = {
    "google/veo-3.1": Schema(_VEO, rules=_veo_rules),
    "google/veo-3.1-fast": Schema(_VEO, rules=_veo_rules),
    "kwaivgi/kling-v3-video": Schema(
        {
            "prompt": _string,
            "mode": _one_of("standard", "pro", "4k"),
            "duration": _int_range(3, 15),
            "aspect_ratio": _one_of("16:9", "9:16", "1:1"),
            "start_image": _uri,
            "end_image": _uri,
            "generate_audio": _boolean,
            "multi_prompt": _shots,
            "negative_prompt": _string,
            "seed": _integer,
        },
        required=(),
        rules=_kling_rules,
    ),
    "bytedance/seedance-2.0": Schema(
        {
            "prompt": _string,
            "image": _uri,
            "last_frame_image": _uri,
            "reference_images": _uris(9),
            "reference_videos": _uris(3),
            "reference_audios": _uris(3),
            "duration": _int_range(1, 15, -1),
            "resolution": _one_of("480p", "720p", "1080p"),
            "aspect_ratio": _one_of("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "9:21", "adaptive"),
            "generate_audio": _boolean,
            "seed": _integer,
        },
        rules=_seedance_rules,
    ),
    "alibaba/wan-3": Schema(
        {
            "prompt": _string,
            "duration": _int_range(2, 30),
            "resolution": _one_of("480p", "720p", "1080p"),
            "aspect_ratio": _one_of("16:9", "9:16", "1:1", "4:3", "3:4", "adaptive"),
            "negative_prompt": _string,
            "seed": _integer,
        }
    ),
}


def version_id(model: str) -> str:
    """The (fake) 64-hex version id of a model."""
    return hashlib.sha256(f"replicate-emulator:{model}".encode()).hexdigest()


def parse_duration(value: str) -> float | None:
    """``30s``, ``1m``, ``1m30s``, ``500ms``, ``2h`` -> seconds; None when malformed."""
    value = value.strip()
    if not value or _DURATION_PART.sub("", value):
        return None
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(value))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Prediction:
    id: str
    model: str
    input: dict[str, Any]
    created: float
    length: float | None
    fail: bool
    token: str
    webhook: str | None = None
    events: tuple[str, ...] = DEFAULT_EVENTS
    deadline: float | None = None
    canceled_at: float | None = None
    delivered: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Delivery:
    url: str
    event: str
    headers: dict[str, str]
    body: bytes


class ReplicateEmulator(Emulator):
    name = "replicate"
    slug = "replicate"
    live_models = ("seedance-2.0", "kling-v3", "wan-3")

    def __init__(self, *, api_key: str = API_KEY, auto_deliver: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.creates_per_minute = 600
        self.output_as_list = False
        self.failure_message = FAILURE
        self.webhook_tamper: set[str] = set()
        self.webhooks_sent: list[Delivery] = []
        self.webhook_answers: list[int | str] = []
        self._creates: deque[float] = deque()
        self._auto_deliver = auto_deliver
        self._stop = threading.Event()
        self._deliverer: threading.Thread | None = None

    # --- the shared test modules' questions ---------------------------------------------------

    def key_fields(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def settings(self) -> dict[str, str]:
        return {"REPLICATE_BASE_URL": self.base_url}

    @classmethod
    def error_body(cls, status: int, message: str) -> Any:
        return {"title": TITLES.get(status, "Error"), "detail": message, "status": status}

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key, "webhook secret": self.webhook_secret}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ReplicateEmulator:
        super().start()
        self._stop.clear()
        if self._auto_deliver:
            self._deliverer = threading.Thread(target=self._deliver_loop, name="replicate-webhooks", daemon=True)
            self._deliverer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._deliverer is not None:
            self._deliverer.join(timeout=5)
            self._deliverer = None
        super().stop()

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._creates.clear()
            self.webhooks_sent.clear()
            self.webhook_answers.clear()
            self.webhook_tamper.clear()
            self.output_as_list = False

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        return [
            ("POST", r"/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions", "create", self.create_by_model),
            ("POST", r"/v1/predictions", "create", self.create_by_version),
            ("GET", r"/v1/predictions/(?P<id>[^/]+)", "prediction", self.get),
            ("POST", r"/v1/predictions/(?P<id>[^/]+)/cancel", "cancel", self.cancel),
            ("GET", r"/v1/webhooks/default/secret", "webhook_secret", self.secret),
            ("GET", r"/v1/account", "account", self.account),
            ("GET", r"/_delivery/(?P<token>[^/]+)/(?P<id>[^/]+)/output\.mp4", "file", self.file),
        ]

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return Response(status=status, body={**self.error_body(status, message), **extra}, content_type=PROBLEM)

    def authenticate(self, request: Request) -> Response | None:
        if request.bearer != self.api_key:
            return self.error(401, "You did not pass a valid authentication token")
        return None

    # --- the prediction's timeline -----------------------------------------------------------

    def timeline(self, p: Prediction) -> tuple[str, float | None, float | None]:
        """``(status, started_at, completed_at)`` at the emulator's clock."""
        length = max(p.length if p.length is not None else self.job_seconds, 1e-6)
        start, done = p.created + 0.2 * length, p.created + length
        ends = [(done, "failed" if p.fail else "succeeded")]
        if p.canceled_at is not None:
            ends.append((p.canceled_at, "canceled"))
        if p.deadline is not None:
            ends.append((p.deadline, "aborted" if p.deadline < start else "canceled"))
        end_at, final = min(ends, key=lambda e: e[0])
        now = self.now()
        if now >= end_at:
            return final, (start if end_at >= start else None), end_at
        if now >= start:
            return "processing", start, None
        return "starting", None, None

    def removed(self, p: Prediction) -> bool:
        _status, _started, completed = self.timeline(p)
        return completed is not None and self.now() >= completed + self.url_ttl

    def output_url(self, p: Prediction) -> str:
        return f"{self.root_url}/_delivery/{p.token}/{p.id}/output.mp4"

    def render(self, p: Prediction) -> dict[str, Any]:
        status, started, completed = self.timeline(p)
        removed = self.removed(p)
        api = f"{self.base_url}/v1/predictions/{p.id}"
        body: dict[str, Any] = {
            "id": p.id,
            "model": p.model,
            "version": "hidden",
            "input": None if removed else p.input,
            "logs": "",
            "output": None,
            "data_removed": removed,
            "error": None,
            "status": status,
            "created_at": iso(p.created),
            "urls": {
                "get": api,
                "cancel": f"{api}/cancel",
                "web": f"https://replicate.com/p/{p.id}",
            },
            "metrics": {},
        }
        if p.deadline is not None:
            body["deadline"] = iso(p.deadline)
        if started is not None:
            body["started_at"] = iso(started)
            body["logs"] = "Loading model...\nGenerating video...\n"
        if completed is not None:
            body["completed_at"] = iso(completed)
            if started is not None:
                body["metrics"] = {
                    "predict_time": round(completed - started, 3),
                    "total_time": round(completed - p.created, 3),
                }
        if status == "succeeded":
            url = self.output_url(p)
            body["output"] = [url] if self.output_as_list else url
            body["logs"] += "Done.\n"
        elif status == "failed":
            body["error"] = self.failure_message
        if removed:
            body["output"] = body["logs"] = None
        return body

    # --- endpoints ---------------------------------------------------------------------------

    def _throttled(self) -> Response | None:
        now = self.now()
        while self._creates and self._creates[0] <= now - 60:
            self._creates.popleft()
        if len(self._creates) >= self.creates_per_minute:
            wait = math.ceil(self._creates[0] + 60 - now)
            response = self.error(429, f"Request was throttled. Your rate limit resets in ~{wait}s.")
            response.headers["Retry-After"] = str(wait)
            return response
        self._creates.append(now)
        return None

    def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error(400, "The request body must be a JSON object.")
        return body

    def _validate(self, model: str, inp: Any) -> list[str]:
        if not isinstance(inp, dict):
            return ["input: must be an object"]
        schema = SCHEMAS[model]
        problems = [f"input.{name}: required" for name in schema.required if name not in inp]
        for name, value in inp.items():
            check = schema.fields.get(name)
            if check is None:
                problems.append(f"input.{name}: additional property is not allowed")
            elif (problem := check(value)) is not None:
                problems.append(f"input.{name}: {problem}")
        return problems or schema.rules(inp)

    def _create(self, request: Request, model: str, body: dict[str, Any]) -> Response:
        problems = self._validate(model, body.get("input"))
        webhook = body.get("webhook")
        if webhook is not None:
            parts = urlsplit(webhook) if isinstance(webhook, str) else None
            local = parts is not None and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
            if parts is None or not (parts.scheme == "https" or local) or not parts.hostname:
                problems.append("webhook: must be an HTTPS URL")
        events = body.get("webhook_events_filter", list(DEFAULT_EVENTS))
        if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
            problems.append(f"webhook_events_filter: must be a list of {', '.join(EVENTS)}")
        deadline = None
        cancel_after = request.headers.get("Cancel-After")
        if cancel_after is not None:
            seconds = parse_duration(cancel_after)
            if seconds is None:
                problems.append(f"Cancel-After: invalid duration {cancel_after!r}")
            else:
                deadline = self.now() + seconds
        if problems:
            return self.error(422, "; ".join(problems))
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        prompt = body["input"].get("prompt") or ""
        p = Prediction(
            id="".join(secrets.choice(_ID_ALPHABET) for _ in range(26)),
            model=model,
            input=body["input"],
            created=self.now(),
            length=self.new_job_length(),
            fail="[fail]" in prompt.lower(),
            token=secrets.token_urlsafe(12),
            webhook=webhook,
            events=tuple(events),
            deadline=deadline,
        )
        self.jobs[p.id] = p
        self.jobs_created += 1
        return Response(status=201, body=self.render(p))

    def create_by_model(self, request: Request) -> Response:
        model = f"{request.params['owner']}/{request.params['name']}"
        if model not in SCHEMAS:
            return self.error(404, "The requested resource could not be found.")
        body = self._body(request)
        return body if isinstance(body, Response) else self._create(request, model, body)

    def create_by_version(self, request: Request) -> Response:
        body = self._body(request)
        if isinstance(body, Response):
            return body
        version = body.get("version")
        if not isinstance(version, str) or not version:
            return self.error(422, "version: required")
        name, _, digest = version.partition(":") if "/" in version else ("", "", version)
        if name:
            model = name if name in SCHEMAS and (not digest or digest == version_id(name)) else None
        else:
            model = next((m for m in SCHEMAS if version_id(m) == digest), None)
        if model is None:
            return self.error(422, f"version: invalid version or not permitted ({version!r})")
        return self._create(request, model, body)

    def get(self, request: Request) -> Response:
        p = self.jobs.get(request.params["id"])
        if p is None:
            return self.error(404, "The requested resource could not be found.")
        return Response(body=self.render(p))

    def cancel(self, request: Request) -> Response:
        p = self.jobs.get(request.params["id"])
        if p is None:
            return self.error(404, "The requested resource could not be found.")
        if self.timeline(p)[0] in ("starting", "processing"):
            p.canceled_at = self.now()
        return Response(body=self.render(p))

    def secret(self, request: Request) -> Response:
        return Response(body={"key": self.webhook_secret})

    def account(self, request: Request) -> Response:
        return Response(
            body={"type": "organization", "username": "mediarouter-emulator", "name": "MediaRouter", "github_url": None}
        )

    def file(self, request: Request) -> Response:
        p = self.jobs.get(request.params["id"])
        if p is None or p.token != request.params["token"] or self.timeline(p)[0] != "succeeded" or self.removed(p):
            return Response(status=404, body=b"Not Found", content_type="text/plain")
        return self.video_response()

    # --- Prefer: wait ------------------------------------------------------------------------

    def dispatch(self, request: Request) -> tuple[Response, Fault | None]:
        response, fault = super().dispatch(request)
        prefer = request.headers.get("Prefer") or ""
        match = re.fullmatch(r"\s*wait(?:\s*=\s*(\d+))?\s*", prefer)
        if request.endpoint == "create" and response.status == 201 and match and isinstance(response.body, dict):
            limit = min(max(int(match.group(1) or 60), 1), 60)
            ends = time.monotonic() + limit
            prediction_id = response.body["id"]
            while time.monotonic() < ends:
                with self.lock:
                    p = self.jobs.get(prediction_id)
                    if p is None or self.timeline(p)[0] in TERMINAL:
                        break
                time.sleep(0.05)
            with self.lock:
                p = self.jobs.get(prediction_id)
                if p is not None:
                    response.body = self.render(p)
        return response, fault

    # --- webhooks ----------------------------------------------------------------------------

    def _due(self, p: Prediction) -> list[str]:
        status, started, _completed = self.timeline(p)
        reached = []
        if started is not None:
            reached += ["start", "logs"]
        if status == "succeeded":
            reached.append("output")
        if status in TERMINAL:
            reached.append("completed")
        due = [e for e in reached if e in p.events and e not in p.delivered]
        if "late_start" in self.webhook_tamper and "start" in due and "completed" in due:
            due.remove("start")
            due.append("start")
        return due

    def sign_delivery(self, body: bytes, *, msg_id: str | None = None) -> dict[str, str]:
        """Standard Webhooks headers for ``body``, with this emulator's tampering applied."""
        msg_id = msg_id or "msg_" + secrets.token_hex(12)
        when = time.time() - (600 if "stale" in self.webhook_tamper else 0)
        secret = self.webhook_secret
        if "bad_signature" in self.webhook_tamper:
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        stamp = datetime.fromtimestamp(when, UTC)
        signature = Webhook(secret).sign(msg_id=msg_id, timestamp=stamp, data=body.decode())
        return {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when)),
            "webhook-signature": signature,
        }

    def pending_deliveries(self) -> list[Delivery]:
        """Sign the deliveries that are due now and mark them delivered."""
        out: list[Delivery] = []
        with self.lock:
            for p in list(self.jobs.values()):
                if not p.webhook:
                    continue
                for event in self._due(p):
                    p.delivered.add(event)
                    body = json.dumps(self.render(p)).encode()
                    delivery = Delivery(url=p.webhook, event=event, headers=self.sign_delivery(body), body=body)
                    copies = 2 if "duplicate" in self.webhook_tamper else 1
                    out.extend([delivery] * copies)
                    self.webhooks_sent.extend([delivery] * copies)
        return out

    def deliver_webhooks(self) -> int:
        """POST every due delivery (no redirects followed, §3; a few retries); returns the count."""
        deliveries = self.pending_deliveries()
        for delivery in deliveries:
            for attempt in range(3):
                try:
                    answer = requests.post(
                        delivery.url, data=delivery.body, headers=delivery.headers, timeout=5, allow_redirects=False
                    )
                    self.webhook_answers.append(answer.status_code)
                    if 200 <= answer.status_code < 300:
                        break
                except requests.RequestException as exc:
                    self.webhook_answers.append(type(exc).__name__)
                time.sleep(0.1 * (attempt + 1))
        return len(deliveries)

    def _deliver_loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.deliver_webhooks()
            except Exception:  # noqa: BLE001 - a broken delivery must not stop the emulator
                pass


EMULATOR = ReplicateEmulator


if __name__ == "__main__":
    main(ReplicateEmulator, sys.argv[1:])
