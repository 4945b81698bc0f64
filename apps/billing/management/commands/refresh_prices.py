"""``manage.py refresh_prices --supplier fal [--dry-run] [--org SLUG]``: refresh the catalog's prices
from a supplier's price list, keeping their history (``apps/billing/prices.py``).

Prints one line per catalog model: the unit price in effect before and the listed one, the change
in per cent, and whether a new history row was written; a quote that cannot be mapped onto our
tables is reported as "not mapped, catalog price kept" and changes nothing. ``--dry-run`` prints the
same diff and writes nothing. The key is the organization's (``--org``) or the operator's
``<SLUG>_PRICING_KEY``; it is never printed (provider messages are scrubbed of it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.api_keys.crypto import DecryptionError
from apps.billing import prices
from apps.core.errors import ApplicationError
from apps.providers import registry
from apps.providers.base import ProviderError


def _amount(value) -> str:
    return "—" if value is None else f"{value.normalize():f}"


class Command(BaseCommand):
    help = "Refresh catalog prices from a supplier's price list (fal), keeping the price history."

    def add_arguments(self, parser):
        parser.add_argument("--supplier", required=True, help="The supplier whose price list to read (fal).")
        parser.add_argument("--dry-run", action="store_true", help="Print the diff; write nothing.")
        parser.add_argument("--org", help="Read the price list with this organization's key for the supplier.")

    def handle(self, *args, supplier, dry_run=False, org=None, **options):
        try:
            slug = registry.canonical_slug(supplier)
            credentials = prices.pricing_credentials(supplier=slug, org_slug=org)
            changes = prices.catalog_prices_refresh(supplier=slug, credentials=credentials, dry_run=dry_run)
        except (registry.UnknownProvider, ApplicationError, DecryptionError) as exc:
            raise CommandError(str(exc)) from None
        except ProviderError as exc:
            raise CommandError(f"The price list could not be read: {exc.message}") from None
        self.stdout.write(f"{'model':<28} {'unit':<10} {'before':>10}    {'listed':<10} {'change':>8}  result")
        for change in changes:
            self.stdout.write(self._line(change, dry_run=dry_run))
        written = sum(1 for c in changes if c.written is not None)
        pending = sum(1 for c in changes if c.status == prices.CHANGED)
        if dry_run:
            self.stdout.write(f"Dry run: {pending} price(s) would change; nothing written.")
        else:
            self.stdout.write(f"{written} new price version(s) written.")

    @staticmethod
    def _line(change: prices.PriceChange, *, dry_run: bool) -> str:
        quote = change.quote
        name = quote.model.qualified_id
        if change.status == prices.NOT_MAPPED:
            return f"{name:<28} not mapped, catalog price kept: {quote.reason}"
        pct = change.change_percent
        shown = "" if pct is None else f"{pct:+}%"
        if change.status == prices.UNCHANGED:
            result = f"unchanged ({change.before.price_version})"
        elif dry_run:
            result = "would write a new version"
        else:
            result = f"written as {change.written.price_version}"
        before, listed = _amount(change.before_unit_price), _amount(quote.unit_price)
        return f"{name:<28} {quote.unit:<10} {before:>10} -> {listed:<10} {shown:>8}  {result}"
