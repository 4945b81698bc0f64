"""Give videos stored before posters, probing and content credentials existed what new ones get at
download time: a poster frame (when the provider gave none), the probe figures with their
mismatches, and the summary of the file's C2PA content credentials.

Idempotent: a video that has all three is skipped, so it is safe to run twice or from cron. Streams
each file through PyAV (constant memory) and the C2PA reader (read only: the stored bytes are never
changed); a file that does not decode is reported and left as it is.
"""

from django.core.management.base import BaseCommand

from apps.generations import media


class Command(BaseCommand):
    help = "Make posters, probe figures and content-credential summaries for stored videos that lack them."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only print what would be done.")

    def handle(self, *args, dry_run: bool = False, **options):
        posters = probed = read = failed = 0
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
            read += result.credentials
            added = (("poster", result.poster), ("probe", result.probed), ("credentials", result.credentials))
            done = ", ".join(what for what, on in added if on)
            if done:
                self.stdout.write(f"{'would add' if dry_run else 'added'} {done}: {gen.public_id}")
        verb = "would make" if dry_run else "made"
        self.stdout.write(
            f"{verb} {posters} poster(s), {probed} probe(s) and {read} credential read(s); {failed} file(s) failed."
        )
