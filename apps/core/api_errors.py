"""One error body for the whole API: ``{"error": {"type", "message", "param", "code"}}``.

Registered on the single NinjaAPI so every router answers bad input the same
way, with the right status and never a stack trace.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from ninja import Field, NinjaAPI, Schema
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


class ErrorDetail(Schema):
    type: str = Field(
        description="The kind of error; one per HTTP status.", examples=["invalid_request_error"]
    )
    message: str = Field(
        description="What went wrong, for people; may change.",
        examples=["limit: Input should be less than or equal to 200"],
    )
    param: str | None = Field(
        description="The query parameter or body field at fault, when there is one.",
        examples=["limit"],
    )
    code: str = Field(
        description="A stable machine-readable reason.", examples=["validation_error"]
    )
    limit: dict[str, Any] | None = Field(
        None,
        description=(
            "429 from a quota or rate limit only: which limit (`name`, `scope`), its value "
            "(`limit`), the current consumption (`current`), what this request needed "
            "(`requested`), the `unit` and when it resets (`resets_at`, ISO 8601)."
        ),
        examples=[
            {
                "name": "token_budget",
                "scope": "team",
                "limit": 100000,
                "current": 99500,
                "requested": 1200,
                "unit": "tokens",
                "resets_at": "2025-07-01T00:00:00+02:00",
            }
        ],
    )


class ErrorOut(Schema):
    """The body of every error the API answers."""

    error: ErrorDetail


# What any operation under a team can answer: no or a bad key, a role or scope that
# doesn't allow it, a team (or thing in it) that isn't there for you, bad parameters,
# a key over its request rate.
STANDARD_ERRORS = (401, 403, 404, 422, 429)
# Operations that read a body add these: refused by a service, too large.
BODY_ERRORS = (400, 413)


def with_errors(response: Any, *statuses: int, base: tuple[int, ...] = STANDARD_ERRORS) -> dict:
    """A ``response=`` for an operation: its success schema (a schema, or a dict of
    status -> schema) plus ``ErrorOut`` for ``base`` and the extra ``statuses``, so the
    OpenAPI document lists every error a client must handle."""
    responses = dict(response) if isinstance(response, dict) else {200: response}
    for status in sorted({*base, *statuses}):
        responses.setdefault(status, ErrorOut)
    return responses


def error_response(
    api: NinjaAPI, request, status: int, message: str, *, code: str, param=None, limit=None
):
    body = {
        "error": {
            "type": _TYPES.get(status, "api_error"),
            "message": message,
            "param": param,
            "code": code,
        }
    }
    if limit is not None:
        body["error"]["limit"] = limit
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
        response = error_response(
            api,
            request,
            exc.status,
            exc.message,
            code=exc.code,
            param=exc.param,
            limit=getattr(exc, "limit", None),
        )
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response

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
