from django.urls import path

from apps.usage import views

app_name = "usage"

urlpatterns = [
    path("t/<slug:team_slug>/usage/", views.usage_dashboard, name="dashboard"),
    path("t/<slug:team_slug>/usage/prices/", views.price_list, name="prices"),
    path("t/<slug:team_slug>/usage/prices/new/", views.price_create, name="price_create"),
]
