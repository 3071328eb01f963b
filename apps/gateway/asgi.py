"""The ASGI handler for ``/v1``: Django's, with the gateway's short middleware chain.

A gateway call carries a bearer key and JSON; it never reads a session, a CSRF
cookie, a message or a user from a cookie. Under ASGI each of those Django
middlewares still cost two hops onto the one thread-sensitive thread per
request, which every concurrent call then queued for. This handler builds its
chain from ``settings.GATEWAY_MIDDLEWARE`` (all async-capable) instead; URL
resolution, views, signals and error handling are Django's own.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

PREFIX = "/v1"


def is_gateway_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class GatewayASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(settings.GATEWAY_MIDDLEWARE):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False):
                raise ImproperlyConfigured(f"GATEWAY_MIDDLEWARE: {path} is not async-capable.")
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler
