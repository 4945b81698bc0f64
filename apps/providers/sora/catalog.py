"""The catalog entries of OpenAI Sora 2 (docs/providers/sora.md: sizes, seconds and prices).

Data only: one :class:`ModelInfo` per model this supplier serves."""

from __future__ import annotations

from datetime import date

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, REMIX, TEXT_TO_VIDEO, ModelInfo, flat

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
    "OpenAI-compatible gateway: a Sora key with its own base URL, or OPENAI_BASE_URL set by the operator."
)


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="sora-2",
        provider="sora",
        label="Sora 2",
        family="Sora 2",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, REMIX, AUDIO}),
        seconds=_SORA_SECONDS,
        sizes=_SORA_720,
        default_seconds=4,
        default_size="720x1280",
        price_per_second=flat(_SORA_720, "0.10"),
        price_source_date=_SORA_PRICES,
        price_version="sora-2026-08-02",
        deprecated_on=date(2026, 9, 24),
        replacement="veo-3.1",
        shutdown_note=_SORA_SHUTDOWN,
    ),
    ModelInfo(
        id="sora-2-pro",
        provider="sora",
        label="Sora 2 Pro",
        family="Sora 2",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, REMIX, AUDIO}),
        seconds=_SORA_SECONDS,
        sizes=_SORA_720 + _SORA_PRO_TALL + _SORA_PRO_1080,
        default_seconds=4,
        default_size="720x1280",
        price_per_second={
            **flat(_SORA_720, "0.30"),
            **flat(_SORA_PRO_TALL, "0.50"),
            **flat(_SORA_PRO_1080, "0.70"),
        },
        price_source_date=_SORA_PRICES,
        price_version="sora-2026-08-02",
        deprecated_on=date(2026, 9, 24),
        replacement="veo-3.1",
        shutdown_note=_SORA_SHUTDOWN,
    ),
)
