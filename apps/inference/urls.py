from django.urls import path

from apps.inference import views

app_name = "inference"

urlpatterns = [
    path("t/<slug:team_slug>/backends/", views.backend_list, name="backends"),
    path("t/<slug:team_slug>/backends/<int:backend_id>/", views.backend_detail, name="backend"),
    path(
        "t/<slug:team_slug>/backends/<int:backend_id>/models/",
        views.backend_refresh_models,
        name="backend_refresh_models",
    ),
    path(
        "t/<slug:team_slug>/backends/<int:backend_id>/delete/",
        views.backend_delete,
        name="backend_delete",
    ),
    path(
        "t/<slug:team_slug>/backends/<int:backend_id>/test/",
        views.backend_test,
        name="backend_test",
    ),
    path("t/<slug:team_slug>/runs/<int:run_id>/", views.run_detail, name="run"),
    path("t/<slug:team_slug>/runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
]
