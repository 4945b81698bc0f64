"""Give videos stored before posters and probing existed what new ones get at download time: a
poster frame (when the provider gave none) and the probe figures with their mismatches.

Idempotent: a video that has both is skipped, so it is safe to run twice or from cron. Streams each
file through PyAV (constant memory); a file that does not decode is reported and left as it is.
"""

from django.core.management.base import BaseCommand

from apps.generations import media


class Command(BaseCommand):
    help = "Make posters and probe figures for stored videos that lack them."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only print what would be done.")

    def handle(self, *args, dry_run: bool = False, **options):
        posters = probed = failed = 0
        for gen in media.backfill_candidates():
            try:
                result = media.backfill(gen, dry_run=dry_run)
            except media.NotAVideo as exc:
                failed += 1
                self.stderr.write(f"{gen.public_id}: does not decode as video ({exc}); left as it is")
                continue
            except OSError as exc:
                failed += 1
                self.stderr.write(f"{gen.public_id}: could not read the stored file ({type(exc).__name__})")
                continue
            posters += result.poster
            probed += result.probed
            if result.poster or result.probed:
                done = ", ".join(w for w, on in (("poster", result.poster), ("probe", result.probed)) if on)
                self.stdout.write(f"{'would add' if dry_run else 'added'} {done}: {gen.public_id}")
        verb = "would make" if dry_run else "made"
        self.stdout.write(f"{verb} {posters} poster(s) and {probed} probe(s); {failed} file(s) failed.")
