"""The API's base class and its one error envelope: ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from contextlib import ExitStack

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    406: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(message: str, *, status_code: int, param: str | None = None, code: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def _first_validation_error(detail, path: str | None = None) -> tuple[str | None, str, str | None]:
    """Flatten DRF's nested validation detail into (param, message, code) of its first error."""
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        if key != "non_field_errors":
            path = f"{path}.{key}" if path else str(key)
        return _first_validation_error(value, path)
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0], path)
    return path, str(detail), getattr(detail, "code", None)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(
            {"error": {"message": exc.message, "type": exc.error_type, "param": exc.param, "code": exc.code}},
            status=exc.status_code,
            headers=None if exc.retryable else {"x-should-retry": "false"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling (and its logging) takes over
    if isinstance(exc, exceptions.ValidationError):
        param, message, code = _first_validation_error(exc.detail)
        if param and not message.lower().startswith(param.lower()):
            message = f"{param}: {message}"
        response.data = error_body(message, status_code=response.status_code, param=param, code=code or "invalid")
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", None)
        response.data = error_body(str(detail), status_code=response.status_code, code=code)
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        response["x-should-retry"] = "false"  # the same request would fail the same way
    return response


def json_not_found(request, exception=None):
    """404 for unknown API URLs, in the API's envelope."""
    return JsonResponse(error_body("Unknown API route.", status_code=404, code="not_found"), status=404)


class AnyAcceptNegotiation(DefaultContentNegotiation):
    """For binary downloads: serve whatever the client's ``Accept`` says (the openai SDK sends
    ``application/binary``) instead of a 406; errors still render as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class OrgScopedAPIView(APIView):
    """Every API view inherits this. Authentication binds the request to one organization (the
    token's); the view body then runs inside that organization's scope, so a lookup of another
    tenant's object finds nothing (404).

    Subclasses must not override ``dispatch`` or ``initial`` (checked at class creation).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("dispatch", "initial"):
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} must not override {name}: the tenant scope lives there.")

    def dispatch(self, request, *args, **kwargs):
        self._scope_stack = ExitStack()
        with self._scope_stack:
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        # a NUL in a path id or a query value reaches no query: PostgreSQL refuses it in text (a 500)
        values = [*kwargs.values(), *request.query_params.keys()]
        values += [v for vs in request.query_params.lists() for v in vs[1]]
        if any("\x00" in str(value) for value in values):
            raise ApplicationError("NUL characters are not allowed in the URL.", code="invalid_value")
        super().initial(request, *args, **kwargs)
        token = request.auth
        organization = getattr(token, "organization", None)
        self._scope_stack.enter_context(org_scope(organization))
        request.organization = organization

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # the throttle's x-ratelimit-* headers (apps.core.throttling), on answers and on 429s alike
        for name, value in getattr(request, "ratelimit_headers", {}).items():
            response[name] = value
        return response

    @property
    def organization(self):
        return self.request.organization


def created(data) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)


def by_method(**operations: type[APIView]):
    """One URL, one APIView per HTTP method (``by_method(get=KeyListApi, post=KeyCreateApi)``).

    Requests go to the view of their method; any other method gets the first view's 405 in the API
    envelope. For the OpenAPI schema the callback carries a class that combines the operations.
    """
    views = {method: cls.as_view() for method, cls in operations.items()}
    fallback = next(iter(views.values()))

    def view(request, *args, **kwargs):
        return views.get(request.method.lower(), fallback)(request, *args, **kwargs)

    name = "".join(cls.__name__ for cls in operations.values())
    view.cls = type(name, (OrgScopedAPIView,), {m: getattr(cls, m) for m, cls in operations.items()})
    view.initkwargs = {}
    view.__doc__ = " / ".join(cls.__doc__ or "" for cls in operations.values())
    return csrf_exempt(view)
