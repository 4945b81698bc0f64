"""Emulator of Kling's legacy API (``reference/providers/kling.md`` §13).

Run: ``python -m tests.emulators.kling --port 9103``. Accepts the API key as Bearer, or an HS256
JWT whose ``iss`` is the access key, signed with the secret key (``nbf``/``exp`` checked: 1003 and
1004). Every answer is the ``{code, message, request_id, data}`` envelope. A prompt containing
``[fail]`` ends ``failed``. Business codes: ``emu.inject_code(1102, endpoint="create")``.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from .base import Emulator, Fault, Request, Response, main

API_KEY = "kling-test-emulator-api-0000"
ACCESS_KEY = "ak-test-emulator-kling-0000"
SECRET_KEY = "fake-key-test-emulator-kling-secret-0000"
MODELS = {
    "text2video": {"kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-1-master", "kling-v2-5-turbo", "kling-v2-6"},
    "image2video": {
        "kling-v1",
        "kling-v1-5",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-1",
        "kling-v2-1-master",
        "kling-v2-5-turbo",
        "kling-v2-6",
    },
}
HTTP_FOR_CODE = {
    1000: 401,
    1001: 401,
    1002: 401,
    1003: 401,
    1004: 401,
    1100: 429,
    1101: 429,
    1102: 429,
    1103: 403,
    1200: 400,
    1201: 400,
    1202: 404,
    1203: 404,
    1300: 400,
    1301: 400,
    1302: 429,
    1303: 429,
    1304: 429,
    5000: 500,
    5001: 503,
    5002: 504,
}
MESSAGES = {
    1102: "Account balance not enough: resource pack used up or expired",
    1301: "Trigger the content security policy",
    1302: "The API request is too fast, please slow down",
    1303: "parallel task over resource pack limit",
    5000: "Server internal error",
}


@dataclass
class Task:
    id: str
    kind: str
    model: str
    prompt: str
    external_id: str | None
    created: float
    fail: bool


class KlingEmulator(Emulator):
    slug = "kling"
    live_models = ("kling-v2-5-turbo",)

    def key_fields(self) -> dict[str, str]:
        return {"access_key": self.access_key, "secret_key": self.secret_key}

    @classmethod
    def validation_ok_body(cls) -> dict:
        return {"code": 0, "message": "ok", "data": []}

    @classmethod
    def error_body(cls, status: int, message: str) -> dict:
        code = {400: 1200, 401: 1000, 403: 1103, 404: 1203, 429: 1302, 500: 5000, 502: 5000, 503: 5001}[status]
        return {"code": code, "message": message, "request_id": "r-1"}

    name = "kling"

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        max_concurrency: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.access_key = access_key
        self.secret_key = secret_key
        self.max_concurrency = max_concurrency  # over it: 1303 on create

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key, "access_key": self.access_key, "secret_key": self.secret_key}

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        kinds = "(?P<kind>text2video|image2video)"
        return [
            ("POST", f"/v1/videos/{kinds}", "create", self.create),
            ("GET", f"/v1/videos/{kinds}", "list", self.list),
            ("GET", f"/v1/videos/{kinds}/(?P<id>[^/]+)", "query", self.query),
            ("GET", r"/_files/(?P<job>[^/]+)/(?P<variant>[^/]+)", "file", self.file_response),
        ]

    # --- envelope ------------------------------------------------------------------------------

    def envelope(self, data: Any) -> Response:
        return Response(body={"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data})

    def business_error(self, code: int, message: str | None = None, *, http_status: int | None = None) -> Response:
        return Response(
            status=http_status or HTTP_FOR_CODE.get(code, 400),
            body={
                "code": code,
                "message": message or MESSAGES.get(code, f"error {code}"),
                "request_id": str(uuid.uuid4()),
            },
        )

    def error(self, status: int, message: str, **extra: Any) -> Response:
        code = {401: 1000, 403: 1103, 404: 1203, 429: 1302}.get(status, 5000 if status >= 500 else 1200)
        return self.business_error(code, message, http_status=status)

    def inject_code(
        self, code: int, *, endpoint: str = "*", times: int | None = 1, http_status: int | None = None, **kwargs: Any
    ) -> Fault:
        """Answer the next ``times`` requests to ``endpoint`` with business ``code``."""
        response = self.business_error(code, http_status=http_status)
        return self.add_fault(endpoint, status=response.status, body=response.body, times=times, **kwargs)

    def apply_patch(self, body: Any, patch: dict[str, Any]) -> Any:
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            return {**body, "data": {**body["data"], **patch}}
        return super().apply_patch(body, patch)

    def authenticate(self, request: Request) -> Response | None:
        token = request.bearer
        if not token:
            return self.business_error(1001, "Authorization header is empty")
        if token == self.api_key:
            return None
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.secret_key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_nbf": False, "require": ["iss", "exp", "nbf"]},
            )
        except jwt.PyJWTError:
            return self.business_error(1002, "Authorization is invalid")
        if header.get("alg") != "HS256" or claims.get("iss") != self.access_key:
            return self.business_error(1002, "Authorization is invalid")
        now = self.now()
        if claims["nbf"] > now:
            return self.business_error(1003, "Authorization is not yet valid")
        if claims["exp"] <= now:
            return self.business_error(1004, "Authorization has expired")
        return None

    # --- objects -----------------------------------------------------------------------------

    def _status(self, task: Task) -> str:
        phase, _fraction = self.phase(task.created)
        if phase == "done":
            return "failed" if task.fail else "succeed"
        return "processing" if phase == "running" else "submitted"

    def _task(self, task: Task) -> dict[str, Any]:
        status = self._status(task)
        body: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "task_status_msg": "Failure to pass the risk control system" if status == "failed" else "",
            "task_info": {"external_task_id": task.external_id} if task.external_id else {},
            "created_at": int(task.created * 1000),
            "updated_at": int(self.now() * 1000),
        }
        if status == "succeed":
            url = self.sign(task.id)
            body["task_result"] = {
                "videos": [{"id": f"v-{task.id}", "url": url, "watermark_url": url, "duration": "5.1"}]
            }
            body["final_unit_deduction"] = "2"
            body["watermark_info"] = {"enabled": False}
        return body

    def _find(self, kind: str, ident: str) -> Task | None:
        for task in self.jobs.values():
            if task.kind == kind and ident in (task.id, task.external_id):
                return task
        return None

    # --- endpoints ---------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        kind = request.params["kind"]
        try:
            body = request.json()
        except ValueError:
            return self.business_error(1200, "Invalid JSON body")
        if not isinstance(body, dict):
            return self.business_error(1200, "The body must be a JSON object")
        model = body.get("model_name", "kling-v1")
        if model not in MODELS[kind]:
            return self.business_error(1201, f"model_name {model!r} is not supported by {kind}")
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > 2500 or (kind == "text2video" and not prompt):
            return self.business_error(1201, "prompt is required and at most 2500 characters")
        if body.get("mode", "std") not in ("std", "pro"):
            return self.business_error(1201, "mode must be std or pro")
        duration = body.get("duration", "5")
        if not isinstance(duration, str) or duration not in ("5", "10"):
            return self.business_error(1201, f"duration must be the string '5' or '10', not {duration!r}")
        if kind == "text2video" and body.get("aspect_ratio", "16:9") not in ("16:9", "9:16", "1:1"):
            return self.business_error(1201, "aspect_ratio must be 16:9, 9:16 or 1:1")
        if kind == "image2video":
            image = body.get("image")
            if not isinstance(image, str) or not image:
                return self.business_error(1201, "image is required")
            if image.startswith("data:"):
                return self.business_error(1201, "image must be a URL or raw base64 without a data: prefix")
            if "aspect_ratio" in body:
                return self.business_error(1201, "aspect_ratio is not a parameter of image2video")
        external = body.get("external_task_id")
        if external is not None and any(t.external_id == external for t in self.jobs.values()):
            return self.business_error(1201, f"external_task_id {external!r} already exists")
        if self.max_concurrency is not None:
            active = sum(1 for t in self.jobs.values() if self._status(t) in ("submitted", "processing"))
            if active >= self.max_concurrency:
                return self.business_error(1303)
        task = Task(
            id=str(800000000000000000 + secrets.randbelow(10**17)),
            kind=kind,
            model=model,
            prompt=prompt,
            external_id=external,
            created=self.now(),
            fail="[fail]" in prompt.lower(),
        )
        self.jobs[task.id] = task
        self.jobs_created += 1
        return self.envelope(
            {
                "task_id": task.id,
                "task_info": {"external_task_id": external} if external else {},
                "task_status": "submitted",
                "created_at": int(task.created * 1000),
                "updated_at": int(task.created * 1000),
            }
        )

    def query(self, request: Request) -> Response:
        task = self._find(request.params["kind"], request.params["id"])
        if task is None:
            return self.business_error(1203, "Task not found")
        return self.envelope(self._task(task))

    def list(self, request: Request) -> Response:
        kind = request.params["kind"]
        size = int(request.arg("pageSize", "30") or 30)
        tasks = [self._task(t) for t in self.jobs.values() if t.kind == kind][:size]
        return self.envelope(tasks)


if __name__ == "__main__":
    main(KlingEmulator, sys.argv[1:])


EMULATOR = KlingEmulator
