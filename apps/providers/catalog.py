"""The model catalog: every model MediaRouter can route to, as data.

It drives validation (before anything is submitted), the playground form, ``GET /v1/models`` and
the cost estimate. Sizes are ``WxH`` at MediaRouter's level for every provider; adapters map them to
the provider's own ratio/aspect ratio/mode.

Prices are USD per second of output, per size, copied from ``reference/providers/*.md`` (the date
of the source is ``price_source_date``; ``price_version`` is recorded on every ledger entry).
Estimates are exact Decimals quantized to 0.0001 USD (a hundredth of a cent), half-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from . import registry

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
REMIX = "remix"
AUDIO = "audio"
CAPABILITIES = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, REMIX, AUDIO})

COST_QUANTUM = Decimal("0.0001")
SEED_MAX = 2**32 - 1
NEGATIVE_PROMPT_MAX = 2500


class UnknownModel(ValueError):
    """No such model in the catalog (or its provider is disabled)."""


@dataclass(frozen=True)
class ModelInfo:
    id: str  # bare catalog id, unique across providers ("sora-2", "gen4.5")
    provider: str  # registry slug
    label: str
    capabilities: frozenset[str]
    seconds: tuple[int, ...]
    sizes: tuple[str, ...]  # "WxH"; the union over capabilities
    default_seconds: int
    default_size: str
    price_per_second: Mapping[str, Decimal] = field(hash=False)  # size -> USD per second
    price_source_date: date
    price_version: str
    deprecated_on: date | None = None
    shutdown_note: str = ""
    supports_seed: bool = False
    supports_negative_prompt: bool = False
    provider_model: str = ""  # the id sent upstream; defaults to ``id``
    # sizes allowed without an input image, when narrower than ``sizes`` (Runway gen4.5)
    text_to_video_sizes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.provider_model:
            object.__setattr__(self, "provider_model", self.id)
        object.__setattr__(self, "price_per_second", MappingProxyType(dict(self.price_per_second)))
        assert self.capabilities <= CAPABILITIES, self.capabilities
        assert self.default_seconds in self.seconds and self.default_size in self.sizes, self.id
        assert set(self.price_per_second) == set(self.sizes), f"{self.id}: a price for every size"

    @property
    def qualified_id(self) -> str:
        return f"{self.provider}/{self.id}"

    @property
    def deprecated(self) -> bool:
        return self.deprecated_on is not None

    def allowed_sizes(self, *, has_image: bool) -> tuple[str, ...]:
        if not has_image and self.text_to_video_sizes is not None:
            return self.text_to_video_sizes
        return self.sizes


def _flat(sizes: tuple[str, ...], usd_per_second: str) -> dict[str, Decimal]:
    return {size: Decimal(usd_per_second) for size in sizes}


# --- OpenAI Sora 2 (openai-videos.md §8 sizes and seconds, §9 prices) --------------------------
# Prices: OpenAI's pricing page as archived on 2026-08-02; seconds 16/20 and the 1080p pro sizes
# from the 2026-03-12 expansion in the video guide.
_SORA_SECONDS = (4, 8, 12, 16, 20)
_SORA_720 = ("720x1280", "1280x720")
_SORA_PRO_TALL = ("1024x1792", "1792x1024")
_SORA_PRO_1080 = ("1080x1920", "1920x1080")
_SORA_PRICES = date(2026, 8, 2)
_SORA_SHUTDOWN = (
    "OpenAI shut the Sora 2 API down on 2026-09-24. This model only works through an "
    "OpenAI-compatible gateway configured with OPENAI_BASE_URL."
)

# --- Runway (runway.md §3-§4 ratios and durations, §10 prices: runwayml/skills 2026-04-21) -----
_RUNWAY_SIX = ("1280x720", "720x1280", "1104x832", "832x1104", "960x960", "1584x672")
_RUNWAY_2_10 = tuple(range(2, 11))
_RUNWAY_PRICES = date(2026, 4, 21)

# --- Kling (kling.md §3 modes and durations, §10 unit prices at $0.14/unit, 2026-08-13) --------
_KLING_STD = ("1280x720", "720x1280", "720x720")  # mode std (720p); aspect 16:9, 9:16, 1:1
_KLING_PRO = ("1920x1080", "1080x1920", "1080x1080")  # mode pro (1080p)
_KLING_PRICES = date(2026, 8, 13)


def _kling_prices(std: str, pro: str) -> dict[str, Decimal]:
    return {**_flat(_KLING_STD, std), **_flat(_KLING_PRO, pro)}


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="sora-2",
        provider="sora",
        label="Sora 2",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, REMIX, AUDIO}),
        seconds=_SORA_SECONDS,
        sizes=_SORA_720,
        default_seconds=4,
        default_size="720x1280",
        price_per_second=_flat(_SORA_720, "0.10"),
        price_source_date=_SORA_PRICES,
        price_version="sora-2026-08-02",
        deprecated_on=date(2026, 9, 24),
        shutdown_note=_SORA_SHUTDOWN,
    ),
    ModelInfo(
        id="sora-2-pro",
        provider="sora",
        label="Sora 2 Pro",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, REMIX, AUDIO}),
        seconds=_SORA_SECONDS,
        sizes=_SORA_720 + _SORA_PRO_TALL + _SORA_PRO_1080,
        default_seconds=4,
        default_size="720x1280",
        price_per_second={
            **_flat(_SORA_720, "0.30"),
            **_flat(_SORA_PRO_TALL, "0.50"),
            **_flat(_SORA_PRO_1080, "0.70"),
        },
        price_source_date=_SORA_PRICES,
        price_version="sora-2026-08-02",
        deprecated_on=date(2026, 9, 24),
        shutdown_note=_SORA_SHUTDOWN,
    ),
    ModelInfo(
        id="gen4.5",
        provider="runway",
        label="Runway Gen-4.5",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}),
        seconds=_RUNWAY_2_10,
        sizes=_RUNWAY_SIX,
        text_to_video_sizes=("1280x720", "720x1280"),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_flat(_RUNWAY_SIX, "0.12"),  # 12 credits/s at $0.01
        price_source_date=_RUNWAY_PRICES,
        price_version="runway-2026-04-21",
        supports_seed=True,
    ),
    ModelInfo(
        id="gen4_turbo",
        provider="runway",
        label="Runway Gen-4 Turbo (image to video)",
        capabilities=frozenset({IMAGE_TO_VIDEO}),
        seconds=_RUNWAY_2_10,
        sizes=_RUNWAY_SIX,
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_flat(_RUNWAY_SIX, "0.05"),  # 5 credits/s
        price_source_date=_RUNWAY_PRICES,
        price_version="runway-2026-04-21",
        supports_seed=True,
    ),
    ModelInfo(
        id="gen3a_turbo",
        provider="runway",
        label="Runway Gen-3 Alpha Turbo (legacy, image to video)",
        capabilities=frozenset({IMAGE_TO_VIDEO}),
        seconds=(5, 10),
        sizes=("1280x768", "768x1280"),
        default_seconds=5,
        default_size="1280x768",
        price_per_second=_flat(("1280x768", "768x1280"), "0.05"),  # third-party, 2026-04-02
        price_source_date=date(2026, 4, 2),
        price_version="runway-2026-04-02",
        deprecated_on=date(2026, 6, 10),
        shutdown_note=(
            "Removed from Runway's SDK on 2026-06-10 (successor: gen4.5); the API may stop accepting it at any time."
        ),
        supports_seed=True,
    ),
    ModelInfo(
        id="kling-v1-6",
        provider="kling",
        label="Kling 1.6",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}),
        seconds=(5, 10),
        sizes=_KLING_STD + _KLING_PRO,
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_kling_prices("0.056", "0.098"),  # 0.4 / 0.7 units per second
        price_source_date=_KLING_PRICES,
        price_version="kling-2026-08-13",
        supports_negative_prompt=True,
    ),
    ModelInfo(
        id="kling-v2-1",
        provider="kling",
        label="Kling 2.1 (image to video)",
        capabilities=frozenset({IMAGE_TO_VIDEO}),
        seconds=(5, 10),
        sizes=_KLING_STD + _KLING_PRO,
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_kling_prices("0.056", "0.098"),  # 0.4 / 0.7 units per second
        price_source_date=_KLING_PRICES,
        price_version="kling-2026-08-13",
        supports_negative_prompt=True,
    ),
    ModelInfo(
        id="kling-v2-5-turbo",
        provider="kling",
        label="Kling 2.5 Turbo",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}),
        seconds=(5, 10),
        sizes=_KLING_STD + _KLING_PRO,
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_kling_prices("0.042", "0.07"),  # 0.3 / 0.5 units per second
        price_source_date=_KLING_PRICES,
        price_version="kling-2026-08-13",
        supports_negative_prompt=True,
    ),
    ModelInfo(
        id="kling-v2-6",
        provider="kling",
        label="Kling 2.6 (silent)",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}),
        seconds=(5, 10),
        sizes=_KLING_STD + _KLING_PRO,
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_kling_prices("0.042", "0.07"),  # silent: 0.3 / 0.5 units per second
        price_source_date=_KLING_PRICES,
        price_version="kling-2026-08-13",
        supports_negative_prompt=True,
    ),
    ModelInfo(
        id="sandbox-video",
        provider="sandbox",
        label="Sandbox (local test pattern, free)",
        capabilities=frozenset({TEXT_TO_VIDEO, REMIX, AUDIO}),
        seconds=(2, 4, 8, 12),
        sizes=("1280x720", "720x1280", "960x960"),
        default_seconds=4,
        default_size="1280x720",
        price_per_second=_flat(("1280x720", "720x1280", "960x960"), "0"),
        price_source_date=date(2026, 11, 1),
        price_version="sandbox-free",
    ),
)

_BY_ID: dict[str, ModelInfo] = {m.id: m for m in MODELS}
assert len(_BY_ID) == len(MODELS), "model ids must be unique across providers"


def get_model(model_id: str) -> ModelInfo:
    """Look a model up by bare id (``sora-2``) or ``provider/model`` (``openai/sora-2``).

    Raises :class:`UnknownModel` for unknown ids and for a prefix naming another provider. Does
    not check whether the provider is enabled (see :func:`validate_request`).
    """
    prefix, _, bare = model_id.strip().rpartition("/")
    model = _BY_ID.get(bare)
    if model is None:
        raise UnknownModel(f"Unknown model {model_id!r}.")
    if prefix:
        try:
            slug = registry.canonical_slug(prefix)
        except registry.UnknownProvider:
            raise UnknownModel(f"Unknown model {model_id!r}: no provider {prefix!r}.") from None
        if slug != model.provider:
            raise UnknownModel(f"Unknown model {model_id!r}: {bare!r} is a {model.provider} model.")
    return model


def list_models(*, providers: list[str] | tuple[str, ...] | None = None) -> list[ModelInfo]:
    """Models of enabled providers, in catalog order, optionally only the given provider slugs."""
    enabled = set(registry.enabled_slugs())
    wanted = {registry.canonical_slug(p) for p in providers} if providers is not None else enabled
    return [m for m in MODELS if m.provider in enabled and m.provider in wanted]


def _choices(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


def validate_request(
    *,
    model_id: str,
    seconds: int | None,
    size: str | None,
    has_image: bool,
    is_remix: bool = False,
    seed: int | None = None,
    negative_prompt: str | None = None,
) -> dict[str, str]:
    """Field-level errors for a generation request, keyed by request field; ``{}`` when valid.

    ``seconds``/``size`` of None mean "not given" (the model's default applies).
    """
    try:
        model = get_model(model_id)
    except UnknownModel as exc:
        return {"model": str(exc)}
    if not registry.is_enabled(model.provider):
        return {"model": f"Model {model_id!r} is not available: its provider is disabled."}

    errors: dict[str, str] = {}
    if is_remix:
        if REMIX not in model.capabilities:
            errors["model"] = f"{model.label} cannot remix videos."
    elif has_image and IMAGE_TO_VIDEO not in model.capabilities:
        errors["input_reference"] = f"{model.label} does not accept an input image (text to video only)."
    elif not has_image and TEXT_TO_VIDEO not in model.capabilities:
        errors["input_reference"] = f"{model.label} needs an input image (image to video only)."

    if seconds is not None and seconds not in model.seconds:
        errors["seconds"] = f"{model.label} supports durations of {_choices(model.seconds)} seconds."
    if size is not None:
        allowed = model.allowed_sizes(has_image=has_image or is_remix)
        if size not in allowed:
            what = "without an input image " if allowed != model.sizes else ""
            errors["size"] = f"{model.label} supports sizes {what}{_choices(allowed)}."
    if seed is not None:
        if not model.supports_seed:
            errors["seed"] = f"{model.label} does not take a seed."
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            errors["seed"] = f"The seed must be an integer from 0 to {SEED_MAX}."
    if negative_prompt:
        if not model.supports_negative_prompt:
            errors["negative_prompt"] = f"{model.label} does not take a negative prompt."
        elif len(negative_prompt) > NEGATIVE_PROMPT_MAX:
            errors["negative_prompt"] = f"The negative prompt is limited to {NEGATIVE_PROMPT_MAX} characters."
    return errors


def estimate_cost(model: ModelInfo, *, seconds: int, size: str) -> Decimal:
    """USD for ``seconds`` of ``size`` output: exact, quantized to 0.0001 (half-up)."""
    try:
        per_second = model.price_per_second[size]
    except KeyError:
        raise ValueError(f"{model.label} has no price for size {size!r}.") from None
    return (per_second * Decimal(seconds)).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


__all__ = [
    "AUDIO",
    "IMAGE_TO_VIDEO",
    "MODELS",
    "REMIX",
    "TEXT_TO_VIDEO",
    "ModelInfo",
    "UnknownModel",
    "estimate_cost",
    "get_model",
    "list_models",
    "validate_request",
]
