"""Settings → Keys & tokens. Thin: parse the form, call a service or selector, render.

One page (``api_keys/keys.html``) with two inline partials, ``keys-panel`` and ``tokens-panel``.
htmx requests get the panel they act on; plain form posts redirect back to the page (or, for a new
API token, render the page once with the token, so it never travels in a cookie or the session).
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from apps.api_keys import selectors, services
from apps.api_keys.forms import ApiTokenForm, ProviderKeyForm
from apps.api_keys.models import KeyStatus
from apps.core.errors import ApplicationError

TEMPLATE = "api_keys/keys.html"
KEYS, TOKENS = "keys-panel", "tokens-panel"


def _context(request: HttpRequest, *, key_form: ProviderKeyForm | None = None, **extra) -> dict:
    org, membership = request.organization, request.membership
    options = selectors.key_provider_options()
    context = {
        "key_groups": selectors.provider_key_groups(org=org),
        "key_options": options,
        "key_form": key_form or ProviderKeyForm(options=options),
        "token_form": ApiTokenForm(),
        # owners and admins see every token of the organization; others only their own
        "tokens": selectors.api_token_list(org=org, user=None if membership.can_manage else request.user),
    }
    context.update(extra)
    return context


def _render(request: HttpRequest, panel: str, *, status: int = 200, **extra) -> HttpResponse:
    template = f"{TEMPLATE}#{panel}" if request.htmx else TEMPLATE
    return render(request, template, _context(request, active_panel=panel, **extra), status=status)


def _done(request: HttpRequest, panel: str, *, error: ApplicationError | None = None, notice: str = ""):
    """After an action: the panel for htmx; for a plain post, the page with the error, or a redirect
    back to the page (Post/Redirect/Get)."""
    if error is not None:
        return _render(request, panel, status=error.status_code, action_error=error.message)
    if not request.htmx:
        if notice:
            messages.success(request, notice)
        return redirect(reverse("org-keys", kwargs={"org_slug": request.organization.slug}) + f"#{panel}")
    return _render(request, panel, notice=notice)


# every secret credential field any provider declares: hidden from Django's error reports
SECRET_FIELD_NAMES = sorted(
    {f.name for option in selectors.key_provider_options(include_disabled=True) for f in option.key_fields if f.secret}
)


@login_required
@require_GET
def keys_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    panel = TOKENS if request.htmx and request.htmx.target == TOKENS else KEYS
    return _render(request, panel)


@login_required
@require_POST
@sensitive_post_parameters(*SECRET_FIELD_NAMES)
def key_add(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = ProviderKeyForm(request.POST, request.FILES, options=selectors.key_provider_options())
    if not form.is_valid():
        return _render(request, KEYS, status=422, key_form=form)
    try:
        key = services.provider_key_create(
            by=request.membership,
            provider=form.cleaned_data["provider"],
            label=form.cleaned_data.get("label") or "",
            make_default=form.cleaned_data.get("make_default"),
            **form.credential_fields(),
        )
    except ApplicationError as exc:
        status = 422 if exc.status_code == 400 else exc.status_code
        if exc.param in form.fields:
            form.add_error(exc.param, exc.message)
            return _render(request, KEYS, status=status, key_form=form)
        return _render(request, KEYS, status=status, key_form=form, action_error=exc.message)
    if key.status == KeyStatus.VALID:
        notice = f"Added the {key.provider_label} key {key.masked}; the provider accepted it."
    else:
        notice = f"Added the {key.provider_label} key {key.masked}, unchecked: {key.last_error}"
    return _done(request, KEYS, notice=notice)


def _key_action(request: HttpRequest, action, describe) -> HttpResponse:
    """Run one key service; answer with the keys panel and a notice, or the service's error."""
    try:
        result = action(by=request.membership)
    except ApplicationError as exc:
        return _done(request, KEYS, error=exc)
    return _done(request, KEYS, notice=describe(result))


def _validated(key) -> str:
    if key.status == KeyStatus.VALID and not key.last_error:
        return f"The key {key.masked} works."
    return f"The key {key.masked} is {key.status}: {key.last_error}"


@login_required
@require_POST
def key_validate(request: HttpRequest, org_slug: str, key_id: str) -> HttpResponse:
    return _key_action(request, partial(services.provider_key_validate, public_id=key_id), _validated)


@login_required
@require_POST
def key_make_default(request: HttpRequest, org_slug: str, key_id: str) -> HttpResponse:
    return _key_action(
        request,
        partial(services.provider_key_set_default, public_id=key_id),
        lambda key: f"The key {key.masked} is now the default for {key.provider_label}.",
    )


@login_required
@require_POST
def key_delete(request: HttpRequest, org_slug: str, key_id: str) -> HttpResponse:
    return _key_action(request, partial(services.provider_key_delete, public_id=key_id), lambda _: "Key deleted.")


@login_required
@require_POST
def token_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _done(request, TOKENS, error=ApplicationError("Give the token a name (up to 100 characters)."))
    api_token, token = services.api_token_create(
        org=request.organization, user=request.user, name=form.cleaned_data["name"]
    )
    # shown once, in this response only (never in a message cookie or the session)
    return _render(request, TOKENS, new_token=token, new_token_row=api_token)


@login_required
@require_POST
def token_revoke(request: HttpRequest, org_slug: str, token_id: str) -> HttpResponse:
    try:
        api_token = services.api_token_revoke(by=request.membership, public_id=token_id)
    except ApplicationError as exc:
        return _done(request, TOKENS, error=exc)
    return _done(request, TOKENS, notice=f"Revoked the token “{api_token.name}”.")
