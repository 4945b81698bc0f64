"""Delete stored videos past their retention; keep the ledger and the metadata.

Each organization's own retention setting (Settings → Organization, "Keep videos for") wins;
``--older-than DAYS`` applies to organizations without one. Safe to run twice.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.generations import operations


class Command(BaseCommand):
    help = "Delete stored videos older than the retention period (ledger and metadata are kept)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, metavar="DAYS", help="Retention for organizations without their own"
        )
        parser.add_argument("--dry-run", action="store_true", help="Only print what would be deleted.")

    def handle(self, *args, older_than=None, dry_run: bool = False, **options):
        if older_than is not None and older_than < 1:
            raise CommandError("--older-than must be at least 1 day.")
        purged = operations.purge_media(older_than_days=older_than, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        total = 0
        for gen in purged:
            total += gen.bytes or 0
            self.stdout.write(
                f"{verb} {gen.public_id} ({gen.organization.slug}, {gen.created_at:%Y-%m-%d}, {gen.bytes or 0} bytes)"
            )
        self.stdout.write(f"{verb} the files of {len(purged)} generation(s), {total} bytes.")
