"""System checks for the fenced hot paths (``manage.py check``; also run by ``migrate``, which is
the Procfile's release step, and by ``runserver``)."""

from __future__ import annotations

import django
from django.conf import settings
from django.core.checks import Error, register

from apps.core.prepared import TESTED_DJANGO_VERSIONS


@register()
def prepared_queries_django_version(app_configs=None, **kwargs) -> list[Error]:
    """``MEDIAROUTER_PREPARED_QUERIES`` builds on Django's compiler internals: refuse it on a Django
    (major, minor) that tests/core/test_prepared.py has not passed on. (At run time the prepared
    path also stays off on such a version; this check says so instead of being silent.)"""
    if not getattr(settings, "MEDIAROUTER_PREPARED_QUERIES", False):
        return []
    version = django.VERSION[:2]
    if version in TESTED_DJANGO_VERSIONS:
        return []
    tested = ", ".join(f"{major}.{minor}" for major, minor in TESTED_DJANGO_VERSIONS)
    return [
        Error(
            f"MEDIAROUTER_PREPARED_QUERIES is on, but Django {version[0]}.{version[1]} is not a version "
            f"apps.core.prepared was tested with ({tested}).",
            hint="Turn MEDIAROUTER_PREPARED_QUERIES off, or run tests/core/test_prepared.py and "
            "bench/prepared.py on this version and add it to apps.core.prepared.TESTED_DJANGO_VERSIONS.",
            id="core.E001",
        )
    ]
