"""Emulator of the fal.ai queue API (``reference/providers/fal.md`` §16 "Emulator notes", §14 quirks).

Run: ``python -m tests.emulators.fal --port 9105``. One server plays three fal hosts: the queue
(``FAL_BASE_URL``), the platform API (``FAL_API_BASE_URL``: ``GET /v1/models/pricing``) and the
webhook key set (``FAL_JWKS_URL``: ``GET /.well-known/jwks.json``); the media CDN is
``/files/b/<request>/output.mp4`` on the same host.

- ``POST /{owner}/{app}/{sub/path}`` (``Authorization: Key <id>:<secret>``) validates the body
  against that endpoint's input schema (string vs integer ``duration``, ``start_image_url`` vs
  ``image_url``, allowed values, unknown fields) and answers 422 ``detail[]`` like the model's
  validator would, then answers the four ids/URLs built from ``{owner}/{app}`` only (quirk 1).
- ``GET …/requests/{id}/status``: ``IN_QUEUE`` (decreasing 0-indexed ``queue_position``) ->
  ``IN_PROGRESS`` (logs with ``?logs=1``) -> ``COMPLETED`` (``metrics``, ``error``, ``error_type``);
  202 until completed, then 200. ``max_concurrency`` caps ``IN_PROGRESS`` per key.
- ``GET …/requests/{id}``: the output (``x-fal-billable-units``), 400 before completion, or the
  failed request's error body.
- ``PUT …/requests/{id}/cancel``: 202 ``CANCELLATION_REQUESTED`` (queued or running),
  400 ``ALREADY_COMPLETED``, 404 ``NOT_FOUND``; with ``honour_cancel = False`` a running request
  ignores it and completes (quirk 8).
- The video (``sample_mp4()``) expires ``expiration_duration_seconds`` (the
  ``X-Fal-Object-Lifecycle-Preference`` header; else 7 days) after completion: then 404.
- Webhooks: with ``?fal_webhook=``, a finished request is POSTed there (``OK``/``ERROR`` bodies)
  signed with the emulator's ED25519 key; the JWKS also lists a stale key. ``webhook_faults``
  (``"bad_signature"``, ``"stale"``, ``"duplicate"``, ``"unknown_key"``) spoil the next deliveries;
  ``rotate_signing_key()`` rotates.
- Price list: ``GET /v1/models/pricing?endpoint_id=…`` (repeated or comma-separated, 1 to 50 ids,
  else 400; ``Key`` auth like every route) answers ``{"prices": [...], "next_cursor": null,
  "has_more": false}`` for the listed endpoints; ``set_price()`` changes a price, ``pricing_batches``
  records how many ids each call asked for.

Failure forms: a prompt containing ``[fail]`` ends ``COMPLETED`` with ``error_type:
runner_disconnected`` and a 503 error body on the result URL; ``[moderated]`` ends with a 422
``content_policy_violation`` result; ``[nsfw]`` is refused at submit with a 422
``content_policy_violation``. ``status_reports_errors = False`` hides the error from the status
(legacy apps): only the result URL tells. Fault helpers: :meth:`FalEmulator.user_timeout_fault`
(504 with ``X-Fal-Request-Timeout-Type``), :meth:`FalEmulator.ingress_fault` (an nginx 502 without
``x-fal-request-id``), :meth:`FalEmulator.runner_fault` (a 503 that reached fal).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .base import Emulator, Request, Response, main, sample_mp4

API_KEY = "fal-emu-key-id:fal-emu-secret-0000"
USER_ID = "fal-user-emulator"
DEFAULT_LIFETIME = 7 * 24 * 3600.0
DATA_URI = re.compile(r"^data:image/(png|jpeg|webp);base64,[A-Za-z0-9+/=]+$")

Validator = Callable[[Any], str | None]


# --- input validators: each returns None, or the validator's complaint ------------------------


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "str type expected"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "value could not be parsed to a boolean"


def _enum(*values: Any) -> Validator:
    def check(value: Any) -> str | None:
        if any(value == v and type(value) is type(v) for v in values):
            return None
        return f"value is not a valid enumeration member; permitted: {', '.join(repr(v) for v in values)}"

    return check


def _integer(low: int, high: int) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "value is not a valid integer"
        return None if low <= value <= high else f"ensure this value is between {low} and {high}"

    return check


def _number(low: float, high: float) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "value is not a valid number"
        return None if low <= value <= high else f"ensure this value is between {low} and {high}"

    return check


def _text(limit: int) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "str type expected"
        return None if len(value) <= limit else f"ensure this value has at most {limit} characters"

    return check


def _file_url(*, data_uri: bool = True) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "str type expected"
        if value.startswith("https://"):
            return None
        if value.startswith("data:"):
            if not data_uri:
                return "data URIs are not supported here; give a public https URL"
            return None if DATA_URI.match(value) else "invalid data URI"
        return "a public https URL or a data URI is required"

    return check


def _anything(value: Any) -> str | None:
    return None


def _strings(*values: str) -> Validator:
    return _enum(*values)


SECONDS = [str(n) for n in range(3, 16)]


@dataclass(frozen=True)
class Schema:
    fields: dict[str, Validator]
    required: tuple[str, ...] = ()
    # how billable units are counted: "seconds" of output, or one "video"
    unit: str = "seconds"
    default_seconds: int = 5


def _veo(i2v: bool) -> Schema:
    fields: dict[str, Validator] = {
        "prompt": _string,
        "aspect_ratio": _strings("auto", "16:9", "9:16") if i2v else _strings("16:9", "9:16"),
        "duration": _strings("4s", "6s", "8s"),
        "resolution": _strings("720p", "1080p", "4k"),
        "generate_audio": _boolean,
        "negative_prompt": _string,
        "seed": _integer(0, 2**32 - 1),
        "safety_tolerance": _strings("1", "2", "3", "4", "5", "6"),
    }
    if i2v:
        fields["image_url"] = _file_url()
    else:
        fields["auto_fix"] = _boolean
    return Schema(fields, ("prompt", "image_url") if i2v else ("prompt",), default_seconds=8)


def _kling(i2v: bool) -> Schema:
    fields: dict[str, Validator] = {
        "prompt": _string,
        "multi_prompt": _anything,
        "shot_type": _strings("customize", "intelligent"),
        "duration": _strings(*SECONDS),
        "generate_audio": _boolean,
        "negative_prompt": _string,
        "cfg_scale": _number(0, 1),
    }
    if i2v:
        fields.update({"start_image_url": _file_url(), "end_image_url": _file_url(), "elements": _anything})
    else:
        fields["aspect_ratio"] = _strings("16:9", "9:16", "1:1")
    return Schema(fields, ("start_image_url",) if i2v else ())


def _seedance(i2v: bool) -> Schema:
    fields: dict[str, Validator] = {
        "prompt": _string,
        "duration": _strings("auto", *[str(n) for n in range(4, 16)]),
        "resolution": _strings("480p", "720p", "1080p", "4k"),
        "aspect_ratio": _strings("auto", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"),
        "generate_audio": _boolean,
        "bitrate_mode": _strings("standard", "high"),
        "seed": _integer(-1, 2**32 - 1),
        "end_user_id": _string,
    }
    if i2v:
        fields.update({"image_url": _file_url(), "end_image_url": _file_url()})
    return Schema(fields, ("prompt", "image_url") if i2v else ("prompt",))


def _hailuo(i2v: bool, pro: bool) -> Schema:
    fields: dict[str, Validator] = {"prompt": _string, "prompt_optimizer": _boolean}
    if not pro:
        fields["duration"] = _strings("6", "10")
    if i2v:
        fields["image_url"] = _file_url()
    return Schema(fields, ("prompt", "image_url") if i2v else ("prompt",), unit="video", default_seconds=6)


def _h3(i2v: bool) -> Schema:
    fields: dict[str, Validator] = {
        "prompt": _string,
        "duration": _integer(4, 15),
        "resolution": _strings("2K"),
    }
    if i2v:
        fields.update({"image_url": _file_url(), "end_image_url": _file_url()})
    else:
        fields["aspect_ratio"] = _strings("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
    return Schema(fields, ("prompt", "image_url") if i2v else ("prompt",))


def _wan(i2v: bool) -> Schema:
    fields: dict[str, Validator] = {
        "prompt": _text(5000),
        "duration": _integer(2, 15),
        "resolution": _strings("720p", "1080p"),
        "negative_prompt": _text(500),
        "seed": _integer(0, 2147483647),
        "enable_prompt_expansion": _boolean,
        "enable_safety_checker": _boolean,
        "audio_url": _file_url(data_uri=False),
    }
    if i2v:
        fields.update({"image_url": _file_url(), "end_image_url": _file_url(), "video_url": _file_url()})
    else:
        fields["aspect_ratio"] = _strings("16:9", "9:16", "1:1", "4:3", "3:4")
    return Schema(fields, () if i2v else ("prompt",))


def _luma(i2v: bool) -> Schema:
    fields: dict[str, Validator] = {
        "prompt": _string,
        "duration": _strings("5s", "10s"),
        "resolution": _strings("540p", "720p", "1080p"),
        "aspect_ratio": _strings("3:4", "4:3", "1:1", "9:16", "16:9", "21:9"),
        "loop": _boolean,
        "hdr": _boolean,
        "exr_export": _boolean,
    }
    if i2v:
        fields.update(
            {
                "image_url": _file_url(data_uri=False),
                "end_image_url": _file_url(data_uri=False),
                "keyframes": _anything,
                "keyframe_indexes": _anything,
            }
        )
    return Schema(fields, ("prompt",), unit="video")


SCHEMAS: dict[str, Schema] = {
    "fal-ai/veo3.1": _veo(False),
    "fal-ai/veo3.1/image-to-video": _veo(True),
    "fal-ai/veo3.1/fast": _veo(False),
    "fal-ai/veo3.1/fast/image-to-video": _veo(True),
    **{f"fal-ai/kling-video/v3/{tier}/text-to-video": _kling(False) for tier in ("standard", "pro", "4k")},
    **{f"fal-ai/kling-video/v3/{tier}/image-to-video": _kling(True) for tier in ("standard", "pro", "4k")},
    "bytedance/seedance-2.0/text-to-video": _seedance(False),
    "bytedance/seedance-2.0/image-to-video": _seedance(True),
    "fal-ai/minimax/hailuo-2.3/standard/text-to-video": _hailuo(False, False),
    "fal-ai/minimax/hailuo-2.3/standard/image-to-video": _hailuo(True, False),
    "fal-ai/minimax/hailuo-2.3/pro/text-to-video": _hailuo(False, True),
    "fal-ai/minimax/hailuo-2.3/pro/image-to-video": _hailuo(True, True),
    "minimax/h3/text-to-video": _h3(False),
    "minimax/h3/image-to-video": _h3(True),
    "fal-ai/wan/v2.7/text-to-video": _wan(False),
    "fal-ai/wan/v2.7/image-to-video": _wan(True),
    "luma/agent/ray/v3.2/text-to-video": _luma(False),
    "luma/agent/ray/v3.2/image-to-video": _luma(True),
}
# the platform API's unit prices for the pricing route (a subset; fal.md §12):
# endpoint -> (unit price, unit[, currency]); FalEmulator.set_price changes one emulator's list
UNIT_PRICES: dict[str, tuple[Any, ...]] = {
    "fal-ai/veo3.1": (0.40, "seconds"),
    "fal-ai/veo3.1/fast": (0.15, "seconds"),
    "fal-ai/wan/v2.7/text-to-video": (0.10, "seconds"),
    "luma/agent/ray/v3.2/text-to-video": (0.50, "videos"),
}


def app_of(endpoint: str) -> str:
    """``{owner}/{app}`` of an endpoint id (``workflows/`` and ``comfy/`` keep one more segment)."""
    parts = endpoint.split("/")
    keep = 3 if parts[0] in ("workflows", "comfy") else 2
    return "/".join(parts[:keep])


def validate(endpoint: str, body: Any) -> list[dict[str, Any]]:
    """The model validator's ``detail[]`` for ``body`` at ``endpoint`` (empty: valid)."""
    schema = SCHEMAS[endpoint]
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
    problems = []
    for name in schema.required:
        if name not in body:
            problems.append({"loc": ["body", name], "msg": "field required", "type": "value_error.missing"})
    for name, value in body.items():
        check = schema.fields.get(name)
        if check is None:
            problems.append({"loc": ["body", name], "msg": "extra fields not permitted", "type": "value_error.extra"})
            continue
        complaint = check(value)
        if complaint is not None:
            item = {"loc": ["body", name], "msg": complaint, "type": "value_error"}
            if not (isinstance(value, str) and len(value) > 200):
                item["input"] = value
            problems.append(item)
    if endpoint.startswith("fal-ai/kling-video/") and "prompt" in body and "multi_prompt" in body:
        problems.append({"loc": ["body"], "msg": "give prompt or multi_prompt, not both", "type": "value_error"})
    if endpoint == "luma/agent/ray/v3.2/image-to-video":
        if body.get("duration") == "10s" and "keyframes" not in body:
            problems.append({"loc": ["body", "duration"], "msg": "10s needs keyframes", "type": "value_error"})
        if "image_url" not in body and "keyframes" not in body:
            problems.append({"loc": ["body", "image_url"], "msg": "field required", "type": "value_error.missing"})
    return problems


def _seconds_of(schema: Schema, body: dict[str, Any]) -> int:
    value = body.get("duration")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.rstrip("s").isdigit():
        return int(value.rstrip("s"))
    return schema.default_seconds


@dataclass
class Job:
    id: str
    endpoint: str
    app: str
    body: dict[str, Any]
    key: str
    created: float
    start: float
    length: float  # running time (the job's total length less its fifth in the queue)
    webhook: str | None
    lifetime: float
    outcome: str  # ok | runner_disconnected | moderated
    cancelled_at: float | None = None
    cancel_requested: bool = False
    delivered: bool = False
    seed: int = 0
    deliveries: int = 0

    @property
    def end(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.start + self.length


@dataclass
class SigningKey:
    kid: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwk(self) -> dict[str, str]:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}


class FalEmulator(Emulator):
    name = "fal"
    slug = "fal"
    live_models = ("veo-3.1", "wan-2.7")

    def __init__(self, *, api_key: str = API_KEY, max_concurrency: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.honour_cancel = True
        self.status_reports_errors = True
        self.expired_status = 404
        self.signing_key = SigningKey(kid="fal-emu-1")
        self.stale_key = SigningKey(kid="fal-emu-stale")  # listed, never signs (§16)
        self.retired_keys: list[SigningKey] = []
        self.webhook_faults: list[str] = []
        self.webhook_log: list[dict[str, Any]] = []
        # the price list; the module's table until set_price (tests may also patch UNIT_PRICES)
        self.unit_prices: dict[str, tuple[Any, ...]] = UNIT_PRICES
        self.pricing_batches: list[int] = []  # how many ids each pricing call asked for
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- the shared emulator questions ---------------------------------------------------------

    def key_fields(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def settings(self) -> dict[str, str]:
        return {
            "FAL_BASE_URL": self.base_url,
            "FAL_API_BASE_URL": self.root_url,
            "FAL_JWKS_URL": self.jwks_url,
        }

    @classmethod
    def error_body(cls, status: int, message: str) -> Any:
        if status == 422:
            return {"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}
        error_type = {500: "internal_error", 502: "runner_incomplete_response", 503: "runner_scheduling_failure"}
        if status in error_type:
            return {"detail": message, "error_type": error_type[status]}
        return {"detail": message}

    @classmethod
    def contract_credentials(cls, secret: str) -> dict[str, str]:
        """A key of fal's ``key_id:key_secret`` form around the contract test's secret."""
        return {"api_key": f"contract-key-id:{secret}"}

    @classmethod
    def validation_ok_body(cls) -> dict[str, Any]:
        """What the platform API's pricing route answers a valid key."""
        return {"prices": [], "next_cursor": None, "has_more": False}

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key, "jwks": self.jwks_url}

    @property
    def jwks_url(self) -> str:
        return f"{self.root_url}/.well-known/jwks.json"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FalEmulator:
        super().start()
        self._ticker_stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="fal-emulator-webhooks", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        super().stop()

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.webhook_faults.clear()
            self.webhook_log.clear()
            self.honour_cancel = True
            self.status_reports_errors = True
            self.unit_prices = UNIT_PRICES
            self.pricing_batches.clear()

    def rotate_signing_key(self) -> SigningKey:
        """Sign with a new key from now on; the old one stays in the key set."""
        with self.lock:
            self.retired_keys.insert(0, self.signing_key)
            self.signing_key = SigningKey(kid=f"fal-emu-{len(self.retired_keys) + 1}")
            return self.signing_key

    # --- fault helpers (fal.md §16) ------------------------------------------------------------

    def user_timeout_fault(self, endpoint: str = "submit", **kwargs: Any) -> Any:
        return self.add_fault(
            endpoint,
            status=504,
            body={"detail": "Request timed out before processing started.", "error_type": "request_timeout"},
            headers={
                "X-Fal-Error-Type": "request_timeout",
                "X-Fal-Request-Timeout-Type": "user",
                "x-fal-request-id": str(uuid.uuid4()),
            },
            **kwargs,
        )

    def ingress_fault(self, endpoint: str = "submit", status: int = 502, **kwargs: Any) -> Any:
        """What the nginx ingress answers: HTML, no ``x-fal-request-id``."""
        html = f"<html><head><title>{status} Bad Gateway</title></head><body><center>nginx</center></body></html>"
        return self.add_fault(endpoint, status=status, body=html, **kwargs)

    def runner_fault(self, endpoint: str = "submit", **kwargs: Any) -> Any:
        """A 503 from fal itself (the request reached it: ``x-fal-request-id`` is set)."""
        return self.add_fault(
            endpoint,
            status=503,
            body={"detail": "No runner could be scheduled.", "error_type": "runner_scheduling_failure"},
            headers={"X-Fal-Error-Type": "runner_scheduling_failure", "x-fal-request-id": str(uuid.uuid4())},
            **kwargs,
        )

    # --- routes ------------------------------------------------------------------------------

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        app = r"/(?P<app>(?:workflows|comfy)/[^/]+/[^/]+|[^/]+/[^/]+)"
        return [
            ("GET", r"/\.well-known/jwks\.json", "jwks", self.jwks),
            ("GET", r"/v1/models/pricing", "pricing", self.pricing),
            ("GET", r"/files/b/(?P<job>[^/]+)/(?P<name>[^/]+)", "file", self.media),
            ("GET", app + r"/requests/(?P<id>[^/]+)/status", "status", self.status),
            ("GET", app + r"/requests/(?P<id>[^/]+)", "result", self.result),
            ("PUT", app + r"/requests/(?P<id>[^/]+)/cancel", "cancel", self.cancel),
            ("POST", r"/(?P<endpoint>[A-Za-z0-9][^/]*/[^/]+(?:/[^/]+)*)", "submit", self.submit),
        ]

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return Response(status=status, body={"detail": message, **extra})

    def authenticate(self, request: Request) -> Response | None:
        if request.endpoint == "jwks":
            return None
        value = request.headers.get("Authorization") or ""
        if not value.startswith("Key "):
            return self.error(401, "Missing or malformed Authorization header; expected 'Key <key_id>:<key_secret>'.")
        if value[len("Key ") :] != self.api_key:
            return self.error(401, "Invalid API key.")
        return None

    # --- the queue -----------------------------------------------------------------------------

    def _urls(self, job: Job) -> dict[str, str]:
        base = f"{self.base_url}/{job.app}/requests/{job.id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def _start_time(self, created: float, length: float, key: str) -> float:
        """FIFO: queued for a fifth of the job's length, then until one of ``max_concurrency`` slots
        of this key frees."""
        start = created + length * 0.2
        if not self.max_concurrency:
            return start
        ends = sorted(j.end for j in self.jobs.values() if j.key == key and j.cancelled_at is None and j.end > start)
        if len(ends) < self.max_concurrency:
            return start
        return max(start, ends[len(ends) - self.max_concurrency])

    def _phase(self, job: Job) -> str:
        now = self.now()
        if job.cancelled_at is not None and now >= job.cancelled_at:
            return "cancelled"
        if now < job.start:
            return "queued"
        if now < job.start + job.length:
            return "running"
        return "done"

    def _failed(self, job: Job) -> bool:
        return job.outcome != "ok" or job.cancelled_at is not None

    def submit(self, request: Request) -> Response:
        endpoint = request.params["endpoint"]
        if endpoint not in SCHEMAS:
            return self.error(404, f"Application '{endpoint}' not found.")
        try:
            body = request.json()
        except ValueError:
            detail = [{"loc": ["body"], "msg": "invalid JSON", "type": "value_error.jsondecode"}]
            return Response(status=422, body={"detail": detail})
        problems = validate(endpoint, body)
        if problems:
            return Response(status=422, body={"detail": problems})
        prompt = str(body.get("prompt") or "").lower()
        if "[nsfw]" in prompt:
            return Response(
                status=422,
                body={
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "The prompt was flagged by the content checker.",
                            "type": "content_policy_violation",
                            "ctx": {"category": "sexual"},
                        }
                    ]
                },
                headers={"X-Fal-Retryable": "false"},
            )
        lifetime = DEFAULT_LIFETIME
        preference = request.headers.get("X-Fal-Object-Lifecycle-Preference")
        if preference:
            try:
                value = json.loads(preference).get("expiration_duration_seconds")
            except (ValueError, AttributeError):
                return self.error(400, "X-Fal-Object-Lifecycle-Preference is not valid JSON.", error_type="bad_request")
            lifetime = float("inf") if value is None else float(value)
        created = self.now()
        length = self.new_job_length() or self.job_seconds
        key = (request.headers.get("Authorization") or "")[4:]
        outcome = "runner_disconnected" if "[fail]" in prompt else "moderated" if "[moderated]" in prompt else "ok"
        job = Job(
            id=str(uuid.uuid4()),
            endpoint=endpoint,
            app=app_of(endpoint),
            body=body,
            key=key,
            created=created,
            start=self._start_time(created, length, key),
            length=length * 0.8,
            webhook=request.arg("fal_webhook"),
            lifetime=lifetime,
            outcome=outcome,
            seed=body.get("seed") if isinstance(body.get("seed"), int) else 42,
        )
        self.jobs[job.id] = job
        self.jobs_created += 1
        return Response(
            body={
                "request_id": job.id,
                "gateway_request_id": job.id,
                **self._urls(job),
                "status": "IN_QUEUE",
                "queue_position": self._queue_position(job),
            },
            headers={"x-fal-request-id": job.id},
        )

    def _queue_position(self, job: Job) -> int:
        return sum(
            1
            for other in self.jobs.values()
            if other is not job
            and self._phase(other) == "queued"
            and (other.start, other.created) < (job.start, job.created)
        )

    def _job(self, request: Request) -> Job | None:
        job = self.jobs.get(request.params["id"])
        if job is None or job.app != request.params["app"]:
            return None
        return job

    def _error_parts(self, job: Job) -> tuple[str, str | None]:
        if job.cancelled_at is not None:
            return "Request was cancelled.", "client_cancelled"
        if job.outcome == "runner_disconnected":
            return "Runner disconnected while processing the request.", "runner_disconnected"
        return "Invalid status code: 422", None

    def status(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return self.error(404, "Request not found.")
        phase = self._phase(job)
        logs = request.arg("logs") == "1"
        body: dict[str, Any] = {"request_id": job.id, "response_url": self._urls(job)["response_url"]}
        if phase == "queued":
            return Response(
                status=202, body={**body, "status": "IN_QUEUE", "queue_position": self._queue_position(job)}
            )
        log = [{"timestamp": "2026-12-01T00:00:00Z", "level": "INFO", "message": "Generating video", "source": "user"}]
        if phase == "running":
            return Response(status=202, body={**body, "status": "IN_PROGRESS", "logs": log if logs else None})
        error, error_type = (None, None)
        if self._failed(job) and self.status_reports_errors:
            error, error_type = self._error_parts(job)
        return Response(
            status=200,
            body={
                **body,
                "status": "COMPLETED",
                "logs": log if logs else None,
                "metrics": {"inference_time": round(job.length, 3)},
                "error": error,
                "error_type": error_type,
            },
        )

    def _output(self, job: Job) -> dict[str, Any]:
        data = sample_mp4() if self.video_bytes is None else b""
        return {
            "video": {
                "url": f"{self.root_url}/files/b/{job.id}/output.mp4",
                "content_type": "video/mp4",
                "file_name": "output.mp4",
                "file_size": self.video_bytes if self.video_bytes is not None else len(data),
            },
            "seed": job.seed,
        }

    def _result_error(self, job: Job) -> Response:
        ids = {"x-fal-request-id": job.id}
        if job.cancelled_at is not None:
            body = {"detail": "Request was cancelled.", "error_type": "client_cancelled"}
            return Response(status=499, body=body, headers={**ids, "X-Fal-Error-Type": "client_cancelled"})
        if job.outcome == "runner_disconnected":
            body = {"detail": "Runner disconnected while processing the request.", "error_type": "runner_disconnected"}
            return Response(status=503, body=body, headers={**ids, "X-Fal-Error-Type": "runner_disconnected"})
        detail = [
            {
                "loc": ["body"],
                "msg": "The generated video was flagged by the content checker.",
                "type": "content_policy_violation",
                "ctx": {"category": "violence"},
            }
        ]
        return Response(status=422, body={"detail": detail}, headers={**ids, "X-Fal-Retryable": "false"})

    def _billable_units(self, job: Job) -> str:
        schema = SCHEMAS[job.endpoint]
        return "1" if schema.unit == "video" else str(_seconds_of(schema, job.body))

    def result(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return self.error(404, "Request not found.")
        phase = self._phase(job)
        if phase in ("queued", "running"):
            return self.error(400, "Request is still in progress.", error_type="bad_request")
        if self._failed(job):
            return self._result_error(job)
        return Response(
            body=self._output(job),
            headers={"x-fal-request-id": job.id, "x-fal-billable-units": self._billable_units(job)},
        )

    def cancel(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return Response(status=404, body={"status": "NOT_FOUND"})
        phase = self._phase(job)
        if phase in ("done", "cancelled"):
            return Response(status=400, body={"status": "ALREADY_COMPLETED"})
        if phase == "queued" or self.honour_cancel:
            job.cancelled_at = self.now()
        job.cancel_requested = True
        return Response(status=202, body={"status": "CANCELLATION_REQUESTED"})

    # --- platform API, key set, media ----------------------------------------------------------

    def set_price(self, endpoint: str, unit_price: float, unit: str = "seconds", currency: str = "USD") -> None:
        """List ``endpoint`` at this price from now on (this emulator only; ``reset`` restores)."""
        with self.lock:
            self.unit_prices = {**self.unit_prices, endpoint: (unit_price, unit, currency)}

    def pricing(self, request: Request) -> Response:
        """``GET /v1/models/pricing``: 1 to 50 ids, repeated or comma-separated (fal's rule)."""
        ids = [e for value in request.query.get("endpoint_id", []) for e in value.split(",") if e]
        if not 1 <= len(ids) <= 50:
            return self.error(400, "Provide from 1 to 50 endpoint ids.")
        with self.lock:
            self.pricing_batches.append(len(ids))
            listed = dict(self.unit_prices)
        prices = []
        for e in ids:
            if e in listed:
                price, unit, *currency = listed[e]
                prices.append(
                    {"endpoint_id": e, "unit_price": price, "unit": unit, "currency": (currency or ["USD"])[0]}
                )
        return Response(body={"prices": prices, "next_cursor": None, "has_more": False})

    def jwks(self, request: Request) -> Response:
        with self.lock:
            keys = [self.signing_key, *self.retired_keys, self.stale_key]
        return Response(body={"keys": [k.jwk() for k in keys]})

    def media(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job"])
        if job is None or self._phase(job) != "done" or self._failed(job):
            return Response(status=404, body=b"Not Found", content_type="text/plain")
        if self.now() > job.end + job.lifetime:
            return Response(status=self.expired_status, body=b"File expired", content_type="text/plain")
        return self.video_response()

    # --- webhooks --------------------------------------------------------------------------------

    def webhook_body(self, job: Job) -> bytes:
        if self._failed(job):
            error = self._result_error(job)
            payload = {
                "request_id": job.id,
                "gateway_request_id": job.id,
                "status": "ERROR",
                "error": f"Invalid status code: {error.status}",
                "payload": error.body,
            }
        else:
            payload = {
                "request_id": job.id,
                "gateway_request_id": job.id,
                "status": "OK",
                "payload": self._output(job),
                "error": None,
            }
        return json.dumps(payload).encode()

    def signed(
        self,
        request_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        key: SigningKey | None = None,
        user_id: str = USER_ID,
    ) -> dict[str, str]:
        """The four signature headers fal sends with ``body`` (§11)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message = "\n".join((request_id, user_id, stamp, hashlib.sha256(body).hexdigest())).encode()
        signature = (key or self.signing_key).private.sign(message).hex()
        return {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": signature,
        }

    def delivery(self, request_id: str) -> tuple[dict[str, str], bytes]:
        """``(headers, body)`` of the genuine webhook for a finished request."""
        with self.lock:
            job = self.jobs[request_id]
            body = self.webhook_body(job)
        return self.signed(request_id, body), body

    def _spoiled(self, job: Job, body: bytes, fault: str | None) -> dict[str, str]:
        if fault == "stale":
            return self.signed(job.id, body, timestamp=int(time.time()) - 400)
        if fault == "unknown_key":
            return self.signed(job.id, body, key=SigningKey(kid="never-published"))
        headers = self.signed(job.id, body)
        if fault == "bad_signature":
            sig = headers["X-Fal-Webhook-Signature"]
            headers["X-Fal-Webhook-Signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
        return headers

    def _tick(self) -> None:
        while not self._ticker_stop.wait(0.1):
            with self.lock:
                due = [
                    j
                    for j in self.jobs.values()
                    if j.webhook and not j.delivered and self._phase(j) in ("done", "cancelled")
                ]
                work = []
                for job in due:
                    job.delivered = True
                    fault = self.webhook_faults.pop(0) if self.webhook_faults else None
                    body = self.webhook_body(job)
                    times = 2 if fault == "duplicate" else 1
                    work.extend((job, body, self._spoiled(job, body, fault), fault) for _ in range(times))
            for job, body, headers, fault in work:
                self._post(job, body, headers, fault)

    def sent_webhooks(
        self, count: int, *, request_id: str | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The logged deliveries (of one job if given), once at least ``count`` are logged.

        A receiver sees a delivery before ``_post`` logs its answer, so a test that waited for the
        receiver (or for the job) must wait here too before reading the log.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                log = [d for d in self.webhook_log if request_id is None or d["request_id"] == request_id]
            if len(log) >= count or time.monotonic() >= deadline:
                return log
            time.sleep(0.02)

    def _post(self, job: Job, body: bytes, headers: dict[str, str], fault: str | None) -> None:
        request = urllib.request.Request(job.webhook or "", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError):
            status = None
        with self.lock:
            job.deliveries += 1
            self.webhook_log.append(
                {
                    "request_id": job.id,
                    "url": job.webhook,
                    "headers": headers,
                    "body": body,
                    "status": status,
                    "fault": fault,
                }
            )


EMULATOR = FalEmulator


if __name__ == "__main__":
    main(FalEmulator, sys.argv[1:])
