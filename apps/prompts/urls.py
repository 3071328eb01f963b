from django.urls import path

from apps.prompts import views

app_name = "prompts"

PROMPT = "t/<slug:team_slug>/prompts/<slug:prompt_slug>/"

urlpatterns = [
    path("t/<slug:team_slug>/prompts/", views.prompt_list, name="list"),
    path(PROMPT, views.prompt_detail, name="detail"),
    path(PROMPT + "diff/", views.prompt_diff, name="diff"),
    path(PROMPT + "render/", views.prompt_render, name="render"),
    path(PROMPT + "labels/", views.label_move, name="label_move"),
    path(PROMPT + "labels/<str:label>/delete/", views.label_delete, name="label_delete"),
    path(PROMPT + "archive/", views.prompt_archive, name="archive"),
]
