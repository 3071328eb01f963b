from django.urls import path

from apps.conversations.consumers import PlaygroundConsumer

websocket_urlpatterns = [
    path("ws/playground/<int:assistant_id>/", PlaygroundConsumer.as_asgi()),
]
