"""Pages for provider keys and API tokens, under /o/<org_slug>/."""

from django.urls import path

from apps.api_keys import views

org_urlpatterns = [
    path("settings/keys/", views.keys_page, name="org-keys"),
    path("settings/keys/add/", views.key_add, name="org-key-add"),
    path("settings/keys/<str:key_id>/validate/", views.key_validate, name="org-key-validate"),
    path("settings/keys/<str:key_id>/default/", views.key_make_default, name="org-key-default"),
    path("settings/keys/<str:key_id>/delete/", views.key_delete, name="org-key-delete"),
    path("settings/tokens/new/", views.token_create, name="org-token-create"),
    path("settings/tokens/<str:token_id>/revoke/", views.token_revoke, name="org-token-revoke"),
]
