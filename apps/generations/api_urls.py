from django.urls import path

from apps.core.api import by_method
from apps.generations import api, openai_api

urlpatterns = [
    # MediaRouter-native
    path("video/generations", api.GenerationCreateApi.as_view(), name="api-generations"),
    path("video/generations/<str:video_id>", api.GenerationDetailApi.as_view(), name="api-generation"),
    path("video/generations/<str:video_id>/content", api.GenerationContentApi.as_view(), name="api-generation-content"),
    path("providers", api.ProviderListApi.as_view(), name="api-providers"),
    path("models", api.ModelListApi.as_view(), name="api-models"),
    path("usage", api.UsageApi.as_view(), name="api-usage"),
    path("usage/estimate", api.EstimateApi.as_view(), name="api-usage-estimate"),
    # OpenAI-compatible (the official openai SDK with base_url=<host>/v1)
    path(
        "videos",
        by_method(post=openai_api.VideoCreateApi, get=openai_api.VideoListApi),
        name="openai-videos",
    ),
    path(
        "videos/<str:video_id>",
        by_method(get=openai_api.VideoRetrieveApi, delete=openai_api.VideoDeleteApi),
        name="openai-video",
    ),
    path("videos/<str:video_id>/content", openai_api.VideoContentApi.as_view(), name="openai-video-content"),
    path("videos/<str:video_id>/remix", openai_api.VideoRemixApi.as_view(), name="openai-video-remix"),
]
