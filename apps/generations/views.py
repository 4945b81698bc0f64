"""Pages for generations, under /o/<org_slug>/: playground, gallery, video detail (whose status
fragment is what job cards poll), the tenant-checked content view, delete, and usage.

Thin: parse with a form, call one service or selector, render. One view per page; htmx requests
get the page's inline partial (``template += "#partial"``); every htmx form also posts without JS.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HTMX_STOP_POLLING

from apps.accounts import selectors as account_selectors
from apps.core.errors import ApplicationError, NotFound
from apps.generations import api, selectors, services
from apps.generations.forms import GalleryFilterForm, PlaygroundForm, UsageRangeForm
from apps.generations.models import Generation, State
from apps.providers import catalog

PLAYGROUND = "generations/playground.html"
DETAIL = "generations/video_detail.html"
GALLERY = "generations/gallery.html"
USAGE = "generations/usage.html"
RECENT_COUNT = 6
GALLERY_PAGE_SIZE = 12


def _video(request: HttpRequest, video_id: str) -> Generation:
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        raise Http404("No such video in this organization.")
    return gen


def _remix_source(request: HttpRequest, video_id: str | None) -> Generation | None:
    """A completed video of this organization whose model can remix, or None."""
    if not video_id:
        return None
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None or gen.state != State.COMPLETED:
        return None
    if catalog.REMIX not in catalog.get_model(gen.model).capabilities:
        return None
    return gen


# --- playground ------------------------------------------------------------------------------


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
    org_budget, member_budget = selectors.budget_status(org=org, membership=membership)
    recent = selectors.generation_list(org=org, filters=selectors.GenerationFilters(user_email=request.user.email))
    context = {
        "form": form,
        "model": form.model_info,
        "remix": remix,
        "org_budget": org_budget,
        "member_budget": member_budget,
        "recent": _with_models(recent[:RECENT_COUNT]),
        "can_generate": membership.can_generate,
    }
    context.update(extra)
    return context


def _create(request: HttpRequest, form: PlaygroundForm, remix: Generation | None) -> Generation:
    data = form.cleaned_data
    if remix is not None:
        return services.generation_remix(
            org=request.organization, user=request.user, source=remix, prompt=data["prompt"]
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
    )


@login_required
@require_http_methods(["GET", "POST"])
def playground(request: HttpRequest, org_slug: str) -> HttpResponse:
    groups = selectors.playground_models(org=request.organization)
    status = 200
    created = None
    if request.method == "POST":
        remix = _remix_source(request, request.POST.get("remix_of"))
        form = PlaygroundForm(request.POST, request.FILES, groups=groups, remix=remix)
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
                form = PlaygroundForm(initial=keep, groups=groups)
                remix = None
        else:
            status = 422
    else:
        remix = _remix_source(request, request.GET.get("remix"))
        form = PlaygroundForm(initial=_initial(request), groups=groups, remix=remix)

    template = PLAYGROUND
    if request.htmx:
        template += "#playground-options" if request.htmx.target == "playground-options" else "#playground"
    context = _playground_context(request, form, remix, created=created, model_groups=groups)
    return render(request, template, context, status=status)


# --- one video -------------------------------------------------------------------------------


@login_required
@require_GET
def video_detail(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """The video's page; for htmx, its status fragment (what job cards poll), with 286 once the
    job has ended so polling stops."""
    gen = _video(request, video_id)
    context = {"gen": gen, "model": _model_or_none(gen.model)}
    if request.htmx:
        context["preload"] = request.GET.get("preload", "metadata")
        return render(request, DETAIL + "#video-status", context, status=HTMX_STOP_POLLING if gen.is_terminal else 200)
    context["events"] = selectors.generation_events(generation=gen)
    return render(request, DETAIL, context)


def _model_or_none(model_id: str) -> catalog.ModelInfo | None:
    try:
        return catalog.get_model(model_id)
    except catalog.UnknownModel:
        return None


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _file_range(fh, start: int, length: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    try:
        fh.seek(start)
        while length > 0:
            data = fh.read(min(chunk, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        fh.close()


def _with_range(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Answer ``Range: bytes=a-b`` on a streamed file with 206 (seeking in the player). Presigned
    S3 redirects are left alone: S3 answers ranges itself."""
    if not isinstance(response, FileResponse):
        return response
    response["Accept-Ranges"] = "bytes"
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if not match or not (match.group(1) or match.group(2)):
        return response
    fh = response.file_to_stream
    size = fh.size
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:  # a suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or end < start:
        fh.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    partial = StreamingHttpResponse(
        _file_range(fh, start, end - start + 1), status=206, content_type=response["Content-Type"]
    )
    partial["Content-Length"] = str(end - start + 1)
    partial["Content-Range"] = f"bytes {start}-{end}/{size}"
    partial["Accept-Ranges"] = "bytes"
    if response.has_header("Content-Disposition"):
        partial["Content-Disposition"] = response["Content-Disposition"]
    return partial


@login_required
@require_GET
def video_content(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """The stored video (``?variant=thumbnail`` for its poster), checked against the URL's org."""
    variant = request.GET.get("variant", "video")
    if variant not in ("video", "thumbnail"):
        raise Http404("variant must be video or thumbnail.")
    try:
        response = api.content_response(_video(request, video_id), variant)
    except NotFound as exc:
        raise Http404(exc.message) from None
    response["Cache-Control"] = "private, max-age=3600"
    return _with_range(request, response)


@login_required
@require_http_methods(["GET", "POST"])
def video_delete(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """GET: a confirmation page (the no-JS path). POST: delete; htmx gets an empty card back."""
    gen = _video(request, video_id)
    if request.method == "GET":
        return render(request, "generations/video_delete.html", {"gen": gen})
    try:
        services.generation_delete(by=request.membership, generation=gen)
    except ApplicationError as exc:
        if request.htmx:
            context = {"g": _with_models([gen])[0], "card_error": exc.message}
            return render(request, GALLERY + "#video-card", context, status=exc.status_code)
        messages.error(request, exc.message)
        return redirect("video-detail", org_slug=org_slug, video_id=video_id)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, "Video deleted. Its cost stays in the usage report.")
    return redirect("gallery", org_slug=org_slug)


# --- gallery ---------------------------------------------------------------------------------


def _with_models(videos) -> list[Generation]:
    """Attach each video's catalog entry (label, capabilities such as audio) for the templates."""
    videos = list(videos)
    for gen in videos:
        gen.model_info = _model_or_none(gen.model)
    return videos


@login_required
@require_GET
def gallery(request: HttpRequest, org_slug: str) -> HttpResponse:
    members = account_selectors.member_list(org=request.organization)
    form = GalleryFilterForm(request.GET or None, members=members)
    videos = selectors.generation_list(org=request.organization, filters=form.filters())
    page = Paginator(videos, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = _with_models(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    template = GALLERY + "#gallery-results" if request.htmx else GALLERY
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": any(v for k, v in request.GET.items() if k != "page"),
    }
    return render(request, template, context)


# --- usage -----------------------------------------------------------------------------------


def _daily_chart(report: selectors.UsageReport, width: int = 720, height: int = 150) -> dict:
    """Bars for each day of the range, as SVG geometry (no chart library)."""
    costs = {row["day"]: row["cost"] for row in report.by_day}
    days = [report.start + timedelta(days=i) for i in range((report.end - report.start).days + 1)]
    peak = max([c for c in costs.values() if c > 0], default=Decimal("0"))
    top, bottom = 10, 24
    plot = height - top - bottom
    step = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        cost = costs.get(day, Decimal("0"))
        h = float(cost / peak) * plot if peak > 0 and cost > 0 else 0.0
        h = max(h, 2.0) if cost > 0 else 0.0
        bars.append(
            {
                "x": round(i * step + step * 0.15, 2),
                "y": round(top + plot - h, 2),
                "w": round(max(step * 0.7, 1), 2),
                "h": round(h, 2),
                "day": day,
                "cost": cost,
            }
        )
    return {
        "width": width,
        "height": height,
        "baseline": top + plot,
        "label_y": height - 6,
        "bars": bars,
        "peak": peak,
        "peak_y": top,
        "first": days[0] if days else None,
        "last": days[-1] if days else None,
    }


def _usage_csv(request: HttpRequest, start: date, end: date) -> HttpResponse:
    rows = selectors.usage_rows(org=request.organization, start=start, end=end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"usage-{request.organization.slug}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(["date", "provider", "model", "member", "videos", "seconds", "cost_usd"])
    for row in rows:
        cost = f"{row['cost']:.4f}"
        day, seconds = row["day"].isoformat(), row["seconds"] or 0
        writer.writerow([day, row["provider"], row["model"], row["user__email"], row["videos"], seconds, cost])
    return response


@login_required
@require_GET
def usage(request: HttpRequest, org_slug: str) -> HttpResponse:
    today = timezone.localdate()
    default = (today.replace(day=1), today)
    form = UsageRangeForm(request.GET if "start" in request.GET or "end" in request.GET else None)
    start, end = form.range(default)
    if not form.is_bound:
        form = UsageRangeForm(initial={"start": start, "end": end})
    if request.GET.get("format") == "csv":
        return _usage_csv(request, start, end)
    report = selectors.usage_report(org=request.organization, start=start, end=end)
    org_budget, member_budget = selectors.budget_status(org=request.organization, membership=request.membership)
    context = {
        "form": form,
        "report": report,
        "chart": _daily_chart(report),
        "csv_query": f"start={start.isoformat()}&end={end.isoformat()}&format=csv",
        "org_budget": org_budget,
        "member_budget": member_budget,
    }
    template = USAGE + "#usage-report" if request.htmx else USAGE
    return render(request, template, context, status=200 if not form.errors else 422)
