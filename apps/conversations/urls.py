from django.urls import path

from apps.conversations import views

app_name = "conversations"

urlpatterns = [
    path("t/<slug:team_slug>/conversations/", views.conversation_list, name="list"),
    path(
        "t/<slug:team_slug>/conversations/<int:conversation_id>/",
        views.conversation_open,
        name="open",
    ),
    path(
        "t/<slug:team_slug>/conversations/<int:conversation_id>/delete/",
        views.conversation_delete,
        name="delete",
    ),
]
