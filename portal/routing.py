"""Every WebSocket route of the portal, gathered from the apps."""

from apps.conversations.routing import websocket_urlpatterns as playground_routes
from apps.events.routing import websocket_urlpatterns as event_routes
from apps.inference.routing import websocket_urlpatterns as run_routes
from apps.teams.routing import websocket_urlpatterns as team_routes

websocket_urlpatterns = [*event_routes, *team_routes, *run_routes, *playground_routes]
