"""Pages for generations (playground, gallery, one video), under /o/<org_slug>/."""

from django.urls import path

from apps.generations.views import batches, gallery, playground, routing, video

org_urlpatterns: list = [
    path("playground/", playground.playground, name="playground"),
    path("videos/", gallery.gallery, name="gallery"),
    path("videos/<str:video_id>/", video.video_detail, name="video-detail"),
    path("videos/<str:video_id>/content", video.video_content, name="video-content"),
    path("videos/<str:video_id>/delete/", video.video_delete, name="video-delete"),
    path("videos/<str:video_id>/library/", video.video_library, name="video-library"),
    path("batches/", batches.batch_list, name="batches"),
    path("batches/<str:batch_id>/", batches.batch_detail, name="batch-detail"),
    path("batches/<str:batch_id>/retry/", batches.batch_retry, name="batch-retry"),
    path("batches/<str:batch_id>/content", batches.batch_content, name="batch-content"),
    path("settings/routing/", routing.routing_settings, name="org-routing"),
]
