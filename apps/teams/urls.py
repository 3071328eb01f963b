from django.urls import path

from apps.teams import views

app_name = "teams"

urlpatterns = [
    path("teams/new/", views.team_create, name="create"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("t/<slug:team_slug>/settings/", views.team_settings, name="settings"),
    path(
        "t/<slug:team_slug>/settings/events-content/",
        views.events_content,
        name="events_content",
    ),
    path("t/<slug:team_slug>/settings/invitations/", views.invitation_create, name="invite"),
    path(
        "t/<slug:team_slug>/settings/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "t/<slug:team_slug>/settings/members/<int:membership_id>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "t/<slug:team_slug>/settings/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("t/<slug:team_slug>/leave/", views.team_leave, name="leave"),
]
