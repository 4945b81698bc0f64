"""The provider family: one interface, plain dataclasses in and out, one exception type.

Adapters never touch the database or tenant data. They are built with a decrypted key and a base
URL, speak one provider's wire contract, and raise only :class:`ProviderError`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar


class JobState(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class InputImage:
    """An input image for image-to-video: bytes with their content type, or a URL."""

    data: bytes | None = None
    content_type: str | None = None
    url: str | None = None

    def __repr__(self) -> str:  # never dump image bytes into logs
        size = len(self.data) if self.data is not None else 0
        return f"InputImage(content_type={self.content_type!r}, bytes={size}, url={self.url!r})"


@dataclass(frozen=True)
class GenerationSpec:
    """What to generate, in MediaRouter's provider-neutral terms.

    ``model`` is the provider's own model id (no ``provider/`` prefix). ``size`` is ``WxH`` in pixels
    (e.g. ``1280x720``); adapters map it to their aspect ratio / resolution / mode.
    ``client_reference`` is MediaRouter's generation id, passed to providers that can store it
    (Kling ``external_task_id``) so an uncertain submit can be looked up instead of repeated.
    """

    model: str
    prompt: str
    seconds: int
    size: str
    image: InputImage | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    remix_of: str | None = None  # provider job id of the source video, for remix
    client_reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # None: the model's default (see ModelInfo.audio_for); True/False where the model can switch it
    audio: bool | None = None
    # where the provider should push completion (adapters with supports_callbacks add it to the
    # submit in their own parameter); None: no callback, the engine polls
    callback_url: str | None = None


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    progress: int | None = None  # 0-100
    raw_status: str = ""
    output_urls: tuple[str, ...] = ()
    thumbnail_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    poll_after: float | None = None  # seconds, the provider's hint for the next poll
    # What the provider reports it bills for this job, as it reports it (fal billable units,
    # Replicate metrics.predict_time / cost, BytePlus usage tokens, Runway credits, Kling units).
    # Keys are the adapter's; ``cost_usd`` (a decimal string) when the provider states a price.
    usage: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmittedJob:
    """What ``submit``/``remix`` return when the provider hands back more than an id.

    ``data`` is adapter-owned and JSON-serialisable (fal's ``status_url``/``response_url``/
    ``cancel_url``); the engine stores it on the generation and passes it back unchanged as
    ``job_data=`` to ``status``, ``download`` and ``cancel``. Adapters whose job id says it all
    return a plain ``str``.
    """

    job_id: str
    data: Mapping[str, Any] = field(default_factory=dict)


def submitted(result: str | SubmittedJob) -> SubmittedJob:
    """Normalise what ``submit``/``remix`` returned."""
    return result if isinstance(result, SubmittedJob) else SubmittedJob(job_id=result)


@dataclass(frozen=True)
class PriceQuote:
    """What a supplier's price list says of one catalog entry, mapped onto our price tables.

    ``prices`` is the entry's full table at the supplier's current price, or None when the quote
    could not be mapped honestly (an unknown unit, another currency, an endpoint the list does not
    price); ``reason`` then says why, and the catalog price stays. ``unit`` and ``unit_price`` are
    the supplier's own figures, as fetched, for the record; ``catalog_unit_price`` is what our
    catalog (in code) charges for that same unit, for the diff."""

    model: Any  # the catalog ModelInfo the quote is for (its code prices are the baseline)
    unit: str = ""
    unit_price: Decimal | None = None
    catalog_unit_price: Decimal | None = None
    prices: Any = None  # a modelinfo.PriceTable, or None: not mapped
    reason: str = ""
    quoted: Mapping[str, str] = field(default_factory=dict)  # endpoint -> "0.4 USD per seconds"


@dataclass(frozen=True)
class KeyField:
    """One field of a provider's credential document, from which the key form, the keys API
    serializer, the Settings page and the admin are derived.

    ``secret`` fields are encrypted, never shown again and scrubbed from provider messages; a
    non-secret field (a location, a region host) may be shown in Settings. ``kind`` is ``text``,
    ``textarea`` (a pasted JSON document) or ``choice`` (one of ``choices``). ``mask`` says how a
    stored value is shown: ``last4`` (``…abcd``) or ``plain`` (non-secret values only).
    """

    name: str
    label: str
    secret: bool = True
    kind: str = "text"
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    min_length: int = 8
    max_length: int = 4096

    def __post_init__(self) -> None:
        assert self.kind in ("text", "textarea", "choice", "url"), self.kind
        assert self.kind != "choice" or self.choices, f"{self.name}: a choice field needs choices"


@dataclass(frozen=True)
class Download:
    """A streamed download. Iterate ``chunks`` once; call ``close()`` when done (or use ``with``)."""

    chunks: Iterator[bytes]
    content_type: str | None = None
    content_length: int | None = None
    _close: Any = None

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class CallbackDelivery:
    """A verified provider callback. The engine never sets a state from a callback's body: it reads
    the job's status through the adapter, as a poll would. ``job_id`` is the provider job the body
    names (checked against the generation the URL token belongs to); ``reply`` is a body to answer
    with (MiniMax's challenge echo), else the endpoint answers 200 with nothing."""

    job_id: str | None = None
    reply: Mapping[str, Any] | None = None


class CallbackRejected(Exception):
    """A callback that failed verification (bad or missing signature, stale timestamp)."""


class ProviderError(Exception):
    """The only exception an adapter raises.

    ``permanent`` errors (bad key, validation, moderation, balance exhausted) must not be retried;
    transient ones (429, 5xx, timeouts, connection errors) may be, after ``retry_after`` seconds
    when the provider said so. ``uncertain`` marks a request whose outcome is unknown (a timeout
    after the request was sent): the caller must reconcile, never blindly repeat it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "provider_error",
        permanent: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after
        self.status_code = status_code
        self.uncertain = uncertain

    @property
    def is_auth_error(self) -> bool:
        return self.code in ("invalid_api_key", "authentication_error", "permission_denied")

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.message!r}, code={self.code!r}, permanent={self.permanent}, "
            f"retry_after={self.retry_after}, status_code={self.status_code})"
        )


class Credentials:
    """A decrypted provider key: the fields of one credential document (any shape a provider
    declares with :class:`KeyField`). Read a field as an attribute (``credentials.api_key``;
    ``None`` when absent) or with :meth:`get`. ``repr`` never shows a value."""

    __slots__ = ("_values",)

    def __init__(self, **values: str | None) -> None:
        object.__setattr__(self, "_values", MappingProxyType({k: v for k, v in values.items() if v not in (None, "")}))

    def __getattr__(self, name: str) -> str | None:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._values.get(name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are read-only")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name, default)

    def names(self) -> frozenset[str]:
        return frozenset(self._values)

    def as_dict(self) -> dict[str, str]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and dict(self._values) == dict(other._values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        return "Credentials(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class ProviderSetting:
    """An operator setting of one provider, read from the environment by one rule:
    ``<SLUG>_<NAME>`` (``FAL_API_BASE_URL``), or the Django setting of that name when defined."""

    name: str
    default: str = ""
    help: str = ""


class VideoProvider:
    """Base class of every adapter. Subclasses set the class attributes and implement the methods."""

    slug: ClassVar[str]
    label: ClassVar[str]
    requires_key: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = False
    supports_remix: ClassVar[bool] = False
    supports_delete: ClassVar[bool] = False
    supports_thumbnail: ClassVar[bool] = False
    # find_by_reference works: an uncertain submit can be looked up instead of failed
    supports_lookup: ClassVar[bool] = False
    # the provider can push completion to ``spec.callback_url``; ``callback_verification`` says how
    # a delivery is proved: "signature" (verify_callback checks it) or "token" (unsigned: the
    # unguessable per-generation token in the URL is the only proof)
    supports_callbacks: ClassVar[bool] = False
    # fetch_prices works: the supplier publishes a price list an operator command can refresh the
    # catalog's prices from (``manage.py refresh_prices``)
    supports_price_lookup: ClassVar[bool] = False
    callback_verification: ClassVar[str] = "token"
    # "direct" (the model's maker) or "aggregator" (resells many makers' models): the router's
    # "direct first" policy reads it
    supplier_kind: ClassVar[str] = "direct"
    # Every credential field this provider knows, and the accepted shapes (a tuple of field
    # names each; a key must fill exactly one shape's required fields).
    key_fields: ClassVar[tuple[KeyField, ...]] = (KeyField("api_key", "API key"),)
    key_shapes: ClassVar[tuple[tuple[str, ...], ...]] = (("api_key",),)
    # The base URL: ``<SLUG>_BASE_URL`` (or one of ``base_url_aliases``, for names that predate
    # the rule, such as OPENAI_BASE_URL), else this default. Empty: the provider makes no calls.
    default_base_url: ClassVar[str] = ""
    base_url_aliases: ClassVar[tuple[str, ...]] = ()
    # Further operator settings, each read as ``<SLUG>_<NAME>`` (see ProviderSetting).
    extra_settings: ClassVar[tuple[ProviderSetting, ...]] = ()

    def __init__(
        self, credentials: Credentials | None, base_url: str, *, options: Mapping[str, str] | None = None
    ) -> None:
        self.credentials = credentials or Credentials()
        self.base_url = base_url.rstrip("/")
        # the values of ``extra_settings`` by name (registry.build fills them from the settings)
        self.options: Mapping[str, str] = MappingProxyType(dict(options or {}))
        # False when the base URL came from a tenant's key: its host then gets no private-address
        # exemption for downloads
        self.base_url_trusted = True

    def _private_hosts(self) -> tuple[str, ...]:
        """Hosts a download may reach although private: the operator's own configured base URL
        (an emulator, a gateway on the same network), never a tenant-supplied one."""
        from apps.providers import http

        return (http.origin(self.base_url),) if self.base_url_trusted else ()

    @classmethod
    def key_field(cls, name: str) -> KeyField | None:
        return next((f for f in cls.key_fields if f.name == name), None)

    @classmethod
    def secret_field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.key_fields if f.secret)

    def key_details_refresh(self) -> dict[str, str] | None:
        """Facts about what this key may use, checked with the provider when the key is validated
        and again daily, and kept with the key's non-secret details (the Gemini API: which video
        models the key lists). None: the provider has nothing to record."""
        return None

    @classmethod
    def offers(cls, model: Any, key_details: Mapping[str, str]) -> bool:
        """Whether this supplier offers ``model`` (a ModelInfo) to a key with these details, as
        the last ``key_details_refresh`` recorded them. True by default (and when never checked)."""
        return True

    @classmethod
    def serves_retired_models(cls, *, key_details: Mapping[str, str], base_url: str) -> bool:
        """Whether this supplier can still run a model its maker retired (past ``deprecated_on``):
        only through a compatible gateway (Sora: a key's own ``base_url``, or an operator's base
        URL that is not the retired official one). No by default."""
        return False

    @classmethod
    def check_credentials(cls, credentials: Credentials) -> dict[str, str]:
        """Adapter-specific checks of a key's fields before it is stored (a service-account
        JSON that does not parse, a region host that is not allowed): ``{field: message}``."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self.base_url!r}>"

    def validate_key(self) -> None:
        """A cheap authenticated call. Returns None when the key works, raises ProviderError."""
        raise NotImplementedError

    def submit(self, spec: GenerationSpec) -> str | SubmittedJob:
        """Create the job at the provider and return its job id (or a :class:`SubmittedJob`)."""
        raise NotImplementedError

    def status(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> JobStatus:
        raise NotImplementedError

    def download(
        self, job_id: str, *, url: str | None = None, variant: str = "video", job_data: Mapping[str, Any] | None = None
    ) -> Download:
        """Stream the finished output (``variant`` ``video`` or ``thumbnail``)."""
        raise NotImplementedError

    def _catalog_model(self, spec: GenerationSpec):
        """The catalog entry of ``spec.model`` for this provider, or None for an id the catalog
        does not know (sent upstream as is)."""
        from apps.providers import catalog

        return catalog.supplier_model(self.slug, spec.model)

    def _require_catalog_model(self, spec: GenerationSpec):
        """This supplier's catalog entry of ``spec.model``, or a permanent refusal before any
        request (for adapters whose wire mapping lives in the entry's ``extra``)."""
        model = self._catalog_model(spec)
        if model is None:
            raise ProviderError(
                f"{self.label} has no catalog entry for {spec.model!r}.", code="model_not_available", permanent=True
            )
        return model

    @staticmethod
    def _refuse(message: str) -> ProviderError:
        """A request the model cannot serve, refused before anything is sent (a field problem)."""
        return ProviderError(message, code="invalid_request", permanent=True)

    @staticmethod
    def _require_image_if_image_only(model, spec: GenerationSpec, hint: str = "") -> None:
        """Refuse, before any request, a text-only call to a model that needs an input image."""
        from apps.providers.modelinfo import TEXT_TO_VIDEO

        if spec.image is None and model is not None and TEXT_TO_VIDEO not in model.capabilities:
            raise ProviderError(
                f"{model.label} makes videos from an image only; add an input image{hint}.",
                code="invalid_request",
                permanent=True,
            )

    def _download_output(self, job_id: str, url: str | None, job_data: Mapping[str, Any] | None = None) -> Download:
        """For providers whose finished job lists output URLs (which expire): stream ``url``, or
        re-read the job for a fresh one. The provider's own host may be private (an emulator, a
        gateway on the same network); any other host must be public."""
        from apps.providers import http

        if url is None:
            job = self.status(job_id, job_data=job_data)
            if job.state is not JobState.COMPLETED or not job.output_urls:
                raise ProviderError(
                    f"{self.label} task {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                )
            url = job.output_urls[0]
        return http.stream_download(
            url, max_bytes=http.max_download_bytes(), allowed_private_hosts=self._private_hosts()
        )

    def verify_callback(
        self, *, headers: Mapping[str, str], body: bytes, secret: str | None = None
    ) -> CallbackDelivery:
        """Check a callback delivery; raise :class:`CallbackRejected` when it is not genuine.
        ``secret`` is what :meth:`callback_secret` returned for this key (stored encrypted)."""
        raise CallbackRejected(f"{self.label} does not send callbacks.")

    def callback_secret(self) -> str | None:
        """Fetch the key's callback signing secret from the provider (Replicate), once per key;
        None when the provider needs none."""
        return None

    def fetch_prices(self, models: Sequence[Any]) -> list[PriceQuote]:
        """The supplier's current prices of these catalog entries (its own), one
        :class:`PriceQuote` each, in order (with ``supports_price_lookup``). Raises ProviderError
        when the price list cannot be read (a refused key, an outage): nothing is half-known."""
        raise ProviderError("This provider publishes no price list.", code="unsupported", permanent=True)

    def find_by_reference(self, client_reference: str) -> str | None:
        """Look up a job by MediaRouter's reference after an uncertain submit; None if absent."""
        return None

    def cancel(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> None:
        raise ProviderError("This provider cannot cancel jobs.", code="unsupported", permanent=True)

    def remix(self, job_id: str, spec: GenerationSpec) -> str | SubmittedJob:
        raise ProviderError("This provider cannot remix videos.", code="unsupported", permanent=True)

    def delete(self, job_id: str) -> None:
        raise ProviderError("This provider cannot delete jobs.", code="unsupported", permanent=True)


__all__ = [
    "CallbackDelivery",
    "CallbackRejected",
    "Credentials",
    "Download",
    "GenerationSpec",
    "InputImage",
    "JobState",
    "JobStatus",
    "KeyField",
    "PriceQuote",
    "ProviderError",
    "ProviderSetting",
    "SubmittedJob",
    "VideoProvider",
    "submitted",
]
