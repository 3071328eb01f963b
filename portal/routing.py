"""Every WebSocket route of the portal, gathered from the apps."""

from apps.inference.routing import websocket_urlpatterns as run_routes
from apps.teams.routing import websocket_urlpatterns as team_routes

websocket_urlpatterns = [*team_routes, *run_routes]
