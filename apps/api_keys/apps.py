from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "apps.api_keys"
    label = "api_keys"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.accounts.models import Membership, Organization, User
        from apps.api_keys import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from apps.api_keys.authentication import invalidate_identities
        from apps.api_keys.models import ApiToken

        # a change to a token, its user, organization or membership forgets this process's cached
        # identities at once (other processes: within API_TOKEN_CACHE_SECONDS)
        for model in (ApiToken, User, Organization, Membership):
            for signal in (post_save, post_delete):
                signal.connect(
                    invalidate_identities, sender=model, dispatch_uid=f"identities-{model.__name__}-{signal}"
                )
