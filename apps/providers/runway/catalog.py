"""The catalog entries of Runway (docs/providers/runway.md: ratios, durations and credit prices).

Data only: one :class:`ModelInfo` per model this supplier serves."""

from __future__ import annotations

from datetime import date

from apps.providers.modelinfo import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo, flat

# --- Runway (runway.md §3-§4 ratios and durations, §10 prices: runwayml/skills 2026-04-21) -----
_RUNWAY_SIX = ("1280x720", "720x1280", "1104x832", "832x1104", "960x960", "1584x672")
_RUNWAY_2_10 = tuple(range(2, 11))
_RUNWAY_PRICES = date(2026, 4, 21)


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="gen4.5",
        provider="runway",
        label="Runway Gen-4.5",
        family="Runway",
        capabilities=frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}),
        seconds=_RUNWAY_2_10,
        sizes=_RUNWAY_SIX,
        text_to_video_sizes=("1280x720", "720x1280"),
        default_seconds=5,
        default_size="1280x720",
        price_per_second=flat(_RUNWAY_SIX, "0.12"),  # 12 credits/s at $0.01
        price_source_date=_RUNWAY_PRICES,
        price_version="runway-2026-04-21",
        supports_seed=True,
    ),
    ModelInfo(
        id="gen4_turbo",
        provider="runway",
        label="Runway Gen-4 Turbo (image to video)",
        family="Runway",
        capabilities=frozenset({IMAGE_TO_VIDEO}),
        seconds=_RUNWAY_2_10,
        sizes=_RUNWAY_SIX,
        default_seconds=5,
        default_size="1280x720",
        price_per_second=flat(_RUNWAY_SIX, "0.05"),  # 5 credits/s
        price_source_date=_RUNWAY_PRICES,
        price_version="runway-2026-04-21",
        supports_seed=True,
    ),
    ModelInfo(
        id="gen3a_turbo",
        provider="runway",
        label="Runway Gen-3 Alpha Turbo (legacy, image to video)",
        family="Runway",
        capabilities=frozenset({IMAGE_TO_VIDEO}),
        seconds=(5, 10),
        sizes=("1280x768", "768x1280"),
        default_seconds=5,
        default_size="1280x768",
        price_per_second=flat(("1280x768", "768x1280"), "0.05"),  # third-party, 2026-04-02
        price_source_date=date(2026, 4, 2),
        price_version="runway-2026-04-02",
        deprecated_on=date(2026, 6, 10),
        shutdown_note=(
            "Removed from Runway's SDK on 2026-06-10 (successor: gen4.5); the API may stop accepting it at any time."
        ),
        supports_seed=True,
    ),
)
