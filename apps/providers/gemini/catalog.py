"""The catalog entries of Google's Gemini API (reference/providers/veo.md §0, §1, §4, §8).

Data only. ``provider_model`` is the first Gemini-API model id tried; ``extra`` is the adapter's
mapping:

- ``api``: ``"veo"`` (``POST models/{m}:predictLongRunning``, camelCase, ``done`` flag) or
  ``"omni"`` (the Interactions API, snake_case, its own status enum);
- ``upstream_ids`` (Veo): the Gemini-API model ids that may serve the entry, in order of preference.
  The adapter sends the first one the key's ``GET /v1beta/models`` lists with
  ``predictLongRunning`` and refuses the request (``model_not_available``) when none is listed:
  Google retires Gemini-API video ids without notice (§0, quirk 7), so the key's listing, not a
  date in this file, decides. ``retired_upstream_ids`` records the dates the contract gives for ids
  that are reported shut down (they stay candidates only because the listing is the authority);
- ``sizes``: MediaRouter's ``WxH`` -> ``aspect_ratio`` and ``resolution`` sent upstream;
- ``seconds_by_resolution``: durations a resolution is limited to (Veo 1080p and 4k: 8 s only,
  quirk 6).

Veo on the Gemini API always generates audio and refuses ``generateAudio`` and ``seed`` (Vertex
only, quirk 5): the entries are priced at Google's with-audio list price and take no seed. Omni
chooses its own length (3-10 s) and bills the seconds it delivers; until the engine settles from the
delivered seconds (``JobStatus.usage["output_seconds"]``), the entry is held and charged as the
longest clip, 10 s, so a hold never under-covers the bill.

Prices: Google's list as captured for the contract (researched 2026-12-01); Omni's per-resolution
figures are fal's listing, which the contract reports at Google's ≈ $0.10/s at 720p (third-party).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import AUDIO, IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo

PRICE_DATE = date(2026, 12, 1)
PRICE_VERSION = "gemini-2026-12-01"
T2V_I2V_AUDIO = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, AUDIO})
# §0: the Gemini-API preview ids were reported shut down on 2026-10-22 (third-party, not seen on a
# Google page); the GA "-001" ids are Vertex's, tried first in case Google lists them here too.
PREVIEW_SHUTDOWN = date(2026, 10, 22)


def _sizes(resolutions: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    """``{resolution: (landscape, portrait)}`` -> ``{WxH: {aspect_ratio, resolution}}``."""
    table: dict[str, dict[str, str]] = {}
    for resolution, (landscape, portrait) in resolutions.items():
        table[landscape] = {"aspect_ratio": "16:9", "resolution": resolution}
        table[portrait] = {"aspect_ratio": "9:16", "resolution": resolution}
    return table


def _prices(sizes: dict[str, dict[str, str]], by_resolution: dict[str, str]) -> dict[str, Decimal]:
    return {size: Decimal(by_resolution[info["resolution"]]) for size, info in sizes.items()}


_VEO_SIZES = _sizes(
    {"720p": ("1280x720", "720x1280"), "1080p": ("1920x1080", "1080x1920"), "4k": ("3840x2160", "2160x3840")}
)
# Fast: only the 720p/1080p price was captured (§8), so 4k is not offered
_VEO_FAST_SIZES = {size: info for size, info in _VEO_SIZES.items() if info["resolution"] != "4k"}
_VEO_EXTRA = {
    "api": "veo",
    "seconds_by_resolution": {"1080p": (8,), "4k": (8,)},
    "billing": "per second of output; audio is always on here (with-audio list price)",
}

_OMNI_SIZES = _sizes(
    {
        "360p": ("640x360", "360x640"),
        "720p": ("1280x720", "720x1280"),
        "1080p": ("1920x1080", "1080x1920"),
        "4k": ("3840x2160", "2160x3840"),
    }
)
OMNI_MAX_SECONDS = 10

MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="veo-3.1",
        provider="gemini",
        label="Veo 3.1 (Gemini API)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_VEO_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_VEO_SIZES, {"720p": "0.40", "1080p": "0.40", "4k": "0.60"}),
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="veo-3.1-generate-001",
        extra={
            **_VEO_EXTRA,
            "sizes": _VEO_SIZES,
            "upstream_ids": ("veo-3.1-generate-001", "veo-3.1-generate-preview"),
            "retired_upstream_ids": {"veo-3.1-generate-preview": PREVIEW_SHUTDOWN},
        },
    ),
    ModelInfo(
        id="veo-3.1-fast",
        provider="gemini",
        label="Veo 3.1 Fast (Gemini API)",
        family="Veo 3.1",
        capabilities=T2V_I2V_AUDIO,
        seconds=(4, 6, 8),
        sizes=tuple(_VEO_FAST_SIZES),
        default_seconds=8,
        default_size="1280x720",
        price_per_second=_prices(_VEO_FAST_SIZES, {"720p": "0.15", "1080p": "0.15"}),
        supports_negative_prompt=True,
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="veo-3.1-fast-generate-001",
        extra={
            **_VEO_EXTRA,
            "sizes": _VEO_FAST_SIZES,
            "upstream_ids": ("veo-3.1-fast-generate-001", "veo-3.1-fast-generate-preview"),
            "retired_upstream_ids": {"veo-3.1-fast-generate-preview": PREVIEW_SHUTDOWN},
        },
    ),
    ModelInfo(
        id="gemini-omni-1.1-flash",
        provider="gemini",
        label="Gemini Omni 1.1 Flash (Gemini API)",
        family="Gemini Omni",
        capabilities=T2V_I2V_AUDIO,  # output always includes audio (§4)
        seconds=(OMNI_MAX_SECONDS,),  # the model picks 3-10 s: held and charged as 10 s
        sizes=tuple(_OMNI_SIZES),
        default_seconds=OMNI_MAX_SECONDS,
        default_size="1280x720",
        price_per_second=_prices(_OMNI_SIZES, {"360p": "0.03", "720p": "0.10", "1080p": "0.15", "4k": "0.30"}),
        price_source_date=PRICE_DATE,
        price_version=PRICE_VERSION,
        provider_model="gemini-omni-1.1-flash",
        extra={
            "api": "omni",
            "sizes": _OMNI_SIZES,
            "billing": "per second delivered (3-10 s, the model's choice); charged here as 10 s",
        },
    ),
)
