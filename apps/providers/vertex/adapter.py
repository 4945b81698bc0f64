"""Veo 3.1 on Vertex AI: Google's direct enterprise surface, with a tenant's service account.

Wire contract: ``reference/providers/veo.md`` §1, §3, §5, §9 (MediaRouter's note:
``docs/providers/vertex.md``).

- **Key.** ``service_account_json`` (secret: a service-account key file) and ``location`` (a
  Veo-serving region, or ``global``); optional ``storage_uri`` (``gs://bucket/prefix/``, the tenant's
  output bucket). The project is the JSON's ``project_id``.
- **Token.** A short-lived OAuth2 access token (scope ``cloud-platform``): an RS256 JWT assertion
  signed with the JSON's ``private_key`` (PyJWT + cryptography) is exchanged at the JSON's
  ``token_uri`` (RFC 7523 ``jwt-bearer`` grant) through :mod:`apps.providers.http`. The token is
  cached in-process per key until shortly before it expires (:data:`_TOKENS`, keyed by a digest of
  the key, never the key). A 401 from Vertex drops the cached token and retries once with a fresh
  one (quirk 8). The ``token_uri`` must be Google's token endpoint or on the operator's own
  ``VERTEX_BASE_URL`` host (an emulator, a private endpoint); ``VERTEX_TOKEN_URL``, when set,
  replaces every key's ``token_uri``. No tenant can make the server post to a host of its choosing.
- **Hosts.** ``https://{location}-aiplatform.googleapis.com`` (``https://aiplatform.googleapis.com``
  for ``global``); ``VERTEX_BASE_URL`` overrides it for every key (``{location}`` in it is filled in).
- **Create** ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning``
  -> ``{"name": ".../operations/<uuid>"}``; the full name is the job id.
- **Poll** ``POST …/models/{m}:fetchPredictOperation {"operationName": name}`` (quirk 1, not a GET).
  ``done`` + ``response.videos[]`` is completed; ``done`` with no videos but
  ``raiMediaFilteredReasons``/``raiMediaFilteredCount`` is a failed generation
  (``content_policy``, not billed, quirk 3); ``done`` + ``error`` is failed.
- **Results** (quirk 2): ``{"gcsUri"}`` when ``storageUri`` was set (read with the same token from
  ``VERTEX_STORAGE_BASE_URL``/``storage/v1/b/{bucket}/o/{object}?alt=media``), else
  ``{"bytesBase64Encoded"}``: :meth:`download` re-reads the operation and decodes the video while it
  streams (:mod:`apps.providers.vertex.inline`), never holding the document.
- **Errors** are ``google.rpc.Status`` envelopes, classified by ``error.status`` (else the HTTP
  status): see :data:`STATUSES`. A 404 ``NOT_FOUND`` on a model is "model retired" (quirk 5).
  ``RESOURCE_EXHAUSTED`` honours ``RetryInfo.retryDelay``. No idempotency key and no cancel (quirk
  10): a create that may have reached Google (500, 504, a read timeout) is ``uncertain``.
- ``validate_key``: the token exchange, then ``fetchPredictOperation`` on a made-up operation
  name of the key's project: 200 or 404 ``NOT_FOUND`` proves the token and the project; 401/403
  refuse the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apps.providers import http
from apps.providers.base import (
    Credentials,
    Download,
    GenerationSpec,
    JobState,
    JobStatus,
    KeyField,
    ProviderError,
    ProviderSetting,
    SubmittedJob,
    VideoProvider,
)
from apps.providers.modelinfo import ModelInfo

from .inline import OperationReader, placeholder

DEFAULT_BASE_URL = "https://{location}-aiplatform.googleapis.com"
GLOBAL_HOST = "https://aiplatform.googleapis.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
# hosts a service account's token_uri may name (older key files carry accounts.google.com)
GOOGLE_TOKEN_HOSTS = frozenset({"oauth2.googleapis.com:443", "accounts.google.com:443"})
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
TOKEN_MARGIN = 300.0  # refresh this long before the token expires
DEFAULT_LOCATION = "us-central1"
# Veo-serving locations the contract names (veo.md §3: us-central1 is the safe default; global uses
# the bare host). Others may serve Veo, but the reference does not list them.
LOCATIONS: dict[str, str] = {
    "us-central1": "us-central1 (Iowa), the safe default",
    "global": "global (aiplatform.googleapis.com)",
}
REQUIRED_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri", "project_id")
IMAGE_TYPES = ("image/png", "image/jpeg")
DEFAULT_RATE_LIMIT_WAIT = 10.0
DOWNLOAD_CHUNK = 256 * 1024
_MESSAGE_LIMIT = 500
_STORAGE_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?$")
_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")

# google.rpc.Code numbers (an operation's ``error.code``) -> names
RPC_NAMES: dict[int, str] = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
# google.rpc status -> (MediaRouter code, permanent, what it means to the person) (veo.md §5)
STATUSES: dict[str, tuple[str, bool, str]] = {
    "INVALID_ARGUMENT": ("invalid_request", True, "Vertex refused the request's parameters"),
    "OUT_OF_RANGE": ("invalid_request", True, "Vertex refused the request's parameters"),
    "FAILED_PRECONDITION": (
        "failed_precondition",
        True,
        "The Google Cloud project is not ready for Veo (billing off, location not supported, or the model "
        "needs allow-listing)",
    ),
    "UNAUTHENTICATED": ("authentication_error", True, "Google refused the service account's token"),
    "PERMISSION_DENIED": (
        "permission_denied",
        True,
        "The service account may not use Vertex AI in this project (missing role, or the API is not enabled)",
    ),
    "NOT_FOUND": (
        "model_not_available",
        True,
        "Vertex has no such model or operation here (the model may be retired, or not enabled in this location)",
    ),
    "RESOURCE_EXHAUSTED": ("rate_limited", False, "The project's Vertex quota is exhausted for now"),
    "ABORTED": ("server_error", False, "Vertex aborted the request"),
    "INTERNAL": ("server_error", False, "Vertex had an internal error"),
    "UNAVAILABLE": ("server_error", False, "Vertex is unavailable"),
    "DEADLINE_EXCEEDED": ("server_error", False, "Vertex ran out of time"),
    "UNKNOWN": ("server_error", False, "Vertex had an unknown error"),
    "CANCELLED": ("server_error", False, "Vertex cancelled the request"),
}
_HTTP_STATUSES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNKNOWN",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# a create whose outcome is unknown after these (Google may have started a billed job)
_UNCERTAIN_STATUSES = frozenset({"INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN"})
# OAuth2 token-endpoint errors (RFC 6749 §5.2) that mean the service account itself is refused
_OAUTH_REFUSED = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"})

# --- the token cache ----------------------------------------------------------------------------

_TOKENS: dict[str, tuple[str, float]] = {}  # digest of the key -> (access token, monotonic expiry)
_TOKENS_LOCK = threading.Lock()


def clear_token_cache() -> None:
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _cache_key(account: Mapping[str, Any], token_url: str) -> str:
    """A digest naming the key: its email and key id, and the private key itself, so that a
    document naming another tenant's account and key id (both visible) never reuses that tenant's
    token without holding its private key."""
    parts = (
        token_url,
        str(account.get("client_email", "")),
        str(account.get("private_key_id", "")),
        str(account.get("private_key", "")),
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# --- parsing ----------------------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def parse_account(document: str | None) -> tuple[dict[str, Any] | None, str]:
    """``(account, "")`` for a usable service-account JSON, else ``(None, reason)``."""
    if not document:
        return None, "Paste the service account's JSON key file."
    try:
        account = json.loads(document)
    except ValueError:
        return None, "This is not JSON: paste the whole key file Google Cloud gave you."
    if not isinstance(account, dict):
        return None, "The key file must be a JSON object."
    if account.get("type") != "service_account":
        return None, 'This is not a service-account key file ("type" must be "service_account").'
    missing = [name for name in REQUIRED_ACCOUNT_FIELDS if not _text(account.get(name)).strip()]
    if missing:
        return None, f"The key file lacks {', '.join(missing)}."
    try:
        key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    except (ValueError, TypeError, UnicodeError):
        return None, "The key file's private_key is not a PEM private key."
    if not isinstance(key, rsa.RSAPrivateKey):
        return None, "The key file's private_key is not an RSA key."
    return account, ""


def google_status(body: object, http_status: int) -> tuple[str, str, float | None]:
    """``(status name, message, RetryInfo delay)`` from any body: Google's ``{"error": {code,
    message, status, details}}``, an OAuth2 ``{"error": "...", "error_description"}``, or anything
    else (the name then follows the HTTP status)."""
    name, message, delay = "", "", None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            name = _text(error.get("status")).upper()
            message = _text(error.get("message"))
            code = error.get("code")
            if not name and isinstance(code, int) and not isinstance(code, bool):
                name = _HTTP_STATUSES.get(code, "")
            details = error.get("details")
            for detail in details if isinstance(details, list) else ():
                if isinstance(detail, dict) and _text(detail.get("@type")).endswith("google.rpc.RetryInfo"):
                    delay = _duration(detail.get("retryDelay"))
        elif isinstance(error, str):
            message = _text(body.get("error_description")) or error
            if error in _OAUTH_REFUSED:
                name = "UNAUTHENTICATED"
    if name not in STATUSES:
        name = _HTTP_STATUSES.get(http_status, "INTERNAL" if http_status >= 500 else "INVALID_ARGUMENT")
    return name, message, delay


def _duration(value: object) -> float | None:
    """A protobuf Duration: ``"38s"``, ``"1.5s"``, or ``{"seconds": 38, "nanos": 0}``."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(float(value[:-1]), 0.0)
        except ValueError:
            return None
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            return max(float(seconds) + float(nanos) / 1e9, 0.0)
        except (TypeError, ValueError):
            return None
    return None


def _gcs_parts(uri: str) -> tuple[str, str] | None:
    """``(bucket, object)`` of a ``gs://bucket/object`` URI."""
    if not uri.startswith("gs://"):
        return None
    bucket, _, name = uri[len("gs://") :].partition("/")
    return (bucket, name) if bucket and name else None


class VertexProvider(VideoProvider):
    slug = "vertex"
    label = "Google Vertex AI"
    supplier_kind = "direct"
    supports_cancel = False
    supports_callbacks = False  # Pub/Sub only (veo.md §6): MediaRouter polls
    default_base_url = DEFAULT_BASE_URL
    key_fields = (
        KeyField(
            "service_account_json",
            "Service account key (JSON)",
            kind="textarea",
            help="The JSON key file of a service account with the Vertex AI User role (and Storage Object Viewer "
            "on the output bucket, if you set one).",
            min_length=64,
            max_length=16384,
        ),
        KeyField(
            "location",
            "Location",
            secret=False,
            kind="choice",
            required=False,
            choices=tuple(LOCATIONS.items()),
            help="The Google Cloud region Veo runs in for this project. Default: us-central1.",
            min_length=1,
        ),
        KeyField(
            "storage_uri",
            "Output bucket (gs://…)",
            secret=False,
            required=False,
            help="Optional: a gs://bucket/prefix/ Veo writes its videos to (recommended; otherwise they come back "
            "inline in the answer).",
            min_length=6,
            max_length=1024,
        ),
    )
    key_shapes = (("service_account_json",),)
    extra_settings = (
        ProviderSetting("TOKEN_URL", "", "OAuth2 token endpoint for every key (empty: each key file's token_uri)."),
        ProviderSetting("STORAGE_BASE_URL", "https://storage.googleapis.com", "Cloud Storage JSON API host."),
    )

    def __init__(self, credentials: Credentials | None, base_url: str, *, options: Mapping[str, str] | None = None):
        super().__init__(credentials, base_url, options=options)
        self.location = self.credentials.location or DEFAULT_LOCATION
        if self.base_url == DEFAULT_BASE_URL and self.location == "global":
            self.base_url = GLOBAL_HOST
        else:
            self.base_url = self.base_url.replace("{location}", self.location)
        self._account, self._account_error = parse_account(self.credentials.service_account_json)

    # --- key checks -----------------------------------------------------------------------------

    @classmethod
    def check_credentials(cls, credentials: Credentials) -> dict[str, str]:
        from apps.providers import registry

        errors: dict[str, str] = {}
        account, reason = parse_account(credentials.service_account_json)
        if account is None:
            errors["service_account_json"] = reason
        elif not registry.provider_setting("vertex", "token_url"):
            base = registry.base_url_for("vertex").replace("{location}", credentials.location or DEFAULT_LOCATION)
            if not cls._token_url_allowed(account["token_uri"], base):
                errors["service_account_json"] = (
                    f"The key file's token_uri must be Google's token endpoint ({GOOGLE_TOKEN_URL})."
                )
        location = credentials.location
        if location is not None and location not in LOCATIONS:
            errors["location"] = f"Choose one of {', '.join(LOCATIONS)}."
        storage_uri = credentials.storage_uri
        if storage_uri is not None and not _STORAGE_URI.match(storage_uri):
            errors["storage_uri"] = "Give a Cloud Storage location such as gs://my-bucket/veo/."
        return errors

    @staticmethod
    def _token_url_allowed(url: str, base_url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and http.origin(url) in GOOGLE_TOKEN_HOSTS:
            return True
        base = urlsplit(base_url)
        return bool(parts.hostname) and parts.scheme == base.scheme and http.origin(url) == http.origin(base_url)

    # --- plumbing -----------------------------------------------------------------------------

    def _account_or_raise(self) -> dict[str, Any]:
        if self._account is None:
            raise ProviderError(
                f"The Vertex key is unusable: {self._account_error}", code="invalid_api_key", permanent=True
            )
        return self._account

    @property
    def project(self) -> str:
        return str(self._account_or_raise()["project_id"])

    def _secrets(self) -> list[str]:
        values = [self.credentials.service_account_json or ""]
        if self._account is not None:
            key = str(self._account.get("private_key", ""))
            values += [key, str(self._account.get("private_key_id", ""))]
            values += [line for line in key.splitlines() if len(line) >= 16]
            values += [line for line in key.replace("\\n", "\n").splitlines() if len(line) >= 16]
        with _TOKENS_LOCK:
            values += [token for token, _expiry in _TOKENS.values()]
        return sorted({v for v in values if v}, key=len, reverse=True)

    def _scrub(self, text: str) -> str:
        return http.scrub(text, *self._secrets())[:_MESSAGE_LIMIT]

    def _token_url(self) -> str:
        configured = self.options.get("TOKEN_URL", "")
        if configured:
            return configured
        url = str(self._account_or_raise()["token_uri"])
        if not self._token_url_allowed(url, self.base_url if self.base_url_trusted else GLOBAL_HOST):
            raise ProviderError(
                f"The Vertex key file's token_uri is not Google's token endpoint ({GOOGLE_TOKEN_URL}); it is not used.",
                code="invalid_api_key",
                permanent=True,
            )
        return url

    def _assertion(self, token_url: str) -> str:
        account = self._account_or_raise()
        now = int(time.time())
        claims = {"iss": account["client_email"], "scope": SCOPE, "aud": token_url, "iat": now}
        claims["exp"] = now + ASSERTION_LIFETIME
        headers = {"kid": account["private_key_id"]} if account.get("private_key_id") else None
        try:
            return jwt.encode(claims, account["private_key"], algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError):
            raise ProviderError(
                "The Vertex key file's private_key cannot sign (not an RSA PEM key).",
                code="invalid_api_key",
                permanent=True,
            ) from None

    def _token(self, *, fresh: bool = False) -> str:
        """An access token for this key: the cached one, or a new one from the token endpoint."""
        token_url = self._token_url()
        cache_key = _cache_key(self._account_or_raise(), token_url)
        if not fresh:
            with _TOKENS_LOCK:
                cached = _TOKENS.get(cache_key)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        assertion = self._assertion(token_url)
        try:
            response = http.request(
                "POST",
                token_url,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                data={"grant_type": JWT_GRANT, "assertion": assertion},
            )
        except ProviderError as exc:
            exc.uncertain = False  # asking for a token has no side effect
            raise
        body = http.read_json(response)
        if not 200 <= response.status_code < 300:
            raise self._error(response, body, refused="Google's token endpoint refused the service account")
        token = _text(body.get("access_token")) if isinstance(body, dict) else ""
        if not token:
            raise ProviderError(
                "Google's token endpoint answered without an access token.",
                code="bad_response",
                status_code=response.status_code,
            )
        expires_in = body.get("expires_in", 3600)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            expires_in = 3600
        margin = min(TOKEN_MARGIN, float(expires_in) / 2)
        with _TOKENS_LOCK:
            _TOKENS[cache_key] = (token, time.monotonic() + float(expires_in) - margin)
        return token

    def _forget_token(self) -> None:
        if self._account is None:
            return
        with _TOKENS_LOCK:
            _TOKENS.pop(_cache_key(self._account, self._token_url()), None)

    def _authorized(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One call with the key's token; a 401 drops the token and retries once with a fresh one."""
        for attempt in (0, 1):
            token = self._token(fresh=attempt == 1)
            response = http.request(
                method,
                url,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                **kwargs,
            )
            if response.status_code == 401 and attempt == 0:
                response.close()
                self._forget_token()
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(
        self, response: requests.Response, body: object, *, creating: bool = False, what: str = "", refused: str = ""
    ) -> ProviderError:
        """A non-2xx answer in Google's envelope (or none). ``what`` replaces the status's own
        meaning in the message; ``refused`` does so for permanent errors only."""
        status = response.status_code
        name, message, delay = google_status(body, status)
        code, permanent, meaning = STATUSES[name]
        retry_after = None
        if not permanent:
            retry_after = delay if delay is not None else http.parse_retry_after(response.headers)
            if retry_after is None and code == "rate_limited":
                retry_after = DEFAULT_RATE_LIMIT_WAIT
        detail = self._scrub(message)
        if permanent and refused:
            what = refused
        return ProviderError(
            f"{what or meaning} (HTTP {status} {name})" + (f": {detail}" if detail else "."),
            code=code,
            permanent=permanent,
            retry_after=retry_after,
            status_code=status,
            uncertain=creating and name in _UNCERTAIN_STATUSES,
        )

    def _model_url(self, model_id: str, verb: str) -> str:
        return (
            f"{self.base_url}/v1/projects/{quote(self.project, safe='')}/locations/{quote(self.location, safe='')}"
            f"/publishers/google/models/{quote(model_id, safe='')}:{verb}"
        )

    @staticmethod
    def _model_of(operation_name: str) -> str:
        """The model id inside ``projects/…/publishers/google/models/{m}/operations/{id}``."""
        match = re.search(r"/models/([^/]+)/operations/", operation_name)
        if match is None:
            raise ProviderError(
                f"{operation_name[:200]!r} is not a Vertex operation name.", code="invalid_request", permanent=True
            )
        return match.group(1)

    def _fetch(self, operation_name: str, *, stream: bool) -> requests.Response:
        url = self._model_url(self._model_of(operation_name), "fetchPredictOperation")
        try:
            response = self._authorized("POST", url, json={"operationName": operation_name}, stream=stream)
        except ProviderError as exc:
            exc.uncertain = False  # a read
            raise
        if not 200 <= response.status_code < 300:
            try:
                body = http.read_json(response)
            finally:
                response.close()
            error = self._error(response, body)
            if error.code == "model_not_available" and "operation" in error.message.lower():
                error.code = "not_found"
            raise error
        return response

    # --- mapping ----------------------------------------------------------------------------

    def _image(self, spec: GenerationSpec) -> dict[str, str]:
        image = spec.image
        assert image is not None
        content_type = (image.content_type or "").split(";")[0].strip().lower()
        if image.data:
            if content_type not in IMAGE_TYPES:
                raise self._refuse(f"Veo on Vertex takes PNG or JPEG images, not {content_type or 'an unknown type'}.")
            return {"bytesBase64Encoded": base64.b64encode(image.data).decode("ascii"), "mimeType": content_type}
        if image.url and image.url.startswith("gs://") and _gcs_parts(image.url):
            return {"gcsUri": image.url, "mimeType": content_type or "image/png"}
        raise self._refuse("Veo on Vertex takes the input image as bytes (upload it) or a gs:// URI, not a web URL.")

    def predict_body(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        """The ``predictLongRunning`` body, after refusing what the model cannot do (no call)."""
        prompt = (spec.prompt or "").strip()
        if not prompt:
            raise self._refuse(f"{model.label} needs a prompt.")
        sizes: Mapping[str, Mapping[str, str]] = model.extra["sizes"]  # type: ignore[assignment]
        if spec.size not in sizes:
            raise self._refuse(f"{model.label} supports sizes {', '.join(sizes)}.")
        if spec.seconds not in model.seconds:
            raise self._refuse(f"{model.label} supports durations of {', '.join(map(str, model.seconds))} seconds.")
        fields = sizes[spec.size]
        limited = model.extra.get("seconds_by_resolution", {}).get(fields["resolution"])  # type: ignore[union-attr]
        if limited and spec.seconds not in limited:
            allowed = ", ".join(map(str, limited))
            raise self._refuse(f"{model.label} makes {fields['resolution']} videos of {allowed} seconds only.")
        if spec.seed is not None and not (
            isinstance(spec.seed, int) and not isinstance(spec.seed, bool) and 0 <= spec.seed <= 2**32 - 1
        ):
            raise self._refuse("The seed must be an integer from 0 to 4294967295.")
        instance: dict[str, Any] = {"prompt": spec.prompt}
        if spec.image is not None:
            instance["image"] = self._image(spec)
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "durationSeconds": int(spec.seconds),
            "aspectRatio": fields["aspectRatio"],
            "resolution": fields["resolution"],
            "generateAudio": model.audio_for(spec.audio),
            "personGeneration": "allow_adult",  # the one value every region accepts (veo.md §1)
            "enhancePrompt": False,  # the tenant's prompt, verbatim
        }
        if spec.seed is not None:
            parameters["seed"] = spec.seed
        if spec.negative_prompt:
            parameters["negativePrompt"] = spec.negative_prompt
        storage_uri = self.credentials.storage_uri
        if storage_uri:
            reference = spec.client_reference or uuid.uuid4().hex
            parameters["storageUri"] = f"{storage_uri.rstrip('/')}/{reference}/"
        body: dict[str, Any] = {"instances": [instance], "parameters": parameters}
        if spec.client_reference:
            body["labels"] = {"mediarouter-generation": _LABEL_VALUE.sub("-", spec.client_reference.lower())[:63]}
        return body

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        model = "veo-3.1-generate-001"
        made_up = (
            f"projects/{self.project}/locations/{self.location}/publishers/google/models/{model}"
            f"/operations/{uuid.UUID(int=0)}"
        )
        url = self._model_url(model, "fetchPredictOperation")
        try:
            response = self._authorized("POST", url, json={"operationName": made_up})
        except ProviderError as exc:
            exc.uncertain = False  # a read
            raise
        body = http.read_json(response)
        if response.status_code == 404 and google_status(body, 404)[0] == "NOT_FOUND":
            return  # the token and the project work; the operation does not exist, as intended
        if not 200 <= response.status_code < 300:
            raise self._error(response, body)

    def submit(self, spec: GenerationSpec) -> SubmittedJob:
        model = self._require_catalog_model(spec)
        body = self.predict_body(model, spec)
        url = self._model_url(model.provider_model, "predictLongRunning")
        # a failed token exchange is never uncertain (nothing was sent to Vertex yet)
        response = self._authorized("POST", url, json=body)
        answer = http.read_json(response)
        if not 200 <= response.status_code < 300:
            raise self._error(response, answer, creating=True)
        name = _text(answer.get("name")) if isinstance(answer, dict) else ""
        if "/operations/" not in name:
            raise ProviderError(
                "Vertex accepted the request but returned no operation name.", code="bad_response", uncertain=True
            )
        return SubmittedJob(job_id=name, data={"model": model.provider_model})

    def _job_status(self, operation: object, reader: OperationReader) -> JobStatus:
        if not isinstance(operation, dict):
            raise ProviderError("Vertex answered the poll with a body that is not a JSON object.", code="bad_response")
        if not operation.get("done"):
            return JobStatus(state=JobState.IN_PROGRESS, raw_status="running")
        error = operation.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            name = _text(error.get("status")).upper() or (
                RPC_NAMES.get(code, "UNKNOWN") if isinstance(code, int) else "UNKNOWN"
            )
            ours = STATUSES.get(name, ("generation_failed", True, ""))[0]
            if ours in ("server_error", "rate_limited"):
                ours = "generation_failed"  # the operation itself is over: nothing to retry
            detail = self._scrub(_text(error.get("message")))
            return JobStatus(
                state=JobState.FAILED,
                raw_status=f"failed:{name}"[:40],
                error_code=ours,
                error_message=f"Veo could not generate the video ({name})"
                + (f": {detail.rstrip('.')}" if detail else "")
                + ". No charge.",
            )
        response = operation.get("response") if isinstance(operation.get("response"), dict) else {}
        videos = (
            [v for v in response.get("videos") or () if isinstance(v, dict)]
            if isinstance(response.get("videos"), list)
            else []
        )
        first_inline = next((v for v in videos if v.get("bytesBase64Encoded") == placeholder(0)), None)
        first_gcs = next((v for v in videos if _gcs_parts(_text(v.get("gcsUri")))), None)
        if first_gcs is not None:
            return JobStatus(
                state=JobState.COMPLETED,
                progress=100,
                raw_status="done",
                output_urls=(_text(first_gcs["gcsUri"]),),
                usage={"videos": len(videos), "delivery": "gcs"},
            )
        if first_inline is not None:
            return JobStatus(
                state=JobState.COMPLETED,
                progress=100,
                raw_status="done",
                usage={"videos": len(videos), "delivery": "inline", "inline_base64_chars": reader.encoded},
            )
        reasons = response.get("raiMediaFilteredReasons")
        reasons = [r for r in reasons if isinstance(r, str)] if isinstance(reasons, list) else []
        filtered = response.get("raiMediaFilteredCount")
        if reasons or (isinstance(filtered, int) and not isinstance(filtered, bool) and filtered > 0):
            detail = self._scrub("; ".join(reasons))
            return JobStatus(
                state=JobState.FAILED,
                raw_status="filtered",
                error_code="content_policy",
                error_message="Google's safety filter blocked this video"
                + (f": {detail}" if detail else "")
                + ". No charge.",
                usage={"rai_media_filtered_count": filtered if isinstance(filtered, int) else len(reasons)},
            )
        return JobStatus(
            state=JobState.FAILED,
            raw_status="done",
            error_code="no_output",
            error_message="Vertex finished the operation but returned no video. No charge.",
        )

    def _read_operation(self, response: requests.Response, reader: OperationReader) -> Iterator[bytes]:
        """Feed the streamed body to ``reader``, yielding decoded video bytes as they come."""
        try:
            for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK):
                if chunk:
                    piece = reader.feed(chunk)
                    if piece:
                        yield piece
        except requests.RequestException as exc:
            raise ProviderError(
                f"Reading Vertex's operation broke off after {reader.decoded} video bytes ({type(exc).__name__}).",
                code="download_interrupted",
            ) from None

    def status(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> JobStatus:
        response = self._fetch(job_id, stream=True)
        reader = OperationReader(decode=False)
        try:
            for _ in self._read_operation(response, reader):
                pass
        finally:
            response.close()
        return self._job_status(reader.result(), reader)

    def _storage_error(self, response: requests.Response) -> ProviderError:
        status = response.status_code
        if status == 404:
            return ProviderError(
                "The video is no longer in the Cloud Storage bucket (deleted before it was copied).",
                code="output_expired",
                permanent=True,
                status_code=status,
            )
        return self._error(response, http.read_json(response), what="Reading the video from Cloud Storage failed")

    def _gcs_download(self, uri: str) -> Download:
        parts = _gcs_parts(uri)
        if parts is None:
            raise ProviderError(f"{uri[:200]!r} is not a gs:// URI.", code="bad_response", permanent=True)
        bucket, name = parts
        storage = self.options.get("STORAGE_BASE_URL", "") or "https://storage.googleapis.com"
        url = f"{storage.rstrip('/')}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        allowed = (*self._private_hosts(), http.origin(storage))
        for attempt in (0, 1):
            token = self._token(fresh=attempt == 1)
            try:
                return http.stream_download(
                    url,
                    headers={"Authorization": f"Bearer {token}"},
                    params={"alt": "media"},
                    max_bytes=http.max_download_bytes(),
                    allowed_private_hosts=allowed,
                    on_error=self._storage_error,
                )
            except ProviderError as exc:
                if exc.status_code == 401 and attempt == 0:
                    self._forget_token()
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def download(
        self, job_id: str, *, url: str | None = None, variant: str = "video", job_data: Mapping[str, Any] | None = None
    ) -> Download:
        if variant != "video":
            raise ProviderError("Vertex makes no thumbnails.", code="unsupported", permanent=True)
        if url and url.startswith("gs://"):
            return self._gcs_download(url)
        response = self._fetch(job_id, stream=True)
        reader = OperationReader(decode=True, max_bytes=http.max_download_bytes())
        pieces = self._read_operation(response, reader)
        first = b""
        try:
            for piece in pieces:
                first = piece
                break
            else:  # the whole body was read without an inline video
                response.close()
                job = self._job_status(reader.result(), reader)
                if job.state is JobState.COMPLETED and job.output_urls:
                    return self._gcs_download(job.output_urls[0])
                raise ProviderError(
                    f"Vertex operation is {job.raw_status or 'not finished'}; nothing to download"
                    + (f" ({job.error_message})" if job.error_message else "")
                    + ".",
                    code="not_ready" if not job.state.is_terminal else (job.error_code or "no_output"),
                    permanent=job.state.is_terminal,
                )
        except BaseException:
            response.close()
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield first
                yield from pieces
                operation = reader.result()
                job = self._job_status(operation, reader)
                if job.state is not JobState.COMPLETED or not reader.first_complete:
                    raise ProviderError("Vertex's operation did not hold a complete inline video.", code="bad_response")
            finally:
                response.close()

        return Download(chunks=chunks(), content_type="video/mp4", _close=response.close)
