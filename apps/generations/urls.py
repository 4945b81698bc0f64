"""Pages for generations (playground, gallery, usage), under /o/<org_slug>/."""

org_urlpatterns: list = []
