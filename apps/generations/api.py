"""MediaRouter's native API (the original shape, DESIGN §7): generations, providers, models, usage.

Thin views: parse with an InputSerializer, call one service or selector, render with an
OutputSerializer. The tenant scope and the token's organization come from OrgScopedAPIView.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import date, timedelta

from django.http import FileResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.models import Membership
from apps.api_keys import selectors as key_selectors
from apps.core.api import AnyAcceptNegotiation, OrgScopedAPIView
from apps.core.errors import ApplicationError, NotFound
from apps.generations import selectors, services, storage
from apps.generations.models import Generation, State
from apps.providers import catalog, registry

NATIVE_STATUS = {
    State.CREATED: "queued",
    State.SUBMITTING: "queued",
    State.QUEUED: "queued",
    State.IN_PROGRESS: "in_progress",
    State.DOWNLOADING: "in_progress",
    State.COMPLETED: "completed",
    State.FAILED: "failed",
    State.CANCELED: "canceled",
}


def size_for_aspect_ratio(model_id: str, aspect_ratio: str, *, has_image: bool) -> str:
    """Map ``16:9`` (or a pixel pair such as ``1280:720``, or ``WxH``) to one of the model's sizes."""
    model = catalog.get_model(model_id)
    text = aspect_ratio.strip().lower().replace("x", ":")
    try:
        w, h = (int(part) for part in text.split(":"))
    except ValueError:
        raise ApplicationError("aspect_ratio must look like 16:9.", param="aspect_ratio") from None
    if w <= 0 or h <= 0:
        raise ApplicationError("aspect_ratio must look like 16:9.", param="aspect_ratio")
    allowed = model.allowed_sizes(has_image=has_image)
    exact = f"{w}x{h}"
    if exact in allowed:
        return exact
    wanted = (w // math.gcd(w, h), h // math.gcd(w, h))
    for size in allowed:
        sw, sh = (int(v) for v in size.split("x"))
        if (sw // math.gcd(sw, sh), sh // math.gcd(sw, sh)) == wanted:
            return size
    ratios = sorted({_ratio(s) for s in allowed})
    raise ApplicationError(
        f"{model.label} supports aspect ratios {', '.join(ratios)}.", param="aspect_ratio", code="invalid_value"
    )


def _ratio(size: str) -> str:
    w, h = (int(v) for v in size.split("x"))
    g = math.gcd(w, h)
    return f"{w // g}:{h // g}"


def _decode_image(value: str, *, param: str = "image") -> tuple[bytes | None, str | None, str | None]:
    """An https URL or a ``data:<type>;base64,...`` URI. Returns (bytes, type, url)."""
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        if ";base64" not in header:
            raise ApplicationError(f"{param} data URIs must be base64-encoded.", param=param)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ApplicationError(f"{param} is not valid base64.", param=param) from None
        return data, header[5:].split(";")[0] or None, None
    if value.startswith(("https://", "http://")):
        return None, None, value
    raise ApplicationError(f"{param} must be an https URL or a data: URI.", param=param)


def generation_url(request, gen: Generation) -> str:
    return request.build_absolute_uri(reverse("api-generation-content", kwargs={"video_id": gen.public_id}))


class GenerationOutput(serializers.Serializer):
    def to_representation(self, gen: Generation) -> dict:
        request = self.context["request"]
        video = None
        if gen.state == State.COMPLETED and gen.video_file:
            video = {
                "url": generation_url(request, gen),
                "content_type": gen.content_type or "video/mp4",
                "bytes": gen.bytes,
                "sha256": gen.sha256,
            }
        return {
            "id": gen.public_id,
            "object": "video.generation",
            "status": NATIVE_STATUS[gen.state],
            "progress": gen.progress if gen.progress is not None else (100 if gen.state == State.COMPLETED else 0),
            "provider": gen.provider,
            "model": gen.model,
            "prompt": gen.prompt,
            "duration": gen.seconds,
            "size": gen.size,
            "aspect_ratio": _ratio(gen.size),
            "seed": gen.seed,
            "remixed_from": gen.remix_of.public_id if gen.remix_of_id else None,
            "created_by": gen.user.email,
            "video": video,
            "usage": {
                "currency": "USD",
                "estimated_cost": str(gen.estimated_cost),
                "cost": str(gen.final_cost) if gen.final_cost is not None else None,
            },
            "error": {"code": gen.error_code, "message": gen.error_message} if gen.state == State.FAILED else None,
            "created_at": int(gen.created_at.timestamp()),
            "completed_at": int(gen.completed_at.timestamp()) if gen.completed_at else None,
        }


class GenerationCreateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(max_length=100)
        prompt = serializers.CharField(max_length=services.PROMPT_MAX, trim_whitespace=True)
        duration = serializers.IntegerField(required=False, min_value=1, max_value=600)
        aspect_ratio = serializers.CharField(required=False, max_length=20)
        size = serializers.CharField(required=False, max_length=20)
        image = serializers.CharField(required=False, max_length=30_000_000)
        seed = serializers.IntegerField(required=False, min_value=0)
        negative_prompt = serializers.CharField(required=False, allow_blank=True, max_length=2500)
        key_id = serializers.CharField(required=False, max_length=40)

        class Meta:
            ref_name = "GenerationCreateBody"

    @extend_schema(
        request=InputSerializer,
        responses={201: GenerationOutput},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Create a video generation",
        operation_id="video_generations_create",
        tags=["native"],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        image = image_type = image_url = None
        if v.get("image"):
            image, image_type, image_url = _decode_image(v["image"])
        try:
            catalog.get_model(v["model"])
        except catalog.UnknownModel as exc:
            raise ApplicationError(str(exc), param="model", code="model_not_found") from None
        size = v.get("size")
        if not size and v.get("aspect_ratio"):
            size = size_for_aspect_ratio(v["model"], v["aspect_ratio"], has_image=bool(image or image_url))
        gen = services.generation_create(
            org=request.organization,
            user=request.user,
            request=services.GenerationRequest(
                model=v["model"],
                prompt=v["prompt"],
                seconds=v.get("duration"),
                size=size,
                seed=v.get("seed"),
                negative_prompt=v.get("negative_prompt", ""),
                image=image,
                image_content_type=image_type,
                image_url=image_url,
                key_id=v.get("key_id"),
            ),
            idempotency_key=request.headers.get("Idempotency-Key", "")[:200],
        )
        return Response(GenerationOutput(gen, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, required=False),
            OpenApiParameter("offset", int, required=False),
            OpenApiParameter("status", str, required=False),
            OpenApiParameter("model", str, required=False),
        ],
        responses={200: inline_serializer("GenerationList", {"data": GenerationOutput(many=True)})},
        summary="List video generations",
        operation_id="video_generations_list",
        tags=["native"],
    )
    def get(self, request):
        limit = _int_param(request, "limit", 20, 1, 100)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        filters = selectors.GenerationFilters(model=request.query_params.get("model") or None)
        qs = selectors.generation_list(org=request.organization, filters=filters)
        wanted_status = request.query_params.get("status")
        if wanted_status:
            states = [s for s, native in NATIVE_STATUS.items() if native == wanted_status]
            qs = qs.filter(state__in=states)
        rows = list(qs[offset : offset + limit + 1])
        return Response(
            {
                "object": "list",
                "data": GenerationOutput(rows[:limit], many=True, context={"request": request}).data,
                "has_more": len(rows) > limit,
                "limit": limit,
                "offset": offset,
            }
        )


def _int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApplicationError(f"{name} must be an integer.", param=name) from None
    if not low <= value <= high:
        raise ApplicationError(f"{name} must be between {low} and {high}.", param=name)
    return value


def _get_generation(request, video_id: str) -> Generation:
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        raise NotFound("No such video generation in this organization.", param="id")
    return gen


def _membership(request) -> Membership:
    return Membership.objects.select_related("organization", "user").get(
        organization=request.organization, user=request.user
    )


class GenerationDetailApi(OrgScopedAPIView):
    @extend_schema(responses={200: GenerationOutput}, summary="Retrieve a video generation", tags=["native"])
    def get(self, request, video_id: str):
        return Response(GenerationOutput(_get_generation(request, video_id), context={"request": request}).data)

    @extend_schema(responses={204: None}, summary="Delete a video generation's stored files", tags=["native"])
    def delete(self, request, video_id: str):
        services.generation_delete(by=_membership(request), generation=_get_generation(request, video_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def content_response(gen: Generation, variant: str = "video"):
    """The stored copy: a short-lived presigned redirect on S3, else streamed from storage."""
    key = gen.video_file if variant == "video" else gen.thumbnail_file
    if gen.state != State.COMPLETED or not key:
        what = "video" if variant == "video" else "thumbnail"
        raise NotFound(f"This generation has no stored {what} (status: {NATIVE_STATUS[gen.state]}).")
    extension = key.rsplit(".", 1)[-1]
    filename = f"{gen.public_id}.{extension}"
    url = storage.presigned_url(key, filename=filename)
    if url:
        return HttpResponseRedirect(url)
    image_types = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
    content_type = (gen.content_type or "video/mp4") if variant == "video" else image_types.get(extension, "image/jpeg")
    return FileResponse(storage.open_for_read(key), content_type=content_type, filename=filename)


class GenerationContentApi(OrgScopedAPIView):
    content_negotiation_class = AnyAcceptNegotiation  # any Accept header gets the file

    @extend_schema(
        parameters=[OpenApiParameter("variant", str, enum=["video", "thumbnail"], required=False)],
        responses={(200, "video/mp4"): bytes},
        summary="Download the stored video",
        tags=["native"],
    )
    def get(self, request, video_id: str):
        variant = request.query_params.get("variant", "video")
        if variant not in ("video", "thumbnail"):
            raise ApplicationError("variant must be video or thumbnail.", param="variant")
        return content_response(_get_generation(request, video_id), variant)


def _list_of(name: str, item: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(name, {"object": serializers.CharField(default="list"), "data": item})


_PROVIDER = inline_serializer(
    "Provider",
    {
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "requires_key": serializers.BooleanField(),
        "configured": serializers.BooleanField(),
        "keys": serializers.IntegerField(),
        "models": serializers.ListField(child=serializers.CharField()),
    },
    many=True,
)
_MODEL = inline_serializer(
    "Model",
    {
        "id": serializers.CharField(),
        "qualified_id": serializers.CharField(),
        "object": serializers.CharField(default="model"),
        "provider": serializers.CharField(),
        "name": serializers.CharField(),
        "capabilities": serializers.ListField(child=serializers.CharField()),
        "durations": serializers.ListField(child=serializers.IntegerField()),
        "sizes": serializers.ListField(child=serializers.CharField()),
        "aspect_ratios": serializers.ListField(child=serializers.CharField()),
        "default_duration": serializers.IntegerField(),
        "default_size": serializers.CharField(),
        "price_per_second": serializers.DictField(child=serializers.CharField()),
        "currency": serializers.CharField(),
        "price_version": serializers.CharField(),
        "price_source_date": serializers.DateField(),
        "deprecated": serializers.BooleanField(),
        "deprecated_on": serializers.DateField(allow_null=True),
        "note": serializers.CharField(allow_null=True),
        "supports_seed": serializers.BooleanField(),
        "supports_negative_prompt": serializers.BooleanField(),
    },
    many=True,
)


class ProviderListApi(OrgScopedAPIView):
    @extend_schema(
        summary="Providers and whether this organization can use them",
        tags=["native"],
        responses={200: _list_of("ProviderList", _PROVIDER)},
    )
    def get(self, request):
        keys = key_selectors.provider_key_list(org=request.organization)
        data = []
        for slug in registry.enabled_slugs():
            cls = registry.get_provider_class(slug)
            own = [k for k in keys if k.provider == slug]
            data.append(
                {
                    "id": slug,
                    "name": cls.label,
                    "requires_key": cls.requires_key,
                    "configured": (not cls.requires_key) or any(k.status != "invalid" for k in own),
                    "keys": len(own),
                    "models": [m.id for m in catalog.list_models(providers=[slug])],
                }
            )
        return Response({"object": "list", "data": data})


def model_data(model: catalog.ModelInfo) -> dict:
    return {
        "id": model.id,
        "qualified_id": model.qualified_id,
        "object": "model",
        "provider": model.provider,
        "name": model.label,
        "capabilities": sorted(model.capabilities),
        "durations": list(model.seconds),
        "sizes": list(model.sizes),
        "aspect_ratios": sorted({_ratio(s) for s in model.sizes}),
        "default_duration": model.default_seconds,
        "default_size": model.default_size,
        "price_per_second": {size: str(price) for size, price in model.price_per_second.items()},
        "currency": "USD",
        "price_version": model.price_version,
        "price_source_date": model.price_source_date.isoformat(),
        "deprecated": model.deprecated,
        "deprecated_on": model.deprecated_on.isoformat() if model.deprecated_on else None,
        "note": model.shutdown_note or None,
        "supports_seed": model.supports_seed,
        "supports_negative_prompt": model.supports_negative_prompt,
    }


class ModelListApi(OrgScopedAPIView):
    @extend_schema(summary="The model catalog", tags=["native"], responses={200: _list_of("ModelList", _MODEL)})
    def get(self, request):
        return Response({"object": "list", "data": [model_data(m) for m in catalog.list_models()]})


class EstimateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        model = serializers.CharField()
        duration = serializers.IntegerField(required=False)
        size = serializers.CharField(required=False)
        aspect_ratio = serializers.CharField(required=False)
        has_image = serializers.BooleanField(required=False, default=False)

        class Meta:
            ref_name = "EstimateBody"

    @extend_schema(
        request=InputSerializer,
        summary="Estimate the cost of a generation",
        tags=["native"],
        responses={
            200: inline_serializer(
                "Estimate",
                {
                    "model": serializers.CharField(),
                    "provider": serializers.CharField(),
                    "duration": serializers.IntegerField(),
                    "size": serializers.CharField(),
                    "estimated_cost": serializers.DecimalField(max_digits=12, decimal_places=4),
                    "currency": serializers.CharField(),
                    "price_version": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            model = catalog.get_model(v["model"])
        except catalog.UnknownModel as exc:
            raise ApplicationError(str(exc), param="model", code="model_not_found") from None
        size = v.get("size")
        if not size and v.get("aspect_ratio"):
            size = size_for_aspect_ratio(v["model"], v["aspect_ratio"], has_image=v["has_image"])
        seconds = v.get("duration") or model.default_seconds
        size = size or model.default_size
        errors = catalog.validate_request(model_id=v["model"], seconds=seconds, size=size, has_image=v["has_image"])
        if errors:
            raise services.ValidationFailed(errors)
        cost = catalog.estimate_cost(model, seconds=seconds, size=size)
        return Response(
            {
                "model": model.id,
                "provider": model.provider,
                "duration": seconds,
                "size": size,
                "estimated_cost": str(cost),
                "currency": "USD",
                "price_version": model.price_version,
            }
        )


class UsageApi(OrgScopedAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("start", date, required=False), OpenApiParameter("end", date, required=False)],
        summary="Usage and cost totals by provider, model, member and day",
        tags=["native"],
        responses={200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="Usage totals (`object: usage`).")},
    )
    def get(self, request):
        today = timezone.localdate()
        start = _date_param(request, "start", today.replace(day=1))
        end = _date_param(request, "end", today)
        if end < start:
            raise ApplicationError("end must not be before start.", param="end")
        if (end - start) > timedelta(days=366):
            raise ApplicationError("The range is limited to 366 days.", param="start")
        report = selectors.usage_report(org=request.organization, start=start, end=end)
        money = str
        return Response(
            {
                "object": "usage",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "currency": "USD",
                "total_cost": money(report.total_cost),
                "reserved": money(report.reserved),
                "videos": report.count,
                "completed": report.completed,
                "failed": report.failed,
                "seconds": report.seconds,
                "success_rate": report.success_rate,
                "by_provider": [
                    {"provider": r["provider"], "cost": money(r["cost"]), "videos": r["videos"]}
                    for r in report.by_provider
                ],
                "by_model": [
                    {"provider": r["provider"], "model": r["model"], "cost": money(r["cost"]), "videos": r["videos"]}
                    for r in report.by_model
                ],
                "by_member": [
                    {"member": r["user__email"], "cost": money(r["cost"]), "videos": r["videos"]}
                    for r in report.by_member
                ],
                "by_day": [{"date": r["day"].isoformat(), "cost": money(r["cost"])} for r in report.by_day],
            }
        )


def _date_param(request, name: str, default: date) -> date:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApplicationError(f"{name} must be a date like 2026-11-01.", param=name) from None
