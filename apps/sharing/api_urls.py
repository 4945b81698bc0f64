from django.urls import path

from apps.core.api import by_method
from apps.sharing import api

urlpatterns = [
    path(
        "video/generations/<str:video_id>/shares",
        by_method(post=api.ShareCreateApi, get=api.ShareListApi),
        name="api-generation-shares",
    ),
    path("shares/<str:share_id>", by_method(delete=api.ShareRevokeApi), name="api-share"),
]
