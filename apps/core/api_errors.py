"""One error body for the whole API: ``{"error": {"type", "message", "param", "code"}}``.

Registered on the single NinjaAPI so every router answers bad input the same
way, with the right status and never a stack trace.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.core.errors import ServiceError

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(api: NinjaAPI, request, status: int, message: str, *, code: str, param=None):
    body = {
        "error": {
            "type": _TYPES.get(status, "api_error"),
            "message": message,
            "param": param,
            "code": code,
        }
    }
    return api.create_response(request, body, status=status)


def _validation_message(errors: list[dict]) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", []) if part not in {"body", "query", "path"}]
    param = ".".join(location[1:] if location[:1] == ["payload"] else location) or None
    message = first.get("msg", "Invalid request.")
    return (f"{param}: {message}" if param else message), param


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ServiceError)
    def service_error(request, exc: ServiceError):
        return error_response(api, request, exc.status, exc.message, code=exc.code, param=exc.param)

    @api.exception_handler(ValidationError)
    def validation_error(request, exc: ValidationError):
        message, param = _validation_message(exc.errors)
        return error_response(api, request, 422, message, code="validation_error", param=param)

    @api.exception_handler(AuthenticationError)
    def authentication_error(request, exc: AuthenticationError):
        # ninja's own has the bare message "Unauthorized"; a rejected key says why
        message = exc.message if exc.message != "Unauthorized" else None
        return error_response(
            api,
            request,
            401,
            message or "Sign in or send a valid API key.",
            code="invalid_api_key" if message else "unauthenticated",
        )

    @api.exception_handler(PermissionDenied)
    def permission_denied(request, exc):
        message = str(exc) or "You may not do this."
        return error_response(api, request, 403, message, code="forbidden")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return error_response(api, request, 404, str(exc) or "Not found.", code="not_found")

    @api.exception_handler(RequestDataTooBig)
    def too_big(request, exc):
        return error_response(api, request, 413, "The request body is too large.", code="too_large")

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        return error_response(api, request, exc.status_code, str(exc), code="http_error")

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        logger.exception("unhandled API error")
        return error_response(
            api,
            request,
            500,
            "Something went wrong on our side; the request id is in the X-Request-ID header.",
            code="internal_error",
        )
