"""The catalog entries of Kling (docs/providers/kling.md: modes, durations and unit prices).

Data only: one :class:`ModelInfo` per model this supplier serves."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from apps.providers.modelinfo import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo, flat

# --- Kling (kling.md §3 modes and durations, §10 unit prices at $0.14/unit, 2026-08-13) --------
_KLING_STD = ("1280x720", "720x1280", "720x720")  # mode std (720p); aspect 16:9, 9:16, 1:1
_KLING_PRO = ("1920x1080", "1080x1920", "1080x1080")  # mode pro (1080p)
_KLING_PRICES = date(2026, 8, 13)


def _kling_prices(std: str, pro: str) -> dict[str, Decimal]:
    return {**flat(_KLING_STD, std), **flat(_KLING_PRO, pro)}


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="kling-v1-6",
        provider="kling",
        label="Kling 1.6",
        family="Kling",
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
        family="Kling",
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
        family="Kling",
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
        family="Kling",
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
)
