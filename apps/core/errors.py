"""Domain errors raised by services. Interfaces (API, pages, admin) turn them into responses."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request that cannot be done as asked. ``param`` names the offending field, if any."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        # False: the same request would fail the same way. The API tells clients not to retry
        # (``x-should-retry: false``; the openai SDK otherwise retries 409s, POSTs included).
        self.retryable = retryable


class NotFound(ApplicationError):
    status_code = 404
    error_type = "not_found_error"
    default_code = "not_found"


class PermissionDeniedError(ApplicationError):
    status_code = 403
    error_type = "permission_error"
    default_code = "forbidden"


class Conflict(ApplicationError):
    status_code = 409
    error_type = "conflict_error"
    default_code = "conflict"


class PaymentRequired(ApplicationError):
    """Over budget: 402, which the OpenAI SDK does not retry."""

    status_code = 402
    error_type = "insufficient_quota"
    default_code = "budget_exceeded"


class ValidationFailed(ApplicationError):
    """A request that fails several field rules (the catalog's); ``errors`` holds every field's
    message, ``param`` the first one's field (what the API reports)."""

    def __init__(self, errors: dict[str, str], *, code: str = "invalid_value") -> None:
        field, message = next(iter(errors.items()))
        super().__init__(message, param=field, code=code)
        self.errors = errors
