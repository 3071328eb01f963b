from django.urls import path

from apps.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("t/<slug:team_slug>/", views.team_home, name="team_home"),
    path(
        "t/<slug:team_slug>/<str:section>/",
        views.planned_section,
        name="planned",
    ),
]
