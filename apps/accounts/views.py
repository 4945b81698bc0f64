"""Account and organization pages. Thin: parse the form, call a service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts import selectors, services
from apps.accounts.forms import (
    InvitationForm,
    MemberLimitForm,
    OrganizationCreateForm,
    OrganizationSettingsForm,
    ProfileForm,
    RoleForm,
    SignupForm,
)
from apps.core.errors import ApplicationError, NotFound, PermissionDeniedError


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, asked for by browsers and tools that do not read the page's icon link: the
    static file (a temporary redirect, so a new icon's hashed name is picked up within a day)."""
    return redirect(static("favicon.ico"))


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    memberships = selectors.memberships_for_user(user=request.user)
    if memberships:
        return redirect("org-home", org_slug=memberships[0].organization.slug)
    return redirect("org-list")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, org = services.user_signup(**form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(exc.param if exc.param in form.fields else None, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            next_url = request.POST.get("next") or request.GET.get("next")
            if next_url and next_url.startswith("/invite/"):
                return redirect(next_url)
            messages.success(request, f"Welcome to MediaRouter. {org.name} is ready.")
            return redirect("org-home", org_slug=org.slug)
    return render(request, "accounts/signup.html", {"form": form, "next": request.GET.get("next", "")})


@login_required
@require_http_methods(["GET", "POST"])
def org_list(request: HttpRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.organization_create(owner=request.user, name=form.cleaned_data["name"])
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, f"Created {org.name}.")
            return redirect("org-home", org_slug=org.slug)
    memberships = selectors.memberships_for_user(user=request.user)
    return render(request, "accounts/org_list.html", {"form": form, "memberships": memberships})


@login_required
def org_home(request: HttpRequest, org_slug: str) -> HttpResponse:
    """An organization's landing page is its playground."""
    return redirect("playground", org_slug=org_slug)


def _members_context(request: HttpRequest, **extra) -> dict:
    org = request.organization
    me = request.membership
    members = selectors.member_list(org=org)
    for m in members:
        m.manageable = m.pk != me.pk and me.can_act_on(m)  # role, limit and remove controls
    roles = RoleForm.base_fields["role"].choices
    context = {
        "members": members,
        "invitations": selectors.invitation_list(org=org) if me.can_manage else [],
        "invite_form": InvitationForm(),
        # only owners grant (or invite as) owner
        "roles": roles if me.role == "owner" else [(v, label) for v, label in roles if v != "owner"],
        "can_set_own_limit": me.can_act_on(me),
    }
    context.update(extra)
    return context


def _render_members(request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
    template = "accounts/members.html"
    if request.htmx:
        template += "#members-panel"
    return render(request, template, _members_context(request, **extra), status=status)


@login_required
def members(request: HttpRequest, org_slug: str) -> HttpResponse:
    return _render_members(request)


def _after_action(request: HttpRequest, error: ApplicationError | None = None, **extra) -> HttpResponse:
    if error is not None:
        if isinstance(error, NotFound) and not request.htmx:
            raise Http404(error.message)  # another organization's id, or none at all: the 404 page
        if request.htmx:
            return _render_members(request, status=error.status_code, action_error=error.message, **extra)
        messages.error(request, error.message)
        return _render_members(request, status=error.status_code, **extra)
    if not request.htmx:
        return redirect("org-members", org_slug=request.organization.slug)
    return _render_members(request, **extra)


@login_required
@require_POST
def invitation_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = InvitationForm(request.POST)
    if not form.is_valid():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _after_action(request, ApplicationError(message or "Choose a valid role and email."))
    try:
        invitation, token = services.invitation_create(by=request.membership, **form.cleaned_data)
    except ApplicationError as exc:
        return _after_action(request, exc)
    link = request.build_absolute_uri(reverse("invitation-accept", kwargs={"token": token}))
    # The link is shown once, like a token: only its digest is stored.
    # Rendered in this response (never in a message cookie or the session), for htmx and plain forms.
    return _render_members(request, new_invite_link=link, new_invite=invitation)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, org_slug: str, invitation_id: str) -> HttpResponse:
    try:
        services.invitation_revoke(by=request.membership, public_id=invitation_id)
    except ApplicationError as exc:
        return _after_action(request, exc)
    return _after_action(request)


@login_required
@require_POST
def member_role(request: HttpRequest, org_slug: str, member_id: str) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _after_action(request, ApplicationError("Choose a valid role."))
    try:
        services.membership_change_role(
            by=request.membership, target_public_id=member_id, role=form.cleaned_data["role"]
        )
    except ApplicationError as exc:
        return _after_action(request, exc)
    return _after_action(request)


@login_required
@require_POST
def member_limit(request: HttpRequest, org_slug: str, member_id: str) -> HttpResponse:
    form = MemberLimitForm(request.POST)
    if not form.is_valid():
        return _after_action(request, ApplicationError("Enter a valid amount or leave it empty."))
    try:
        services.membership_set_limit(
            by=request.membership, target_public_id=member_id, monthly_limit=form.cleaned_data["monthly_limit"]
        )
    except ApplicationError as exc:
        return _after_action(request, exc)
    return _after_action(request)


@login_required
@require_POST
def member_remove(request: HttpRequest, org_slug: str, member_id: str) -> HttpResponse:
    try:
        services.membership_remove(by=request.membership, target_public_id=member_id)
    except ApplicationError as exc:
        return _after_action(request, exc)
    return _after_action(request)


@login_required
@require_POST
def org_leave(request: HttpRequest, org_slug: str) -> HttpResponse:
    try:
        services.membership_leave(membership=request.membership)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("org-members", org_slug=org_slug)
    messages.success(request, f"You left {request.organization.name}.")
    return redirect("home")


@login_required
@require_http_methods(["GET", "POST"])
def org_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    org = request.organization
    initial = {
        "name": org.name,
        "monthly_budget": org.monthly_budget,
        "member_monthly_limit": org.member_monthly_limit,
        "retention_days": org.retention_days,
        "sharing_enabled": org.sharing_enabled,
    }
    form = OrganizationSettingsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.organization_update(by=request.membership, fields=tuple(form.fields), **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, "Organization settings saved.")
                return redirect("org-settings", org_slug=org_slug)
        else:
            status = 422
    return render(request, "accounts/org_settings.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_by_token(token=token)
    valid = invitation is not None and invitation.is_pending
    refusal = ""
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except PermissionDeniedError as exc:
            refusal = exc.message  # signed in with another address than the invited one: say so here
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("home")
        else:
            messages.success(request, f"You joined {membership.organization.name} as {membership.get_role_display()}.")
            return redirect("org-home", org_slug=membership.organization.slug)
    other_account = valid and request.user.is_authenticated and not invitation.is_for(request.user)
    return render(
        request,
        "accounts/invitation_accept.html",
        {"invitation": invitation if valid else None, "other_account": other_account, "refusal": refusal},
        status=404 if not valid else 403 if refusal else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, initial={"name": request.user.name})
    if request.method == "POST" and form.is_valid():
        services.user_update_profile(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, "Profile saved.")
        return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form})
