"""The money endpoints of the native API: usage totals and the cost estimate of a request.

Thin views: parse, call one selector (or ``resolve_request``, which prices a request), render.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from apps.billing import selectors
from apps.core.api import OrgScopedAPIView
from apps.core.errors import ApplicationError
from apps.generations.api import parsing
from apps.generations.resolve import GenerationRequest, UnknownModelError, resolve_request

TAG = "native"


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
        tags=[TAG],
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
        ratio = None
        if not v.get("size") and v.get("aspect_ratio"):
            ratio = parsing.parse_aspect_ratio(v["aspect_ratio"])
        wanted = GenerationRequest(
            model=v["model"], prompt="", seconds=v.get("duration"), size=v.get("size"), aspect_ratio=ratio
        )
        try:
            resolved = resolve_request(org=request.organization, request=wanted, has_image=v["has_image"])
        except UnknownModelError as exc:
            exc.code = "model_not_found"  # the native API's code for it
            raise
        return Response(
            {
                "model": resolved.model.id,
                "provider": resolved.model.provider,
                "duration": resolved.seconds,
                "size": resolved.size,
                "estimated_cost": str(resolved.estimate),
                "currency": "USD",
                "price_version": resolved.model.price_version,
            }
        )


class UsageApi(OrgScopedAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("start", date, required=False), OpenApiParameter("end", date, required=False)],
        summary="Usage and cost totals by provider, model, member and day",
        tags=[TAG],
        responses={200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="Usage totals (`object: usage`).")},
    )
    def get(self, request):
        today = timezone.localdate()
        start = parsing.date_param(request, "start", today.replace(day=1))
        end = parsing.date_param(request, "end", today)
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
