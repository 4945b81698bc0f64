"""The catalog's price history: which price applies to a model now (read), and the refresh from a
supplier's price list (write, ``manage.py refresh_prices``).

The catalog in code is the default. A :class:`~apps.billing.models.CatalogPrice` row overrides a
(supplier, model)'s price tables from its ``valid_from`` on; the newest row in effect wins.
:func:`catalog_price_effective` is the one read, called where a request is priced
(``apps.generations.resolve`` and the engine's move to another supplier): the estimate, the hold,
the charge and the generation's ``price_version`` all follow it, and a generation priced before a
refresh keeps its amounts and version. Adapters fetch and map prices (``fetch_prices``); this module
only stores what they answer, and never touches the database from the provider layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organization
from apps.api_keys import selectors as key_selectors
from apps.api_keys import services as key_services
from apps.billing.models import CatalogPrice
from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope
from apps.providers import catalog, registry
from apps.providers.base import Credentials, PriceQuote, VideoProvider
from apps.providers.modelinfo import ModelInfo, PriceTable

logger = logging.getLogger(__name__)

SOURCE = "{label} pricing API"
UNCHANGED, CHANGED, NOT_MAPPED = "unchanged", "changed", "not mapped"


def _newest(model: ModelInfo, at: datetime) -> CatalogPrice | None:
    return (
        CatalogPrice.objects.filter(supplier=model.provider, model=model.id, valid_from__lte=at)
        .order_by("-valid_from", "-id")
        .first()
    )


def catalog_price_effective(model: ModelInfo, *, at: datetime | None = None) -> ModelInfo:
    """``model`` at the price in effect ``at`` (now): the newest history row's tables and
    version, else the catalog's own. One query."""
    row = _newest(model, at or timezone.now())
    return model if row is None else _apply(model, row)


def catalog_pricer(*, at: datetime | None = None) -> Callable[[ModelInfo], ModelInfo]:
    """:func:`catalog_price_effective` for many models with one query: reads the newest row in
    effect of every (supplier, model) once, for a page or a listing that prices the whole catalog."""
    at = at or timezone.now()
    newest: dict[tuple[str, str], CatalogPrice] = {}
    for row in CatalogPrice.objects.filter(valid_from__lte=at).order_by("valid_from", "id"):
        newest[(row.supplier, row.model)] = row  # ascending: the newest in effect is written last

    def price(model: ModelInfo) -> ModelInfo:
        row = newest.get((model.provider, model.id))
        return model if row is None else _apply(model, row)

    return price


def _apply(model: ModelInfo, row: CatalogPrice) -> ModelInfo:
    table = PriceTable.from_json(row.prices)
    if _shape(table) != _shape(model.price_table()):
        # the catalog's sizes or durations changed since the row was written: it no longer prices
        # every option, so the catalog's own (complete) table applies until the next refresh
        logger.warning("price %s of %s no longer fits the catalog entry; the catalog price applies", row, model)
        return model
    return model.with_prices(table, version=row.price_version, source_date=timezone.localdate(row.fetched_at))


def _shape(table: PriceTable) -> tuple:
    """Which cells a table prices (not at what price)."""
    return tuple(
        None if part is None else frozenset(part) for part in (table.per_second, table.per_second_audio, table.clip)
    )


def catalog_price_versions(
    pairs: Iterable[tuple[str, str]], *, at: datetime | None = None
) -> dict[tuple[str, str], str]:
    """The ``price_version`` in effect ``at`` (now) for each (supplier, canonical model): the newest
    history row's, else the catalog's ("" for a model the catalog no longer lists). One query."""
    wanted = set(pairs)
    versions = {}
    for supplier, model in wanted:
        entry = catalog.supplier_model(supplier, model)
        versions[(supplier, model)] = entry.price_version if entry is not None else ""
    rows = (
        CatalogPrice.objects.filter(valid_from__lte=at or timezone.now(), supplier__in={s for s, _ in wanted})
        .order_by("supplier", "model", "valid_from", "id")
        .values_list("supplier", "model", "price_version")
    )
    for supplier, model, version in rows:  # ascending: the newest in effect is written last
        if (supplier, model) in wanted:
            versions[(supplier, model)] = version
    return versions


def _price_list_supplier(supplier: str) -> type[VideoProvider]:
    cls = registry.get_provider_class(supplier, allow_disabled=True)
    if not cls.supports_price_lookup:
        raise ApplicationError(f"{cls.label} publishes no price list MediaRouter can read.", param="supplier")
    return cls


def pricing_credentials(*, supplier: str, org_slug: str | None = None) -> Credentials:
    """The key a refresh reads the price list with: an organization's default key for the
    supplier (``org_slug``), else the operator's ``<SLUG>_PRICING_KEY`` setting. Raises
    ApplicationError (never naming the key) when there is neither."""
    cls = _price_list_supplier(supplier)
    if org_slug:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise ApplicationError(f"No organization {org_slug!r}.", param="org")
        with org_scope(org):
            key = key_selectors.provider_key_for(org=org, provider=supplier)
            if key is None:
                raise ApplicationError(f"{org.name} has no {cls.label} key.", param="org")
            return key_services.provider_key_credentials(key=key)
    setting = f"{supplier.upper()}_PRICING_KEY"
    value = registry.provider_setting(supplier, "PRICING_KEY")
    if not value:
        raise ApplicationError(f"Set {setting}, or name an organization whose {cls.label} key to use (--org).")
    # the operator's key is the provider's main credential field (fal: api_key)
    return Credentials(**{cls.key_fields[0].name: value})


@dataclass(frozen=True)
class PriceChange:
    """One model's line of a refresh: the quote, the price in effect before, what was done."""

    quote: PriceQuote
    before: ModelInfo  # the model at the price in effect before the refresh
    before_unit_price: Decimal | None  # the same unit's price before (history row, else catalog)
    status: str  # UNCHANGED, CHANGED or NOT_MAPPED
    written: CatalogPrice | None = None  # the new history row (None: dry run, or nothing to write)

    @property
    def change_percent(self) -> Decimal | None:
        old, new = self.before_unit_price, self.quote.unit_price
        if self.status == NOT_MAPPED or not old or new is None:
            return None
        return ((new - old) / old * 100).quantize(Decimal("0.1"))


def _version(supplier: str, model: str, at: datetime) -> str:
    """``fal-api-20261201T221500Z``: the supplier, where the price came from, and when (``-2``,
    ``-3``… for another version of the model within the same second)."""
    base = f"{supplier}-api-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    taken = CatalogPrice.objects.filter(supplier=supplier, model=model, price_version__startswith=base).count()
    return f"{base}-{taken + 1}" if taken else base


@transaction.atomic
def catalog_prices_refresh(
    *, supplier: str, credentials: Credentials, dry_run: bool = False, now: datetime | None = None
) -> list[PriceChange]:
    """Read ``supplier``'s price list and record every mapped price that differs from the one in
    effect as a new history row valid from ``now``. ``dry_run`` writes nothing. Idempotent: the
    same prices again write no row. Raises ProviderError when the list cannot be read (nothing is
    written) and ApplicationError for a supplier without a price list."""
    slug = registry.canonical_slug(supplier)
    cls = _price_list_supplier(slug)
    now = now or timezone.now()
    adapter = registry.build(slug, credentials, allow_disabled=True)
    models = [m for m in catalog.all_models() if m.provider == slug]
    changes = []
    for quote in adapter.fetch_prices(models):
        row = _newest(quote.model, now)
        before = catalog_price_effective(quote.model, at=now)
        before_unit = row.unit_price if row is not None else quote.catalog_unit_price
        if quote.prices is None:
            changes.append(PriceChange(quote, before, before_unit, NOT_MAPPED))
            continue
        if quote.prices == before.price_table():
            changes.append(PriceChange(quote, before, before_unit, UNCHANGED))
            continue
        written = None
        if not dry_run:
            written = CatalogPrice.objects.create(
                supplier=slug,
                model=quote.model.id,
                unit=quote.unit[:40],
                unit_price=quote.unit_price,
                prices=quote.prices.as_json(),
                price_version=_version(slug, quote.model.id, now),
                valid_from=now,
                source=SOURCE.format(label=cls.label),
                fetched_at=now,
            )
        changes.append(PriceChange(quote, before, before_unit, CHANGED, written))
    return changes
