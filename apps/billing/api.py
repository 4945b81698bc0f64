"""The money endpoints of the native API: usage totals and the cost estimate of a request.

Thin views: parse, call one selector (or ``resolve_request``, which prices a request), render.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
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
        # the create's strict types; a duration of 0 is a field error, not the model's default
        model = parsing.StrictCharField(max_length=100)
        duration = parsing.StrictIntegerField(required=False, min_value=1, max_value=600)
        size = parsing.StrictCharField(required=False, max_length=20)
        aspect_ratio = parsing.StrictCharField(required=False, max_length=20)
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


def _rows(name: str, fields: dict) -> serializers.Serializer:
    return inline_serializer(name, fields, many=True)


_MONEY = serializers.CharField(help_text="USD, a decimal string")
USAGE = inline_serializer(
    "Usage",
    {
        "object": serializers.ChoiceField(choices=["usage"]),
        "start": serializers.DateField(),
        "end": serializers.DateField(),
        "currency": serializers.ChoiceField(choices=["USD"]),
        "total_cost": _MONEY,
        "reserved": _MONEY,
        "videos": serializers.IntegerField(min_value=0),
        "completed": serializers.IntegerField(min_value=0),
        "failed": serializers.IntegerField(min_value=0),
        "seconds": serializers.IntegerField(min_value=0),
        "success_rate": serializers.FloatField(allow_null=True),
        "by_provider": _rows(
            "UsageByProvider",
            {"provider": serializers.CharField(), "cost": _MONEY, "videos": serializers.IntegerField()},
        ),
        "by_model": _rows(
            "UsageByModel",
            {
                "provider": serializers.CharField(),
                "model": serializers.CharField(),
                "cost": _MONEY,
                "videos": serializers.IntegerField(),
            },
        ),
        "by_member": _rows(
            "UsageByMember",
            {"member": serializers.CharField(), "cost": _MONEY, "videos": serializers.IntegerField()},
        ),
        "by_day": _rows("UsageByDay", {"date": serializers.DateField(), "cost": _MONEY}),
    },
)


def _usd(amount) -> str:
    return str(amount)


class UsageApi(OrgScopedAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("start", date, required=False), OpenApiParameter("end", date, required=False)],
        summary="Usage and cost totals by provider, model, member and day",
        tags=[TAG],
        responses={200: USAGE},
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
        return Response(
            {
                "object": "usage",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "currency": "USD",
                "total_cost": _usd(report.total_cost),
                "reserved": _usd(report.reserved),
                "videos": report.count,
                "completed": report.completed,
                "failed": report.failed,
                "seconds": report.seconds,
                "success_rate": report.success_rate,
                "by_provider": [
                    {"provider": r["provider"], "cost": _usd(r["cost"]), "videos": r["videos"]}
                    for r in report.by_provider
                ],
                "by_model": [
                    {"provider": r["provider"], "model": r["model"], "cost": _usd(r["cost"]), "videos": r["videos"]}
                    for r in report.by_model
                ],
                "by_member": [
                    {"member": r["user__email"], "cost": _usd(r["cost"]), "videos": r["videos"]}
                    for r in report.by_member
                ],
                "by_day": [{"date": r["day"].isoformat(), "cost": _usd(r["cost"])} for r in report.by_day],
            }
        )
