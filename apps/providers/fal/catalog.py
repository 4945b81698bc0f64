"""The catalog entries of fal.ai (reference/providers/fal.md §12 inputs, §12-§13 prices).

Data only: one :class:`ModelInfo` per model this supplier serves. Every fal endpoint speaks the
same queue protocol; what differs per model is its input JSON, which the adapter builds from the
``extra`` mapping of each entry:

- ``endpoints``: the endpoint id per mode, ``t2v`` (text to video) and ``i2v`` (image to video);
  ``{tier}`` in an id is replaced by the size's tier (Kling ``standard``/``pro``);
- ``sizes``: MediaRouter's ``WxH`` -> ``aspect_ratio`` / ``resolution`` / ``tier`` sent upstream
  (None: the field is not sent for that size);
- ``aspect_ratio_modes``: the modes whose endpoint takes ``aspect_ratio`` (on the others the
  output follows the input image's ratio);
- ``duration``: how ``duration`` is written: ``suffix_s`` (``"8s"``), ``string`` (``"5"``) or
  ``integer`` (``5``); ``no_duration_tiers``: tiers whose endpoint has no duration field;
- ``image_field``: the start-image input (``image_url``, Kling v3 ``start_image_url``);
  ``data_uri``: whether a ``data:`` URI is accepted there (else a public https URL is needed);
- ``audio_field``: the audio switch (``generate_audio``), for models that have one;
- ``fixed``: fields always sent per mode (Veo ``auto_fix: false``, quirk 10);
- ``i2v_seconds``: durations allowed with an input image when narrower than ``seconds``;
  ``unavailable``: ``(seconds, size)`` pairs the model cannot make (refused before submitting);
- ``seed_max``: the largest seed the endpoint takes, when below the catalog's limit;
- ``price_reference``: which cell of our table fal's single unit price for one endpoint is
  (``endpoint``, ``unit`` ``second`` or ``video``, ``size``, ``audio``; ``seconds`` for per-clip
  prices), so ``manage.py refresh_prices`` can scale the table to fal's current price
  (``apps/providers/fal/pricing.py``); absent where one figure cannot stand for the table;
- ``billing``: how fal bills the model (documentation; fal reports the units it billed in the
  ``x-fal-billable-units`` header of the result, recorded in ``JobStatus.usage``).

Prices: the fal model pages as captured for the contract (undated 2026 pages, researched
2026-12-01), hence ``price_source_date`` 2026-12-01.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo, flat

PRICE_DATE = date(2026, 12, 1)
PRICE_VERSION = "fal-2026-12-01"
T2V_I2V = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO})
T2V_I2V_AUDIO = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO})
BOTH_MODES = ("t2v", "i2v")
T2V_ONLY = ("t2v",)


def _size(aspect_ratio: str | None, resolution: str | None = None, tier: str | None = None) -> dict[str, str | None]:
    return {"aspect_ratio": aspect_ratio, "resolution": resolution, "tier": tier}


def _landscape_portrait_square(
    resolution: str | None, landscape: str, portrait: str, square: str | None = None, *, tier: str | None = None
) -> dict[str, dict[str, str | None]]:
    table = {landscape: _size("16:9", resolution, tier), portrait: _size("9:16", resolution, tier)}
    if square is not None:
        table[square] = _size("1:1", resolution, tier)
    return table


def _prices(sizes: dict[str, dict[str, str | None]], by_resolution: dict[str | None, str]) -> dict[str, Decimal]:
    """USD per second for every size, from a price per resolution (or tier)."""
    return {size: Decimal(by_resolution[info["resolution"] or info["tier"]]) for size, info in sizes.items()}


# --- Veo 3.1 (§12.1): 16:9 / 9:16 at 720p, 1080p, 4k; "4s" | "6s" | "8s"; generate_audio -------
_VEO_SIZES = {
    **_landscape_portrait_square("720p", "1280x720", "720x1280"),
    **_landscape_portrait_square("1080p", "1920x1080", "1080x1920"),
    **_landscape_portrait_square("4k", "3840x2160", "2160x3840"),
}
# fast: only the 720p/1080p price was captured, so 4k is not offered
_VEO_FAST_SIZES = {size: info for size, info in _VEO_SIZES.items() if info["resolution"] != "4k"}
_VEO_EXTRA = {
    "image_field": "image_url",
    "data_uri": True,
    "duration": "suffix_s",
    "aspect_ratio_modes": BOTH_MODES,
    "audio_field": "generate_audio",
    # quirk 10: auto_fix (default true on text to video) silently rewrites a prompt that fails policy
    "fixed": {"t2v": {"auto_fix": False}},
    "billing": "per second of output, by resolution and audio",
}

# --- Kling 3.0 (§12.2): standard (720p) or pro (1080p) endpoints; "3".."15"; start_image_url ---
_KLING_SIZES = {
    **_landscape_portrait_square(None, "1280x720", "720x1280", "720x720", tier="standard"),
    **_landscape_portrait_square(None, "1920x1080", "1080x1920", "1080x1080", tier="pro"),
}

# --- Seedance 2.0 (§12.3): token-billed; "4".."15"; same price with or without audio -----------
_SEEDANCE_SIZES = {
    **_landscape_portrait_square("480p", "864x480", "480x864", "640x640"),
    **_landscape_portrait_square("720p", "1280x720", "720x1280", "960x960"),
    **_landscape_portrait_square("1080p", "1920x1080", "1080x1920", "1440x1440"),
}
SEEDANCE_USD_PER_1K_TOKENS = Decimal("0.014")
SEEDANCE_FPS = 24


def seedance_price_per_second(size: str) -> Decimal:
    """fal bills Seedance 2.0 at $0.014 per 1,000 tokens, tokens = width x height x 24 fps x
    seconds / 1024 (§12.3): the exact USD per second of a ``WxH`` output (720p: $0.3024)."""
    width, _, height = size.partition("x")
    tokens_per_second = Decimal(int(width) * int(height) * SEEDANCE_FPS) / 1024
    return tokens_per_second * SEEDANCE_USD_PER_1K_TOKENS / 1000


# --- Hailuo 2.3 (§12.4): standard 768p (6 or 10 s) or pro 1080p (6 s, no duration field) -------
_HAILUO_SIZES = {
    "1366x768": _size(None, None, "standard"),
    "1920x1080": _size(None, None, "pro"),
}

# --- MiniMax H3 (§12.4): 2K only (2560x1440, minimax.md §5.1); integer duration -----------------
_H3_SIZES = _landscape_portrait_square("2K", "2560x1440", "1440x2560")
# The contract did not capture H3's fal price ("third-party figures conflict: $0.26/s, or
# compute-billed"; MiniMax's own list is $0.13/s at 2K). We charge the highest documented figure,
# $0.26/s, so a hold never under-covers the bill; revisit when fal's model page is captured.
H3_CONSERVATIVE_USD_PER_SECOND = "0.26"

# --- Wan 2.7 (§12.5): 720p / 1080p; integer duration 2..15; always adds a soundtrack ------------
_WAN_SIZES = {
    **_landscape_portrait_square("720p", "1280x720", "720x1280", "960x960"),
    **_landscape_portrait_square("1080p", "1920x1080", "1080x1920", "1440x1440"),
}

# --- Luma Ray 3.2 (§12.6): per clip by resolution, 5 s or 10 s ("5s" | "10s") -------------------
_LUMA_SIZES = {
    **_landscape_portrait_square("540p", "960x540", "540x960", "540x540"),
    **_landscape_portrait_square("720p", "1280x720", "720x1280", "720x720"),
    **_landscape_portrait_square("1080p", "1920x1080", "1080x1920", "1080x1080"),
}
_LUMA_CLIP_5S = {"540p": Decimal("0.50"), "720p": Decimal("1.00"), "1080p": Decimal("2.00")}


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="veo-3.1",
        provider="fal",
        label="Veo 3.1 (fal)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_VEO_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_VEO_SIZES, {"720p": "0.20", "1080p": "0.20", "4k": "0.40"}),
        price_per_second_audio=_prices(_VEO_SIZES, {"720p": "0.40", "1080p": "0.40", "4k": "0.60"}),
        audio_toggle=True,
        audio_default=True,
        supports_seed=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="fal-ai/veo3.1",
        extra={
            **_VEO_EXTRA,
            "endpoints": {"t2v": "fal-ai/veo3.1", "i2v": "fal-ai/veo3.1/image-to-video"},
            "price_reference": {"endpoint": "fal-ai/veo3.1", "unit": "second", "size": "1280x720", "audio": True},
            "sizes": _VEO_SIZES,
        },
    ),
    ModelInfo(
        id="veo-3.1-fast",
        provider="fal",
        label="Veo 3.1 Fast (fal)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_VEO_FAST_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=flat(tuple(_VEO_FAST_SIZES), "0.10"),
        price_per_second_audio=flat(tuple(_VEO_FAST_SIZES), "0.15"),
        audio_toggle=True,
        audio_default=True,
        supports_seed=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="fal-ai/veo3.1/fast",
        extra={
            **_VEO_EXTRA,
            "endpoints": {"t2v": "fal-ai/veo3.1/fast", "i2v": "fal-ai/veo3.1/fast/image-to-video"},
            "price_reference": {"endpoint": "fal-ai/veo3.1/fast", "unit": "second", "size": "1280x720", "audio": True},
            "sizes": _VEO_FAST_SIZES,
        },
    ),
    ModelInfo(
        id="kling-v3",
        provider="fal",
        label="Kling 3.0 (fal)",
        family="Kling 3.0",
        capabilities=T2V_I2V_AUDIO,
        seconds=tuple(range(3, 16)),
        sizes=tuple(_KLING_SIZES),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=_prices(_KLING_SIZES, {"standard": "0.084", "pro": "0.112"}),
        price_per_second_audio=_prices(_KLING_SIZES, {"standard": "0.126", "pro": "0.168"}),
        audio_toggle=True,
        audio_default=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="fal-ai/kling-video/v3",
        extra={
            "endpoints": {
                "t2v": "fal-ai/kling-video/v3/{tier}/text-to-video",
                "i2v": "fal-ai/kling-video/v3/{tier}/image-to-video",
            },
            "sizes": _KLING_SIZES,
            "image_field": "start_image_url",  # not image_url (quirk 6)
            "data_uri": True,
            "duration": "string",
            "aspect_ratio_modes": T2V_ONLY,  # image to video takes the start image's ratio
            "audio_field": "generate_audio",
            "billing": "per second of output, by tier (standard 720p, pro 1080p) and audio",
        },
    ),
    ModelInfo(
        id="seedance-2.0",
        provider="fal",
        label="Seedance 2.0 (fal)",
        family="Seedance 2.0",
        capabilities=T2V_I2V_AUDIO,
        seconds=tuple(range(4, 16)),
        sizes=tuple(_SEEDANCE_SIZES),
        default_seconds=5,
        default_size="1280x720",
        # token pricing converted to a price per second of each size; audio costs the same
        price_per_second={size: seedance_price_per_second(size) for size in _SEEDANCE_SIZES},
        audio_toggle=True,
        audio_default=True,
        supports_seed=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="bytedance/seedance-2.0",
        extra={
            "endpoints": {
                "t2v": "bytedance/seedance-2.0/text-to-video",
                "i2v": "bytedance/seedance-2.0/image-to-video",
            },
            "sizes": _SEEDANCE_SIZES,
            "image_field": "image_url",
            "data_uri": True,
            "duration": "string",
            "aspect_ratio_modes": BOTH_MODES,
            "audio_field": "generate_audio",
            "billing": "per 1,000 output tokens ($0.014), tokens = width x height x 24 x seconds / 1024",
        },
    ),
    ModelInfo(
        id="hailuo-2.3",
        provider="fal",
        label="Hailuo 2.3 (fal)",
        family="Hailuo 2.3",
        capabilities=T2V_I2V,
        seconds=(6, 10),
        sizes=tuple(_HAILUO_SIZES),
        default_seconds=6,
        default_size="1366x768",
        clip_prices={
            (6, "1366x768"): Decimal("0.28"),
            (10, "1366x768"): Decimal("0.56"),
            (6, "1920x1080"): Decimal("0.49"),
            # not made: 1080p is 6 s only (the adapter refuses it before submitting); priced as
            # two pro clips only because every (seconds, size) pair needs a price
            (10, "1920x1080"): Decimal("0.98"),
        },
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="fal-ai/minimax/hailuo-2.3",
        extra={
            "endpoints": {
                "t2v": "fal-ai/minimax/hailuo-2.3/{tier}/text-to-video",
                "i2v": "fal-ai/minimax/hailuo-2.3/{tier}/image-to-video",
            },
            "sizes": _HAILUO_SIZES,  # no aspect ratio input: 16:9 from text, the image's from an image
            "image_field": "image_url",
            "data_uri": True,
            "duration": "string",
            "no_duration_tiers": ("pro",),
            "aspect_ratio_modes": (),
            "unavailable": ((10, "1920x1080"),),
            "billing": "per video: standard $0.28 per 6 s, $0.56 per 10 s; pro $0.49",
        },
    ),
    ModelInfo(
        id="minimax-h3",
        provider="fal",
        label="MiniMax H3 (fal)",
        family="MiniMax H3",
        capabilities=T2V_I2V_AUDIO,  # native audio, no switch
        seconds=tuple(range(5, 16)),
        sizes=tuple(_H3_SIZES),
        default_seconds=5,
        default_size="2560x1440",
        price_per_second=flat(tuple(_H3_SIZES), H3_CONSERVATIVE_USD_PER_SECOND),
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="minimax/h3",
        extra={
            "endpoints": {"t2v": "minimax/h3/text-to-video", "i2v": "minimax/h3/image-to-video"},
            "sizes": _H3_SIZES,
            "price_reference": {"endpoint": "minimax/h3/text-to-video", "unit": "second", "size": "2560x1440"},
            "image_field": "image_url",
            "data_uri": True,  # MiniMax's own API takes data URIs for media (minimax.md §5.1)
            "duration": "integer",
            "aspect_ratio_modes": T2V_ONLY,
            "billing": "not captured from fal; charged at the conservative $0.26/s",
        },
    ),
    ModelInfo(
        id="wan-2.7",
        provider="fal",
        label="Wan 2.7 (fal)",
        family="Wan 2.7",
        capabilities=T2V_I2V_AUDIO,  # adds music when no driving audio is given
        seconds=tuple(range(2, 16)),
        sizes=tuple(_WAN_SIZES),
        default_seconds=5,
        default_size="1920x1080",
        price_per_second=_prices(_WAN_SIZES, {"720p": "0.10", "1080p": "0.15"}),
        supports_seed=True,
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="fal-ai/wan/v2.7",
        extra={
            "endpoints": {"t2v": "fal-ai/wan/v2.7/text-to-video", "i2v": "fal-ai/wan/v2.7/image-to-video"},
            "sizes": _WAN_SIZES,
            "price_reference": {"endpoint": "fal-ai/wan/v2.7/text-to-video", "unit": "second", "size": "1280x720"},
            "image_field": "image_url",
            "data_uri": True,
            "duration": "integer",  # "5" fails (quirk 6)
            "aspect_ratio_modes": T2V_ONLY,
            "seed_max": 2147483647,
            "billing": "per second of output, by resolution",
        },
    ),
    ModelInfo(
        id="luma-ray-3.2",
        provider="fal",
        label="Luma Ray 3.2 (fal)",
        family="Luma Ray 3.2",
        capabilities=T2V_I2V,
        seconds=(5, 10),
        sizes=tuple(_LUMA_SIZES),
        default_seconds=5,
        default_size="1280x720",
        clip_prices={
            (seconds, size): _LUMA_CLIP_5S[info["resolution"]] * (seconds // 5)
            for seconds in (5, 10)
            for size, info in _LUMA_SIZES.items()
        },
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="luma/agent/ray/v3.2",
        extra={
            "endpoints": {
                "t2v": "luma/agent/ray/v3.2/text-to-video",
                "i2v": "luma/agent/ray/v3.2/image-to-video",
            },
            "sizes": _LUMA_SIZES,
            "price_reference": {
                "endpoint": "luma/agent/ray/v3.2/text-to-video",
                "unit": "video",
                "seconds": 5,
                "size": "960x540",
            },
            "image_field": "image_url",
            # served through the Luma Agents API, which fetches inputs by URL: no data URI
            "data_uri": False,
            "duration": "suffix_s",
            "aspect_ratio_modes": BOTH_MODES,
            "i2v_seconds": (5,),  # 10 s from an image needs keyframes, which MediaRouter does not send
            "billing": "per clip: 5 s $0.50 / $1 / $2 at 540p / 720p / 1080p, 10 s double",
        },
    ),
)
