from django.urls import path

from apps.events import views

app_name = "events"

urlpatterns = [
    path("t/<slug:team_slug>/events/", views.events_page, name="page"),
    path("t/<slug:team_slug>/events/history/", views.events_history, name="history"),
    path("t/<slug:team_slug>/events/replay/", views.events_replay, name="replay"),
]
