from django.urls import path

from apps.keys import views

app_name = "keys"

urlpatterns = [
    path("t/<slug:team_slug>/keys/", views.key_list, name="list"),
    path("t/<slug:team_slug>/keys/new/", views.key_create, name="create"),
    path("t/<slug:team_slug>/keys/policy/", views.policy_set, name="policy"),
    path("t/<slug:team_slug>/keys/<int:key_id>/revoke/", views.key_revoke, name="revoke"),
    path("t/<slug:team_slug>/keys/<int:key_id>/rotate/", views.key_rotate, name="rotate"),
]
