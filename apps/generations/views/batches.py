"""Batch pages: the Playground's batch mode posts here (create, and its live estimate); a batch's
page shows every item's progress (its ``#batch-progress`` fragment polls itself each second, 286
once every item has ended), the total cost, "retry failed" and the zip of the finished videos."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HTMX_STOP_POLLING

from apps.billing.selectors import budget_status
from apps.core.errors import ApplicationError, NotFound
from apps.core.views import wants_fragment
from apps.generations import archive, batches, selectors
from apps.generations.forms import BatchForm
from apps.generations.models import Batch
from apps.generations.views.playground import PLAYGROUND, batch_mode_context

DETAIL = "generations/batch_detail.html"
LIST = "generations/batch_list.html"


def batch_or_404(request: HttpRequest, batch_id: str) -> Batch:
    batch = selectors.batch_get(org=request.organization, public_id=batch_id)
    if batch is None:
        raise Http404("No such batch in this organization.")
    return batch


def _estimate_context(request: HttpRequest, form: BatchForm) -> dict:
    """The live estimate of the batch on screen: total, items, per-row problems, budget room."""
    org_budget, member_budget = budget_status(org=request.organization, membership=request.membership)
    estimate = None
    if form.is_valid():
        estimate = batches.batch_estimate(org=request.organization, requests=form.requests)
    over = estimate is not None and any(
        b.remaining is not None and estimate.total > b.remaining for b in (org_budget, member_budget)
    )
    return {
        "batch_form": form,
        "estimate": estimate,
        "over_budget": over,
        "org_budget": org_budget,
        "member_budget": member_budget,
    }


@login_required
@require_http_methods(["GET", "POST"])
def batch_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """GET: the organization's batches. POST: create one from the Playground's batch mode (or,
    with ``?estimate=1``, answer its live estimate only)."""
    if request.method == "GET":
        rows = list(selectors.batch_list(org=request.organization)[:50])
        summaries = selectors.batch_summaries(org=request.organization, batches=rows)
        return render(request, LIST, {"summaries": summaries})
    groups = selectors.playground_models(org=request.organization)
    form = BatchForm(request.POST, request.FILES, groups=groups)
    if request.GET.get("estimate"):
        return render(request, PLAYGROUND + "#batch-estimate", _estimate_context(request, form))
    status = 422
    if form.is_valid():
        try:
            batch = batches.batch_create(
                by=request.membership, requests=form.requests, concurrency=form.cleaned_data["concurrency"]
            )
        except batches.BatchItemError as exc:
            form.add_error(None, f"Row {exc.index + 1}: {exc.item_message}")
            status = exc.status_code if exc.status_code != 400 else 422
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code if exc.status_code != 400 else 422
        else:
            messages.success(request, f"{batch.item_count} videos are on their way.")
            return redirect("batch-detail", org_slug=org_slug, batch_id=batch.public_id)
    context = batch_mode_context(request, form, groups)
    return render(request, PLAYGROUND, context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def batch_detail(request: HttpRequest, org_slug: str, batch_id: str) -> HttpResponse:
    summary = selectors.batch_summary(batch=batch_or_404(request, batch_id))
    context = {"summary": summary, "batch": summary.batch}
    if wants_fragment(request):
        status = HTMX_STOP_POLLING if summary.finished else 200
        return render(request, DETAIL + "#batch-progress", context, status=status)
    return render(request, DETAIL, context)


@login_required
@require_POST
def batch_retry(request: HttpRequest, org_slug: str, batch_id: str) -> HttpResponse:
    batch = batch_or_404(request, batch_id)
    try:
        items = batches.batch_retry(by=request.membership, batch=batch)
    except batches.BatchItemError as exc:
        messages.error(request, f"Row {exc.index + 1}: {exc.item_message}")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Asked again for {len(items)} failed video{'s' if len(items) != 1 else ''}.")
    return redirect("batch-detail", org_slug=org_slug, batch_id=batch_id)


@login_required
@require_GET
def batch_content(request: HttpRequest, org_slug: str, batch_id: str) -> HttpResponse:
    """The finished videos as one zip, streamed from storage."""
    summary = selectors.batch_summary(batch=batch_or_404(request, batch_id))
    try:
        return archive.zip_response(summary)
    except NotFound as exc:
        raise Http404(exc.message) from None
