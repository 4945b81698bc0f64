"""Settings → Webhooks. Thin: parse the form, call a service or selector, render. Plain forms
(CSRF on each); a new or rotated secret is rendered once in the answer to that POST, never put in
a message cookie or the session."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import ApplicationError
from apps.webhooks import selectors, services
from apps.webhooks.models import VIDEO_EVENT_TYPES

LIST_TEMPLATE = "webhooks/webhooks.html"
LOG_TEMPLATE = "webhooks/deliveries.html"


@sensitive_variables("extra", "context")
def _list(request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
    context = {
        "endpoints": selectors.endpoint_list(org=request.organization),
        "event_types": VIDEO_EVENT_TYPES,
        **extra,
    }
    return render(request, LIST_TEMPLATE, context, status=status)


def _back(request: HttpRequest, notice: str = "", webhook_id: str | None = None) -> HttpResponse:
    if notice:
        messages.success(request, notice)
    kwargs = {"org_slug": request.organization.slug}
    if webhook_id:
        return redirect(reverse("org-webhook-log", kwargs={**kwargs, "webhook_id": webhook_id}))
    return redirect(reverse("org-webhooks", kwargs=kwargs))


def _error(request: HttpRequest, error: ApplicationError, **extra) -> HttpResponse:
    return _list(request, status=error.status_code, action_error=error.message, **extra)


@login_required
@require_GET
def webhooks_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    return _list(request)


@login_required
@require_POST
@sensitive_variables("secret")
def webhook_add(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = {"url": request.POST.get("url", ""), "description": request.POST.get("description", "")}
    try:
        endpoint, secret = services.endpoint_create(
            by=request.membership,
            url=form["url"],
            events=request.POST.getlist("events") or None,
            description=form["description"],
        )
    except ApplicationError as exc:
        return _error(request, exc, form=form)
    return _list(request, new_secret=secret, new_secret_endpoint=endpoint)


@login_required
@require_GET
def webhook_log(request: HttpRequest, org_slug: str, webhook_id: str) -> HttpResponse:
    endpoint = selectors.endpoint_get(org=request.organization, public_id=webhook_id)
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    deliveries = selectors.delivery_list(endpoint=endpoint)
    return render(request, LOG_TEMPLATE, {"endpoint": endpoint, "deliveries": deliveries})


def _act(request: HttpRequest, action, notice: str, webhook_id: str | None = None) -> HttpResponse:
    try:
        action()
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from None
        return _error(request, exc)
    return _back(request, notice, webhook_id)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, org_slug: str, webhook_id: str) -> HttpResponse:
    return _act(
        request, lambda: services.endpoint_delete(by=request.membership, public_id=webhook_id), "Endpoint deleted."
    )


@login_required
@require_POST
@sensitive_variables("secret")
def webhook_rotate(request: HttpRequest, org_slug: str, webhook_id: str) -> HttpResponse:
    try:
        endpoint, secret = services.endpoint_rotate(by=request.membership, public_id=webhook_id)
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from None
        return _error(request, exc)
    return _list(request, new_secret=secret, new_secret_endpoint=endpoint, rotated=True)


@login_required
@require_POST
def webhook_test(request: HttpRequest, org_slug: str, webhook_id: str) -> HttpResponse:
    return _act(
        request,
        lambda: services.endpoint_test(by=request.membership, public_id=webhook_id),
        "Test event sent; see its delivery below.",
        webhook_id,
    )


@login_required
@require_POST
def webhook_enable(request: HttpRequest, org_slug: str, webhook_id: str) -> HttpResponse:
    return _act(
        request, lambda: services.endpoint_enable(by=request.membership, public_id=webhook_id), "Endpoint enabled."
    )


@login_required
@require_POST
def delivery_retry(request: HttpRequest, org_slug: str, webhook_id: str, delivery_id: str) -> HttpResponse:
    return _act(
        request,
        lambda: services.delivery_retry(by=request.membership, webhook_id=webhook_id, delivery_id=delivery_id),
        "Delivery sent again.",
        webhook_id,
    )
