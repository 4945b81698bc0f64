"""Emulator of BytePlus ModelArk's content generation task API (``reference/providers/
seedance-byteplus.md`` §11; docs/providers/byteplus.md, "Emulator notes").

Run: ``python -m tests.emulators.byteplus --port 9107``. ``Authorization: Bearer <api_key>``; the base
URL includes ``/api/v3``.

- ``POST /api/v3/contents/generations/tasks`` answers only ``{"id": "cgt-<YYYYMMDDhhmmss>-<5>"}``;
  ``GET …/tasks/{id}`` the task object (§4); ``GET …/tasks?page_num=&page_size=`` ``{total, items}``;
  ``DELETE …/tasks/{id}`` cancels a ``queued`` task, refuses a ``running`` one (400) and **deletes**
  a finished one (a later GET is 404 ``ResourceNotFound``). Every DELETE is kept in ``deletes`` as
  ``(task id, status it had)``.
- Only the **dated** BytePlus ids of ``MODELS`` exist: any other id (an undated ``seedance-2.0``, a
  Volcengine ``doubao-…`` id) is 404 ``InvalidEndpointOrModel.NotFound``; a model listed in
  ``not_activated`` answers ``ModelNotOpen``. ``duration``/``ratio``/``resolution`` are checked per
  model (``InvalidParameter`` with ``param``), data URIs need a lower-case format (quirk 8).
- Lifecycle on the emulator clock: ``queued`` for the first 20 % of ``job_seconds``, ``running``,
  then ``succeeded`` with ``usage.completion_tokens`` = w x h x 24 x duration / 1024, or ``failed``
  with ``OutputVideoSensitiveContentDetected.PolicyViolation`` for a prompt containing ``[fail]``.
  ``expired`` when ``execution_expires_after`` (the request's, else ``expires_after``) passes first.
  A prompt containing ``[sensitive]`` is refused on create (``InputTextSensitiveContentDetected``),
  and with ``reject_images`` any image (``InputImageSensitiveContentDetected``).
- ``content.video_url`` is a signed URL valid ``url_ttl`` (24 h) after the task ends, then cleared
  from the task; the task vanishes from GET ``retention`` (7 days) after it was created.
- Callbacks: with ``callback_url``, the task body is POSTed unsigned on every status change by a
  background thread; terminal ones are retried 3 times when the receiver does not answer 2xx within
  5 s. Every attempt is kept in ``callbacks_sent``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from .base import Emulator, Request, Response, main

API_KEY = "ark-fake-key-test-emulator-byteplus"
TASKS = "/api/v3/contents/generations/tasks"
DAY = 86400.0
_RATIOS_2X = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "9:21")
_RATIOS_1X = _RATIOS_2X[:-1]
_SHORT = {"480p": 480, "720p": 720, "1080p": 1080}
_ALL_RES = ("480p", "720p", "1080p")
# dated BytePlus id -> what it accepts (§1, §3)
MODELS: dict[str, dict[str, Any]] = {
    "dreamina-seedance-2-0-260128": {
        "seconds": (4, 15),
        "resolutions": _ALL_RES,
        "ratios": _RATIOS_2X,
    },
    "dreamina-seedance-2-0-fast-260128": {"seconds": (4, 15), "resolutions": ("480p", "720p"), "ratios": _RATIOS_2X},
    "dreamina-seedance-2-5-260628": {
        "seconds": (4, 30),
        "resolutions": _ALL_RES,
        "ratios": _RATIOS_2X,
    },
    "seedance-1-5-pro-251215": {"seconds": (4, 12), "resolutions": _ALL_RES, "ratios": _RATIOS_1X},
}
TERMINAL = ("succeeded", "failed", "cancelled", "expired")
CODES = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("ResourceNotFound", "NotFound"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServerError"),
    502: ("InternalServiceError", "BadGateway"),
    503: ("ServerOverloaded", "ServiceUnavailable"),
}
_DATA_URI = re.compile(r"^data:image/(jpeg|png|webp|bmp|tiff|gif);base64,[A-Za-z0-9+/]+=*$")
_ALNUM = string.ascii_lowercase + string.digits


def pixels(ratio: str, resolution: str) -> tuple[int, int]:
    """``(width, height)``: the resolution's short side, the long side from the ratio (even)."""
    a, b = (int(x) for x in ratio.split(":"))
    short = _SHORT[resolution]
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    return (long, short) if a >= b else (short, long)


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    created: float
    length: float | None
    fail: bool
    expires_after: float
    cancelled_at: float | None = None
    delivered: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CallbackAttempt:
    url: str
    status: str
    body: bytes
    headers: dict[str, str]
    answer: int | str


class BytePlusEmulator(Emulator):
    name = "byteplus"
    slug = "byteplus"
    api_prefix = "/api/v3"
    live_models = ("seedance-2.0",)

    def __init__(self, *, api_key: str = API_KEY, auto_deliver: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("url_ttl", DAY)  # §8: URLs are cleared 24 h after the task
        super().__init__(**kwargs)
        self.api_key = api_key
        self.not_activated: set[str] = set()  # dated ids this key's account has not activated
        self.reject_images = False
        self.expires_after = 172800.0  # Ark's default execution_expires_after (§3)
        self.retention = 7 * DAY  # §2: tasks are queryable for 7 days
        self.deletes: list[tuple[str, str]] = []
        self.callbacks_sent: list[CallbackAttempt] = []
        self.callback_timeout = 5.0
        self._auto_deliver = auto_deliver
        self._stop = threading.Event()
        self._deliverer: threading.Thread | None = None

    # --- the shared test modules' questions ---------------------------------------------------

    def key_fields(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def settings(self) -> dict[str, str]:
        return {"BYTEPLUS_BASE_URL": self.base_url}

    @classmethod
    def error_body(cls, status: int, message: str, code: str | None = None, param: str = "") -> Any:
        default_code, kind = CODES.get(status, ("InternalServiceError", "InternalServerError"))
        return {"error": {"code": code or default_code, "message": message, "param": param, "type": kind}}

    @classmethod
    def validation_ok_body(cls) -> Any:
        return {"total": 0, "items": []}

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BytePlusEmulator:
        super().start()
        self._stop.clear()
        if self._auto_deliver:
            self._deliverer = threading.Thread(target=self._deliver_loop, name="byteplus-callbacks", daemon=True)
            self._deliverer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._deliverer is not None:
            self._deliverer.join(timeout=10)
            self._deliverer = None
        super().stop()

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.deletes.clear()
            self.callbacks_sent.clear()
            self.not_activated.clear()
            self.reject_images = False

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        return [
            ("POST", TASKS, "create", self.create),
            ("GET", TASKS, "list", self.list_tasks),
            ("GET", rf"{TASKS}/(?P<id>[^/]+)", "task", self.get),
            ("DELETE", rf"{TASKS}/(?P<id>[^/]+)", "delete", self.delete),
            ("GET", r"/_files/(?P<job>[^/]+)/(?P<variant>[^/]+)", "file", self.file),
        ]

    def error(self, status: int, message: str, code: str | None = None, param: str = "", **extra: Any) -> Response:
        return Response(status=status, body=self.error_body(status, message, code, param))

    def authenticate(self, request: Request) -> Response | None:
        if request.bearer != self.api_key:
            return self.error(401, "The API key in the request is missing or invalid.", code="AuthenticationError")
        return None

    # --- the task's timeline -----------------------------------------------------------------

    def timeline(self, t: Task) -> tuple[str, float | None]:
        """``(status, finished_at)`` at the emulator's clock."""
        length = max(t.length if t.length is not None else self.job_seconds, 1e-6)
        start, done = t.created + 0.2 * length, t.created + length
        ends = [(done, "failed" if t.fail else "succeeded"), (t.created + t.expires_after, "expired")]
        if t.cancelled_at is not None:
            ends.append((t.cancelled_at, "cancelled"))
        end_at, final = min(ends, key=lambda e: e[0])
        now = self.now()
        if now >= end_at:
            return final, end_at
        return ("running" if now >= start else "queued"), None

    def gone(self, t: Task) -> bool:
        return self.now() >= t.created + self.retention

    def signed_url(self, t: Task, finished: float) -> str:
        exp = int(finished + self.url_ttl)
        sig = hmac.new(self._signing_key, f"{t.id}:video:{exp}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{self.root_url}/_files/{t.id}/video?exp={exp}&sig={sig}"

    def render(self, t: Task) -> dict[str, Any]:
        status, finished = self.timeline(t)
        body = t.body
        task: dict[str, Any] = {
            "id": t.id,
            "model": body["model"],
            "status": status,
            "content": {},
            "seed": body.get("seed", -1) if body.get("seed", -1) != -1 else 4242,
            "resolution": body.get("resolution", "720p"),
            "ratio": body.get("ratio", "16:9"),
            "duration": body.get("duration", 5),
            "framespersecond": 24,
            "generate_audio": body.get("generate_audio", True),
            "draft": False,
            "service_tier": body.get("service_tier", "default"),
            "execution_expires_after": int(t.expires_after),
            "usage": None,
            "error": None,
            "created_at": int(t.created),
            "updated_at": int(finished if finished is not None else t.created),
        }
        if status == "succeeded":
            assert finished is not None
            width, height = pixels(task["ratio"], task["resolution"])
            tokens = round(width * height * 24 * task["duration"] / 1024)
            task["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
            if self.now() < finished + self.url_ttl:
                task["content"] = {"video_url": self.signed_url(t, finished)}
        elif status == "failed":
            task["error"] = {
                "code": "OutputVideoSensitiveContentDetected.PolicyViolation",
                "message": "The generated video may contain sensitive information; it may be related to "
                "copyright restrictions.",
            }
        return task

    # --- endpoints ---------------------------------------------------------------------------

    def _invalid(self, param: str, message: str) -> Response:
        return self.error(400, f"The parameter `{param}` specified in the request is not valid: {message}", param=param)

    def _check(self, body: dict[str, Any]) -> Response | None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self.error(400, "The request is missing a required parameter `model`.", code="MissingParameter")
        if model not in MODELS:
            return self.error(
                404,
                f"The model or endpoint {model} does not exist or you do not have access to it.",
                code="InvalidEndpointOrModel.NotFound",
            )
        if model in self.not_activated:
            return self.error(
                404,
                f"Your account has not activated the model {model}. Please activate the model service in the "
                "Ark Console.",
                code="ModelNotOpen",
            )
        limits = MODELS[model]
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return self.error(400, "The request is missing a required parameter `content`.", code="MissingParameter")
        texts = [c for c in content if isinstance(c, dict) and c.get("type") == "text"]
        if len(texts) != 1 or not isinstance(texts[0].get("text"), str):
            return self._invalid("content", "exactly one text item is required")
        for item in content:
            if not isinstance(item, dict) or item.get("type") not in ("text", "image_url"):
                return self._invalid("content", "unsupported content item")
            if item["type"] == "image_url":
                url = (item.get("image_url") or {}).get("url") if isinstance(item.get("image_url"), dict) else None
                if item.get("role") not in ("first_frame", "last_frame", "reference_image"):
                    return self._invalid("content.role", "must be first_frame, last_frame or reference_image")
                if not isinstance(url, str) or not (
                    url.startswith(("https://", "http://", "asset://")) or _DATA_URI.match(url)
                ):
                    return self._invalid("content.image_url.url", "must be a URL or data:image/<format>;base64,")
                if self.reject_images:
                    return self.error(
                        400,
                        "The request failed because the input image may contain sensitive information.",
                        code="InputImageSensitiveContentDetected",
                    )
        if "[sensitive]" in texts[0]["text"].lower():
            return self.error(
                400,
                "The request failed because the input text may contain sensitive information.",
                code="InputTextSensitiveContentDetected",
            )
        duration = body.get("duration", 5)
        low, high = limits["seconds"]
        if isinstance(duration, bool) or not isinstance(duration, int) or not low <= duration <= high:
            return self._invalid("duration", f"must be an integer from {low} to {high}")
        if body.get("resolution", "720p") not in limits["resolutions"]:
            return self._invalid("resolution", f"must be one of {', '.join(limits['resolutions'])}")
        if body.get("ratio", "16:9") not in (*limits["ratios"], "adaptive"):
            return self._invalid("ratio", f"must be one of {', '.join(limits['ratios'])} or adaptive")
        seed = body.get("seed", -1)
        if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed <= 2**32 - 1:
            return self._invalid("seed", "must be an integer from -1 to 4294967295")
        for flag in ("generate_audio", "watermark"):
            if flag in body and not isinstance(body[flag], bool):
                return self._invalid(flag, "must be a boolean")
        expires = body.get("execution_expires_after")
        if expires is not None and (not isinstance(expires, int) or not 3600 <= expires <= 259200):
            return self._invalid("execution_expires_after", "must be from 3600 to 259200")
        callback = body.get("callback_url")
        if callback is not None and (not isinstance(callback, str) or not callback.startswith(("https://", "http://"))):
            return self._invalid("callback_url", "must be an http(s) URL")
        return None

    def create(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error(400, "The request body must be a JSON object.")
        problem = self._check(body)
        if problem is not None:
            return problem
        now = self.now()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
        task = Task(
            id=f"cgt-{stamp}-{''.join(secrets.choice(_ALNUM) for _ in range(5))}",
            body=body,
            created=now,
            length=self.new_job_length(),
            fail=any("[fail]" in str(c.get("text", "")).lower() for c in body["content"]),
            expires_after=float(body.get("execution_expires_after") or self.expires_after),
        )
        self.jobs[task.id] = task
        self.jobs_created += 1
        return Response(body={"id": task.id})

    def _find(self, task_id: str) -> Task | None:
        task = self.jobs.get(task_id)
        return None if task is None or self.gone(task) else task

    def _not_found(self, task_id: str) -> Response:
        return self.error(404, f"The specified task {task_id} is not found.", code="ResourceNotFound")

    def get(self, request: Request) -> Response:
        task = self._find(request.params["id"])
        if task is None:
            return self._not_found(request.params["id"])
        return Response(body=self.render(task))

    def list_tasks(self, request: Request) -> Response:
        try:
            page = max(int(request.arg("page_num", "1") or 1), 1)
            size = min(max(int(request.arg("page_size", "10") or 10), 1), 500)
        except ValueError:
            return self._invalid("page_size", "must be an integer")
        wanted = request.query.get("filter.task_ids") or []
        status = request.arg("filter.status")
        tasks = [t for t in self.jobs.values() if not self.gone(t) and (not wanted or t.id in wanted)]
        items = [self.render(t) for t in sorted(tasks, key=lambda t: t.created, reverse=True)]
        if status:
            items = [i for i in items if i["status"] == status]
        return Response(body={"total": len(items), "items": items[(page - 1) * size : page * size]})

    def delete(self, request: Request) -> Response:
        task = self._find(request.params["id"])
        if task is None:
            return self._not_found(request.params["id"])
        status, _finished = self.timeline(task)
        self.deletes.append((task.id, status))
        if status == "queued":
            task.cancelled_at = self.now()
            return Response(body={})
        if status == "running":
            return self.error(
                400,
                f"The task {task.id} is running and cannot be cancelled.",
                code="InvalidAction.TaskRunning",
            )
        del self.jobs[task.id]  # a finished task's record is deleted (§5)
        return Response(body={})

    def file(self, request: Request) -> Response:
        task = self._find(request.params["job"])
        if task is None or self.timeline(task)[0] != "succeeded" or not self.verify_signed(task.id, "video", request):
            return Response(
                status=403, body=b"<Error><Code>AccessDenied</Code></Error>", content_type="application/xml"
            )
        return self.video_response()

    # --- callbacks ----------------------------------------------------------------------------

    def pending_callbacks(self) -> list[tuple[str, str, bytes]]:
        """``(url, status, body)`` of every status change not yet announced (marked announced)."""
        out = []
        with self.lock:
            for task in list(self.jobs.values()):
                url = task.body.get("callback_url")
                if not url or self.gone(task):
                    continue
                status, _ = self.timeline(task)
                reached = ["queued"]
                if status != "queued":
                    if status in TERMINAL and status != "cancelled":
                        reached.append("running")
                    if status == "running" or status in TERMINAL:
                        reached.append(status)
                for s in reached:
                    if s not in task.delivered:
                        task.delivered.add(s)
                        out.append((url, s, json.dumps({**self.render(task), "status": s}).encode()))
        return out

    def deliver_callbacks(self) -> int:
        """POST every due callback, unsigned; terminal ones retried 3 times (§6)."""
        due = self.pending_callbacks()
        headers = {"Content-Type": "application/json"}
        for url, status, body in due:
            attempts = 4 if status in TERMINAL else 1
            for _ in range(attempts):
                try:
                    answer: int | str = requests.post(
                        url, data=body, headers=headers, timeout=self.callback_timeout, allow_redirects=False
                    ).status_code
                except requests.RequestException as exc:
                    answer = type(exc).__name__
                with self.lock:
                    self.callbacks_sent.append(CallbackAttempt(url, status, body, dict(headers), answer))
                if isinstance(answer, int) and 200 <= answer < 300:
                    break
                time.sleep(0.05)
        return len(due)

    def _deliver_loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.deliver_callbacks()
            except Exception:  # noqa: BLE001 - a broken delivery must not stop the emulator
                pass


EMULATOR = BytePlusEmulator


if __name__ == "__main__":
    main(BytePlusEmulator, sys.argv[1:])
