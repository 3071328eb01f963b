from django.urls import path

from apps.assistants import views

app_name = "assistants"

urlpatterns = [
    path("t/<slug:team_slug>/assistants/", views.assistant_list, name="list"),
    path("t/<slug:team_slug>/assistants/<slug:slug>/", views.playground, name="playground"),
    path(
        "t/<slug:team_slug>/assistants/<slug:slug>/settings/",
        views.assistant_settings,
        name="settings",
    ),
    path(
        "t/<slug:team_slug>/assistants/<slug:slug>/duplicate/",
        views.assistant_duplicate,
        name="duplicate",
    ),
    path(
        "t/<slug:team_slug>/assistants/<slug:slug>/remove/",
        views.assistant_remove,
        name="remove",
    ),
]
