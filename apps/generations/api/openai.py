"""The OpenAI-compatible video API (DESIGN §7): ``/v1/videos``, served so that the official
``openai`` SDK works unmodified with ``base_url=<host>/v1``, for every model in the catalog.

The wire contract is ``reference/providers/openai-videos.md`` (its §13 checklist): 200 on every
success, the full ``Video`` object with nullable keys present, only four statuses, the list
envelope with ``first_id``/``last_id``/``has_more``, errors in ``{"error": {message, type, param,
code}}``, and ``x-should-retry: false`` on errors a retry cannot fix (the SDK retries POSTs on
409, 429 and 5xx). Clients should send an ``Idempotency-Key`` header on create and remix: the SDK
does not send one by default (``extra_headers={"Idempotency-Key": ...}``).

Thin views: parse (``parsing``), call one service or selector, render (``serializers``). One
APIView per operation.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api import AnyAcceptNegotiation, OrgScopedAPIView
from apps.core.downloads import stored_file_response
from apps.core.errors import ApplicationError, NotFound
from apps.generations import selectors, services
from apps.generations.api import parsing
from apps.generations.api.serializers import ERRORS, IDEMPOTENCY_KEY, VideoOutput, video
from apps.generations.models import Generation

TAG = "openai-compatible"


def poll_after_ms() -> int:
    """The ``openai-poll-after-ms`` hint: MediaRouter's state cannot change faster than the engine
    polls providers, so asking more often than its shortest poll interval is wasted."""
    return max(250, int(float(settings.GENERATION_POLL_MIN_SECONDS) * 1000))


def video_or_404(request, video_id: str) -> Generation:
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        # never echo the id: it may be another organization's
        raise NotFound("No video with that id in this organization.", param="video_id", code="video_not_found")
    return gen


# --- create --------------------------------------------------------------------------------


class _CreateJson(serializers.Serializer):
    prompt = serializers.CharField(max_length=services.PROMPT_MAX)
    model = serializers.CharField(required=False, help_text="Any catalog model; default `sora-2`.")
    seconds = serializers.CharField(required=False, help_text='Seconds as a string, e.g. `"4"`.')
    size = serializers.CharField(required=False, help_text="`WxH`, e.g. `1280x720`.")
    input_reference = inline_serializer(
        "VideoImageReference",
        {"image_url": serializers.CharField(required=False, help_text="An https URL or a base64 `data:` URL.")},
        required=False,
    )

    class Meta:
        ref_name = "CreateVideoJsonBody"


class _CreateMultipart(serializers.Serializer):
    prompt = serializers.CharField()
    model = serializers.CharField(required=False)
    seconds = serializers.CharField(required=False)
    size = serializers.CharField(required=False)
    input_reference = serializers.FileField(required=False, help_text="A PNG, JPEG or WebP first frame.")

    class Meta:
        ref_name = "CreateVideoMultipartBody"


class VideoCreateApi(OrgScopedAPIView):
    """``POST /v1/videos``: start a video with any catalog model."""

    class InputSerializer(serializers.Serializer):
        prompt = parsing.StrictCharField(max_length=services.PROMPT_MAX)
        # the contract defaults to sora-2, which OpenAI retired; a request that names no model is
        # refused rather than spending money on a model the member did not choose
        model = parsing.StrictCharField(
            max_length=100,
            error_messages={"required": "Name the model: a canonical id (`veo-3.1`) or `supplier/model`."},
        )
        seconds = parsing.SecondsField(required=False, max_length=6)
        size = parsing.StrictCharField(required=False, max_length=20)

        def validate_seconds(self, value: str) -> int:
            return parsing.parse_seconds(value)

        def validate_size(self, value: str) -> str:
            return parsing.parse_size(value)

    @extend_schema(
        operation_id="videos_create",
        summary="Create a video (OpenAI-compatible)",
        tags=[TAG],
        request={"application/json": _CreateJson, "multipart/form-data": _CreateMultipart},
        parameters=[IDEMPOTENCY_KEY],
        responses={200: VideoOutput, **ERRORS},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        image, image_url = parsing.input_reference(request)
        gen = services.generation_create(
            org=request.organization,
            user=request.user,
            request=services.GenerationRequest(
                model=v["model"],
                prompt=v["prompt"],
                seconds=v.get("seconds"),
                size=v.get("size"),
                image=image,
                image_url=image_url,
            ),
            idempotency_key=parsing.idempotency_key(request),
            membership=parsing.token_membership(request),
        )
        return Response(video(gen))


# --- list ----------------------------------------------------------------------------------


class VideoListApi(OrgScopedAPIView):
    """``GET /v1/videos``: the organization's videos, cursor-paginated (``after=<last_id>``)."""

    class QuerySerializer(serializers.Serializer):
        after = serializers.CharField(required=False, max_length=40)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
        order = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="desc")

        class Meta:
            ref_name = "VideoListQuery"

    class OutputSerializer(serializers.Serializer):
        object = serializers.CharField(default="list")
        data = VideoOutput(many=True)
        first_id = serializers.CharField(allow_null=True)
        last_id = serializers.CharField(allow_null=True)
        has_more = serializers.BooleanField()

        class Meta:
            ref_name = "VideoList"

    @extend_schema(
        operation_id="videos_list",
        summary="List videos (OpenAI-compatible)",
        tags=[TAG],
        parameters=[QuerySerializer],
        responses={200: OutputSerializer, **ERRORS},
    )
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        rows, has_more = selectors.generation_page_after(
            org=request.organization, after=q.get("after") or None, limit=q["limit"], order=q["order"]
        )
        return Response(
            {
                "object": "list",
                "data": [video(gen) for gen in rows],
                "first_id": rows[0].public_id if rows else None,
                "last_id": rows[-1].public_id if rows else None,
                "has_more": has_more,
            }
        )


# --- retrieve, delete ----------------------------------------------------------------------


class VideoRetrieveApi(OrgScopedAPIView):
    """``GET /v1/videos/{video_id}``: poll a video; ``openai-poll-after-ms`` paces SDK ``poll()``."""

    @extend_schema(
        operation_id="videos_retrieve",
        summary="Retrieve a video (OpenAI-compatible)",
        tags=[TAG],
        responses={200: VideoOutput, **ERRORS},
    )
    def get(self, request, video_id: str):
        gen = video_or_404(request, video_id)
        headers = None if gen.is_terminal else {"openai-poll-after-ms": str(poll_after_ms())}
        return Response(video(gen), headers=headers)


class VideoDeleteApi(OrgScopedAPIView):
    """``DELETE /v1/videos/{video_id}``: delete the stored files (costs stay in the ledger)."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        object = serializers.CharField(default="video.deleted")
        deleted = serializers.BooleanField()

        class Meta:
            ref_name = "VideoDeleted"

    @extend_schema(
        operation_id="videos_delete",
        summary="Delete a video (OpenAI-compatible)",
        tags=[TAG],
        responses={200: OutputSerializer, **ERRORS},
    )
    def delete(self, request, video_id: str):
        gen = video_or_404(request, video_id)
        services.generation_delete(by=parsing.membership(request), generation=gen)
        return Response({"id": gen.public_id, "object": "video.deleted", "deleted": True})


# --- content, remix ------------------------------------------------------------------------


class VideoContentApi(OrgScopedAPIView):
    """``GET /v1/videos/{video_id}/content?variant=video|thumbnail``: MediaRouter's stored copy."""

    content_negotiation_class = AnyAcceptNegotiation  # the SDK sends Accept: application/binary

    @extend_schema(
        operation_id="videos_download_content",
        summary="Download a video's content (OpenAI-compatible)",
        tags=[TAG],
        parameters=[
            OpenApiParameter(
                "variant",
                str,
                enum=["video", "thumbnail"],
                required=False,
                description="`video` (default, MP4) or `thumbnail`. Spritesheets are not stored (400).",
            )
        ],
        responses={
            (200, "video/mp4"): OpenApiResponse(response=bytes, description="The MP4 (or the thumbnail image)."),
            **ERRORS,
        },
    )
    def get(self, request, video_id: str):
        variant = request.query_params.get("variant", "video")
        if variant == "spritesheet":
            raise ApplicationError(
                "MediaRouter does not store spritesheets; use variant=video or variant=thumbnail.",
                param="variant",
                code="unsupported_value",
            )
        if variant not in ("video", "thumbnail"):
            raise ApplicationError("variant must be video or thumbnail.", param="variant")
        gen = video_or_404(request, video_id)
        return stored_file_response(selectors.generation_file(generation=gen, variant=variant))


class VideoRemixApi(OrgScopedAPIView):
    """``POST /v1/videos/{video_id}/remix``: a new video from a completed one (same model, length
    and size) with a new prompt, on models that can remix (``sora-2``, ``sandbox-video``)."""

    class InputSerializer(serializers.Serializer):
        prompt = parsing.StrictCharField(max_length=services.PROMPT_MAX)

        class Meta:
            ref_name = "RemixVideoBody"

    @extend_schema(
        operation_id="videos_remix",
        summary="Remix a video (OpenAI-compatible)",
        tags=[TAG],
        request={"application/json": InputSerializer, "multipart/form-data": InputSerializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={200: VideoOutput, **ERRORS},
    )
    def post(self, request, video_id: str):
        source = video_or_404(request, video_id)  # first: another organization's id is a 404, whatever the body
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gen = services.generation_remix(
            org=request.organization,
            user=request.user,
            source=source,
            prompt=data.validated_data["prompt"],
            idempotency_key=parsing.idempotency_key(request),
            membership=parsing.token_membership(request),
        )
        return Response(video(gen))
