"""The webhooks API: endpoints, their delivery log, manual retry and replay. One APIView per
operation, explicit serializers; a signing secret appears only in the create and rotate answers."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.core.api import OrgScopedAPIView, created
from apps.core.errors import NotFound
from apps.webhooks import selectors, services
from apps.webhooks.models import VIDEO_EVENT_TYPES

_ERROR = OpenApiResponse(description='The error envelope: `{"error": {"message", "type", "param", "code"}}`.')
TAGS = ["webhooks"]


def _membership(request):
    return request.auth.membership


def _endpoint_or_404(request, webhook_id: str):
    endpoint = selectors.endpoint_get(org=request.organization, public_id=webhook_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", param="webhook_id")
    return endpoint


class EndpointOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    url = serializers.CharField()
    events = serializers.SerializerMethodField(help_text="The event types sent here.")
    description = serializers.CharField()
    status = serializers.SerializerMethodField(help_text="`enabled`, or `disabled` (see `disabled_reason`).")
    disabled_reason = serializers.CharField()
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "WebhookEndpoint"

    def get_object(self, obj) -> str:
        return "webhook_endpoint"

    def get_events(self, obj) -> list[str]:
        return list(obj.events) or list(VIDEO_EVENT_TYPES)

    def get_status(self, obj) -> str:
        return "enabled" if obj.is_active else "disabled"


class EndpointWithSecretSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret (`whsec_…`). Shown once: store it now.")

    class Meta:
        ref_name = "WebhookEndpointWithSecret"


@sensitive_variables("secret", "data")
def _with_secret(endpoint, secret: str) -> dict:
    data = dict(EndpointOutputSerializer(endpoint).data)
    data["secret"] = secret
    return data


class AttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    response = serializers.CharField(source="response_excerpt", help_text="The answer's first 500 characters.")
    error = serializers.CharField()

    class Meta:
        ref_name = "WebhookAttempt"


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    event_id = serializers.CharField(source="event.public_id", help_text="Also the `webhook-id` header.")
    event_type = serializers.CharField(source="event.type")
    video_id = serializers.CharField(source="event.video_id")
    url = serializers.CharField(
        source="target_url", help_text="Where it goes (a per-request `webhook_url`, else the endpoint's)."
    )
    state = serializers.CharField(help_text="`pending`, `sending`, `succeeded` or `failed` (gave up).")
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    attempt_log = serializers.SerializerMethodField()

    class Meta:
        ref_name = "WebhookDelivery"

    def get_object(self, obj) -> str:
        return "webhook_delivery"

    def get_attempt_log(self, obj) -> list[dict]:
        attempts = getattr(obj, "recent_attempts", None)
        if attempts is None:
            attempts = list(obj.attempt_log.all()[: selectors.ATTEMPTS_SHOWN])
        return AttemptSerializer(attempts, many=True).data


class WebhookListApi(OrgScopedAPIView):
    class OutputSerializer(serializers.Serializer):
        object = serializers.CharField(default="list")
        data = EndpointOutputSerializer(many=True)

        class Meta:
            ref_name = "WebhookEndpointList"

    @extend_schema(operation_id="webhooks_list", tags=TAGS, responses={200: OutputSerializer})
    def get(self, request):
        """The organization's webhook endpoints (never their secrets). Every member may list them."""
        endpoints = selectors.endpoint_list(org=self.organization)
        return Response(self.OutputSerializer({"object": "list", "data": endpoints}).data)


class WebhookCreateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=services.MAX_URL_LENGTH)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=VIDEO_EVENT_TYPES), required=False, allow_empty=True
        )
        description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "WebhookEndpointCreateRequest"

    @extend_schema(
        operation_id="webhooks_create",
        tags=TAGS,
        request=InputSerializer,
        responses={201: EndpointWithSecretSerializer, 400: _ERROR, 403: _ERROR},
    )
    @sensitive_variables("secret")
    def post(self, request):
        """Add an endpoint (owners and admins): `{"url", "events"?, "description"?}`. The answer
        carries the signing `secret` (`whsec_…`) once. `events` defaults to every type."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, secret = services.endpoint_create(
            by=_membership(request), url=data["url"], events=data.get("events"), description=data["description"]
        )
        return created(_with_secret(endpoint, secret))


class WebhookRetrieveApi(OrgScopedAPIView):
    @extend_schema(operation_id="webhooks_retrieve", tags=TAGS, responses={200: EndpointOutputSerializer, 404: _ERROR})
    def get(self, request, webhook_id: str):
        return Response(EndpointOutputSerializer(_endpoint_or_404(request, webhook_id)).data)


class WebhookDeleteApi(OrgScopedAPIView):
    @extend_schema(
        operation_id="webhooks_delete", tags=TAGS, request=None, responses={204: None, 403: _ERROR, 404: _ERROR}
    )
    def delete(self, request, webhook_id: str):
        """Delete an endpoint and its delivery log (owners and admins)."""
        services.endpoint_delete(by=_membership(request), public_id=webhook_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateApi(OrgScopedAPIView):
    @extend_schema(
        operation_id="webhooks_rotate",
        tags=TAGS,
        request=None,
        responses={200: EndpointWithSecretSerializer, 403: _ERROR, 404: _ERROR},
    )
    @sensitive_variables("secret")
    def post(self, request, webhook_id: str):
        """A new signing secret, shown once. For `WEBHOOK_SECRET_OVERLAP_HOURS` deliveries carry a
        signature with each secret, so a receiver can switch without losing one."""
        endpoint, secret = services.endpoint_rotate(by=_membership(request), public_id=webhook_id)
        return Response(_with_secret(endpoint, secret))


class WebhookTestApi(OrgScopedAPIView):
    @extend_schema(
        operation_id="webhooks_test",
        tags=TAGS,
        request=None,
        responses={202: DeliverySerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request, webhook_id: str):
        """Send a `webhook.test` event to this endpoint (owners and admins)."""
        delivery = services.endpoint_test(by=_membership(request), public_id=webhook_id)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookEnableApi(OrgScopedAPIView):
    @extend_schema(
        operation_id="webhooks_enable",
        tags=TAGS,
        request=None,
        responses={200: EndpointOutputSerializer, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request, webhook_id: str):
        """Switch a disabled endpoint back on (owners and admins)."""
        endpoint = services.endpoint_enable(by=_membership(request), public_id=webhook_id)
        return Response(EndpointOutputSerializer(endpoint).data)


class DeliveryListApi(OrgScopedAPIView):
    class OutputSerializer(serializers.Serializer):
        object = serializers.CharField(default="list")
        data = DeliverySerializer(many=True)

        class Meta:
            ref_name = "WebhookDeliveryList"

    @extend_schema(operation_id="webhooks_deliveries", tags=TAGS, responses={200: OutputSerializer, 404: _ERROR})
    def get(self, request, webhook_id: str):
        """The endpoint's latest 50 deliveries, newest first, each with its last 10 attempts
        (status code, latency, the answer's first 500 characters)."""
        endpoint = _endpoint_or_404(request, webhook_id)
        rows = selectors.delivery_list(endpoint=endpoint)
        return Response(self.OutputSerializer({"object": "list", "data": rows}).data)


class DeliveryRetryApi(OrgScopedAPIView):
    @extend_schema(
        operation_id="webhooks_delivery_retry",
        tags=TAGS,
        request=None,
        responses={202: DeliverySerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request, webhook_id: str, delivery_id: str):
        """Send this delivery again now (owners and admins), with the same `webhook-id`."""
        delivery = services.delivery_retry(by=_membership(request), webhook_id=webhook_id, delivery_id=delivery_id)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class ReplayApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        since = serializers.DateTimeField()
        until = serializers.DateTimeField()

        class Meta:
            ref_name = "WebhookReplayRequest"

    class OutputSerializer(serializers.Serializer):
        replayed = serializers.IntegerField()

        class Meta:
            ref_name = "WebhookReplay"

    @extend_schema(
        operation_id="webhooks_replay",
        tags=TAGS,
        request=InputSerializer,
        responses={202: OutputSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request, webhook_id: str):
        """Send this endpoint again every event from `since` to `until` (ISO 8601), with their
        original ids (owners and admins; at most 1,000 events)."""
        _endpoint_or_404(request, webhook_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.endpoint_replay(
            by=_membership(request),
            public_id=webhook_id,
            since=serializer.validated_data["since"],
            until=serializer.validated_data["until"],
        )
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)
