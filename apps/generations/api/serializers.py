"""What both API shapes answer with: the native ``video.generation`` and OpenAI's ``Video``, the
model and provider listings, and the error envelope's schema (for the OpenAPI document)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from apps.generations import credentials, media
from apps.generations.models import NATIVE_STATUS, Generation, State
from apps.generations.resolve import aspect_ratio_of
from apps.generations.selectors import IMAGE_CONTENT_TYPES
from apps.providers import registry
from apps.providers.modelinfo import ModelInfo

# MediaRouter's states → the OpenAI contract's four statuses (anything else would end SDK ``poll()`` early)
OPENAI_STATUS = {
    **NATIVE_STATUS,
    State.CANCELED: "failed",  # no "cancelled" in the contract: failed with error.code "canceled"
}

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
ERRORS = {400: _ERROR, 401: _ERROR, 402: _ERROR, 404: _ERROR, 409: _ERROR, 429: _ERROR}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Same key + same body returns the same video (no second job or charge); "
    "same key + a different body is a 409. Recommended: the SDK retries POSTs.",
)


def list_of(name: str, item: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(name, {"object": serializers.CharField(default="list"), "data": item})


# --- native ----------------------------------------------------------------------------------


def generation_url(request, gen: Generation) -> str:
    return request.build_absolute_uri(reverse("api-generation-content", kwargs={"video_id": gen.public_id}))


class GenerationOutput(serializers.Serializer):
    def to_representation(self, gen: Generation) -> dict:
        request = self.context["request"]
        video = thumbnail = None
        if gen.state == State.COMPLETED and gen.video_file:
            video = {
                "url": generation_url(request, gen),
                "content_type": gen.content_type or "video/mp4",
                "bytes": gen.bytes,
                "sha256": gen.sha256,
            }
            if gen.thumbnail_file:
                thumbnail = {
                    "url": generation_url(request, gen) + "?variant=thumbnail",
                    "content_type": IMAGE_CONTENT_TYPES.get(gen.thumbnail_file.rsplit(".", 1)[-1], "image/jpeg"),
                }
        return {
            "id": gen.public_id,
            "object": "video.generation",
            "status": NATIVE_STATUS[gen.state],
            "progress": gen.progress if gen.progress is not None else (100 if gen.state == State.COMPLETED else 0),
            "provider": gen.provider,
            "model": gen.model,
            "requested_model": gen.requested_model or gen.supplier_model,
            "attempts": [
                {k: a.get(k) for k in ("supplier", "outcome", "message", "price", "at")} for a in gen.attempts or []
            ],
            "prompt": gen.prompt,
            "duration": gen.seconds,
            "size": gen.size,
            "aspect_ratio": aspect_ratio_of(gen.size),
            "seed": gen.seed,
            "remixed_from": gen.remix_of.public_id if gen.remix_of_id else None,
            "created_by": gen.user.email,
            # the team's library (PATCH sets them)
            "favourite": gen.favourite,
            "tag": gen.tag or None,
            "video": video,
            "thumbnail": thumbnail,
            # the stored file as probed, against the request (null until probed)
            "verified": media.verified(gen) if gen.state == State.COMPLETED else None,
            # the C2PA manifest the provider signed into the file (null until read)
            "content_credentials": (
                credentials.api_object(gen.content_credentials) if gen.state == State.COMPLETED else None
            ),
            "usage": {
                "currency": "USD",
                "estimated_cost": str(gen.estimated_cost),
                "cost": str(gen.final_cost) if gen.final_cost is not None else None,
                "price_version": gen.price_version,
                # what the supplier says it billed, where it says (for reconciliation; not charged)
                "provider_reported_cost": (gen.provider_usage or {}).get("cost_usd"),
            },
            "error": {"code": gen.error_code, "message": gen.error_message} if gen.state == State.FAILED else None,
            "created_at": int(gen.created_at.timestamp()),
            "completed_at": int(gen.completed_at.timestamp()) if gen.completed_at else None,
        }


PROVIDER = inline_serializer(
    "Provider",
    {
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "requires_key": serializers.BooleanField(),
        "configured": serializers.BooleanField(),
        "keys": serializers.IntegerField(),
        "models": serializers.ListField(child=serializers.CharField()),
        "kind": serializers.ChoiceField(choices=["direct", "aggregator"]),
        "health": serializers.ChoiceField(choices=["closed", "open", "half_open"]),
        "supports_cancel": serializers.BooleanField(),
        "supports_callbacks": serializers.BooleanField(),
        "key_fields": inline_serializer(
            "ProviderKeyField",
            {
                "name": serializers.CharField(),
                "label": serializers.CharField(),
                "secret": serializers.BooleanField(),
                "kind": serializers.CharField(),
                "required": serializers.BooleanField(),
                "choices": serializers.ListField(child=serializers.CharField()),
            },
            many=True,
        ),
    },
    many=True,
)

SUPPLIER = inline_serializer(
    "ModelSupplier",
    {
        "id": serializers.CharField(help_text="`supplier/model`: pins this supplier"),
        "provider": serializers.CharField(),
        "kind": serializers.ChoiceField(choices=["direct", "aggregator"]),
        "name": serializers.CharField(),
        "capabilities": serializers.ListField(child=serializers.CharField()),
        "durations": serializers.ListField(child=serializers.IntegerField()),
        "sizes": serializers.ListField(child=serializers.CharField()),
        "price_per_second": serializers.DictField(child=serializers.CharField()),
        "price_per_second_with_audio": serializers.DictField(child=serializers.CharField(), allow_null=True),
        "clip_prices": serializers.DictField(child=serializers.CharField(), allow_null=True),
        "price_version": serializers.CharField(),
        "price_source_date": serializers.DateField(),
        "deprecated_on": serializers.DateField(allow_null=True),
        "usable": serializers.BooleanField(help_text="This organization can run it now"),
        "reason": serializers.CharField(allow_null=True, help_text="Why not, when it cannot"),
        "health": serializers.ChoiceField(choices=["closed", "open", "half_open"]),
    },
    many=True,
)
MODEL = inline_serializer(
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
        "family": serializers.CharField(),
        "routed_to": serializers.CharField(
            allow_null=True, help_text="The supplier a request for `id` would run on now (null: none can)"
        ),
        "suppliers": SUPPLIER,
    },
    many=True,
)


def _prices(table) -> dict | None:
    return None if table is None else {size: str(price) for size, price in table.items()}


def supplier_data(candidate) -> dict:
    """One supplier of a canonical model, as the router sees it for this organization."""
    from apps.generations import routing

    model = candidate.model
    cls = registry.get_provider_class(model.provider, allow_disabled=True)
    return {
        "id": model.qualified_id,
        "provider": model.provider,
        "kind": cls.supplier_kind,
        "name": model.label,
        "capabilities": sorted(model.capabilities),
        "durations": list(model.seconds),
        "sizes": list(model.sizes),
        "price_per_second": _prices(model.price_per_second) or {},
        "price_per_second_with_audio": _prices(model.price_per_second_audio),
        "clip_prices": (
            None
            if model.clip_prices is None
            else {f"{seconds}s@{size}": str(price) for (seconds, size), price in model.clip_prices.items()}
        ),
        "price_version": model.price_version,
        "price_source_date": model.price_source_date.isoformat(),
        "deprecated_on": model.deprecated_on.isoformat() if model.deprecated_on else None,
        "usable": candidate.usable,
        "reason": candidate.reason or None,
        "health": routing.circuit_state(model.provider),
    }


def routed_model_data(route) -> dict:
    """A canonical model with all its suppliers; the top-level fields are the chosen supplier's."""
    chosen = route.chosen
    first = (chosen or route.candidates[0]).model
    return {
        **model_data(first),
        "routed_to": chosen.model.qualified_id if chosen else None,
        "suppliers": [supplier_data(c) for c in route.candidates],
    }


def model_data(model: ModelInfo) -> dict:
    return {
        "id": model.id,
        "qualified_id": model.qualified_id,
        "object": "model",
        "provider": model.provider,
        "name": model.label,
        "capabilities": sorted(model.capabilities),
        "durations": list(model.seconds),
        "sizes": list(model.sizes),
        "aspect_ratios": sorted({aspect_ratio_of(s) for s in model.sizes}),
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
        "family": model.family,
    }


# --- OpenAI ----------------------------------------------------------------------------------


class VideoErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()

    class Meta:
        ref_name = "VideoError"


class VideoOutput(serializers.Serializer):
    """The contract's ``Video`` object: all 13 keys, always present (nullable ones as null)."""

    id = serializers.CharField()
    object = serializers.CharField(default="video")
    model = serializers.CharField(
        help_text="`supplier/model`: the supplier that runs the job and the canonical model (e.g. `fal/veo-3.1`)."
    )
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
            "model": gen.supplier_model,
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


def video(gen: Generation) -> dict:
    return VideoOutput(gen).data


# --- batches (native) ------------------------------------------------------------------------


def batch_item_data(request, gen: Generation) -> dict:
    """One position of a batch: its latest attempt, in brief (the full object is the generation's)."""
    waiting = gen.batch_waiting and gen.state == State.CREATED
    return {
        "index": gen.batch_index,
        "id": gen.public_id,
        "status": "waiting" if waiting else NATIVE_STATUS[gen.state],
        "progress": 100 if gen.state == State.COMPLETED else (gen.progress or 0),
        "model": gen.model,
        "provider": gen.provider,
        "prompt": gen.prompt,
        "duration": gen.seconds,
        "size": gen.size,
        "estimated_cost": str(gen.estimated_cost),
        "cost": str(gen.final_cost) if gen.final_cost is not None else None,
        "video": (
            {"url": generation_url(request, gen), "bytes": gen.bytes}
            if gen.state == State.COMPLETED and gen.video_file
            else None
        ),
        "error": {"code": gen.error_code, "message": gen.error_message} if gen.state == State.FAILED else None,
    }


def batch_data(request, summary, *, items: bool = True) -> dict:
    """The native ``video.batch`` object: totals always, the items when asked (not in listings)."""
    batch = summary.batch
    data = {
        "id": batch.public_id,
        "object": "video.batch",
        "status": summary.status,
        "concurrency": batch.concurrency,
        "created_by": batch.created_by.email,
        "created_at": int(batch.created_at.timestamp()),
        "totals": {
            "items": len(summary.items),
            "attempts": summary.attempts,
            "currency": "USD",
            "estimated": str(summary.estimated),
            "held": str(summary.held),
            "charged": str(summary.charged),
            "by_status": {
                name: summary.counts.get(name, 0)
                for name in ("waiting", "queued", "in_progress", "completed", "failed", "canceled")
            },
        },
        "content_url": request.build_absolute_uri(reverse("api-batch-content", kwargs={"batch_id": batch.public_id})),
    }
    if items:
        data["items"] = [batch_item_data(request, gen) for gen in summary.items]
    return data


_BATCH_FIELDS = {
    "id": serializers.CharField(),
    "object": serializers.CharField(default="video.batch"),
    "status": serializers.CharField(help_text="`in_progress`, then `completed`, `partial` or `failed`"),
    "concurrency": serializers.IntegerField(),
    "created_by": serializers.CharField(),
    "created_at": serializers.IntegerField(),
    "totals": inline_serializer(
        "VideoBatchTotals",
        {
            "items": serializers.IntegerField(),
            "attempts": serializers.IntegerField(),
            "currency": serializers.CharField(),
            "estimated": serializers.CharField(),
            "held": serializers.CharField(),
            "charged": serializers.CharField(),
            "by_status": serializers.DictField(child=serializers.IntegerField()),
        },
    ),
    "content_url": serializers.CharField(),
}
BATCH = inline_serializer(
    "VideoBatch",
    {
        **_BATCH_FIELDS,
        "items": inline_serializer(
            "VideoBatchItem",
            {
                "index": serializers.IntegerField(),
                "id": serializers.CharField(),
                "status": serializers.CharField(
                    help_text="`waiting` (held, not sent), `queued`, `in_progress`, `completed`, `failed`, `canceled`"
                ),
                "progress": serializers.IntegerField(),
                "model": serializers.CharField(),
                "provider": serializers.CharField(),
                "prompt": serializers.CharField(),
                "duration": serializers.IntegerField(),
                "size": serializers.CharField(),
                "estimated_cost": serializers.CharField(),
                "cost": serializers.CharField(allow_null=True),
                "video": serializers.DictField(allow_null=True),
                "error": serializers.DictField(allow_null=True),
            },
            many=True,
        ),
    },
)
# a listing's batches carry their totals, not their items
BATCH_SUMMARY = inline_serializer("VideoBatchSummary", _BATCH_FIELDS, many=True)
