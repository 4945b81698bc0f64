"""``manage.py cost_drift``: where our charges differ from what suppliers report they billed.

Reads the completed jobs' ``provider_usage`` (what each adapter recorded of the supplier's own
figures: fal's billable units times its unit price, BytePlus's usage tokens times its token price, …) next
to the charge MediaRouter made, by supplier and model. Read-only."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from apps.generations import selectors


class Command(BaseCommand):
    help = "List the drift between our charges and what suppliers report, by supplier and model."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only jobs completed on or after this day (YYYY-MM-DD).")
        parser.add_argument("--provider", help="Only this supplier.")
        parser.add_argument(
            "--threshold", type=float, default=0.0, help="Only lines whose drift exceeds this share (0.05 = 5 %%)."
        )

    def handle(self, *args, since=None, provider=None, threshold=0.0, **options):
        try:
            day = date.fromisoformat(since) if since else None
        except ValueError:
            raise CommandError("--since takes a date as YYYY-MM-DD.") from None
        rows = selectors.cost_drift(since=day, provider=provider)
        shown = 0
        for row in rows:
            if not row.reported_jobs:
                continue
            share = abs(row.drift) / row.charged if row.charged else None
            if threshold and share is not None and share <= threshold:
                continue
            self.stdout.write(row.describe())
            shown += 1
        unreported = sum(r.jobs for r in rows if not r.reported_jobs)
        if not shown:
            self.stdout.write("No drift: every reported cost matches what we charged.")
        if unreported:
            self.stdout.write(f"({unreported} completed jobs have no provider-reported cost.)")
