from django.urls import path

from apps.billing import api

urlpatterns = [
    path("usage", api.UsageApi.as_view(), name="api-usage"),
    path("usage/estimate", api.EstimateApi.as_view(), name="api-usage-estimate"),
]
