"""Pages for generations (playground, gallery, usage), under /o/<org_slug>/."""

from django.urls import path

from apps.generations import views

org_urlpatterns: list = [
    path("playground/", views.playground, name="playground"),
    path("videos/", views.gallery, name="gallery"),
    path("videos/<str:video_id>/", views.video_detail, name="video-detail"),
    path("videos/<str:video_id>/content", views.video_content, name="video-content"),
    path("videos/<str:video_id>/delete/", views.video_delete, name="video-delete"),
    path("usage/", views.usage, name="usage"),
]
