"""One video: its page (and the status fragment job cards poll), its stored content, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from apps.core.downloads import stored_file_response
from apps.core.errors import ApplicationError, NotFound
from apps.core.http import ranged_file_response
from apps.generations import selectors, services
from apps.generations.forms import LibraryForm
from apps.generations.resolve import generation_model
from apps.generations.views.common import VIDEO_STATUS, video_or_404, with_models
from apps.sharing.views import share_context

DETAIL = "generations/video_detail.html"
CARD = "generations/gallery.html#video-card"
LIBRARY = "generations/_video_library.html"


@login_required
@require_GET
def video_detail(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """The video's page; for htmx, its status fragment (what job cards poll), with 286 once the
    job has ended so polling stops."""
    gen = video_or_404(request, video_id)
    context = {"gen": gen, "model": generation_model(gen)}
    if request.htmx:
        context["preload"] = request.GET.get("preload", "metadata")
        return render(request, VIDEO_STATUS, context, status=HTMX_STOP_POLLING if gen.is_terminal else 200)
    context["events"] = selectors.generation_events(generation=gen)
    context.update(share_context(request, gen))
    return render(request, DETAIL, context)


@login_required
@require_GET
def video_content(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """The stored video (``?variant=thumbnail`` for its poster), checked against the URL's org."""
    variant = request.GET.get("variant", "video")
    if variant not in ("video", "thumbnail"):
        raise Http404("variant must be video or thumbnail.")
    try:
        download = selectors.generation_file(generation=video_or_404(request, video_id), variant=variant)
    except NotFound as exc:
        raise Http404(exc.message) from None
    response = stored_file_response(download)
    response["Cache-Control"] = "private, max-age=3600"
    return ranged_file_response(request, response)


@login_required
@require_http_methods(["GET", "POST"])
def video_delete(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """GET: a confirmation page (the no-JS path). POST: delete; htmx gets an empty card back."""
    gen = video_or_404(request, video_id)
    if request.method == "GET":
        return render(request, "generations/video_delete.html", {"gen": gen})
    try:
        services.generation_delete(by=request.membership, generation=gen)
    except ApplicationError as exc:
        if request.htmx:
            context = {"g": with_models([gen])[0], "card_error": exc.message}
            return render(request, CARD, context, status=exc.status_code)
        messages.error(request, exc.message)
        return redirect("video-detail", org_slug=org_slug, video_id=video_id)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, "Video deleted. Its cost stays in the usage report.")
    return redirect("gallery", org_slug=org_slug)


@login_required
@require_POST
def video_library(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    """Star or unstar a video, or set its tag. htmx gets the controls back (with the reason when
    refused); a plain form goes back where it came from (``next``, on this site) or to the video."""
    gen = video_or_404(request, video_id)
    form = LibraryForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.generation_library_set(by=request.membership, generation=gen, **form.changes())
        except ApplicationError as exc:
            error = exc
    else:
        error = ApplicationError("Enter a tag of at most 40 characters.", param="tag")
    if request.htmx:
        status = 200 if error is None else (422 if error.status_code == 400 else error.status_code)
        return render(request, LIBRARY, {"gen": gen, "library_error": error and error.message}, status=status)
    if error is not None:
        messages.error(request, error.message)
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(back)
    return redirect("video-detail", org_slug=org_slug, video_id=video_id)
