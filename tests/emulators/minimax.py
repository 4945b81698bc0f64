"""Emulator of MiniMax's Hailuo video API, v1 and v2 (``reference/providers/minimax.md`` §10).

Run: ``python -m tests.emulators.minimax --port 9108``. ``Authorization: Bearer <api_key>``.

- v1: ``POST /v1/video_generation``, ``GET /v1/query/video_generation?task_id=``,
  ``GET /v1/files/retrieve?file_id=`` and ``GET /v1/files`` (key validation), every answer with
  ``base_resp``; business errors are **HTTP 200** with a non-zero ``status_code``
  (``add_code_fault(endpoint, code)``). Statuses ``Preparing`` -> ``Queueing`` -> ``Processing`` ->
  ``Success`` | ``Fail`` on the emulator clock. ``file_id_as_number`` sends ``file_id`` as a JSON
  number. ``files/retrieve`` returns a fresh signed ``download_url`` that expires after
  ``url_ttl`` (9 h by default).
- v2: ``POST /v2/video_generation``, ``GET /v2/query/video_generation/{id}`` with ``task.status``
  ``queued`` -> ``running`` -> ``succeeded`` | ``failed``; ``content.url`` changes on every query;
  after ``query_window`` (7 days) a task answers 404 ``invalid task_id``. Errors are the HTTP status
  plus ``{"type":"error","error":{"type","message (code)","http_code"}}``.
- A prompt with ``[fail]`` ends ``Fail``/``failed`` with 1026 (input flagged), ``[fail-output]``
  with 1027. ``plan_key`` is a Token-Plan key: 2061 for anything but Hailuo 2.3 / 2.3 Fast at
  768P, 6 s. ``foreign_key`` is a key of the other region: 1004 on every call.
- Callbacks: a task with ``callback_url`` first gets ``{"challenge"}``; a wrong or late (> 3 s)
  echo drops the task's callbacks. Then the final status is pushed with a lower-case spelling
  (``success``/``failed``). ``callbacks_sent`` keeps every body sent.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests

from .base import Emulator, Request, Response, main

API_KEY = "mm-fake-key-test-emulator-minimax"
PLAN_KEY = "mm-fake-plan-key-test-emulator-minimax"
FOREIGN_KEY = "mm-fake-cn-key-test-emulator-minimax"
V1_MODELS = {"MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast", "MiniMax-Hailuo-02"}
V2_MODELS = {"MiniMax-H3"}
PLAN_MODELS = {"MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast"}
V2_TYPES = {
    400: "bad_request_error",
    401: "authorized_error",
    402: "insufficient_balance_error",
    404: "bad_request_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_error",
}
MESSAGES = {
    1002: "rate limit exceeded(RPM)",
    1004: "login fail: Please carry the API secret key in the 'Authorization' field of the request header",
    1008: "insufficient balance",
    1026: "input new_sensitive",
    1027: "output new_sensitive",
    2013: "invalid params",
    2061: "your current token plan not support model",
}
CODE_STATUS = {1002: 429, 1004: 401, 1008: 402, 2013: 400, 2061: 400}


def base_resp(code: int = 0, message: str | None = None) -> dict[str, Any]:
    return {"status_code": code, "status_msg": message if message is not None else MESSAGES.get(code, "success")}


@dataclass
class Task:
    id: str
    api: str
    model: str
    created: float
    fail_code: int | None
    callback_url: str | None
    callback_ok: bool = False
    pushed: bool = False


class MinimaxEmulator(Emulator):
    name = "minimax"
    slug = "minimax"
    live_models = ("hailuo-2.3", "minimax-h3")

    def __init__(self, *, api_key: str = API_KEY, url_ttl: float = 9 * 3600.0, **kwargs: Any) -> None:
        super().__init__(url_ttl=url_ttl, **kwargs)
        self.api_key = api_key
        self.plan_key = PLAN_KEY
        self.foreign_key = FOREIGN_KEY
        self.file_id_as_number = False
        self.query_window = 7 * 24 * 3600.0
        self.challenge_timeout = 3.0
        self.callbacks_sent: list[tuple[str, dict[str, Any]]] = []
        self.handshakes: list[tuple[str, bool]] = []
        self._serial = 106916112212032
        self._rotation = 0
        self._stop = threading.Event()
        self._pusher: threading.Thread | None = None

    # --- the shared test modules' questions ---------------------------------------------------

    def key_fields(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def settings(self) -> dict[str, str]:
        return {"MINIMAX_BASE_URL": self.base_url}

    @classmethod
    def error_body(cls, status: int, message: str) -> Any:
        """v2's envelope (the form that comes with a real HTTP status); v1 answers 200 + base_resp."""
        kind = V2_TYPES.get(status, "server_error")
        return {"type": "error", "error": {"type": kind, "message": message, "http_code": str(status)}}

    @classmethod
    def validation_ok_body(cls) -> Any:
        return {"files": [], "base_resp": base_resp()}

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key, "plan key (2061)": self.plan_key, "other region's key": self.foreign_key}

    # --- faults of MiniMax's own forms ---------------------------------------------------------

    def add_code_fault(self, endpoint: str, code: int, *, message: str | None = None, times: int = 1) -> None:
        """The next ``times`` calls to ``endpoint`` fail with MiniMax's ``code``: HTTP 200 +
        ``base_resp`` on v1 endpoints, the HTTP status + v2 envelope (``… (code)``) on v2 ones."""
        text = message if message is not None else MESSAGES.get(code, "error")
        if endpoint.endswith("_v2"):
            status = CODE_STATUS.get(code, 500)
            self.add_fault(endpoint, status=status, body=self.error_body(status, f"{text} ({code})"), times=times)
        else:
            self.add_fault(endpoint, status=200, body={"base_resp": base_resp(code, text)}, times=times)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MinimaxEmulator:
        super().start()
        self._stop.clear()
        self._pusher = threading.Thread(target=self._push_loop, name="minimax-callbacks", daemon=True)
        self._pusher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._pusher is not None:
            self._pusher.join(timeout=5)
            self._pusher = None
        super().stop()

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.callbacks_sent.clear()
            self.handshakes.clear()
            self.file_id_as_number = False

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        return [
            ("POST", r"/v1/video_generation", "create", self.create_v1),
            ("GET", r"/v1/query/video_generation", "query", self.query_v1),
            ("GET", r"/v1/files/retrieve", "retrieve", self.retrieve),
            ("GET", r"/v1/files", "files", self.files),
            ("POST", r"/v2/video_generation", "create_v2", self.create_v2),
            ("GET", r"/v2/query/video_generation/(?P<id>[^/]+)", "query_v2", self.query_v2),
            ("GET", r"/_files/(?P<job>[^/]+)/(?P<variant>[^/]+)", "file", self.file_response),
        ]

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return Response(status=status, body=self.error_body(status, message))

    def _v1_error(self, code: int, message: str | None = None) -> Response:
        return Response(status=200, body={"base_resp": base_resp(code, message)})

    def _v2_error(self, status: int, message: str, code: int) -> Response:
        return Response(status=status, body=self.error_body(status, f"{message} ({code})"))

    def authenticate(self, request: Request) -> Response | None:
        v2 = request.endpoint.endswith("_v2")
        if request.bearer in (self.api_key, self.plan_key):
            return None
        message = "key does not match this region's host" if request.bearer == self.foreign_key else None
        if v2:
            return self._v2_error(401, message or MESSAGES[1004], 1004)
        return self._v1_error(1004, message)

    # --- the task's timeline -----------------------------------------------------------------

    def _new_id(self) -> str:
        self._serial += 1
        return str(self._serial)

    def stage(self, task: Task) -> str:
        """``preparing|queueing|processing|done`` at the emulator's clock."""
        elapsed = self.now() - task.created
        length = max(self.job_seconds, 1e-6)
        if elapsed < length * 0.1:
            return "preparing"
        if elapsed < length * 0.2:
            return "queueing"
        if elapsed < length:
            return "processing"
        return "done"

    def _create(self, request: Request, api: str, model: str, prompt: str, duration: Any, resolution: Any) -> Task:
        fail = 1027 if "[fail-output]" in prompt else 1026 if "[fail]" in prompt else None
        body = request.json()
        callback = body.get("callback_url") if isinstance(body.get("callback_url"), str) else None
        task = Task(self._new_id(), api, model, self.now(), fail, callback)
        self.jobs[task.id] = task
        self.jobs_created += 1
        if callback:
            threading.Thread(target=self._handshake, args=(task,), daemon=True).start()
        return task

    def _plan_refuses(self, request: Request, model: str, duration: Any, resolution: Any) -> bool:
        return request.bearer == self.plan_key and not (model in PLAN_MODELS and duration == 6 and resolution == "768P")

    def create_v1(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._v1_error(2013, "invalid params, body is not JSON")
        if not isinstance(body, dict):
            return self._v1_error(2013)
        model, prompt = body.get("model"), body.get("prompt")
        duration, resolution = body.get("duration", 6), body.get("resolution", "768P")
        image = body.get("first_frame_image")
        if model not in V1_MODELS:
            return self._v1_error(2013, f"invalid params, model {model} not supported")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration not in (6, 10):
            return self._v1_error(2013, "invalid params, duration must be 6 or 10")
        if resolution not in ("768P", "1080P"):
            return self._v1_error(2013, "invalid params, resolution must be 768P or 1080P")
        if resolution == "1080P" and duration != 6:
            return self._v1_error(2013, "invalid params, 1080P supports 6s only")
        if model == "MiniMax-Hailuo-2.3-Fast" and not image:
            return self._v1_error(2013, "invalid params, first_frame_image is required for this model")
        if image is not None and not (isinstance(image, str) and image.startswith(("https://", "data:image/"))):
            return self._v1_error(2013, "invalid params, first_frame_image must be a URL or data URI")
        if not isinstance(prompt, str) or not prompt or len(prompt) > 2000:
            return self._v1_error(2013, "invalid params, prompt")
        if self._plan_refuses(request, model, duration, resolution):
            return self._v1_error(2061)
        task = self._create(request, "v1", model, prompt, duration, resolution)
        return Response(body={"task_id": task.id, "base_resp": base_resp()})

    def create_v2(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._v2_error(400, "invalid params, body is not JSON", 2013)
        if not isinstance(body, dict):
            return self._v2_error(400, "invalid params", 2013)
        model, content = body.get("model"), body.get("content")
        duration, resolution, ratio = body.get("duration", 5), body.get("resolution"), body.get("ratio", "adaptive")
        if model not in V2_MODELS:
            return self._v2_error(400, f"invalid params, model {model} not supported", 2013)
        texts = (
            [c for c in content or [] if isinstance(c, dict) and c.get("type") == "text"]
            if isinstance(content, list)
            else []
        )
        images = [c for c in content if isinstance(c, dict) and c.get("type") == "image_url"] if texts else []
        if len(texts) != 1 or not isinstance(texts[0].get("text"), str) or not texts[0]["text"]:
            return self._v2_error(400, "invalid params, content needs exactly one text item", 2013)
        if not isinstance(duration, int) or isinstance(duration, bool) or not 5 <= duration <= 15:
            return self._v2_error(400, "invalid params, duration must be between 5 and 15", 2013)
        if resolution not in ("768P", "2K"):
            return self._v2_error(400, "invalid params, resolution must be 768P or 2K", 2013)
        if ratio not in ("adaptive", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"):
            return self._v2_error(400, "invalid params, ratio", 2013)
        if ratio == "adaptive" and not images:
            return self._v2_error(400, "invalid params, ratio adaptive needs an image", 2013)
        for image in images:
            url = (image.get("image_url") or {}).get("url") if isinstance(image.get("image_url"), dict) else None
            if not (isinstance(url, str) and url.startswith(("https://", "data:image/", "mm_file://"))):
                return self._v2_error(400, "invalid params, image_url.url", 2013)
            if image.get("role") not in ("first_frame", "last_frame", "reference_image"):
                return self._v2_error(400, "invalid params, role", 2013)
        if self._plan_refuses(request, model, duration, resolution):
            return self._v2_error(400, MESSAGES[2061], 2061)
        task = self._create(request, "v2", model, texts[0]["text"], duration, resolution)
        return Response(body={"task_id": task.id, "base_resp": base_resp()})

    def _file_id(self, task: Task) -> Any:
        file_id = str(int(task.id) + 70_000_000_000_000)
        return int(file_id) if self.file_id_as_number else file_id

    def _task_for_file(self, file_id: str) -> Task | None:
        try:
            task_id = str(int(file_id) - 70_000_000_000_000)
        except ValueError:
            return None
        return self.jobs.get(task_id)

    def v1_body(self, task: Task) -> dict[str, Any]:
        stage = self.stage(task)
        if stage != "done":
            return {"task_id": task.id, "status": stage.capitalize(), "file_id": "", "base_resp": base_resp()}
        if task.fail_code is not None:
            return {"task_id": task.id, "status": "Fail", "file_id": "", "base_resp": base_resp(task.fail_code)}
        return {
            "task_id": task.id,
            "status": "Success",
            "file_id": self._file_id(task),
            "video_width": 1366,
            "video_height": 768,
            "base_resp": base_resp(),
        }

    def query_v1(self, request: Request) -> Response:
        task = self.jobs.get(request.arg("task_id") or "")
        if task is None or task.api != "v1":
            return self._v1_error(2013, "invalid params, task_id not found")
        return Response(body=self.v1_body(task))

    def retrieve(self, request: Request) -> Response:
        task = self._task_for_file(request.arg("file_id") or "")
        if task is None or self.stage(task) != "done" or task.fail_code is not None:
            return self._v1_error(2013, "invalid params, file_id not found")
        file_id = int(self._file_id(task))
        return Response(
            body={
                "file": {
                    "file_id": file_id,
                    "bytes": 5896337,
                    "created_at": int(task.created),
                    "filename": "output.mp4",
                    "purpose": "video_generation",
                    "download_url": self.sign(task.id),
                },
                "base_resp": base_resp(),
            }
        )

    def files(self, request: Request) -> Response:
        return Response(body={"files": [], "base_resp": base_resp()})

    def v2_body(self, task: Task) -> dict[str, Any]:
        stage = self.stage(task)
        status = {"preparing": "queued", "queueing": "queued", "processing": "running"}.get(stage)
        body: dict[str, Any] = {"id": task.id, "model": task.model, "status": status, "error": None, "content": None}
        if status is None and task.fail_code is not None:
            body.update(status="failed", error={"code": task.fail_code, "message": MESSAGES[task.fail_code]})
        elif status is None:
            self._rotation += 1
            body.update(
                status="succeeded",
                content={"url": f"{self.sign(task.id)}&r={self._rotation}", "duration": 5},
                usage={"output_seconds": 5},
            )
        return {"task": body}

    def query_v2(self, request: Request) -> Response:
        task = self.jobs.get(request.params["id"])
        if task is None or task.api != "v2" or self.now() - task.created > self.query_window:
            return self._v2_error(404, "invalid task_id", 2013)
        return Response(body=self.v2_body(task))

    # --- callbacks ---------------------------------------------------------------------------

    def _handshake(self, task: Task) -> None:
        challenge = secrets.token_urlsafe(12)
        started = time.monotonic()
        ok = False
        try:
            answer = requests.post(task.callback_url, json={"challenge": challenge}, timeout=self.challenge_timeout)
            ok = (
                answer.status_code == 200
                and answer.json().get("challenge") == challenge
                and time.monotonic() - started <= self.challenge_timeout
            )
        except (requests.RequestException, ValueError, AttributeError):
            ok = False
        with self.lock:
            task.callback_ok = ok
            self.handshakes.append((task.id, ok))

    def _push_loop(self) -> None:
        while not self._stop.wait(0.05):
            with self.lock:
                due = [t for t in self.jobs.values() if t.callback_ok and not t.pushed and self.stage(t) == "done"]
                bodies = []
                for task in due:
                    task.pushed = True
                    if task.api == "v1":
                        body = self.v1_body(task)
                        body["status"] = body["status"].lower().replace("fail", "failed")  # documented spelling
                    else:
                        body = self.v2_body(task)
                        body["task"]["status"] = "success" if body["task"]["status"] == "succeeded" else "failed"
                    bodies.append((task.callback_url, body))
            for url, body in bodies:
                with self.lock:
                    self.callbacks_sent.append((url, body))
                try:
                    requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=5)
                except requests.RequestException:
                    pass


EMULATOR = MinimaxEmulator

if __name__ == "__main__":
    main(MinimaxEmulator, sys.argv[1:])
