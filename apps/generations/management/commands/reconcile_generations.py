"""Find stuck or uncertain generations and resolve them through the provider.

Safe from cron or beat and safe to run twice: each step claims its row with a conditional update
and is idempotent. ``--dry-run`` prints what it would do.
"""

from django.core.management.base import BaseCommand

from apps.generations import operations


class Command(BaseCommand):
    help = "Resolve stuck or uncertain generations through their provider."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only print what would be done.")

    def handle(self, *args, dry_run: bool = False, **options):
        findings = operations.reconcile(dry_run=dry_run)
        verb = "would run" if dry_run else "ran"
        for f in findings:
            self.stdout.write(
                f"{f.generation.public_id} ({f.generation.organization.slug}): {f.problem}; {verb} {f.action}"
            )
        self.stdout.write(f"{len(findings)} stuck generation(s); {'nothing changed' if dry_run else 'resolved'}.")
