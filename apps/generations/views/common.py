"""Helpers the generation pages share."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from apps.generations import selectors
from apps.generations.models import Generation
from apps.generations.resolve import generation_model

# the status fragment every job card polls (the playground, the gallery, a video's page)
VIDEO_STATUS = "generations/_video_status.html"


def video_or_404(request: HttpRequest, video_id: str) -> Generation:
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        raise Http404("No such video in this organization.")
    return gen


def with_models(videos) -> list[Generation]:
    """Attach each video's catalog entry (label, capabilities such as audio) for the templates."""
    videos = list(videos)
    for gen in videos:
        gen.model_info = generation_model(gen)
    return videos
