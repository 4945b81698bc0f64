"""Share links: the public page (``/s/<token>/``) and, under /o/<org_slug>/, create and revoke."""

from django.urls import path

from apps.sharing import views

public_urlpatterns = [
    path("s/<str:share_token>/", views.share_page, name="share-page"),
    path("s/<str:share_token>/video", views.share_video, name="share-video"),
    path("s/<str:share_token>/poster", views.share_poster, name="share-poster"),
]

org_urlpatterns = [
    path("videos/<str:video_id>/shares/", views.share_create, name="video-share-create"),
    path("shares/<str:share_id>/revoke/", views.share_revoke, name="share-revoke"),
]
