"""Settings → Webhooks, under /o/<org_slug>/."""

from django.urls import path

from apps.webhooks import views

org_urlpatterns = [
    path("settings/webhooks/", views.webhooks_page, name="org-webhooks"),
    path("settings/webhooks/add/", views.webhook_add, name="org-webhook-add"),
    path("settings/webhooks/<str:webhook_id>/", views.webhook_log, name="org-webhook-log"),
    path("settings/webhooks/<str:webhook_id>/delete/", views.webhook_delete, name="org-webhook-delete"),
    path("settings/webhooks/<str:webhook_id>/rotate/", views.webhook_rotate, name="org-webhook-rotate"),
    path("settings/webhooks/<str:webhook_id>/test/", views.webhook_test, name="org-webhook-test"),
    path("settings/webhooks/<str:webhook_id>/enable/", views.webhook_enable, name="org-webhook-enable"),
    path(
        "settings/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/retry/",
        views.delivery_retry,
        name="org-webhook-delivery-retry",
    ),
]
