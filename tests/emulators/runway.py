"""Emulator of the Runway API (``reference/providers/runway.md`` §14).

Run: ``python -m tests.emulators.runway --port 9102``. ``X-Runway-Version: 2024-11-06`` is required.
A prompt containing ``[fail]`` ends ``FAILED`` with ``SAFETY.INPUT.TEXT``. ``add_fault("create",
throttle=3)`` parks the next created task in ``THROTTLED`` for 3 s; ``max_concurrency`` parks tasks
beyond the limit until earlier ones finish.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .base import Emulator, Request, Response, main

API_KEY = "rw-test-emulator-runway-0000"
VERSION = "2024-11-06"
SIX = {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"}
TWO_TO_TEN = set(range(2, 11))
# per endpoint and model: (ratios, required ratio, durations, duration required, promptText required)
RULES: dict[str, dict[str, tuple[set[str], bool, set[int], bool, bool]]] = {
    "text_to_video": {
        "gen4.5": ({"1280:720", "720:1280"}, True, TWO_TO_TEN, True, True),
    },
    "image_to_video": {
        "gen4_turbo": (SIX, True, TWO_TO_TEN, False, False),
        "gen4.5": (SIX, True, TWO_TO_TEN, True, True),
        "gen3a_turbo": ({"1280:768", "768:1280"}, False, {5, 10}, False, True),
    },
}
KNOWN_FIELDS = {"model", "promptText", "promptImage", "ratio", "duration", "seed", "contentModeration"}
DATA_URI = re.compile(r"^data:image/(png|jpeg|webp);base64,[A-Za-z0-9+/=]+$")


@dataclass
class Task:
    id: str
    model: str
    prompt: str
    created: float
    throttle: float
    fail: bool
    cancelled: bool = False
    deleted: bool = False


class RunwayEmulator(Emulator):
    slug = "runway"
    live_models = ("gen4.5",)

    @classmethod
    def error_body(cls, status: int, message: str) -> dict:
        return {"error": message}

    name = "runway"

    def __init__(self, *, api_key: str = API_KEY, max_concurrency: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.cancel_then_404 = False  # after DELETE of an active task: 404 instead of CANCELLED
        self.progress_scale = 1.0  # 100.0 to report progress on a 0-100 scale

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key, "X-Runway-Version": VERSION}

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        return [
            ("POST", r"/v1/text_to_video", "create", self.create),
            ("POST", r"/v1/image_to_video", "create", self.create),
            ("GET", r"/v1/tasks/(?P<id>[^/]+)", "task", self.task),
            ("DELETE", r"/v1/tasks/(?P<id>[^/]+)", "delete", self.delete),
            ("GET", r"/v1/organization", "organization", self.organization),
            ("GET", r"/_files/(?P<job>[^/]+)/(?P<variant>[^/]+)", "file", self.file_response),
        ]

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return Response(status=status, body={"error": message, **extra})

    def authenticate(self, request: Request) -> Response | None:
        if request.bearer != self.api_key:
            return self.error(401, "Invalid API key. Make sure the Authorization header is a valid Bearer token.")
        version = request.headers.get("X-Runway-Version")
        if version != VERSION:
            return self.error(400, f"Unsupported or missing X-Runway-Version header ({version!r}).")
        return None

    # --- lifecycle ---------------------------------------------------------------------------

    def _concurrency_wait(self, created: float) -> float:
        """Extra THROTTLED time so at most ``max_concurrency`` tasks run at once (FIFO)."""
        if not self.max_concurrency:
            return 0.0
        ends = sorted(
            t.created + t.throttle + self.job_seconds
            for t in self.jobs.values()
            if not t.cancelled and t.created + t.throttle + self.job_seconds > created
        )
        if len(ends) < self.max_concurrency:
            return 0.0
        return ends[len(ends) - self.max_concurrency] - created

    def _task(self, task: Task) -> dict[str, Any]:
        created_at = datetime.fromtimestamp(task.created, UTC).isoformat().replace("+00:00", "Z")
        body: dict[str, Any] = {"id": task.id, "createdAt": created_at}
        if task.cancelled:
            return {**body, "status": "CANCELLED"}
        phase, fraction = self.phase(task.created, throttle=task.throttle)
        if phase == "throttled":
            return {**body, "status": "THROTTLED"}
        if phase == "queued":
            return {**body, "status": "PENDING"}
        if phase == "running":
            return {**body, "status": "RUNNING", "progress": round(fraction * self.progress_scale, 3)}
        if task.fail:
            return {
                **body,
                "status": "FAILED",
                "failure": "The prompt was flagged by moderation.",
                "failureCode": "SAFETY.INPUT.TEXT",
            }
        return {**body, "status": "SUCCEEDED", "output": [self.sign(task.id)]}

    # --- endpoints ---------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        kind = request.path.rsplit("/", 1)[-1]
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return self.error(400, "The body must be a JSON object")
        unknown = set(body) - KNOWN_FIELDS
        if unknown:
            return self.error(400, f"Unrecognized key(s) in object: {', '.join(sorted(unknown))}")
        model = body.get("model")
        rules = RULES[kind].get(model)
        if rules is None:
            return self.error(
                400,
                "Validation of body failed",
                issues=[
                    {
                        "code": "invalid_union_discriminator",
                        "path": ["model"],
                        "message": f"Model {model!r} is not available for {kind}",
                    }
                ],
                docUrl="https://docs.dev.runwayml.com/api",
            )
        ratios, ratio_required, durations, duration_required, prompt_required = rules
        ratio, duration, prompt = body.get("ratio"), body.get("duration"), body.get("promptText")
        if (ratio is None and ratio_required) or (ratio is not None and ratio not in ratios):
            return self.error(400, f"Invalid parameter 'ratio': {ratio!r}; expected one of {sorted(ratios)}")
        if duration is None:
            if duration_required:
                return self.error(400, "Invalid parameter 'duration': required")
        elif not isinstance(duration, int) or duration not in durations:
            return self.error(400, f"Invalid parameter 'duration': {duration!r}")
        if prompt is None:
            if prompt_required:
                return self.error(400, "Invalid parameter 'promptText': required")
        elif not isinstance(prompt, str) or len(prompt.encode("utf-16-le")) // 2 > 1000:
            return self.error(400, "Invalid parameter 'promptText': at most 1000 UTF-16 code units")
        if kind == "image_to_video":
            image = body.get("promptImage")
            uris = [i.get("uri") for i in image if isinstance(i, dict)] if isinstance(image, list) else [image]
            if not uris or not all(
                isinstance(u, str) and (u.startswith("https://") or DATA_URI.match(u)) for u in uris
            ):
                return self.error(400, "Invalid parameter 'promptImage': an https URL or a data URI is required")
        created = self.now()
        throttle = request.fault.throttle if request.fault else 0.0
        task = Task(
            id=str(uuid.uuid4()),
            model=model,
            prompt=prompt or "",
            created=created,
            throttle=throttle + self._concurrency_wait(created),
            fail="[fail]" in (prompt or "").lower(),
        )
        self.jobs[task.id] = task
        self.jobs_created += 1
        return Response(body={"id": task.id})

    def task(self, request: Request) -> Response:
        task = self.jobs.get(request.params["id"])
        if task is None or task.deleted:
            return self.error(404, "Task not found")
        return Response(body=self._task(task))

    def delete(self, request: Request) -> Response:
        task = self.jobs.get(request.params["id"])
        if task is None or task.deleted:
            return self.error(404, "Task not found")
        if self._task(task)["status"] in ("PENDING", "THROTTLED", "RUNNING"):
            task.cancelled = True
            task.deleted = self.cancel_then_404
        else:
            task.deleted = True
        return Response(status=204, body=None)

    def organization(self, request: Request) -> Response:
        models = {
            m: {"maxConcurrentGenerations": self.max_concurrency or 2, "maxDailyGenerations": 200}
            for m in ("gen4.5", "gen4_turbo", "gen3a_turbo")
        }
        return Response(
            body={
                "creditBalance": 10000,
                "tier": {"maxMonthlyCreditSpend": 10000, "models": models},
                "usage": {"models": {m: {"dailyGenerations": 0} for m in models}},
            }
        )


if __name__ == "__main__":
    main(RunwayEmulator, sys.argv[1:])


EMULATOR = RunwayEmulator
