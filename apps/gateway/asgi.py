"""The ASGI handler for ``/v1``: Django's, with the gateway's short request cycle.

A gateway call carries a bearer key and JSON; it never reads a session, a CSRF
cookie, a message or a user from a cookie. Django's handler still pays, on
every request, for what pages need:

- the session, CSRF, auth, messages and frame middleware: two hops onto the one
  thread-sensitive thread each; the chain here is ``settings.GATEWAY_MIDDLEWARE``
  (all async-capable) instead;
- ``request_started`` and ``request_finished``: their receivers
  (``close_old_connections``, the caches' ``close``) are synchronous, so each
  signal is a hop onto a thread. The gateway never touches the database on the
  event loop; the pool threads it uses give their connections back themselves
  (``views._start_sync``), so these signals are not sent for ``/v1``;
- a ``ThreadSensitiveContext`` per request (an executor torn down after each
  one): the gateway's synchronous parts run with ``thread_sensitive=False``;
- the body spooled into a temporary file: here it is read into memory, never more
  than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` plus one byte, which is enough for
  ``request.body`` to refuse it as too large (413), as Django's would.

py-spy on the web process under load (``bench/gateway.py``): Django's request
cycle outside the view was a quarter of the process's CPU, half of it those thread
hops. URL resolution, the middleware, views, responses and error handling are
Django's own; a client that disconnects still cancels its request, as in Django's.
"""

import asyncio
import io

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, RequestAborted, RequestDataTooBig
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

PREFIX = "/v1"


def is_gateway_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class _RequestProcessed(Exception):
    pass


class _TooLargeBody(io.BytesIO):
    """A body past the limit that no Content-Length announced (chunked): reading it
    refuses, as ``request.body`` refuses an announced one."""

    def read(self, *args):
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")

    readline = read


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

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"The gateway serves HTTP only, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def read_body(self, receive):
        """The body in memory, never more than the largest a request may have: past it,
        the rest is read and dropped and the request's body refuses to be read."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is None or size <= limit:
                parts.append(chunk)
            if not message.get("more_body", False):
                break
        if limit is not None and size > limit:
            return _TooLargeBody()
        return io.BytesIO(b"".join(parts))

    async def send_response(self, response, send):
        """Django's, with the length announced: a body of known size goes out whole,
        not in HTTP chunks the client has to reassemble."""
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        await super().send_response(response, send)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            await self.send_response(error_response, send)
            return
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.listen_for_disconnect(receive))
                response = await self.run_get_response(request)
                await self.send_response(response, send)
                raise _RequestProcessed
        except* (_RequestProcessed, RequestAborted):
            pass
