"""The playground: the organization's landing page, where members generate (and remix) videos.
``#playground-options`` is the catalog-driven options and estimate fragment, refreshed when the
model, duration or size changes."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.billing.selectors import budget_status
from apps.core.errors import ApplicationError
from apps.generations import selectors, services
from apps.generations.forms import BatchForm, PlaygroundForm
from apps.generations.models import Generation, State
from apps.generations.resolve import generation_model
from apps.generations.views.common import with_models
from apps.providers import catalog

PLAYGROUND = "generations/playground.html"
RECENT_COUNT = 6
RECENT_BATCHES = 5


def _remix_source(request: HttpRequest, video_id: str | None) -> Generation | None:
    """A completed video of this organization whose model can remix, or None."""
    if not video_id:
        return None
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None or gen.state != State.COMPLETED:
        return None
    model = generation_model(gen)
    if model is None or catalog.REMIX not in model.capabilities:
        return None
    return gen


def _initial(request: HttpRequest) -> dict:
    """Prefill from the query string: ``?remix=<video>`` or ``?reuse=<video>`` (a video's settings),
    or the fields themselves (the no-JS "update options" button)."""
    source_id = request.GET.get("remix") or request.GET.get("reuse")
    source = selectors.generation_get(org=request.organization, public_id=source_id) if source_id else None
    if source is not None:
        initial = {"model": source.model, "seconds": source.seconds, "size": source.size, "prompt": source.prompt}
        if source.seed is not None:
            initial["seed"] = source.seed
        initial["negative_prompt"] = source.negative_prompt
        return initial
    names = ("prompt", "model", "seconds", "size", "seed", "negative_prompt")
    return {name: request.GET[name] for name in names if request.GET.get(name)}


def _playground_context(request: HttpRequest, form: PlaygroundForm, remix: Generation | None, **extra) -> dict:
    org, membership = request.organization, request.membership
    org_budget, member_budget = budget_status(org=org, membership=membership)
    recent = selectors.generation_list(org=org, filters=selectors.GenerationFilters(user_email=request.user.email))
    context = {
        "form": form,
        "model": form.model_info,
        "remix": remix,
        "org_budget": org_budget,
        "member_budget": member_budget,
        "recent": with_models(recent[:RECENT_COUNT]),
        "can_generate": membership.can_generate,
    }
    context.update(extra)
    return context


def _create(request: HttpRequest, form: PlaygroundForm, remix: Generation | None) -> Generation:
    data = form.cleaned_data
    if remix is not None:
        return services.generation_remix(
            org=request.organization,
            user=request.user,
            source=remix,
            prompt=data["prompt"],
            membership=request.membership,
        )
    image = data.get("image")
    return services.generation_create(
        org=request.organization,
        user=request.user,
        request=services.GenerationRequest(
            model=data["model"],
            prompt=data["prompt"],
            seconds=data["seconds"],
            size=data["size"],
            seed=data.get("seed"),
            negative_prompt=data.get("negative_prompt") or "",
            # read one byte past the limit at most: the service reports the size, never more memory
            image=image.read(settings.INPUT_IMAGE_MAX_BYTES + 1) if image else None,
            image_content_type=image.content_type if image else None,
        ),
        membership=request.membership,
    )


def batch_mode_context(request: HttpRequest, form: BatchForm, groups) -> dict:
    """The Playground in batch mode: the batch form, the budgets and the member's recent batches."""
    org, membership = request.organization, request.membership
    org_budget, member_budget = budget_status(org=org, membership=membership)
    recent = list(selectors.batch_list(org=org).filter(created_by=request.user)[:RECENT_BATCHES])
    return {
        "mode": "batch",
        "batch_form": form,
        "model_groups": groups,
        "org_budget": org_budget,
        "member_budget": member_budget,
        "recent_batches": selectors.batch_summaries(org=org, batches=recent),
        "can_generate": membership.can_generate,
    }


@login_required
@require_http_methods(["GET", "POST"])
def playground(request: HttpRequest, org_slug: str) -> HttpResponse:
    groups = selectors.playground_models(org=request.organization)
    if request.method == "GET" and request.GET.get("mode") == "batch":
        return render(request, PLAYGROUND, batch_mode_context(request, BatchForm(groups=groups), groups))
    status = 200
    created = None
    if request.method == "POST":
        remix_of = request.POST.get("remix_of")
        if remix_of and selectors.generation_get(org=request.organization, public_id=remix_of) is None:
            # another organization's video, or none at all: never a plain (paid) video instead
            raise Http404("No such video in this organization.")
        remix = _remix_source(request, remix_of)
        form = PlaygroundForm(request.POST, request.FILES, org=request.organization, groups=groups, remix=remix)
        if form.is_valid():
            try:
                created = _create(request, form, remix)
            except ApplicationError as exc:
                form.add_service_error(exc)
                status = exc.status_code if exc.status_code != 400 else 422
            else:
                if not request.htmx:
                    messages.success(request, "Your video is on its way; it appears below when it is ready.")
                    return redirect("playground", org_slug=org_slug)
                # a fresh form keeping the settings, so the next try is one edit away
                keep = {k: form.cleaned_data.get(k) for k in ("prompt", "model", "seconds", "size", "seed")}
                if remix is not None:
                    keep.update(model=remix.model, seconds=remix.seconds, size=remix.size)
                form = PlaygroundForm(initial=keep, org=request.organization, groups=groups)
                remix = None
        else:
            status = 422
    else:
        remix = _remix_source(request, request.GET.get("remix"))
        form = PlaygroundForm(initial=_initial(request), org=request.organization, groups=groups, remix=remix)

    template = PLAYGROUND
    if request.htmx:
        template += "#playground-options" if request.htmx.target == "playground-options" else "#playground"
    context = _playground_context(request, form, remix, created=created, model_groups=groups)
    return render(request, template, context, status=status)
