from django.urls import path

from apps.assistants import views

app_name = "assistants"

urlpatterns = [
    path("t/<slug:team_slug>/assistants/", views.assistant_list, name="list"),
]
