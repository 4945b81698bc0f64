"""Re-encrypt every stored provider key with the newest key in FERNET_KEYS.

Rotation, step by step: put a new key in front (``FERNET_KEYS=new,old``) and restart; run this
command; then drop the old key (``FERNET_KEYS=new``). Safe to run again: keys already encrypted
with the newest key are left alone. An operator command, so it reads every organization's keys
through the explicitly unscoped ``ProviderKey.all_orgs``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.api_keys import crypto
from apps.api_keys.models import ProviderKey
from apps.audit.services import audit_record

ENCRYPTED_FIELDS = ("ciphertext", "callback_secret_ciphertext")


class Command(BaseCommand):
    help = "Re-encrypt every stored provider key with the newest key in FERNET_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only print what would be re-encrypted.")

    def handle(self, *args, dry_run: bool = False, **options):
        rotated = current = failed = 0
        rows = ProviderKey.all_orgs.select_related("organization").order_by("pk")
        for key in rows.iterator(chunk_size=500):
            # every encrypted column of the key: its credentials and, where the provider signs its
            # callbacks with a per-account secret, that secret
            for field in ENCRYPTED_FIELDS:
                value = getattr(key, field)
                if not value:
                    continue
                what = "" if field == "ciphertext" else f", {field}"
                where = f"{key.public_id} ({key.organization.slug}, {key.provider}{what})"
                if crypto.is_current(value):
                    current += 1
                    continue
                if dry_run:
                    try:
                        crypto.decrypt(value)
                    except crypto.DecryptionError:
                        failed += 1
                        self.stderr.write(f"cannot decrypt {where} with any key in FERNET_KEYS")
                    else:
                        rotated += 1
                        self.stdout.write(f"would re-encrypt {where}")
                    continue
                try:
                    new = crypto.rotate(value)
                except crypto.DecryptionError:
                    failed += 1
                    self.stderr.write(f"cannot decrypt {where} with any key in FERNET_KEYS")
                    continue
                # conditional: a key changed meanwhile is left for the next run, never overwritten
                if ProviderKey.all_orgs.filter(pk=key.pk, **{field: value}).update(**{field: new}):
                    rotated += 1
                    audit_record(
                        org=key.organization_id,
                        action="keys.rotated",
                        target=key.public_id,
                        detail={"provider": key.provider, "key": key.masked, "field": field},
                    )
                    if options["verbosity"] > 1:
                        self.stdout.write(f"re-encrypted {where}")
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"{verb} {rotated} key(s); {current} already current; {failed} unreadable.")
        if failed:
            raise CommandError(
                f"{failed} key(s) could not be decrypted with any key in FERNET_KEYS; "
                "put the old key back at the end of FERNET_KEYS and run again."
            )
