from django.urls import path

from apps.audit import views

org_urlpatterns = [
    path("settings/audit/", views.audit_log, name="org-audit"),
]
