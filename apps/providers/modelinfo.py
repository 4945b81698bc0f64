"""What the catalog knows of one model at one supplier, as a frozen dataclass (no Django, no I/O).

A *canonical* model (``veo-3.1``) may have several suppliers (``fal/veo-3.1``, ``replicate/veo-3.1``).
Each supplier's entry is one :class:`ModelInfo` in that provider's own ``catalog.py``, with its own
limits and prices; ``provider_model`` is what is sent upstream (an endpoint id, a dated model id).

Prices are exact Decimals in USD. A model bills one of three ways, and the entry says which:

- per second of output by size (``price_per_second``), with a separate table when audio is generated
  (``price_per_second_audio``) for models whose price depends on it;
- per clip (``clip_prices``, keyed by ``(seconds, size)``), for models that bill a flat price per video;
- per token (BytePlus Seedance): the provider's catalog converts tokens to a per-second price per size
  when it builds the entry, and the adapter reports the tokens it was billed in ``JobStatus.usage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
REMIX = "remix"
AUDIO = "audio"
CAPABILITIES = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO, REMIX, AUDIO})

COST_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class ModelInfo:
    id: str  # canonical id, shared by every supplier of the model ("veo-3.1", "sora-2")
    provider: str  # registry slug of the supplier
    label: str
    capabilities: frozenset[str]
    seconds: tuple[int, ...]
    sizes: tuple[str, ...]  # "WxH"; the union over capabilities
    default_seconds: int
    default_size: str
    price_source_date: date
    price_version: str
    price_per_second: Mapping[str, Decimal] = field(default_factory=dict, hash=False)  # size -> USD/s
    # size -> USD/s when audio is generated; None: the price does not depend on audio
    price_per_second_audio: Mapping[str, Decimal] | None = field(default=None, hash=False)
    # (seconds, size) -> USD per clip, for models billed per video; replaces price_per_second
    clip_prices: Mapping[tuple[int, str], Decimal] | None = field(default=None, hash=False)
    deprecated_on: date | None = None
    shutdown_note: str = ""
    replacement: str = ""  # canonical id suggested when the model is retired
    supports_seed: bool = False
    supports_negative_prompt: bool = False
    # the request can switch audio on or off (``audio`` in the spec); otherwise AUDIO is fixed
    audio_toggle: bool = False
    audio_default: bool = True
    provider_model: str = ""  # the id sent upstream; defaults to ``id``
    # sizes allowed without an input image, when narrower than ``sizes`` (Runway gen4.5)
    text_to_video_sizes: tuple[str, ...] | None = None
    family: str = ""  # display group in the Playground ("Veo 3.1"); defaults to ``label``
    # the output has the requested pixel size (False: a preview size, such as the sandbox's)
    delivers_requested_size: bool = True
    # adapter-owned mapping data (endpoint ids per mode, input names): never read outside the adapter
    extra: Mapping[str, object] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.provider_model:
            object.__setattr__(self, "provider_model", self.id)
        if not self.family:
            object.__setattr__(self, "family", self.label)
        object.__setattr__(self, "price_per_second", MappingProxyType(dict(self.price_per_second)))
        if self.price_per_second_audio is not None:
            object.__setattr__(self, "price_per_second_audio", MappingProxyType(dict(self.price_per_second_audio)))
        if self.clip_prices is not None:
            object.__setattr__(self, "clip_prices", MappingProxyType(dict(self.clip_prices)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        assert self.capabilities <= CAPABILITIES, self.capabilities
        assert self.default_seconds in self.seconds and self.default_size in self.sizes, self.id
        if self.clip_prices is not None:
            missing = {(s, z) for s in self.seconds for z in self.sizes} - set(self.clip_prices)
            assert not missing, f"{self.qualified_id}: a clip price for every duration and size ({missing})"
        else:
            assert set(self.price_per_second) == set(self.sizes), f"{self.qualified_id}: a price for every size"
            if self.price_per_second_audio is not None:
                assert set(self.price_per_second_audio) == set(self.sizes), f"{self.qualified_id}: audio prices"

    @property
    def qualified_id(self) -> str:
        return f"{self.provider}/{self.id}"

    @property
    def deprecated(self) -> bool:
        return self.deprecated_on is not None

    def retired(self, today: date) -> bool:
        return self.deprecated_on is not None and today >= self.deprecated_on

    @property
    def has_audio(self) -> bool:
        return AUDIO in self.capabilities

    def audio_for(self, requested: bool | None) -> bool:
        """Whether the output will carry audio for a request that asked ``requested`` (None: default)."""
        if not self.has_audio:
            return False
        if not self.audio_toggle or requested is None:
            return self.audio_default
        return bool(requested)

    def allowed_sizes(self, *, has_image: bool) -> tuple[str, ...]:
        if not has_image and self.text_to_video_sizes is not None:
            return self.text_to_video_sizes
        return self.sizes

    def cost(self, *, seconds: int, size: str, audio: bool | None = None) -> Decimal:
        """USD for ``seconds`` of ``size`` output: exact, quantized to 0.0001 (half-up)."""
        if self.clip_prices is not None:
            try:
                return self.clip_prices[(seconds, size)].quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)
            except KeyError:
                raise ValueError(f"{self.label} has no price for {seconds} s at {size}.") from None
        table = self.price_per_second
        if self.price_per_second_audio is not None and self.audio_for(audio):
            table = self.price_per_second_audio
        try:
            per_second = table[size]
        except KeyError:
            raise ValueError(f"{self.label} has no price for size {size!r}.") from None
        return (per_second * Decimal(seconds)).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)

    def price_table(self) -> PriceTable:
        """This entry's prices, as one value that can be compared, stored and applied."""
        return PriceTable(
            per_second=dict(self.price_per_second),
            per_second_audio=dict(self.price_per_second_audio) if self.price_per_second_audio is not None else None,
            clip=dict(self.clip_prices) if self.clip_prices is not None else None,
        )

    def with_prices(self, table: PriceTable, *, version: str, source_date: date) -> ModelInfo:
        """This entry at other prices (a refreshed price list): the same model, limits and
        mapping, the given tables, and their ``price_version`` (recorded on every charge)."""
        return replace(
            self,
            price_per_second=table.per_second,
            price_per_second_audio=table.per_second_audio,
            clip_prices=table.clip,
            price_version=version,
            price_source_date=source_date,
        )

    def price_range(self) -> tuple[Decimal, Decimal]:
        """The lowest and highest USD per second over sizes (and audio), for listings."""
        if self.clip_prices is not None:
            values = [price / Decimal(seconds) for (seconds, _size), price in self.clip_prices.items()]
        else:
            values = list(self.price_per_second.values()) + list((self.price_per_second_audio or {}).values())
        return min(values), max(values)


@dataclass(frozen=True)
class PriceTable:
    """The three price tables of a :class:`ModelInfo`, apart from the model: what a price refresh
    computes, what the price history stores (:meth:`as_json`), and what :meth:`ModelInfo.with_prices`
    applies. Tables compare by value (``0.40 == 0.4``): equal tables mean equal prices, and a
    refresh that finds them writes nothing."""

    per_second: Mapping[str, Decimal] = field(default_factory=dict)
    per_second_audio: Mapping[str, Decimal] | None = None
    clip: Mapping[tuple[int, str], Decimal] | None = None

    def as_json(self) -> dict[str, object]:
        """Decimal strings; clip keys as ``"<seconds>@<size>"`` (JSON has no tuple keys)."""
        return {
            "per_second": {size: str(v) for size, v in self.per_second.items()},
            "per_second_audio": (
                {size: str(v) for size, v in self.per_second_audio.items()}
                if self.per_second_audio is not None
                else None
            ),
            "clip": ({f"{s}@{z}": str(v) for (s, z), v in self.clip.items()} if self.clip is not None else None),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PriceTable:
        def prices(value: object) -> dict[str, Decimal] | None:
            if not isinstance(value, Mapping):
                return None
            return {str(k): Decimal(str(v)) for k, v in value.items()}

        clip = prices(data.get("clip"))
        return cls(
            per_second=prices(data.get("per_second")) or {},
            per_second_audio=prices(data.get("per_second_audio")),
            clip=None if clip is None else {(int(k.split("@")[0]), k.split("@")[1]): v for k, v in clip.items()},
        )


def flat(sizes: tuple[str, ...], usd_per_second: str) -> dict[str, Decimal]:
    """The same per-second price for every size."""
    return {size: Decimal(usd_per_second) for size in sizes}


__all__ = [
    "AUDIO",
    "CAPABILITIES",
    "COST_QUANTUM",
    "IMAGE_TO_VIDEO",
    "REMIX",
    "TEXT_TO_VIDEO",
    "ModelInfo",
    "PriceTable",
    "flat",
]
