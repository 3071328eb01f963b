from django.urls import path

from apps.teams.consumers import TeamNoticeConsumer

websocket_urlpatterns = [
    path("ws/teams/<slug:team_slug>/", TeamNoticeConsumer.as_asgi()),
]
