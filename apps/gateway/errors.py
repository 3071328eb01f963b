"""Errors of the gateway in OpenAI's shape, so the official SDKs raise the right class.

``{"error": {"message", "type", "param", "code"}}`` with OpenAI's statuses: 400
bad request, 401 bad key, 403 scope or allow-list, 404 unknown model, 413 body
too large, 429 rate limit (with ``Retry-After``), 5xx only when the backends
really failed. Service errors raised by the shared code are translated here.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse

from apps.core.errors import ServiceError

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "requests",
}
# OpenAI names what ran out: "requests" or "tokens" for a rate, "insufficient_quota"
# for a spent budget.
_LIMIT_TYPES = {
    "requests_per_minute": "requests",
    "concurrent_runs": "requests",
    "tokens_per_minute": "tokens",
    "token_budget": "insufficient_quota",
    "cost_budget": "insufficient_quota",
}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        limit: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.limit = limit

    def response_body(self) -> dict:
        body = {
            "message": self.message,
            "type": _LIMIT_TYPES.get((self.limit or {}).get("name"))
            or _TYPES.get(self.status, "server_error"),
            "param": self.param,
            "code": self.code,
        }
        if self.limit is not None:  # which quota or rate limit refused, for programs
            body["limit"] = self.limit
        return body

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": self.response_body()}, status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        return response


def translate(exc: Exception) -> GatewayError:
    """The gateway error for an exception the shared services raise on bad input."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ServiceError):
        return GatewayError(
            exc.status,
            exc.message,
            code=exc.code,
            param=exc.param,
            retry_after=getattr(exc, "retry_after", None),
            limit=getattr(exc, "limit", None),
        )
    if isinstance(exc, PermissionDenied):
        return GatewayError(403, str(exc) or "Not allowed.", code="permission_denied")
    if isinstance(exc, Http404):
        return GatewayError(404, str(exc) or "Not found.", code="not_found")
    raise exc
