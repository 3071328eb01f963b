"""The portal's middleware: request ids, static files, and Django's own made async.

Request ids: every log line of one request carries the same id.

An incoming ``X-Request-ID`` from a trusted proxy is kept when it looks sane,
so the id follows a request across services; otherwise a new one is made.
The id is deliberately not reset when the middleware returns: Django logs 4xx
and 5xx responses after the middleware chain, and those lines need it too. The
next request in the same thread or task overwrites it.
"""

import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.middleware import clickjacking, common, security
from whitenoise.middleware import WhiteNoiseMiddleware

from apps.core.request_context import request_id_var

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HEADER = "X-Request-ID"


def _incoming_or_new(request) -> str:
    incoming = request.headers.get(HEADER, "")
    return incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        request.request_id = _incoming_or_new(request)
        request_id_var.set(request.request_id)
        response = self.get_response(request)
        response[HEADER] = request.request_id
        return response

    async def __acall__(self, request):
        request.request_id = _incoming_or_new(request)
        request_id_var.set(request.request_id)
        response = await self.get_response(request)
        response[HEADER] = request.request_id
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise that also runs in an async middleware chain.

    WhiteNoise's middleware is sync-only, so under ASGI Django ran everything
    below it through ``async_to_sync``: a thread hop on every request, and the
    gateway's async views lost the point of being async (py-spy on the web
    process: a quarter of its time in that adapter). Finding a static file is a
    lookup in memory (a stat with autorefresh in development), so it is done
    inline here and everything else is awaited.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=django_settings):
        super().__init__(get_response, settings)
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def _static_file(self, request):
        if self.autorefresh:
            return self.find_file(request.path_info)
        return self.files.get(request.path_info)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        static_file = self._static_file(request)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)


class _InLoop:
    """Run a Django middleware's hooks on the event loop under ASGI.

    ``MiddlewareMixin`` runs ``process_request`` and ``process_response`` through
    ``sync_to_async(thread_sensitive=True)``: two hops per middleware per request,
    all onto the one thread-sensitive thread, which every async request then
    queues for. These hooks only read settings and the request and set headers
    (no database, no files), so they are safe to call inline."""

    async def __acall__(self, request):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class SecurityMiddleware(_InLoop, security.SecurityMiddleware):
    """Django's, with its hooks on the loop (see :class:`_InLoop`)."""


class CommonMiddleware(_InLoop, common.CommonMiddleware):
    """Django's, with its hooks on the loop (see :class:`_InLoop`)."""


class XFrameOptionsMiddleware(_InLoop, clickjacking.XFrameOptionsMiddleware):
    """Django's, with its hooks on the loop (see :class:`_InLoop`)."""
