from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from apps.generations import health


def service_health(request):
    """Staff only (wrapped in admin_view): queue, states, stuck jobs, provider error rates. It lists
    every organization's stuck jobs: the generations' view permission is needed."""
    if not request.user.has_perm("generations.view_generation"):
        raise PermissionDenied
    snap = health.snapshot()
    context = {
        **admin.site.each_context(request),
        "title": "Service health",
        **snap,
        "windows": [("last hour", snap["last_hour"]), ("last day", snap["last_day"])],
    }
    return TemplateResponse(request, "admin/health.html", context)
