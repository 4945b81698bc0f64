"""Emulator of Veo on Vertex AI (``reference/providers/veo.md`` §1, §3, §5, §10; docs/providers/vertex.md).

Run: ``python -m tests.emulators.vertex --port 9110`` (prints a throw-away service-account JSON).

- ``POST /token``: the OAuth2 ``jwt-bearer`` grant. The assertion must be an RS256 JWT signed with
  the service account's private key (verified with its public key), ``iss`` = ``client_email``,
  ``aud`` = this token URL, ``kid`` = ``private_key_id``, scope ``cloud-platform``; otherwise 400
  ``invalid_grant``. Tokens live ``token_ttl`` seconds on the emulator clock; after that every
  call answers 401 ``UNAUTHENTICATED``.
- ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning`` with
  Bearer auth (another project: 403 ``PERMISSION_DENIED``; a retired or unknown model: 404
  ``NOT_FOUND`` "… is no longer available"). Validates ``durationSeconds`` 4/6/8, 8 s for
  1080p/4k, ``aspectRatio`` 16:9/9:16, ``resolution``, ``sampleCount`` 1-4, a uint32 ``seed``,
  ``generateAudio`` a bool, the image's base64 -> 400 ``INVALID_ARGUMENT``.
- ``POST …/models/{m}:fetchPredictOperation {"operationName"}`` (a POST, quirk 1): ``done`` after
  ``job_seconds``; ``response.videos[]`` with ``gcsUri`` when ``storageUri`` was set (the object is
  written into a fake bucket, served at ``GET /storage/v1/b/{b}/o/{o}?alt=media`` with Bearer
  auth), else ``bytesBase64Encoded`` (the sample MP4). Unknown operation: 404 ``NOT_FOUND``.
- A prompt with ``[filtered]`` ends ``done`` with no videos, ``raiMediaFilteredCount: 1`` and one
  reason (quirk 3); ``[fail]`` ends ``done`` with ``error {code: 13, message}``.
- Faults: the base's (``create``, ``fetch``, ``token``, ``storage`` endpoints), plus
  :meth:`add_google_fault` for Google's envelope (429 with ``RetryInfo``, 403, 503, …).
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .base import Emulator, Request, Response, main, sample_mp4

PROJECT = "mr-emulator-project"
CLIENT_EMAIL = f"veo-runner@{PROJECT}.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MODELS = {"veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001"}
RETIRED = {"veo-3.0-generate-001", "veo-3.0-fast-generate-001", "veo-2.0-generate-001"}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNKNOWN",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FILTER_REASON = (
    "Veo could not generate videos because the input image violates Vertex AI's usage guidelines. "
    "Support codes: 58061214"
)


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@lru_cache(maxsize=1)
def contract_pem() -> str:
    """One RSA key per process for the registry-wide contract test (generating keys is slow)."""
    return pem(new_private_key())


def service_account(*, private_key: str, private_key_id: str, token_uri: str, project: str = PROJECT) -> dict:
    """A service-account key file, as Google Cloud hands it out."""
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": private_key_id,
        "private_key": private_key,
        "client_email": CLIENT_EMAIL,
        "client_id": "104567890123456789012",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }


@dataclass
class Operation:
    name: str
    model: str
    created: float
    prompt: str
    storage_uri: str | None


class VertexEmulator(Emulator):
    name = "vertex"
    slug = "vertex"
    live_models = ("veo-3.1",)

    def __init__(self, *, token_ttl: float = 3600.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.private_key = new_private_key()
        self.private_key_id = secrets.token_hex(20)
        self.project = PROJECT
        self.location = "us-central1"
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}  # access token -> expiry on the emulator clock
        self.bucket: dict[tuple[str, str], bytes] = {}
        self.assertions: list[dict[str, Any]] = []  # verified claims, in order

    # --- the shared test modules' questions ---------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"{self.root_url}/token"

    def account(self, **overrides: Any) -> dict[str, Any]:
        doc = service_account(
            private_key=pem(self.private_key), private_key_id=self.private_key_id, token_uri=self.token_url
        )
        return {**doc, **overrides}

    def key_fields(self) -> dict[str, str]:
        return {"service_account_json": json.dumps(self.account(), indent=2), "location": self.location}

    def settings(self) -> dict[str, str]:
        return {"VERTEX_BASE_URL": self.base_url, "VERTEX_STORAGE_BASE_URL": self.root_url}

    @classmethod
    def error_body(cls, status: int, message: str) -> Any:
        return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}

    @classmethod
    def contract_credentials(cls, key: str) -> dict[str, str]:
        """A key for the contract test: its token endpoint is under the mocked https://api.example.com;
        ``key`` is the key id, which the adapter must scrub like the key itself."""
        doc = service_account(private_key=contract_pem(), private_key_id=key, token_uri="https://api.example.com/token")
        return {"service_account_json": json.dumps(doc), "location": "us-central1"}

    @classmethod
    def validation_ok_body(cls) -> Any:
        """Answers both the token exchange and the validation call (the contract test mocks every
        URL with one body)."""
        return {"access_token": "ya29.contract-token", "expires_in": 3600, "token_type": "Bearer", "done": False}

    def describe_credentials(self) -> dict[str, str]:
        return {"service_account_json": json.dumps(self.account()), "location": self.location}

    # --- faults of Google's own forms -------------------------------------------------------------

    def add_google_fault(
        self,
        endpoint: str,
        status: int,
        message: str = "Injected fault",
        *,
        retry_delay: str | None = None,
        times: int | None = 1,
    ) -> None:
        body = self.error_body(status, message)
        if retry_delay is not None:
            body["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
            ]
        self.add_fault(endpoint, status=status, body=body, times=times)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {token: self.now() - 1 for token in self.tokens}

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.bucket.clear()
            self.assertions.clear()  # tokens survive: a reset forgets traffic, not the keys

    # --- routes ------------------------------------------------------------------------------------

    def routes(self) -> Iterable[tuple[str, str, str, Any]]:
        model = (
            r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google/models/(?P<model>[^/:]+)"
        )
        return [
            ("POST", r"/token", "token", self.token),
            ("POST", model + r":predictLongRunning", "create", self.create),
            ("POST", model + r":fetchPredictOperation", "fetch", self.fetch),
            ("GET", r"/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)", "storage", self.storage),
        ]

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return Response(status=status, body=self.error_body(status, message))

    def authenticate(self, request: Request) -> Response | None:
        if request.endpoint == "token":
            return None
        token = request.bearer
        expiry = self.tokens.get(token or "")
        if expiry is None or expiry < self.now():
            return self.error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
            )
        project = request.params.get("project")
        if project is not None and project != self.project:
            return self.error(
                403,
                "Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'//aiplatform.googleapis.com/projects/{project}'.",
            )
        return None

    def _oauth_error(self, description: str) -> Response:
        return Response(status=400, body={"error": "invalid_grant", "error_description": description})

    def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        if form.get("grant_type") != JWT_GRANT:
            return Response(
                status=400, body={"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
            )
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.private_key.public_key(),
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=CLIENT_EMAIL,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.InvalidSignatureError:
            return self._oauth_error("Invalid JWT Signature.")
        except jwt.PyJWTError as exc:
            return self._oauth_error(f"Invalid JWT: {type(exc).__name__}.")
        if header.get("kid") != self.private_key_id:
            return self._oauth_error("Invalid JWT Signature.")
        if SCOPE not in str(claims.get("scope", "")).split():
            return Response(status=400, body={"error": "invalid_scope", "error_description": "Invalid OAuth scope."})
        if claims["exp"] - claims["iat"] > 3600:
            return self._oauth_error("Invalid JWT: Token must be a short-lived token (60 minutes).")
        self.assertions.append(claims)
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        self.tokens[token] = self.now() + self.token_ttl
        return Response(body={"access_token": token, "expires_in": int(self.token_ttl), "token_type": "Bearer"})

    def _model_error(self, model: str) -> Response | None:
        if model in RETIRED:
            return self.error(
                404,
                f"Publisher Model `projects/{self.project}/locations/{self.location}/publishers/google/models/"
                f"{model}` is no longer available.",
            )
        if model not in MODELS:
            return self.error(
                404, f"Publisher Model `{model}` was not found or your project does not have access to it."
            )
        return None

    def _invalid(self, body: Any) -> str | None:
        """Why Vertex would refuse this body (INVALID_ARGUMENT), or None."""
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or len(body["instances"]) != 1:
            return "instances must hold one instance."
        instance, params = body["instances"][0], body.get("parameters") or {}
        if not isinstance(instance, dict) or not isinstance(params, dict):
            return "Invalid JSON payload."
        if not isinstance(instance.get("prompt"), str) or not instance["prompt"].strip():
            return "The prompt is required."
        seconds = params.get("durationSeconds", 8)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds not in (4, 6, 8):
            return (
                f"Unsupported output video duration {seconds} seconds, supported durations are [8,6,4] for "
                "feature text_to_video."
            )
        if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            return f"Aspect ratio {params.get('aspectRatio')} is not supported."
        resolution = params.get("resolution", "720p")
        if resolution not in ("720p", "1080p", "4k"):
            return f"Resolution {resolution} is not supported."
        if resolution in ("1080p", "4k") and seconds != 8:
            return f"{resolution} output requires durationSeconds 8."
        count = params.get("sampleCount", 1)
        if not isinstance(count, int) or not 1 <= count <= 4:
            return "sampleCount must be between 1 and 4."
        if "generateAudio" in params and not isinstance(params["generateAudio"], bool):
            return "generateAudio must be a boolean."
        seed = params.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32):
            return "seed must be a uint32."
        storage = params.get("storageUri")
        if storage is not None and (not isinstance(storage, str) or not storage.startswith("gs://")):
            return "storageUri must be a gs:// URI."
        image = instance.get("image")
        if image is not None:
            if not isinstance(image, dict) or image.get("mimeType") not in ("image/png", "image/jpeg"):
                return "image.mimeType must be image/png or image/jpeg."
            if "bytesBase64Encoded" in image:
                try:
                    base64.b64decode(image["bytesBase64Encoded"], validate=True)
                except ValueError:
                    return "image.bytesBase64Encoded is not base64."
            elif not str(image.get("gcsUri", "")).startswith("gs://"):
                return "image needs bytesBase64Encoded or gcsUri."
        return None

    def create(self, request: Request) -> Response:
        model = request.params["model"]
        problem = self._model_error(model)
        if problem is not None:
            return problem
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "Invalid JSON payload received.")
        reason = self._invalid(body)
        if reason is not None:
            return self.error(400, reason)
        name = (
            f"projects/{request.params['project']}/locations/{request.params['location']}/publishers/google/models/"
            f"{model}/operations/{uuid.uuid4()}"
        )
        prompt = body["instances"][0]["prompt"]
        self.jobs[name] = Operation(name, model, self.now(), prompt, (body.get("parameters") or {}).get("storageUri"))
        self.jobs_created += 1
        return Response(body={"name": name})

    def _done_response(self, op: Operation) -> dict[str, Any]:
        if "[fail]" in op.prompt:
            return {"name": op.name, "done": True, "error": {"code": 13, "message": "Internal error encountered."}}
        kind = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        if "[filtered]" in op.prompt:
            response = {"@type": kind, "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTER_REASON]}
            return {"name": op.name, "done": True, "response": response}
        if op.storage_uri:
            bucket, _, prefix = op.storage_uri[len("gs://") :].partition("/")
            obj = f"{prefix.rstrip('/') + '/' if prefix.strip('/') else ''}{op.name.rsplit('/', 1)[1]}/sample_0.mp4"
            self.bucket[(bucket, obj)] = sample_mp4()
            video = {"gcsUri": f"gs://{bucket}/{obj}", "mimeType": "video/mp4"}
        else:
            video = {"bytesBase64Encoded": base64.b64encode(sample_mp4()).decode(), "mimeType": "video/mp4"}
        return {
            "name": op.name,
            "done": True,
            "response": {"@type": kind, "raiMediaFilteredCount": 0, "videos": [video]},
        }

    def fetch(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self.error(400, "Invalid JSON payload received.")
        name = body.get("operationName") if isinstance(body, dict) else None
        if not isinstance(name, str):
            return self.error(400, "operationName is required.")
        op = self.jobs.get(name)
        if op is None or op.model != request.params["model"]:
            return self.error(404, f"Operation {name} was not found.")
        if self.phase(op.created)[0] != "done":
            return Response(body={"name": op.name, "done": False})
        return Response(body=self._done_response(op))

    def storage(self, request: Request) -> Response:
        if request.arg("alt") != "media":
            return self.error(400, "Only alt=media is emulated.")
        data = self.bucket.get((unquote(request.params["bucket"]), unquote(request.params["object"])))
        if data is None:
            return self.error(404, "No such object.")
        return Response(body=data, content_type="video/mp4")


EMULATOR = VertexEmulator

if __name__ == "__main__":
    main(VertexEmulator, sys.argv[1:])
