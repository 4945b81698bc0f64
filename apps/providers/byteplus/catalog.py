"""The catalog entries of BytePlus ModelArk: ByteDance's Seedance, first party
(reference/providers/seedance-byteplus.md, researched 2026-12-01; docs/providers/byteplus.md).

Data only. ``provider_model`` is the **dated** BytePlus model id (§1: Ark adds new suffixes instead of
changing old ones, so the full id is pinned). ``extra`` is the adapter's mapping:

- ``size_inputs``: ``WxH`` -> ``{"ratio", "resolution"}`` sent in the create body;
- ``usd_per_million_tokens`` (and ``usd_per_million_tokens_audio`` where the price depends on
  ``generate_audio``): the token price, from which ``price_per_second`` is built and with which the
  adapter prices the tokens a finished task reports (``JobStatus.usage["cost_usd"]``).

Token pricing (§9): Ark bills output tokens, ``tokens = width x height x fps x seconds / 1024`` with the
output fixed at 24 fps (§4). So the exact per-second price of a size is
``width x height x 24 / 1024 x usd_per_million_tokens / 1_000_000`` (a Decimal, no rounding: 1280x720
is 21,600 tokens a second). The authoritative number is the task's ``usage.completion_tokens``, which
the adapter reports next to its price; the catalog price is the estimate the hold and charge use.

Sizes follow the other Seedance suppliers' convention (``WxH`` from the resolution's short side and
the aspect ratio, long side rounded to even: 16:9 at 720p is 1280x720), so the canonical
``seedance-2.0`` takes the same sizes wherever it runs; Ark receives only ``ratio`` + ``resolution``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo

FPS = 24  # §4: "The output frame rate is fixed at 24 fps for Seedance."
TOKEN_DIVISOR = 1024  # §9
_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080}
_RATIOS_1X = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
_RATIOS_2X = (*_RATIOS_1X, "9:21")  # §3: 2.x also 9:21


def dims(ratio: str, resolution: str) -> tuple[int, int]:
    """``(width, height)`` of an aspect ratio at a resolution."""
    a, b = (int(x) for x in ratio.split(":"))
    short = _SHORT_SIDE[resolution]
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    return (long, short) if a >= b else (short, long)


def tokens_per_second(size: str) -> Decimal:
    """Output tokens per second of video at ``WxH`` (§9: w x h x 24 / 1024), exact."""
    width, height = (int(x) for x in size.split("x"))
    return Decimal(width * height * FPS) / Decimal(TOKEN_DIVISOR)


def tokens_for(size: str, seconds: int) -> Decimal:
    """The formula's token count for ``seconds`` of ``WxH`` (what the emulator reports)."""
    return tokens_per_second(size) * seconds


def price_per_second(sizes: tuple[str, ...], usd_per_million_tokens: str) -> dict[str, Decimal]:
    """USD per second of every size at a token price, exactly (no rounding)."""
    per_token = Decimal(usd_per_million_tokens) / Decimal(1_000_000)
    return {size: tokens_per_second(size) * per_token for size in sizes}


def _size_inputs(ratios: tuple[str, ...], resolutions: tuple[str, ...]) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    for resolution in resolutions:
        for ratio in ratios:
            width, height = dims(ratio, resolution)
            table[f"{width}x{height}"] = {"ratio": ratio, "resolution": resolution}
    return table


_SIZES_2X = _size_inputs(_RATIOS_2X, ("480p", "720p", "1080p"))
_SIZES_2X_FAST = _size_inputs(_RATIOS_2X, ("480p", "720p"))  # §3: 2.0 Fast is 480p/720p only
_SIZES_15 = _size_inputs(_RATIOS_1X, ("480p", "720p", "1080p"))

# --- prices (§9, all third-party; BytePlus' own USD price table was not captured) ----------------
# Seedance 2.0: ≈ $10 / M tokens after the x1.43 rise of 2026-05-05 (third-party; ≈ $0.22/s at 720p,
# here exactly 21,600 x $0.00001 = $0.216/s).
# Seedance 2.0 Fast: no BytePlus USD figure; priced at 0.8 x 2.0, the ratio of both reference price
# lists in §9 (fal $11.2 vs $14 / M; Volcengine 37 vs 46 CNY ≈ 0.80): $8 / M.
# Seedance 2.5: no price in the contract at all; ASSUMED equal to 2.0 ($10 / M) until one is captured
# (its price_version says so).
# Seedance 1.5 Pro: $2.40 / M with audio, $1.20 / M silent (online tier; third-party relays of
# BytePlus pricing).
_PRICES_2026_05 = date(2026, 5, 5)
_PRICES_15 = date(2026, 12, 1)

MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="seedance-2.0",
        provider="byteplus",
        label="Seedance 2.0",
        family="Seedance 2.0",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=tuple(range(4, 16)),  # §3: 4-15 s
        sizes=tuple(_SIZES_2X),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=price_per_second(tuple(_SIZES_2X), "10"),
        audio_toggle=True,
        audio_default=True,
        price_source_date=_PRICES_2026_05,
        price_version="byteplus-seedance-2.0-10usd-per-m-tokens-2026-05-05",
        supports_seed=True,
        provider_model="dreamina-seedance-2-0-260128",
        extra={"size_inputs": _SIZES_2X, "usd_per_million_tokens": "10"},
    ),
    ModelInfo(
        id="seedance-2.0-fast",
        provider="byteplus",
        label="Seedance 2.0 Fast",
        family="Seedance 2.0",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=tuple(range(4, 16)),
        sizes=tuple(_SIZES_2X_FAST),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=price_per_second(tuple(_SIZES_2X_FAST), "8"),
        audio_toggle=True,
        audio_default=True,
        price_source_date=_PRICES_2026_05,
        price_version="byteplus-seedance-2.0-fast-8usd-per-m-tokens-derived-2026-05-05",
        supports_seed=True,
        provider_model="dreamina-seedance-2-0-fast-260128",
        extra={"size_inputs": _SIZES_2X_FAST, "usd_per_million_tokens": "8"},
    ),
    ModelInfo(
        id="seedance-2.5",
        provider="byteplus",
        label="Seedance 2.5",
        family="Seedance 2.5",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=tuple(range(4, 31)),  # §3: 4-30 s (-1, "the model chooses", is never sent: unpriceable)
        sizes=tuple(_SIZES_2X),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=price_per_second(tuple(_SIZES_2X), "10"),
        audio_toggle=True,
        audio_default=True,
        price_source_date=_PRICES_2026_05,
        price_version="byteplus-seedance-2.5-assumed-2.0-price-2026-05-05",
        supports_seed=True,
        provider_model="dreamina-seedance-2-5-260628",
        extra={"size_inputs": _SIZES_2X, "usd_per_million_tokens": "10"},
    ),
    ModelInfo(
        id="seedance-1.5-pro",
        provider="byteplus",
        label="Seedance 1.5 Pro",
        family="Seedance 1.5",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),
        seconds=tuple(range(4, 13)),  # §3: 4-12 s
        sizes=tuple(_SIZES_15),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=price_per_second(tuple(_SIZES_15), "1.20"),
        price_per_second_audio=price_per_second(tuple(_SIZES_15), "2.40"),
        audio_toggle=True,
        audio_default=True,
        price_source_date=_PRICES_15,
        price_version="byteplus-seedance-1.5-pro-online-2026-12-01",
        supports_seed=True,
        provider_model="seedance-1-5-pro-251215",
        extra={
            "size_inputs": _SIZES_15,
            "usd_per_million_tokens": "1.20",
            "usd_per_million_tokens_audio": "2.40",
        },
    ),
)
