"""The tenant scope of pages: ``/o/<org_slug>/...`` needs a login and a membership."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import Resolver404, resolve

from apps.accounts.selectors import membership_for
from apps.core.middleware import API_PREFIX
from apps.core.scoping import org_scope, scopes_disabled


class TenantScopeMiddleware:
    """Resolve the organization from the URL (``/o/<org_slug>/...``) and run the view in its scope.

    - A URL with ``org_slug``: login required; a non-member gets 404, never a hint the org exists.
      Sets ``request.organization`` and ``request.membership``.
    - The Django admin runs unscoped (it has its own staff check), through an explicit path.
    - Anything else runs with no scope, so tenant-owned queries raise unless the view (the API base,
      a task) activates one itself.
    The response is rendered inside the scope, so lazy templates cannot escape it.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.admin_prefix = "/" + settings.ADMIN_URL.lstrip("/")

    def __call__(self, request):
        request.organization = None
        request.membership = None
        if request.path_info.startswith(self.admin_prefix):
            with scopes_disabled():
                return self._render(self.get_response(request))
        if request.path_info.startswith(API_PREFIX):
            # The JSON API has no org_slug in its URLs: its scope comes from the token
            # (apps.core.api.OrgScopedAPIView). Not resolving the URL a second time here saves
            # ~0.1 ms of every API request (tests/core/test_api_hot_path.py holds the premise).
            return self.get_response(request)

        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        slug = match.kwargs.get("org_slug")
        if slug is None:
            return self.get_response(request)

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_for(user=request.user, org_slug=slug)
        if membership is None:
            raise Http404("Organization not found or you have no access to it.")
        request.organization = membership.organization
        request.membership = membership
        with org_scope(membership.organization):
            return self._render(self.get_response(request))

    @staticmethod
    def _render(response):
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        return response
