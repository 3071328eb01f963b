"""Errors that services raise for the caller to show; each carries its HTTP status.

Views turn them into a form error or a flash message, the API into its error
schema. Anything else escaping a service is a bug, not bad input.
"""


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code:
            self.code = code


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class RateLimited(ServiceError):
    """Too many requests; ``retry_after`` is whole seconds, sent as ``Retry-After``.

    ``limit`` (optional) names the limit for programs: ``{"name", "scope", "limit",
    "current", "requested", "unit", "resets_at"}``; both the API and the gateway put it
    in the error body next to the message."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, retry_after: int, code: str | None = None, limit: dict | None = None
    ):
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.limit = limit


class Unavailable(ServiceError):
    """A service the request depends on is down (say Redis for quotas); try again."""

    status = 503
    code = "service_unavailable"
