"""Every WebSocket route of the portal, gathered from the apps."""

from apps.teams.routing import websocket_urlpatterns as team_routes

websocket_urlpatterns = [*team_routes]
