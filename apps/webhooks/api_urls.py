from django.urls import path

from apps.core.api import by_method
from apps.webhooks import api

urlpatterns = [
    path("webhooks", by_method(get=api.WebhookListApi, post=api.WebhookCreateApi), name="api-webhooks"),
    path(
        "webhooks/<str:webhook_id>",
        by_method(get=api.WebhookRetrieveApi, delete=api.WebhookDeleteApi),
        name="api-webhook-detail",
    ),
    path("webhooks/<str:webhook_id>/rotate", api.WebhookRotateApi.as_view(), name="api-webhook-rotate"),
    path("webhooks/<str:webhook_id>/test", api.WebhookTestApi.as_view(), name="api-webhook-test"),
    path("webhooks/<str:webhook_id>/enable", api.WebhookEnableApi.as_view(), name="api-webhook-enable"),
    path("webhooks/<str:webhook_id>/deliveries", api.DeliveryListApi.as_view(), name="api-webhook-deliveries"),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/retry",
        api.DeliveryRetryApi.as_view(),
        name="api-webhook-delivery-retry",
    ),
    path("webhooks/<str:webhook_id>/replay", api.ReplayApi.as_view(), name="api-webhook-replay"),
]
