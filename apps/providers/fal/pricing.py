"""fal's price list (the platform API's ``GET /v1/models/pricing``) mapped onto our price tables.

fal publishes **one** unit price per endpoint (``{"endpoint_id", "unit_price", "unit",
"currency"}``), while our catalog prices a model by size, audio and (for some) duration. fal
documents its video prices as a base price with proportional adjustments for resolution and
length, so a quote is mapped like this, and only like this:

- the catalog entry names its *reference* in ``extra["price_reference"]``: the endpoint whose unit
  price fal lists, the unit expected (``second`` or ``video``) and the cell of our table that the
  unit price is (size, audio on or off; for per-clip models, the duration too);
- the new table is the catalog's table scaled by ``new unit price / catalog reference price``, so
  the reference cell becomes fal's figure exactly and the other cells keep their ratios to it;
- anything else is *not mapped* and the catalog price stays: an entry without a reference (fal's
  single figure is not one cell of our table: Kling's tiers and voice option, Hailuo's per-video
  prices that depend on the duration), another unit (tokens, GPU seconds), another currency, or an
  endpoint the list does not price.

Prices come back per endpoint; one call takes at most :data:`MAX_IDS_PER_CALL` ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from apps.providers import http
from apps.providers.base import PriceQuote, ProviderError
from apps.providers.modelinfo import ModelInfo, PriceTable

if TYPE_CHECKING:
    from apps.providers.fal.adapter import FalProvider

MAX_IDS_PER_CALL = 50  # fal: "Accepts 1-50 endpoint IDs"
MAX_PAGES = 20  # a price list that keeps saying has_more is not followed forever
PRICE_QUANTUM = Decimal("0.00000001")  # scaled per-second and per-clip prices
# fal's unit names (singular in its docs, plural in some answers) -> the unit of our tables
UNITS = {"second": "second", "seconds": "second", "video": "video", "videos": "video"}


@dataclass(frozen=True)
class Listed:
    """One row of fal's price list."""

    unit_price: Decimal
    unit: str
    currency: str

    def describe(self) -> str:
        return f"{self.unit_price} {self.currency or 'USD'} per {self.unit or '?'}"


def reference_endpoint(model: ModelInfo) -> str | None:
    ref = model.extra.get("price_reference")
    return str(ref["endpoint"]) if isinstance(ref, Mapping) else None


def fetch(adapter: FalProvider, endpoint_ids: Iterable[str]) -> dict[str, Listed]:
    """fal's price list for these endpoints, in calls of at most 50 ids (following
    ``next_cursor`` while ``has_more``). Raises ProviderError on any answer but a 2xx with a
    ``prices`` list: a refresh never works from a half-read list."""
    wanted = sorted(set(endpoint_ids))
    found: dict[str, Listed] = {}
    for start in range(0, len(wanted), MAX_IDS_PER_CALL):
        batch = wanted[start : start + MAX_IDS_PER_CALL]
        cursor = None
        for _page in range(MAX_PAGES):
            params: dict[str, Any] = {"endpoint_id": batch}
            if cursor:
                params["cursor"] = cursor
            response = http.request(
                "GET", f"{adapter._api_base_url()}/v1/models/pricing", headers=adapter._headers(), params=params
            )
            if not 200 <= response.status_code < 300:
                raise adapter._error(response, what=" (reading its price list)")
            body = http.read_json(response)
            rows = body.get("prices") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise ProviderError(
                    "fal's price list answered without a 'prices' list.", code="bad_response", status_code=200
                )
            found.update(_rows(rows, batch))
            cursor = body.get("next_cursor")
            if not body.get("has_more") or not isinstance(cursor, str) or not cursor:
                break
    return found


def _rows(rows: list[Any], asked: Sequence[str]) -> dict[str, Listed]:
    """The well-formed rows for endpoints we asked about (a malformed row is as if unlisted)."""
    out = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("endpoint_id") not in asked:
            continue
        try:
            price = Decimal(str(row["unit_price"]))
        except (KeyError, InvalidOperation, ValueError):
            continue
        if not price.is_finite():
            continue
        out[str(row["endpoint_id"])] = Listed(price, str(row.get("unit") or ""), str(row.get("currency") or ""))
    return out


def quote(model: ModelInfo, listed: Mapping[str, Listed]) -> PriceQuote:
    """``model``'s table at fal's listed price, or why it cannot be mapped (see the module)."""
    ref = model.extra.get("price_reference")
    if not isinstance(ref, Mapping):
        how = model.extra.get("billing") or "not per second or per video"
        return PriceQuote(model=model, reason=f"no single fal unit price stands for our table ({how})")
    endpoint = str(ref["endpoint"])
    row = listed.get(endpoint)
    if row is None:
        return PriceQuote(model=model, reason=f"fal's price list has no price for {endpoint}")
    quoted = {endpoint: row.describe()}
    base = {"model": model, "unit": row.unit, "unit_price": row.unit_price, "quoted": quoted}
    if row.currency and row.currency.upper() != "USD":
        return PriceQuote(**base, reason=f"priced in {row.currency}, not USD")
    unit = UNITS.get(row.unit.strip().lower())
    if unit != ref["unit"]:
        return PriceQuote(**base, reason=f"unit {row.unit or '(none)'!r} (our table is per {ref['unit']})")
    if row.unit_price <= 0:
        return PriceQuote(**base, reason=f"unit price {row.unit_price} is not a price")
    old = _reference_price(model, ref)
    return PriceQuote(**base, catalog_unit_price=old, prices=_scaled(model.price_table(), new=row.unit_price, old=old))


def _reference_price(model: ModelInfo, ref: Mapping[str, Any]) -> Decimal:
    if model.clip_prices is not None:
        return model.clip_prices[(int(ref["seconds"]), str(ref["size"]))]
    table = model.price_per_second
    if ref.get("audio") and model.price_per_second_audio is not None:
        table = model.price_per_second_audio
    return table[str(ref["size"])]


def _scaled(table: PriceTable, *, new: Decimal, old: Decimal) -> PriceTable:
    """Every cell times ``new / old`` (multiplied first, so the reference cell is ``new`` exactly)."""

    def scale(prices: Mapping[Any, Decimal] | None) -> dict[Any, Decimal] | None:
        if prices is None:
            return None
        return {key: (value * new / old).quantize(PRICE_QUANTUM) for key, value in prices.items()}

    return PriceTable(
        per_second=scale(table.per_second) or {},
        per_second_audio=scale(table.per_second_audio),
        clip=scale(table.clip),
    )


def fetch_prices(adapter: FalProvider, models: Sequence[ModelInfo]) -> list[PriceQuote]:
    """One quote per catalog entry, from one read of fal's price list."""
    endpoints = [e for e in (reference_endpoint(m) for m in models) if e]
    listed = fetch(adapter, endpoints) if endpoints else {}
    return [quote(model, listed) for model in models]
