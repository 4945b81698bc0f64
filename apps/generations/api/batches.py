"""The native API's batches: ``/v1/video/batches`` (create, list), ``/{id}`` (items and totals),
``/{id}/retry`` (ask again for the failed items) and ``/{id}/content`` (the finished videos as
one streamed zip). Thin, as the rest of the API: parse, call one service or selector, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.core.api import AnyAcceptNegotiation, OrgScopedAPIView
from apps.core.errors import ApplicationError, NotFound
from apps.generations import archive, batches, selectors
from apps.generations.api import parsing
from apps.generations.api.native import TAG, GenerationCreateApi, native_request
from apps.generations.api.serializers import BATCH, BATCH_SUMMARY, ERRORS, batch_data, list_of
from apps.generations.models import Batch
from apps.generations.resolve import UnknownModelError


def batch_or_404(request, batch_id: str) -> Batch:
    batch = selectors.batch_get(org=request.organization, public_id=batch_id)
    if batch is None:
        raise NotFound("No such batch in this organization.", param="id")
    return batch


def _item_error(exc: ApplicationError) -> ApplicationError:
    """The native names inside an item (the image field is ``image``), as a single create says."""
    if exc.param:
        exc.param = exc.param.replace(".input_reference", ".image")
    if isinstance(getattr(exc, "cause", None), UnknownModelError):
        exc.code = "model_not_found"
    return exc


class BatchCreateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        requests = serializers.ListField(
            child=serializers.DictField(), allow_empty=False, help_text="Native create bodies, one per video."
        )
        concurrency = parsing.StrictIntegerField(
            required=False, min_value=1, help_text="At most this many run at once (default BATCH_DEFAULT_CONCURRENCY)."
        )

        class Meta:
            ref_name = "VideoBatchCreateBody"

    @extend_schema(
        request=InputSerializer,
        responses={201: BATCH, **{k: v for k, v in ERRORS.items() if k in (400, 402, 409)}},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Create a batch of video generations (held as a whole, or refused)",
        operation_id="video_batches_create",
        tags=[TAG],
    )
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        wanted = []
        for index, item in enumerate(v["requests"]):
            data = GenerationCreateApi.InputSerializer(data=item)
            if not data.is_valid():
                field, messages = next(iter(data.errors.items()))
                raise ApplicationError(
                    f"requests[{index}].{field}: {messages[0]}", param=f"requests[{index}].{field}", code="invalid"
                )
            if data.validated_data.get("webhook_url"):
                raise ApplicationError(
                    f"requests[{index}].webhook_url: not supported in a batch "
                    "(the team's webhooks get every item's events).",
                    param=f"requests[{index}].webhook_url",
                )
            try:
                wanted.append(native_request(data.validated_data))
            except ApplicationError as exc:
                raise batches.BatchItemError(index, exc) from None
        try:
            batch = batches.batch_create(
                by=parsing.membership(request),
                requests=wanted,
                concurrency=v.get("concurrency"),
                idempotency_key=parsing.idempotency_key(request),
            )
        except ApplicationError as exc:
            raise _item_error(exc) from None
        summary = selectors.batch_summary(batch=batch)
        return Response(batch_data(request, summary), status=status.HTTP_201_CREATED)


class BatchListApi(OrgScopedAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("limit", int, required=False), OpenApiParameter("offset", int, required=False)],
        responses={200: list_of("VideoBatchList", BATCH_SUMMARY)},
        summary="List batches (totals only)",
        operation_id="video_batches_list",
        tags=[TAG],
    )
    def get(self, request):
        limit = parsing.int_param(request, "limit", 20, 1, 100)
        offset = parsing.int_param(request, "offset", 0, 0, 10**9)
        rows = list(selectors.batch_list(org=request.organization)[offset : offset + limit + 1])
        summaries = selectors.batch_summaries(org=request.organization, batches=rows[:limit])
        return Response(
            {
                "object": "list",
                "data": [batch_data(request, s, items=False) for s in summaries],
                "has_more": len(rows) > limit,
                "limit": limit,
                "offset": offset,
            }
        )


class BatchRetrieveApi(OrgScopedAPIView):
    @extend_schema(responses={200: BATCH, 404: ERRORS[404]}, summary="A batch: its items and totals", tags=[TAG])
    def get(self, request, batch_id: str):
        summary = selectors.batch_summary(batch=batch_or_404(request, batch_id))
        return Response(batch_data(request, summary))


class BatchRetryApi(OrgScopedAPIView):
    @extend_schema(
        request=None,
        responses={200: BATCH, **{k: v for k, v in ERRORS.items() if k in (400, 402, 404)}},
        summary="Ask again for the batch's failed items (new generations, budget-checked together)",
        operation_id="video_batches_retry",
        tags=[TAG],
    )
    def post(self, request, batch_id: str):
        batch = batch_or_404(request, batch_id)
        try:
            batches.batch_retry(by=parsing.membership(request), batch=batch)
        except ApplicationError as exc:
            raise _item_error(exc) from None
        return Response(batch_data(request, selectors.batch_summary(batch=batch)))


class BatchContentApi(OrgScopedAPIView):
    content_negotiation_class = AnyAcceptNegotiation  # any Accept header gets the file

    @extend_schema(
        responses={(200, "application/zip"): bytes, 404: ERRORS[404]},
        summary="The batch's finished videos as one zip (streamed)",
        tags=[TAG],
    )
    def get(self, request, batch_id: str):
        summary = selectors.batch_summary(batch=batch_or_404(request, batch_id))
        return archive.zip_response(summary)
