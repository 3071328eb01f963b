from django.urls import path, re_path

from apps.gateway import views

app_name = "gateway"

urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat-completions"),
    path("models", views.models, name="models"),
    path("models/<path:model>", views.models, name="model"),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
