"""Emulator of Google's Gemini API for video: Veo ``predictLongRunning`` and the Interactions API
(Gemini Omni), per ``reference/providers/veo.md`` §2, §4, §5, §9-§10.

Run: ``python -m tests.emulators.gemini --port 9110``. Auth: ``x-goog-api-key: <api_key>`` (or
``?key=``). A missing key is ``403 PERMISSION_DENIED``; a wrong one ``401 UNAUTHENTICATED``, or,
with ``api_key_invalid_400``, Google's ``400 INVALID_ARGUMENT`` + ``ErrorInfo`` ``API_KEY_INVALID``.
Every error is a ``google.rpc.Status`` envelope ``{"error": {"code", "message", "status",
"details"}}``.

- ``GET /v1beta/models`` lists ``listed`` (a set of upstream ids a test may change, to retire a
  model) with ``supportedGenerationMethods``, plus a text model; ``page_size`` splits it into pages
  (``nextPageToken``).
- Veo: ``POST /v1beta/models/{m}:predictLongRunning`` -> ``{"name": "models/{m}/operations/<id>"}``;
  an id that is not listed (or not a Veo id) is ``404 NOT_FOUND`` "is no longer available".
  Vertex-only fields (``generateAudio``, ``seed``, ``storageUri``, ``gcsUri`` images, ...) and bad
  durations / ratios / resolutions (1080p and 4k need 8 s) are ``400 INVALID_ARGUMENT``.
  ``GET /v1beta/models/{m}/operations/{id}`` flips to ``done`` on the emulator clock with
  ``generateVideoResponse.generatedSamples[].video.uri`` =
  ``…/v1beta/files/<id>:download?alt=media`` (the key is needed; the file expires after
  ``url_ttl``, 2 days), or inline ``encodedVideo`` with ``veo_inline``. A prompt with
  ``[filtered]`` ends done with no samples and one ``raiMediaFilteredReasons`` entry; ``[error]``
  ends done with an ``error``.
- Omni: ``POST /v1beta/interactions`` (needs ``Api-Revision``, ``background: true`` and the
  snake_case body) -> ``queued`` -> ``in_progress`` -> ``completed`` with ``output_video`` (``uri``
  or, with ``delivery: "inline"`` or ``omni_inline``, base64 ``data``; ``duration`` is
  ``omni_seconds``). Prompt tags ``[fail]``, ``[incomplete]``, ``[budget]`` and
  ``[requires_action]`` end in those states; ``POST …/{id}/cancel`` -> ``cancelled``.
- ``add_google_fault(endpoint, status, message, retry_delay=)``: an error in Google's form (a 429
  with ``RetryInfo``); the base's faults (delay, malformed, truncate, patch) work on every endpoint.

No webhooks: the adapter does not use them (static webhooks are per project; see
docs/providers/gemini.md).
"""

from __future__ import annotations

import base64
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .base import Emulator, Request, Response, main, sample_mp4

API_KEY = "AIzaFakeKey-test-emulator-gemini-0000"
VEO_MODELS = {
    "veo-3.1-generate-001",
    "veo-3.1-fast-generate-001",
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
    "veo-3.1-lite-generate-preview",
}
OMNI_MODELS = {"gemini-omni-1.1-flash", "gemini-omni-1.2-flash"}
DEFAULT_LISTED = {"veo-3.1-generate-001", "veo-3.1-fast-generate-001", "gemini-omni-1.1-flash"}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
VERTEX_ONLY = (
    "generateAudio",
    "seed",
    "storageUri",
    "fps",
    "compressionQuality",
    "resizeMode",
    "pubsubTopic",
)
FILTER_REASON = (
    "We encountered an issue with the audio or video for your prompt. Support codes: 58061214. "
    "You will not be charged for this request."
)


@dataclass
class Job:
    id: str
    kind: str  # "veo" | "omni"
    model: str
    prompt: str
    created: float
    inline: bool = False
    cancelled: bool = False
    file_id: str = ""


class GeminiEmulator(Emulator):
    name = "gemini"
    slug = "gemini"
    live_models = ("veo-3.1",)

    def __init__(self, *, api_key: str = API_KEY, url_ttl: float = 2 * 24 * 3600.0, **kwargs: Any) -> None:
        super().__init__(url_ttl=url_ttl, **kwargs)
        self.api_key = api_key
        self.listed: set[str] = set(DEFAULT_LISTED)
        self.page_size: int | None = None
        self.api_key_invalid_400 = False
        self.veo_inline = False
        self.omni_inline = False
        self.omni_seconds = 8
        self.revision = "2026-05-20"
        self.files: dict[str, tuple[str, float]] = {}  # file id -> (job id, expires at)
        self.downloads_with_key = 0

    # --- the shared test modules' questions ---------------------------------------------------

    def key_fields(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def settings(self) -> dict[str, str]:
        return {"GEMINI_BASE_URL": self.base_url}

    @classmethod
    def error_body(cls, status: int, message: str, *, details: list[Any] | None = None) -> Any:
        error: dict[str, Any] = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
        if details:
            error["details"] = details
        return {"error": error}

    @classmethod
    def validation_ok_body(cls) -> Any:
        return {"models": [cls.model_entry("veo-3.1-generate-001"), cls.model_entry("gemini-3-flash")]}

    def describe_credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    @staticmethod
    def model_entry(model_id: str) -> dict[str, Any]:
        if model_id in VEO_MODELS:
            methods = ["predictLongRunning"]
        elif model_id in OMNI_MODELS:
            methods = ["createInteraction"]
        else:
            methods = ["generateContent", "countTokens"]
        return {
            "name": f"models/{model_id}",
            "version": "1",
            "displayName": model_id,
            "supportedGenerationMethods": methods,
        }

    # --- faults of Google's own forms -----------------------------------------------------------

    def add_google_fault(
        self, endpoint: str, status: int, message: str = "Injected fault", *, retry_delay: str | None = None, times=1
    ) -> None:
        details = None
        if retry_delay is not None:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
        self.add_fault(endpoint, status=status, body=self.error_body(status, message, details=details), times=times)

    # --- lifecycle ---------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.files.clear()
            self.listed = set(DEFAULT_LISTED)
            self.page_size = None
            self.api_key_invalid_400 = False
            self.veo_inline = self.omni_inline = False
            self.omni_seconds = 8
            self.downloads_with_key = 0

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        return [
            ("GET", r"/v1beta/models", "models", self.models),
            ("POST", r"/v1beta/models/(?P<model>[^/:]+):predictLongRunning", "create", self.create),
            ("GET", r"/v1beta/models/(?P<model>[^/:]+)/operations/(?P<id>[^/]+)", "operation", self.operation),
            ("GET", r"/v1beta/files/(?P<id>[^/:]+):download", "download", self.download),
            ("POST", r"/v1beta/interactions", "interaction_create", self.interaction_create),
            ("GET", r"/v1beta/interactions/(?P<id>[^/]+)", "interaction", self.interaction),
            ("POST", r"/v1beta/interactions/(?P<id>[^/]+)/cancel", "interaction_cancel", self.interaction_cancel),
        ]

    def error(self, status: int, message: str, *, details: list[Any] | None = None, **extra: Any) -> Response:
        return Response(status=status, body=self.error_body(status, message, details=details))

    def authenticate(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.arg("key")
        if key == self.api_key:
            return None
        if not key:
            return self.error(403, "Method doesn't allow unregistered callers (callers without established identity).")
        if self.api_key_invalid_400:
            reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            return self.error(400, "API key not valid. Please pass a valid API key.", details=[reason])
        return self.error(401, "Request had invalid authentication credentials.")

    # --- models ----------------------------------------------------------------------------------

    def models(self, request: Request) -> Response:
        entries = [self.model_entry(m) for m in sorted(self.listed)] + [self.model_entry("gemini-3-flash")]
        size = self.page_size or len(entries)
        start = int(request.arg("pageToken") or 0)
        body: dict[str, Any] = {"models": entries[start : start + size]}
        if start + size < len(entries):
            body["nextPageToken"] = str(start + size)
        return Response(body=body)

    # --- Veo ----------------------------------------------------------------------------------

    def _bad(self, message: str) -> Response:
        return self.error(400, message)

    def create(self, request: Request) -> Response:
        model = request.params["model"]
        if model not in VEO_MODELS or model not in self.listed:
            return self.error(
                404,
                f"models/{model} is no longer available. It is not found for API version v1beta, or is not "
                "supported for predictLongRunning. Call ListModels to see the list of available models.",
            )
        try:
            body = request.json()
        except ValueError:
            return self._bad("Invalid JSON payload received.")
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            return self._bad("instances must hold exactly one instance.")
        instance = instances[0]
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return self._bad("parameters must be an object.")
        for name in VERTEX_ONLY:
            if name in parameters:
                return self._bad(f"{name} isn't supported by this model.")
        if "labels" in body:
            return self._bad('Invalid JSON payload received. Unknown name "labels": Cannot find field.')
        prompt = instance.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return self._bad("prompt is required.")
        image = instance.get("image")
        if image is not None:
            if not isinstance(image, dict) or "gcsUri" in image:
                return self._bad("gcsUri isn't supported by this model.")
            if image.get("mimeType") not in ("image/png", "image/jpeg", "image/webp"):
                return self._bad("image.mimeType must be image/png, image/jpeg or image/webp.")
            try:
                base64.b64decode(image.get("bytesBase64Encoded") or "", validate=True)
            except ValueError:
                return self._bad("image.bytesBase64Encoded is not base64.")
        duration = parameters.get("durationSeconds", 8)
        resolution = parameters.get("resolution", "720p")
        if isinstance(duration, bool) or duration not in (4, 6, 8):
            return self._bad("durationSeconds must be 4, 6 or 8.")
        if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            return self._bad("aspectRatio must be 16:9 or 9:16.")
        if resolution not in ("720p", "1080p", "4k"):
            return self._bad("resolution must be 720p, 1080p or 4k.")
        if resolution in ("1080p", "4k") and duration != 8:
            return self._bad(f"{resolution} videos must be 8 seconds long.")
        if parameters.get("sampleCount", 1) not in (1, 2, 3, 4):
            return self._bad("sampleCount must be between 1 and 4.")
        job = Job(secrets.token_hex(6), "veo", model, prompt, self.now(), inline=self.veo_inline)
        self.jobs[job.id] = job
        self.jobs_created += 1
        return Response(body={"name": f"models/{model}/operations/{job.id}", "done": False})

    def _file_uri(self, job: Job) -> str:
        if not job.file_id:
            job.file_id = secrets.token_hex(8)
            self.files[job.file_id] = (job.id, self.now() + self.url_ttl)
        return f"{self.base_url}/v1beta/files/{job.file_id}:download?alt=media"

    def operation_body(self, job: Job) -> dict[str, Any]:
        name = f"models/{job.model}/operations/{job.id}"
        phase, _fraction = self.phase(job.created)
        if phase != "done":
            return {
                "name": name,
                "metadata": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningMetadata"
                },
            }
        if "[error]" in job.prompt:
            return {"name": name, "done": True, "error": {"code": 13, "message": "Video generation failed."}}
        result: dict[str, Any] = {"raiMediaFilteredCount": 0}
        if "[filtered]" in job.prompt:
            result = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTER_REASON]}
        elif job.inline:
            encoded = base64.b64encode(sample_mp4()).decode("ascii")
            result["generatedSamples"] = [{"video": {"encodedVideo": encoded, "encoding": "video/mp4"}}]
        else:
            result["generatedSamples"] = [{"video": {"uri": self._file_uri(job)}}]
        return {
            "name": name,
            "done": True,
            "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": result,
            },
        }

    def operation(self, request: Request) -> Response:
        job = self.jobs.get(request.params["id"])
        if job is None or job.kind != "veo" or job.model != request.params["model"]:
            return self.error(404, "Operation not found.")
        return Response(body=self.operation_body(job))

    def download(self, request: Request) -> Response:
        found = self.files.get(request.params["id"])
        if found is None or found[1] < self.now():
            return self.error(404, f"File {request.params['id']} not found or expired.")
        self.downloads_with_key += 1
        return self.video_response()

    # --- Omni (Interactions API) ----------------------------------------------------------------

    def interaction_body(self, job: Job) -> dict[str, Any]:
        phase, _fraction = self.phase(job.created)
        body: dict[str, Any] = {"id": job.id, "model": job.model, "created": int(job.created), "object": "interaction"}
        if job.cancelled:
            return {**body, "status": "cancelled"}
        if phase in ("throttled", "queued"):
            return {**body, "status": "queued"}
        if phase == "running":
            return {**body, "status": "in_progress"}
        for tag, status in (("[incomplete]", "incomplete"), ("[budget]", "budget_exceeded")):
            if tag in job.prompt:
                return {**body, "status": status}
        if "[requires_action]" in job.prompt:
            return {**body, "status": "requires_action"}
        if "[fail]" in job.prompt:
            return {**body, "status": "failed", "errors": [{"code": "SAFETY", "message": "The prompt was blocked."}]}
        video: dict[str, Any] = {"mime_type": "video/mp4", "duration": f"{self.omni_seconds}s"}
        if job.inline:
            video["data"] = base64.b64encode(sample_mp4()).decode("ascii")
        else:
            video["uri"] = self._file_uri(job)
        return {
            **body,
            "status": "completed",
            "output_video": video,
            "usage": {"total_output_seconds": self.omni_seconds},
        }

    def interaction_create(self, request: Request) -> Response:
        if request.headers.get("Api-Revision") != self.revision:
            return self._bad(f"The Api-Revision header must be {self.revision}.")
        try:
            body = request.json()
        except ValueError:
            return self._bad("Invalid JSON payload received.")
        if not isinstance(body, dict):
            return self._bad("The body must be an object.")
        for camel in ("responseFormat", "generationConfig", "webhookConfig"):
            if camel in body:
                return self._bad(f'Invalid JSON payload received. Unknown name "{camel}": Cannot find field.')
        model = body.get("model")
        if model not in OMNI_MODELS:
            return self.error(404, f"models/{model} is not found for API version v1beta.")
        if body.get("background") is not True:
            return self._bad("Video generation needs background: true.")
        blocks = body.get("input")
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        if not isinstance(blocks, list) or not blocks:
            return self._bad("input is required.")
        texts = [b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        for block in blocks:
            if not isinstance(block, dict) or block.get("type") not in ("text", "image", "video", "audio"):
                return self._bad("input blocks need a type of text, image, video or audio.")
            if block["type"] == "image" and not (block.get("uri") or block.get("data")):
                return self._bad("an image block needs uri or data.")
            if block["type"] == "image" and "mimeType" in block:
                return self._bad('Unknown name "mimeType": Cannot find field.')
        fmt = body.get("response_format")
        if not isinstance(fmt, dict) or fmt.get("type") != "video":
            return self._bad("response_format.type must be video.")
        if fmt.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
            return self._bad("response_format.aspect_ratio must be 16:9 or 9:16.")
        if fmt.get("resolution", "720p") not in ("360p", "720p", "1080p", "4k"):
            return self._bad("response_format.resolution must be 360p, 720p, 1080p or 4k.")
        if fmt.get("delivery", "inline") not in ("inline", "uri"):
            return self._bad("response_format.delivery must be inline or uri.")
        inline = self.omni_inline or fmt.get("delivery", "inline") == "inline"
        prompt = " ".join(t for t in texts if isinstance(t, str))
        job = Job("v1_" + secrets.token_hex(8), "omni", model, prompt, self.now(), inline=inline)
        self.jobs[job.id] = job
        self.jobs_created += 1
        return Response(body=self.interaction_body(job))

    def _omni_job(self, request: Request) -> Job | None:
        job = self.jobs.get(request.params["id"])
        return job if job is not None and job.kind == "omni" else None

    def interaction(self, request: Request) -> Response:
        job = self._omni_job(request)
        if job is None:
            return self.error(404, f"Interaction {request.params['id']} not found.")
        return Response(body=self.interaction_body(job))

    def interaction_cancel(self, request: Request) -> Response:
        job = self._omni_job(request)
        if job is None:
            return self.error(404, f"Interaction {request.params['id']} not found.")
        if self.interaction_body(job)["status"] in ("completed", "failed", "incomplete", "budget_exceeded"):
            return self.error(400, "The interaction has already finished.")
        job.cancelled = True
        return Response(body=self.interaction_body(job))


EMULATOR = GeminiEmulator

if __name__ == "__main__":
    main(GeminiEmulator, sys.argv[1:])
