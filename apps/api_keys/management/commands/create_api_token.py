from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Organization, User
from apps.api_keys import services
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API token for a member of an organization and print only the token."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--org", required=True, help="Organization slug")
        parser.add_argument("--name", default="CLI token")

    def handle(self, *args, email, org, name, **options):
        user = User.objects.filter(email=User.objects.normalize_email(email).lower()).first()
        if user is None:
            raise CommandError(f"No user with email {email}.")
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug {org}.")
        try:
            _, token = services.api_token_create(org=organization, user=user, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(token)
