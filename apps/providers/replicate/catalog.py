"""The catalog entries of Replicate (reference/providers/replicate.md §9: official models, their
inputs and their per-second prices).

Data only: one :class:`ModelInfo` per model this supplier serves. ``provider_model`` is the official
model's ``owner/name`` (created with ``POST /v1/models/{owner}/{name}/predictions``, no version id).
``extra`` is the adapter's per-model input mapping (Replicate's ``input`` object differs per model,
replicate.md §10 quirk 8):

- ``size_inputs``: ``WxH`` -> the input fields that produce that size (aspect ratio and
  ``resolution``, or Kling's ``mode``);
- ``image_field``: the first-frame input (None: no image input is mapped for this model);
- ``omit_with_image``: inputs left out when a first frame is given (the frame sets them);
- ``audio_field``: the audio switch (None: the model makes no sound);
- ``data_uri``: whether a ``data:`` URI may stand in for an image URL (replicate.md §1: every file
  input takes an https URL or a data URI; the docs suggest data URIs only up to 256 KB, see the
  adapter's ``DATA_URI_MAX_BYTES`` setting);
- ``seconds_by_resolution``: durations a resolution is limited to, when narrower than ``seconds``.

``duration`` is an integer on every Replicate model (quirk 8). Prices are not returned by the API
(§9); the figures and their sources are given per model below.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo

_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "4k": 2160}


def _dims(ratio: str, resolution: str) -> str:
    """``WxH`` of an aspect ratio at a resolution (the short side; the long side rounded to even)."""
    a, b = (int(x) for x in ratio.split(":"))
    short = _SHORT_SIDE[resolution]
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    width, height = (long, short) if a >= b else (short, long)
    return f"{width}x{height}"


def _size_inputs(ratios: tuple[str, ...], resolutions: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``WxH`` -> input fields, for every aspect ratio at every resolution (in that order)."""
    table: dict[str, dict[str, str]] = {}
    for resolution, fields in resolutions.items():
        for ratio in ratios:
            table[_dims(ratio, resolution)] = {"aspect_ratio": ratio, **fields}
    return table


def _prices(size_inputs: dict[str, dict[str, str]], key: str, usd: dict[str, str]) -> dict[str, Decimal]:
    """Per-second price of every size, from the price of its ``key`` value (resolution or mode)."""
    return {size: Decimal(usd[fields[key]]) for size, fields in size_inputs.items()}


# --- google/veo-3.1 and google/veo-3.1-fast (§9.1) ---------------------------------------------
# Prices: not captured on Replicate (§9.1 "expect Google list"); Google's list price per second
# (veo.md §8, researched 2026-12-01): Veo 3.1 $0.20 silent / $0.40 with audio, Fast $0.10 / $0.15.
# 1080p only at 8 s: Google's own limit for the model (veo.md §9 quirk 6), refused before submitting.
_VEO_SIZES = _size_inputs(("16:9", "9:16"), {"720p": {"resolution": "720p"}, "1080p": {"resolution": "1080p"}})
_VEO_EXTRA = {
    "size_inputs": _VEO_SIZES,
    "image_field": "image",
    "omit_with_image": (),
    "audio_field": "generate_audio",
    "data_uri": True,
    "seconds_by_resolution": {"1080p": (8,)},
}
_VEO_PRICES = date(2026, 12, 1)

# --- kwaivgi/kling-v3-video (§9.2) ------------------------------------------------------------
# Prices (third-party, autoshow-cli 2026-08/09): $0.168/s at 720p (mode standard), $0.224/s at
# 1080p (pro), $0.42/s at 4K; the source names no audio surcharge.
_KLING_MODES = {"720p": {"mode": "standard"}, "1080p": {"mode": "pro"}, "4k": {"mode": "4k"}}
_KLING_SIZES = _size_inputs(("16:9", "9:16", "1:1"), _KLING_MODES)
_KLING_EXTRA = {
    "size_inputs": _KLING_SIZES,
    "image_field": "start_image",
    "omit_with_image": ("aspect_ratio",),  # §9.2: omit aspect_ratio when a start image is given
    "audio_field": "generate_audio",
    "data_uri": True,
    "seconds_by_resolution": {},
}

# --- bytedance/seedance-2.0 (§9.3) ------------------------------------------------------------
# Prices (third-party, autoshow-cli 2026-08/09): $0.08/s at 480p, $0.18/s at 720p, $0.45/s at
# 1080p; the same with or without audio.
_SEEDANCE_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
_SEEDANCE_SIZES = _size_inputs(
    _SEEDANCE_RATIOS,
    {"480p": {"resolution": "480p"}, "720p": {"resolution": "720p"}, "1080p": {"resolution": "1080p"}},
)
_SEEDANCE_EXTRA = {
    "size_inputs": _SEEDANCE_SIZES,
    "image_field": "image",
    "omit_with_image": (),
    "audio_field": "generate_audio",
    "data_uri": True,
    "seconds_by_resolution": {},
}

# --- alibaba/wan-3 (§9.4) ---------------------------------------------------------------------
# Prices (third-party, autoshow-cli 2026-08/09): $0.05 / $0.10 / $0.20 per s at 480p/720p/1080p.
# Text to video only here: §9.4 lists an optional first-frame image but not its input name, so no
# image is sent rather than a guessed field. The contract lists "aspect_ratio incl. adaptive"
# without the full set: the three ratios every Wan release takes are offered.
_WAN_SIZES = _size_inputs(
    ("16:9", "9:16", "1:1"),
    {"480p": {"resolution": "480p"}, "720p": {"resolution": "720p"}, "1080p": {"resolution": "1080p"}},
)
_WAN_EXTRA = {
    "size_inputs": _WAN_SIZES,
    "image_field": None,
    "omit_with_image": (),
    "audio_field": None,
    "data_uri": True,
    "seconds_by_resolution": {},
}

_THIRD_PARTY_PRICES = date(2026, 9, 1)  # "third-party observations, 2026-08/09" (§9)


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="veo-3.1",
        provider="replicate",
        label="Veo 3.1",
        family="Veo 3.1",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=(4, 6, 8),
        sizes=tuple(_VEO_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_VEO_SIZES, "resolution", {"720p": "0.20", "1080p": "0.20"}),
        price_per_second_audio=_prices(_VEO_SIZES, "resolution", {"720p": "0.40", "1080p": "0.40"}),
        audio_toggle=True,
        audio_default=True,  # generate_audio defaults to true (§9.1)
        price_source_date=_VEO_PRICES,
        price_version="replicate-veo-google-list-2026-12-01",
        supports_seed=True,
        supports_negative_prompt=True,
        provider_model="google/veo-3.1",
        extra=_VEO_EXTRA,
    ),
    ModelInfo(
        id="veo-3.1-fast",
        provider="replicate",
        label="Veo 3.1 Fast",
        family="Veo 3.1",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=(4, 6, 8),
        sizes=tuple(_VEO_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_VEO_SIZES, "resolution", {"720p": "0.10", "1080p": "0.10"}),
        price_per_second_audio=_prices(_VEO_SIZES, "resolution", {"720p": "0.15", "1080p": "0.15"}),
        audio_toggle=True,
        audio_default=True,
        price_source_date=_VEO_PRICES,
        price_version="replicate-veo-google-list-2026-12-01",
        supports_seed=True,
        supports_negative_prompt=True,
        provider_model="google/veo-3.1-fast",
        extra=_VEO_EXTRA,
    ),
    ModelInfo(
        id="kling-v3",
        provider="replicate",
        label="Kling 3.0",
        family="Kling 3.0",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=tuple(range(3, 16)),
        sizes=tuple(_KLING_SIZES),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_prices(_KLING_SIZES, "mode", {"standard": "0.168", "pro": "0.224", "4k": "0.42"}),
        audio_toggle=True,
        audio_default=True,
        price_source_date=_THIRD_PARTY_PRICES,
        price_version="replicate-third-party-2026-09",
        supports_seed=True,
        supports_negative_prompt=True,
        provider_model="kwaivgi/kling-v3-video",
        extra=_KLING_EXTRA,
    ),
    ModelInfo(
        id="seedance-2.0",
        provider="replicate",
        label="Seedance 2.0",
        family="Seedance 2.0",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=tuple(range(1, 16)),
        sizes=tuple(_SEEDANCE_SIZES),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_prices(_SEEDANCE_SIZES, "resolution", {"480p": "0.08", "720p": "0.18", "1080p": "0.45"}),
        audio_toggle=True,
        audio_default=True,  # generate_audio defaults to true (§9.3)
        price_source_date=_THIRD_PARTY_PRICES,
        price_version="replicate-third-party-2026-09",
        supports_seed=True,
        supports_negative_prompt=False,  # §9.3 lists no negative prompt
        provider_model="bytedance/seedance-2.0",
        extra=_SEEDANCE_EXTRA,
    ),
    ModelInfo(
        id="wan-3",
        provider="replicate",
        label="Wan 3.0 (text to video)",
        family="Wan 3",
        capabilities=frozenset({TEXT_TO_VIDEO}),
        seconds=tuple(range(2, 31)),
        sizes=tuple(_WAN_SIZES),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_prices(_WAN_SIZES, "resolution", {"480p": "0.05", "720p": "0.10", "1080p": "0.20"}),
        price_source_date=_THIRD_PARTY_PRICES,
        price_version="replicate-third-party-2026-09",
        supports_seed=True,
        supports_negative_prompt=True,
        provider_model="alibaba/wan-3",
        extra=_WAN_EXTRA,
    ),
)
