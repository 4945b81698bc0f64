from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts.urls import org_urlpatterns as account_pages
from apps.api_keys.urls import org_urlpatterns as key_pages
from apps.audit.urls import org_urlpatterns as audit_pages
from apps.billing.urls import org_urlpatterns as billing_pages
from apps.core.api import json_not_found
from apps.core.views import healthz
from apps.generations.admin_views import service_health
from apps.generations.callbacks import provider_callback
from apps.generations.urls import org_urlpatterns as generation_pages
from apps.generations.views.inputs import input_image
from apps.metrics.views import metrics
from apps.sharing.urls import org_urlpatterns as sharing_pages
from apps.sharing.urls import public_urlpatterns as share_links
from apps.webhooks.urls import org_urlpatterns as webhook_pages

admin.site.site_header = "MediaRouter operations"
admin.site.site_title = "MediaRouter admin"

urlpatterns = [
    path(settings.ADMIN_URL + "health/", admin.site.admin_view(service_health), name="admin-health"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),  # Prometheus; METRICS_TOKEN / METRICS_ALLOWED_NETWORKS
    # providers push completion here (apps/generations/callbacks.py); the token is the proof
    path("inputs/<str:token>/", input_image, name="input-image"),  # signed, expiring (apps.generations.inputs)
    path("hooks/providers/<slug:provider>/<str:callback_token>", provider_callback, name="provider-callback"),
    # share links: a video for anyone who holds the link, no login (apps.sharing)
    path("", include(share_links)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/", include("apps.api_keys.api_urls")),
    path("v1/", include("apps.generations.api.urls")),
    path("v1/", include("apps.billing.api_urls")),
    path("v1/", include("apps.webhooks.api_urls")),
    path("v1/", include("apps.sharing.api_urls")),
    # any other /v1/ path: a JSON 404 in the API's envelope, even with DEBUG on (never the URL list)
    re_path(r"^v1(?:/|$)", csrf_exempt(json_not_found), name="api-not-found"),
    path(
        "o/<slug:org_slug>/",
        include(
            account_pages + key_pages + generation_pages + billing_pages + audit_pages + webhook_pages + sharing_pages
        ),
    ),
    path("", include("apps.accounts.urls")),
]

handler404 = "apps.core.views.page_not_found"
handler500 = "apps.core.views.server_error"
