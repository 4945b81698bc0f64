from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.audit import selectors


@login_required
@require_GET
def audit_log(request, org_slug: str):
    """Owners and admins see who changed keys, tokens, members and budgets."""
    if not request.membership.can_manage:
        raise PermissionDenied("Only owners and admins can see the audit log.")
    page = Paginator(selectors.audit_list(org=request.organization), 50).get_page(request.GET.get("page"))
    return render(request, "audit/audit.html", {"page": page})
