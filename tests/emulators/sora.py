"""Emulator of the OpenAI Videos API (``reference/providers/openai-videos.md`` §14).

Run: ``python -m tests.emulators.sora --port 9101`` (base URL ``http://127.0.0.1:9101/v1``).
A prompt containing ``[fail]`` makes the video end ``failed`` with ``moderation_blocked``.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .base import Emulator, Request, Response, main, parse_multipart, sample_image

API_KEY = "fake-key-test-emulator-openai-0000"
MODELS = {"sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-2025-12-08", "sora-2-pro-2025-10-06"}
SIZES_720 = {"720x1280", "1280x720"}
SIZES_PRO = SIZES_720 | {"1024x1792", "1792x1024"}
SIZES_PRO_EXPANDED = SIZES_PRO | {"1920x1080", "1080x1920"}


@dataclass
class Video:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created: float
    fail: bool
    remixed_from: str | None = None
    deleted: bool = False
    length: float | None = None  # this job's own length (``--job-seconds-max``), else job_seconds


class OpenAIEmulator(Emulator):
    slug = "sora"
    live_models = ("sora-2",)

    @classmethod
    def error_body(cls, status: int, message: str) -> dict:
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}

    name = "openai"
    api_prefix = "/v1"

    def __init__(self, *, api_key: str = API_KEY, expanded_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.expanded_rules = expanded_rules  # the 2026-03 guide's extra seconds and pro sizes
        self.poll_after_ms = 50
        self.not_ready_status = 400  # the error for content before completion is undocumented
        self.spritesheet_type = "image/jpeg"

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        return [
            ("POST", r"/v1/videos", "create", self.create),
            ("GET", r"/v1/videos", "list", self.list),
            ("GET", r"/v1/videos/(?P<id>[^/]+)", "retrieve", self.retrieve),
            ("DELETE", r"/v1/videos/(?P<id>[^/]+)", "delete", self.delete),
            ("GET", r"/v1/videos/(?P<id>[^/]+)/content", "content", self.content),
            ("POST", r"/v1/videos/(?P<id>[^/]+)/remix", "remix", self.remix),
        ]

    # --- envelope ------------------------------------------------------------------------------

    def error(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> Response:
        return Response(
            status=status,
            body={"error": {"message": message, "type": type, "param": param, "code": code}},
            headers={"x-should-retry": "false"} if status < 500 else {},
        )

    def authenticate(self, request: Request) -> Response | None:
        key = request.bearer
        if key == self.api_key:
            return None
        # like a careless gateway, echo the key back: adapters must scrub it from messages
        shown = f": {key}" if key else ""
        return self.error(401, f"Incorrect API key provided{shown}.", code="invalid_api_key")

    # --- objects -----------------------------------------------------------------------------

    def _video(self, video: Video) -> dict[str, Any]:
        phase, fraction = self.phase(video.created, length=video.length)
        status = {"queued": "queued", "running": "in_progress", "done": "completed"}.get(phase, "queued")
        error = None
        completed_at = expires_at = None
        if phase == "done":
            completed_at = int(video.created + (self.job_seconds if video.length is None else video.length))
            expires_at = int(completed_at + self.url_ttl)
            if video.fail:
                status = "failed"
                error = {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}
        return {
            "id": video.id,
            "object": "video",
            "model": video.model,
            "status": status,
            "progress": 100 if phase == "done" else int(fraction * 100),
            "created_at": int(video.created),
            "completed_at": completed_at,
            "expires_at": expires_at,
            "prompt": video.prompt,
            "size": video.size,
            "seconds": video.seconds,
            "remixed_from_video_id": video.remixed_from,
            "error": error,
        }

    def _get(self, request: Request) -> Video | None:
        video = self.jobs.get(request.params["id"])
        return None if video is None or video.deleted else video

    def _not_found(self, request: Request) -> Response:
        return self.error(404, f"Video with id '{request.params['id']}' not found.", param="video_id", code="not_found")

    def _new(self, *, model: str, prompt: str, seconds: str, size: str, remixed_from: str | None = None) -> Video:
        video = Video(
            id="video_" + secrets.token_hex(24),
            model=model,
            prompt=prompt,
            seconds=seconds,
            size=size,
            created=self.now(),
            fail="[fail]" in prompt.lower(),
            remixed_from=remixed_from,
            length=self.new_job_length(),
        )
        self.jobs[video.id] = video
        self.jobs_created += 1
        return video

    # --- endpoints ---------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        content_type = request.headers.get("Content-Type") or ""
        files: dict[str, Any] = {}
        if content_type.startswith("multipart/form-data"):
            fields, files = parse_multipart(content_type, request.body)
            reference: dict[str, Any] = {
                key[len("input_reference[") : -1]: value
                for key, value in fields.items()
                if key.startswith("input_reference[")
            }
            payload: dict[str, Any] = {k: v for k, v in fields.items() if not k.startswith("input_reference[")}
            if reference:
                payload["input_reference"] = reference
        else:
            try:
                payload = request.json()
            except ValueError:
                return self.error(400, "We could not parse the JSON body of your request.")
            if not isinstance(payload, dict):
                return self.error(400, "The body must be a JSON object.")

        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 32000:
            return self.error(400, "'prompt' must be 1 to 32000 characters.", param="prompt")
        model = payload.get("model", "sora-2")
        if model not in MODELS:
            return self.error(400, f"Invalid value for 'model': {model!r}.", param="model", code="invalid_value")
        seconds = payload.get("seconds", "4")
        allowed_seconds = {"4", "8", "12"} | ({"16", "20"} if self.expanded_rules else set())
        if not isinstance(seconds, str) or seconds not in allowed_seconds:
            return self.error(
                400,
                f"Invalid value for 'seconds': {seconds!r}; expected one of {sorted(allowed_seconds)}.",
                param="seconds",
                code="invalid_value",
            )
        size = payload.get("size", "720x1280")
        pro = model.startswith("sora-2-pro")
        sizes = (SIZES_PRO_EXPANDED if self.expanded_rules else SIZES_PRO) if pro else SIZES_720
        if size not in sizes:
            return self.error(400, f"Invalid size {size!r} for model {model}.", param="size", code="invalid_value")
        reference = payload.get("input_reference")
        if "input_reference" in files:
            _name, _type, data = files["input_reference"]
            if not data:
                return self.error(400, "The input_reference file is empty.", param="input_reference")
        elif reference is not None:
            if not isinstance(reference, dict) or len({"image_url", "file_id"} & set(reference)) != 1:
                return self.error(
                    400, "input_reference must have exactly one of image_url and file_id.", param="input_reference"
                )
        video = self._new(model=model, prompt=prompt, seconds=seconds, size=size)
        return Response(body=self._video(video))

    def list(self, request: Request) -> Response:
        videos = [v for v in self.jobs.values() if not v.deleted]
        limit = int(request.arg("limit", "20") or 20)
        page = [self._video(v) for v in videos[:limit]]
        return Response(
            body={
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(videos) > limit,
            }
        )

    def retrieve(self, request: Request) -> Response:
        video = self._get(request)
        if video is None:
            return self._not_found(request)
        return Response(body=self._video(video), headers={"openai-poll-after-ms": str(self.poll_after_ms)})

    def delete(self, request: Request) -> Response:
        video = self._get(request)
        if video is None:
            return self._not_found(request)
        if self._video(video)["status"] not in ("completed", "failed"):
            return self.error(400, "Only completed or failed videos can be deleted.", param="video_id")
        video.deleted = True
        return Response(body={"id": video.id, "object": "video.deleted", "deleted": True})

    def content(self, request: Request) -> Response:
        video = self._get(request)
        if video is None:
            return self._not_found(request)
        state = self._video(video)
        if state["status"] != "completed":
            return self.error(
                self.not_ready_status, "Video is not ready yet; wait until it is completed.", code="video_not_ready"
            )
        if state["expires_at"] is not None and self.now() > state["expires_at"]:
            return self.error(404, "The video's assets have expired.", code="expired")
        variant = request.arg("variant", "video")
        if variant == "video":
            return self.video_response()
        if variant == "thumbnail":
            return Response(body=sample_image("WEBP"), content_type="image/webp")
        if variant == "spritesheet":
            return Response(body=sample_image("JPEG"), content_type=self.spritesheet_type)
        return self.error(400, f"Invalid variant {variant!r}.", param="variant")

    def remix(self, request: Request) -> Response:
        source = self._get(request)
        if source is None:
            return self._not_found(request)
        if self._video(source)["status"] != "completed":
            return self.error(400, "Only completed videos can be remixed.", param="video_id")
        try:
            payload = request.json()
        except ValueError:
            return self.error(400, "We could not parse the JSON body of your request.")
        prompt = payload.get("prompt") if isinstance(payload, dict) else None
        if not isinstance(prompt, str) or not prompt:
            return self.error(400, "'prompt' is required.", param="prompt")
        video = self._new(
            model=source.model, prompt=prompt, seconds=source.seconds, size=source.size, remixed_from=source.id
        )
        return Response(body=self._video(video))


if __name__ == "__main__":
    main(OpenAIEmulator, sys.argv[1:])


EMULATOR = OpenAIEmulator
