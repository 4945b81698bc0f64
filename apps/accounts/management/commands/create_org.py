from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts import services
from apps.accounts.models import User
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create the user if missing and a new organization owned by them; print the org's slug."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--org", required=True, help="Organization name")

    @transaction.atomic
    def handle(self, *args, email, password, org, **options):
        email = User.objects.normalize_email(email).lower()
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password)
        elif not user.check_password(password):
            raise CommandError(f"{email} exists and the password does not match.")
        try:
            organization = services.organization_create(owner=user, name=org)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(organization.slug)
