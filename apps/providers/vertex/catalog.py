"""The catalog entries of Veo on Vertex AI (reference/providers/veo.md §0, §1, §8; docs/providers/vertex.md).

Data only. ``provider_model`` is the Vertex publisher model id (``veo-3.1-generate-001``); ``extra``
is the adapter's mapping:

- ``sizes``: MediaRouter's ``WxH`` -> ``aspectRatio`` (``16:9`` | ``9:16``) and ``resolution``
  (``720p`` | ``1080p`` | ``4k``), the only shapes Veo 3.1 makes (quirk 6);
- ``seconds_by_resolution``: 1080p and 4k are made at 8 s only (third-party, §1), refused before
  submitting;
- ``preview``: the model is a preview on Vertex (Lite).

Prices: Google's list price per second of output (§8), with audio and silent (Vertex takes
``generateAudio: false``, so silent is cheaper and ``audio_toggle`` is on). The reference was
researched 2026-12-01 and gives no page date, hence ``price_source_date`` 2026-12-01. Filtered
outputs are not billed. Fast and Lite have no captured 4k price, so 4k is not offered on them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo

PRICE_DATE = date(2026, 12, 1)
PRICE_VERSION = "vertex-2026-12-01"
T2V_I2V_AUDIO = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO})

_SIZES: dict[str, dict[str, str]] = {
    "1280x720": {"aspectRatio": "16:9", "resolution": "720p"},
    "720x1280": {"aspectRatio": "9:16", "resolution": "720p"},
    "1920x1080": {"aspectRatio": "16:9", "resolution": "1080p"},
    "1080x1920": {"aspectRatio": "9:16", "resolution": "1080p"},
    "3840x2160": {"aspectRatio": "16:9", "resolution": "4k"},
    "2160x3840": {"aspectRatio": "9:16", "resolution": "4k"},
}
_HD_SIZES = {size: fields for size, fields in _SIZES.items() if fields["resolution"] != "4k"}
_EIGHT_SECONDS_ONLY = {"1080p": (8,), "4k": (8,)}


def _prices(sizes: dict[str, dict[str, str]], by_resolution: dict[str, str]) -> dict[str, Decimal]:
    return {size: Decimal(by_resolution[fields["resolution"]]) for size, fields in sizes.items()}


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="veo-3.1",
        provider="vertex",
        label="Veo 3.1 (Vertex AI)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_SIZES, {"720p": "0.20", "1080p": "0.20", "4k": "0.40"}),
        price_per_second_audio=_prices(_SIZES, {"720p": "0.40", "1080p": "0.40", "4k": "0.60"}),
        audio_toggle=True,
        audio_default=True,
        supports_seed=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="veo-3.1-generate-001",
        extra={"sizes": _SIZES, "seconds_by_resolution": _EIGHT_SECONDS_ONLY, "preview": False},
    ),
    ModelInfo(
        id="veo-3.1-fast",
        provider="vertex",
        label="Veo 3.1 Fast (Vertex AI)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_HD_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_HD_SIZES, {"720p": "0.10", "1080p": "0.10"}),
        price_per_second_audio=_prices(_HD_SIZES, {"720p": "0.15", "1080p": "0.15"}),
        audio_toggle=True,
        audio_default=True,
        supports_seed=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="veo-3.1-fast-generate-001",
        extra={"sizes": _HD_SIZES, "seconds_by_resolution": _EIGHT_SECONDS_ONLY, "preview": False},
    ),
    ModelInfo(
        id="veo-3.1-lite",
        provider="vertex",
        label="Veo 3.1 Lite (Vertex AI, preview)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_HD_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_HD_SIZES, {"720p": "0.03", "1080p": "0.05"}),
        price_per_second_audio=_prices(_HD_SIZES, {"720p": "0.05", "1080p": "0.08"}),
        audio_toggle=True,
        audio_default=True,
        supports_seed=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="veo-3.1-lite-generate-001",
        extra={"sizes": _HD_SIZES, "seconds_by_resolution": _EIGHT_SECONDS_ONLY, "preview": True},
    ),
)
