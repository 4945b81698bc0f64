from apps.accounts.selectors import memberships_for_user


def tenant(request):
    """The current organization and the user's other organizations, for the layout's switcher."""
    org = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_org": org, "current_membership": None, "user_memberships": ()}
    return {
        "current_org": org,
        "current_membership": getattr(request, "membership", None),
        # lazy: only queried when the layout renders the switcher
        "user_memberships": lambda: memberships_for_user(user=user),
    }
