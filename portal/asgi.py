"""ASGI entry point: HTTP through Django, WebSockets through Channels.

``/v1`` (the OpenAI-compatible gateway) goes to its own Django handler with a
short middleware chain (apps/gateway/asgi.py); everything else to Django's.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.gateway.asgi import GatewayASGIHandler, is_gateway_path  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

gateway_asgi_app = GatewayASGIHandler()


async def http(scope, receive, send):
    app = gateway_asgi_app if is_gateway_path(scope["path"]) else django_asgi_app
    await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
