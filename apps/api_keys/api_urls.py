from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters

from apps.api_keys import api
from apps.core.api import by_method

_secret_fields = sensitive_post_parameters("api_key", "access_key", "secret_key")

urlpatterns = [
    path("me", api.MeApi.as_view(), name="api-me"),
    path("keys", _secret_fields(by_method(get=api.KeyListApi, post=api.KeyCreateApi)), name="api-keys"),
    path("keys/<str:key_id>", api.KeyDeleteApi.as_view(), name="api-key-detail"),
    path("keys/<str:key_id>/validate", api.KeyValidateApi.as_view(), name="api-key-validate"),
]
