"""The OpenAI-compatible video API (DESIGN §7): ``/v1/videos``, served so that the official
``openai`` SDK works unmodified with ``base_url=<host>/v1``, for every model in the catalog.

The wire contract is ``reference/providers/openai-videos.md`` (its §13 checklist): 200 on every
success, the full ``Video`` object with nullable keys present, only four statuses, the list
envelope with ``first_id``/``last_id``/``has_more``, errors in ``{"error": {message, type, param,
code}}``, and ``x-should-retry: false`` on errors a retry cannot fix (the SDK retries POSTs on
409, 429 and 5xx). Clients should send an ``Idempotency-Key`` header on create and remix: the SDK
does not send one by default (``extra_headers={"Idempotency-Key": ...}``).

Thin views: parse, call one service or selector, render. One APIView per operation.
"""

from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api import AnyAcceptNegotiation, OrgScopedAPIView
from apps.core.errors import ApplicationError, NotFound
from apps.generations import api as native
from apps.generations import selectors, services
from apps.generations.models import Generation, State

TAG = "openai-compatible"
DEFAULT_MODEL = "sora-2"  # the contract's default (openai-videos.md §4)

# MediaRouter's states → the contract's four statuses (anything else would end SDK ``poll()`` early)
OPENAI_STATUS = {
    **native.NATIVE_STATUS,
    State.CANCELED: "failed",  # no "cancelled" in the contract: failed with error.code "canceled"
}

_SIZE_RE = re.compile(r"^\d{1,5}x\d{1,5}$")
_ERROR = OpenApiResponse(
    response=inline_serializer(
        "OpenAIErrorResponse",
        {
            "error": inline_serializer(
                "OpenAIError",
                {
                    "message": serializers.CharField(),
                    "type": serializers.CharField(),
                    "param": serializers.CharField(allow_null=True),
                    "code": serializers.CharField(allow_null=True),
                },
            )
        },
    ),
    description='The error envelope: `{"error": {"message", "type", "param", "code"}}`.',
)
_ERRORS = {400: _ERROR, 401: _ERROR, 402: _ERROR, 404: _ERROR, 409: _ERROR, 429: _ERROR}
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Same key + same body returns the same video (no second job or charge); "
    "same key + a different body is a 409. Recommended: the SDK retries POSTs.",
)


def poll_after_ms() -> int:
    """The ``openai-poll-after-ms`` hint: MediaRouter's state cannot change faster than the engine
    polls providers, so asking more often than its shortest poll interval is wasted."""
    return max(250, int(float(settings.GENERATION_POLL_MIN_SECONDS) * 1000))


class VideoErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()

    class Meta:
        ref_name = "VideoError"


class VideoOutput(serializers.Serializer):
    """The contract's ``Video`` object: all 13 keys, always present (nullable ones as null)."""

    id = serializers.CharField()
    object = serializers.CharField(default="video")
    model = serializers.CharField(help_text="The catalog model that ran the job (e.g. `gen4.5`).")
    status = serializers.ChoiceField(choices=["queued", "in_progress", "completed", "failed"])
    progress = serializers.IntegerField(min_value=0, max_value=100)
    created_at = serializers.IntegerField(help_text="Unix seconds.")
    completed_at = serializers.IntegerField(allow_null=True)
    expires_at = serializers.IntegerField(
        allow_null=True, help_text="Always null: MediaRouter keeps its stored copy until it is deleted."
    )
    prompt = serializers.CharField(allow_null=True)
    size = serializers.CharField(help_text="`WxH`")
    seconds = serializers.CharField(help_text='A string, e.g. `"4"`.')
    remixed_from_video_id = serializers.CharField(allow_null=True)
    error = VideoErrorOutput(allow_null=True)

    class Meta:
        ref_name = "Video"

    def to_representation(self, gen: Generation) -> dict:
        status = OPENAI_STATUS[gen.state]
        progress = gen.progress or 0
        if status == "completed":
            progress = 100
        elif status == "in_progress":
            progress = min(progress, 99)
        error = None
        if gen.state == State.CANCELED:
            error = {"code": "canceled", "message": gen.error_message or "The video was canceled."}
        elif gen.state == State.FAILED:
            error = {
                "code": gen.error_code or "generation_failed",
                "message": gen.error_message or "The video could not be generated.",
            }
        return {
            "id": gen.public_id,
            "object": "video",
            "model": gen.model,
            "status": status,
            "progress": progress,
            "created_at": int(gen.created_at.timestamp()),
            "completed_at": int(gen.completed_at.timestamp()) if gen.completed_at and gen.is_terminal else None,
            "expires_at": None,
            "prompt": gen.prompt,
            "size": gen.size,
            "seconds": str(gen.seconds),
            "remixed_from_video_id": gen.remix_of.public_id if gen.remix_of_id else None,
            "error": error,
        }


def _video(gen: Generation) -> dict:
    return VideoOutput(gen).data


def _get_video(request, video_id: str) -> Generation:
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        # never echo the id: it may be another organization's
        raise NotFound("No video with that id in this organization.", param="video_id", code="video_not_found")
    return gen


def _idempotency_key(request) -> str:
    return request.headers.get("Idempotency-Key", "").strip()[:200]


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


def _input_reference(request) -> tuple[bytes | None, str | None]:
    """``input_reference`` as (image bytes, image URL): a multipart file part, an object
    ``{"image_url": ...}`` in JSON, or bracketed multipart keys ``input_reference[image_url]``."""
    upload = request.FILES.get("input_reference")
    if upload is not None:
        # the image's type is sniffed from its bytes by the service; the SDK's part type is a guess
        return upload.read(), None
    data = request.data
    ref = data.get("input_reference")
    if ref in (None, ""):
        ref = {k: data.get(f"input_reference[{k}]") for k in ("image_url", "file_id")}
        ref = {k: v for k, v in ref.items() if v not in (None, "")} or None
    if ref is None:
        return None, None
    if not isinstance(ref, dict):
        raise ApplicationError(
            'input_reference must be a file upload or an object {"image_url": ...}.', param="input_reference"
        )
    if bool(ref.get("image_url")) == bool(ref.get("file_id")):
        raise ApplicationError("input_reference needs exactly one of image_url and file_id.", param="input_reference")
    if ref.get("file_id"):
        raise ApplicationError(
            "input_reference.file_id is not supported here: upload the image or pass an image_url.",
            param="input_reference",
            code="unsupported_value",
        )
    image, _type, url = native._decode_image(str(ref["image_url"]), param="input_reference")
    if image is not None:
        return image, None
    return None, url


class VideoCreateApi(OrgScopedAPIView):
    """``POST /v1/videos``: start a video with any catalog model."""

    class InputSerializer(serializers.Serializer):
        prompt = serializers.CharField(max_length=services.PROMPT_MAX)
        model = serializers.CharField(required=False, max_length=100, default=DEFAULT_MODEL)
        seconds = serializers.CharField(required=False, max_length=6)
        size = serializers.CharField(required=False, max_length=20)

        def validate_seconds(self, value: str) -> int:
            value = value.strip()
            if not value.isdigit() or int(value) <= 0:
                raise serializers.ValidationError('seconds must be a whole number of seconds, like "4".')
            return int(value)

        def validate_size(self, value: str) -> str:
            value = value.strip().lower()
            if not _SIZE_RE.match(value):
                raise serializers.ValidationError("size must look like 1280x720 (width x height).")
            return value

    @extend_schema(
        operation_id="videos_create",
        summary="Create a video (OpenAI-compatible)",
        tags=[TAG],
        request={"application/json": _CreateJson, "multipart/form-data": _CreateMultipart},
        parameters=[_IDEMPOTENCY_KEY],
        responses={200: VideoOutput, **_ERRORS},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        image, image_url = _input_reference(request)
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
            idempotency_key=_idempotency_key(request),
        )
        return Response(_video(gen))


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
        responses={200: OutputSerializer, **_ERRORS},
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
                "data": [_video(gen) for gen in rows],
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
        responses={200: VideoOutput, **_ERRORS},
    )
    def get(self, request, video_id: str):
        gen = _get_video(request, video_id)
        headers = None if gen.is_terminal else {"openai-poll-after-ms": str(poll_after_ms())}
        return Response(_video(gen), headers=headers)


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
        responses={200: OutputSerializer, **_ERRORS},
    )
    def delete(self, request, video_id: str):
        gen = _get_video(request, video_id)
        services.generation_delete(by=native._membership(request), generation=gen)
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
            **_ERRORS,
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
        return native.content_response(_get_video(request, video_id), variant)


class VideoRemixApi(OrgScopedAPIView):
    """``POST /v1/videos/{video_id}/remix``: a new video from a completed one (same model, length
    and size) with a new prompt, on models that can remix (``sora-2``, ``sandbox-video``)."""

    class InputSerializer(serializers.Serializer):
        prompt = serializers.CharField(max_length=services.PROMPT_MAX)

        class Meta:
            ref_name = "RemixVideoBody"

    @extend_schema(
        operation_id="videos_remix",
        summary="Remix a video (OpenAI-compatible)",
        tags=[TAG],
        request={"application/json": InputSerializer, "multipart/form-data": InputSerializer},
        parameters=[_IDEMPOTENCY_KEY],
        responses={200: VideoOutput, **_ERRORS},
    )
    def post(self, request, video_id: str):
        source = _get_video(request, video_id)  # first: another organization's id is a 404, whatever the body
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gen = services.generation_remix(
            org=request.organization,
            user=request.user,
            source=source,
            prompt=data.validated_data["prompt"],
            idempotency_key=_idempotency_key(request),
        )
        return Response(_video(gen))
