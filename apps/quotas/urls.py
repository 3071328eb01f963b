from django.urls import path

from apps.quotas import views

app_name = "quotas"

urlpatterns = [
    path("t/<slug:team_slug>/quotas/", views.quota_list, name="list"),
    path("t/<slug:team_slug>/quotas/new/", views.quota_create, name="create"),
    path("t/<slug:team_slug>/quotas/time-zone/", views.time_zone_set, name="time_zone"),
    path("t/<slug:team_slug>/quotas/<int:quota_id>/", views.quota_update, name="update"),
    path("t/<slug:team_slug>/quotas/<int:quota_id>/delete/", views.quota_delete, name="delete"),
    path(
        "t/<slug:team_slug>/quotas/<int:quota_id>/increases/",
        views.increase_create,
        name="increase",
    ),
    path(
        "t/<slug:team_slug>/quotas/<int:quota_id>/increases/<int:increase_id>/end/",
        views.increase_end,
        name="increase_end",
    ),
]
