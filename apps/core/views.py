from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mediarouter.celery import app as celery_app

logger = logging.getLogger(__name__)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"; reported, not swallowed
        logger.warning("healthz: database check failed: %s", type(exc).__name__)
        return f"database unavailable ({type(exc).__name__})"
    return None


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        logger.warning("healthz: broker check failed: %s", type(exc).__name__)
        return f"broker unavailable ({type(exc).__name__})"
    return None


@never_cache
@require_GET
def healthz(request):
    """200 when the database and the broker answer; 503 naming the part that failed."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    body = {name: ("ok" if error is None else error) for name, error in checks.items()}
    healthy = all(error is None for error in checks.values())
    body["status"] = "ok" if healthy else "unavailable"
    return JsonResponse(body, status=200 if healthy else 503)


def page_not_found(request, exception=None):
    """API paths get the API's JSON envelope; pages get the HTML page."""
    if request.path_info.startswith("/v1/"):
        from apps.core.api import json_not_found

        return json_not_found(request)
    from django.views.defaults import page_not_found as html_page_not_found

    return html_page_not_found(request, exception)


def server_error(request):
    """API paths get a 500 in the API's JSON envelope (the openai SDK reads it); pages get the HTML page."""
    if request.path_info.startswith("/v1/"):
        from apps.core.api import error_body

        return JsonResponse(
            error_body("The server failed to handle this request.", status_code=500, code="server_error"), status=500
        )
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)


def wants_fragment(request) -> bool:
    """An htmx request for a page's fragment, but not htmx restoring history after a cache miss:
    that one must get the whole page, or a fragment would replace the page's body. Views that
    answer both send ``Vary: HX-Request`` so a cache never mixes them up."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request
