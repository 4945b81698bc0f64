from django.urls import path

from apps.api_keys import api

urlpatterns = [
    path("me", api.MeApi.as_view(), name="api-me"),
]
