"""The usage page, under /o/<org_slug>/."""

from django.urls import path

from apps.billing import views

org_urlpatterns: list = [
    path("usage/", views.usage, name="usage"),
]
