from django.urls import path

from apps.core.api import by_method
from apps.generations.api import batches, native, openai

urlpatterns = [
    # MediaRouter-native
    path(
        "video/generations",
        by_method(post=native.GenerationCreateApi, get=native.GenerationListApi),
        name="api-generations",
    ),
    path(
        "video/generations/<str:video_id>",
        by_method(
            get=native.GenerationRetrieveApi, patch=native.GenerationUpdateApi, delete=native.GenerationDeleteApi
        ),
        name="api-generation",
    ),
    path(
        "video/generations/<str:video_id>/content",
        native.GenerationContentApi.as_view(),
        name="api-generation-content",
    ),
    path("video/batches", by_method(post=batches.BatchCreateApi, get=batches.BatchListApi), name="api-batches"),
    path("video/batches/<str:batch_id>", batches.BatchRetrieveApi.as_view(), name="api-batch"),
    path("video/batches/<str:batch_id>/retry", batches.BatchRetryApi.as_view(), name="api-batch-retry"),
    path("video/batches/<str:batch_id>/content", batches.BatchContentApi.as_view(), name="api-batch-content"),
    path("providers", native.ProviderListApi.as_view(), name="api-providers"),
    path("models", native.ModelListApi.as_view(), name="api-models"),
    path(
        "routing",
        by_method(get=native.RoutingPolicyRetrieveApi, put=native.RoutingPolicyUpdateApi),
        name="api-routing",
    ),
    # OpenAI-compatible (the official openai SDK with base_url=<host>/v1)
    path("videos", by_method(post=openai.VideoCreateApi, get=openai.VideoListApi), name="openai-videos"),
    path(
        "videos/<str:video_id>",
        by_method(get=openai.VideoRetrieveApi, delete=openai.VideoDeleteApi),
        name="openai-video",
    ),
    path("videos/<str:video_id>/content", openai.VideoContentApi.as_view(), name="openai-video-content"),
    path("videos/<str:video_id>/remix", openai.VideoRemixApi.as_view(), name="openai-video-remix"),
]
