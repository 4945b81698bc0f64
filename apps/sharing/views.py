"""Share links on pages: the public page a link opens (``/s/<token>/``, no login) and, under
``/o/<org_slug>/``, creating and revoking links from a video's page.

The public views run with no tenant scope and read nothing but the link, its video and its
organization's switch (``selectors.share_open``). Every refusal (unknown, expired, revoked,
switched off, video gone) is the same 404 page, so a link's state cannot be told from outside.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.core.errors import ApplicationError, NotFound
from apps.core.http import ranged_file_response
from apps.generations import selectors as generation_selectors
from apps.generations.models import Generation, State
from apps.sharing import selectors, services
from apps.sharing.forms import ShareForm
from apps.sharing.models import ShareLink

PANEL = "sharing/_share_panel.html"
PAGE = "sharing/share_page.html"
MISSING = "sharing/share_missing.html"
_MEDIA_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime"}
_POSTER_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}


# --- the public page ----------------------------------------------------------------------------


def _public(response: HttpResponse, *, cache: str = "private, no-store") -> HttpResponse:
    """The headers of every public answer: never indexed, never cached by a shared cache, and the
    link (a credential) never sent on as a referrer."""
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = cache
    response["Referrer-Policy"] = "no-referrer"
    return response


def _missing(request: HttpRequest) -> HttpResponse:
    return _public(render(request, MISSING, status=404))


@require_safe
def share_page(request: HttpRequest, share_token: str) -> HttpResponse:
    """The page a link opens: the player, the poster and (if its maker chose) the prompt; nothing
    else of the organization. Each GET counts as one view."""
    share = selectors.share_open(token=share_token)
    if share is None:
        return _missing(request)
    if request.method == "GET":
        services.share_viewed(share=share)
    gen = share.generation
    context = {
        "share": share,
        "gen": gen,
        "video_url": reverse("share-video", kwargs={"share_token": share_token}),
        "poster_url": reverse("share-poster", kwargs={"share_token": share_token}) if gen.thumbnail_file else "",
    }
    return _public(render(request, PAGE, context))


def _file(request: HttpRequest, share_token: str, *, poster: bool) -> HttpResponse:
    """The shared video (or its poster), streamed from storage with Range support. Always through
    the app, never a presigned S3 redirect: that URL would show the storage key (the organization's
    slug and the video's id). The download name is a neutral one for the same reason."""
    share = selectors.share_open(token=share_token)
    key = share and (share.generation.thumbnail_file if poster else share.generation.video_file)
    if not key:
        return _public(HttpResponse("Not found.", status=404, content_type="text/plain"))
    extension = key.rsplit(".", 1)[-1].lower()
    if poster:
        content_type = _POSTER_TYPES.get(extension, "image/jpeg")
    else:
        content_type = share.generation.content_type or _MEDIA_TYPES.get(extension, "video/mp4")
    try:
        handle = default_storage.open(key, "rb")
    except FileNotFoundError:  # the stored file went missing behind the row's back: nothing to show
        return _public(HttpResponse("Not found.", status=404, content_type="text/plain"))
    response = FileResponse(handle, content_type=content_type, filename=f"shared-video.{extension}")
    return _public(ranged_file_response(request, response), cache="private, no-cache")


@require_safe
def share_video(request: HttpRequest, share_token: str) -> HttpResponse:
    return _file(request, share_token, poster=False)


@require_safe
def share_poster(request: HttpRequest, share_token: str) -> HttpResponse:
    return _file(request, share_token, poster=True)


# --- on the video's page ------------------------------------------------------------------------


def share_context(request: HttpRequest, gen: Generation, **extra) -> dict:
    """What the video's page needs for its share panel (one query: the video's links)."""
    org, me = request.organization, request.membership
    shares = list(selectors.share_list(org=org, generation=gen))
    for share in shares:
        share.revocable = share.is_active and (me.can_manage or share.created_by_id == me.user_id)
    context = {
        "shares": shares,
        "share_form": ShareForm(),
        "can_share": org.sharing_enabled and me.can_generate and gen.state == State.COMPLETED and bool(gen.video_file),
    }
    context.update(extra)
    return context


def _panel(request: HttpRequest, gen: Generation, *, status: int = 200, **extra) -> HttpResponse:
    """The share panel (htmx), or for a plain form a small page holding it: a new link is shown in
    this one response only (never in a message cookie or the session), like an invitation link."""
    template = PANEL if request.htmx else "sharing/share_created.html"
    return render(request, template, {"gen": gen, **share_context(request, gen, **extra)}, status=status)


@login_required
@require_POST
def share_create(request: HttpRequest, org_slug: str, video_id: str) -> HttpResponse:
    gen = generation_selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        raise Http404("No such video in this organization.")
    form = ShareForm(request.POST)
    if not form.is_valid():
        return _panel(request, gen, status=422, share_error="Choose how long the link works.")
    try:
        share, token = services.share_create(
            by=request.membership,
            generation=gen,
            expires_in_days=form.cleaned_data["expires_in"],
            include_prompt=form.cleaned_data["include_prompt"],
        )
    except ApplicationError as exc:
        return _panel(request, gen, status=exc.status_code, share_error=exc.message)
    url = request.build_absolute_uri(reverse("share-page", kwargs={"share_token": token}))
    return _panel(request, gen, new_share=share, new_share_url=url)


@login_required
@require_POST
def share_revoke(request: HttpRequest, org_slug: str, share_id: str) -> HttpResponse:
    try:
        share: ShareLink = services.share_revoke(by=request.membership, public_id=share_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except ApplicationError as exc:
        share = selectors.share_get(org=request.organization, public_id=share_id)
        if request.htmx:
            return _panel(request, share.generation, status=exc.status_code, share_error=exc.message)
        messages.error(request, exc.message)
        return redirect("video-detail", org_slug=org_slug, video_id=share.generation.public_id)
    if request.htmx:
        return _panel(request, share.generation)
    messages.success(request, "Share link revoked: it no longer opens.")
    return redirect("video-detail", org_slug=org_slug, video_id=share.generation.public_id)
