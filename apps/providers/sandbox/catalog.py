"""The catalog entries of The sandbox: free, rendered locally.

Data only: one :class:`ModelInfo` per model this supplier serves."""

from __future__ import annotations

from datetime import date

from apps.providers.modelinfo import AUDIO, REMIX, TEXT_TO_VIDEO, ModelInfo, flat

MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="sandbox-video",
        provider="sandbox",
        label="Sandbox (local test pattern, free)",
        family="Sandbox",
        delivers_requested_size=False,  # a small test pattern (320 px on the long side), whatever the size
        capabilities=frozenset({TEXT_TO_VIDEO, REMIX, AUDIO}),
        seconds=(2, 4, 8, 12),
        sizes=("1280x720", "720x1280", "960x960"),
        default_seconds=4,
        default_size="1280x720",
        price_per_second=flat(("1280x720", "720x1280", "960x960"), "0"),
        price_source_date=date(2026, 11, 1),
        price_version="sandbox-free",
    ),
)
