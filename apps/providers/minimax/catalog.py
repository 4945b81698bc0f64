"""The catalog entries of MiniMax direct (reference/providers/minimax.md §3, §5, §8).

Data only. ``provider_model`` is MiniMax's model name; ``extra`` is the adapter's mapping:

- ``api``: ``"v1"`` (flat body, ``base_resp`` envelope, three-step download) or ``"v2"``
  (``content[]`` body, direct ``content.url``);
- ``sizes``: ``WxH`` -> the wire fields that produce it (``resolution`` with an upper-case ``P`` or
  ``2K``; v2 adds ``ratio``);
- ``seconds_by_resolution``: durations a resolution is limited to (1080P is 6 s only, quirk 7);
- ``prompt_max``: the prompt limit in characters (v1 2000, v2 7000).

v1 has no aspect-ratio field: text to video gives the landscape shape, and with a first frame the
output follows the image's aspect (§3), so the Hailuo entries offer the landscape size per
resolution (as the fal entries do). Hailuo is silent (v1 has no audio); H3 always has native audio,
with no switch (§5.1).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo

PRICE_VERSION = "minimax-2026-12-01"
# Hailuo per-clip list prices as resold at list by fal and eachlabs (2026-05-25), §8.
HAILUO_PRICE_DATE = date(2026, 5, 25)
# H3 per-second prices: third-party quoting MiniMax's pay-as-you-go page, checked 2026-10-24, §8.
H3_PRICE_DATE = date(2026, 10, 24)

_HAILUO_SIZES = {"1366x768": {"resolution": "768P"}, "1920x1080": {"resolution": "1080P"}}
_HAILUO_FAST_SIZES = {"1366x768": {"resolution": "768P"}}  # 1080P price not captured (§8): not offered

# H3: resolution 768P (short side 768) or 2K (2560x1440 at 16:9), times the six concrete ratios.
_H3_RATIOS = {
    "16:9": ("1366x768", "2560x1440"),
    "9:16": ("768x1366", "1440x2560"),
    "1:1": ("768x768", "1440x1440"),
    "4:3": ("1024x768", "1920x1440"),
    "3:4": ("768x1024", "1440x1920"),
    "21:9": ("1792x768", "3360x1440"),
}
_H3_SIZES = {
    size: {"resolution": resolution, "ratio": ratio}
    for index, resolution in enumerate(("768P", "2K"))
    for ratio, sizes in _H3_RATIOS.items()
    for size in (sizes[index],)
}
_H3_USD_PER_SECOND = {"768P": Decimal("0.08"), "2K": Decimal("0.13")}

MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="hailuo-2.3",
        provider="minimax",
        label="Hailuo 2.3 (MiniMax)",
        family="Hailuo 2.3",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}),
        seconds=(6, 10),
        sizes=tuple(_HAILUO_SIZES),
        default_seconds=6,
        default_size="1366x768",
        clip_prices={
            (6, "1366x768"): Decimal("0.28"),
            (10, "1366x768"): Decimal("0.56"),
            (6, "1920x1080"): Decimal("0.49"),
            # not made (1080P is 6 s only; the adapter refuses it before submitting); priced as two
            # 1080P clips only because every (seconds, size) pair needs a price
            (10, "1920x1080"): Decimal("0.98"),
        },
        price_source_date=HAILUO_PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="MiniMax-Hailuo-2.3",
        extra={
            "api": "v1",
            "sizes": _HAILUO_SIZES,
            "seconds_by_resolution": {"1080P": (6,)},
            "prompt_max": 2000,
            "billing": "per video: 768P $0.28 per 6 s, $0.56 per 10 s; 1080P $0.49 per 6 s",
        },
    ),
    ModelInfo(
        id="hailuo-2.3-fast",
        provider="minimax",
        label="Hailuo 2.3 Fast (MiniMax)",
        family="Hailuo 2.3",
        capabilities=frozenset({IMAGE_TO_VIDEO}),  # quirk 8: refuses text-only requests
        seconds=(6, 10),
        sizes=tuple(_HAILUO_FAST_SIZES),
        default_seconds=6,
        default_size="1366x768",
        clip_prices={(6, "1366x768"): Decimal("0.19"), (10, "1366x768"): Decimal("0.32")},
        price_source_date=HAILUO_PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="MiniMax-Hailuo-2.3-Fast",
        extra={
            "api": "v1",
            "sizes": _HAILUO_FAST_SIZES,
            "seconds_by_resolution": {},
            "prompt_max": 2000,
            "billing": "per video: 768P $0.19 per 6 s, $0.32 per 10 s (fal resale at list)",
        },
    ),
    ModelInfo(
        id="minimax-h3",
        provider="minimax",
        label="MiniMax H3 (MiniMax)",
        family="MiniMax H3",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO}),  # native audio, no switch
        seconds=tuple(range(5, 16)),
        sizes=tuple(_H3_SIZES),
        default_seconds=5,
        default_size="1366x768",
        price_per_second={size: _H3_USD_PER_SECOND[fields["resolution"]] for size, fields in _H3_SIZES.items()},
        price_source_date=H3_PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="MiniMax-H3",
        extra={
            "api": "v2",
            "sizes": _H3_SIZES,
            "seconds_by_resolution": {},
            "prompt_max": 7000,
            "billing": "per output second: 768P $0.08, 2K $0.13",
        },
    ),
)
