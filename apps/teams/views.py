"""Team pages: create, settings (members, roles, invitations), leave, accept an invite."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import ServiceError
from apps.teams import selectors, services
from apps.teams.decorators import team_view
from apps.teams.forms import EventsContentForm, InvitationForm, RoleForm, TeamForm
from apps.teams.permissions import Action, can


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(name=form.cleaned_data["name"], created_by=request.user)
        except ServiceError as error:
            form.add_error("name", error.message)
        else:
            messages.success(request, f"Team {team.name} created. You are its owner.")
            return redirect("dashboard:team_home", team_slug=team.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "teams/team_create.html", {"form": form}, status=status)


@team_view(Action.VIEW)
def team_settings(request, team):
    invitations = (
        selectors.pending_invitations(team)
        if can(request.user, team, Action.MANAGE_MEMBERS)
        else []
    )
    for invitation in invitations:
        invitation.url = request.build_absolute_uri(services.invitation_path(invitation))
    context = {
        "members": selectors.members(team),
        "invitations": invitations,
        "invitation_form": InvitationForm(),
        "roles": RoleForm.base_fields["role"].choices,
        "events_content_form": EventsContentForm(
            initial={"events_include_content": team.events_include_content}
        ),
        "can_set_events_content": can(request.user, team, services.EVENTS_CONTENT_ACTION),
    }
    return render(request, "teams/settings.html", context)


def _back_to_settings(request, team, action, success: str):
    """Run a service call; a refusal becomes a flash message, not an error page."""
    try:
        action()
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    return redirect("teams:settings", team_slug=team.slug)


@require_POST
@team_view(services.EVENTS_CONTENT_ACTION)
def events_content(request, team):
    form = EventsContentForm(request.POST)
    form.is_valid()  # an unchecked box is simply absent: always valid
    enabled = form.cleaned_data["events_include_content"]
    done = (
        "Events now include prompts and answers."
        if enabled
        else "Events no longer include prompts and answers."
    )
    return _back_to_settings(
        request,
        team,
        lambda: services.team_events_content_set(team=team, actor=request.user, enabled=enabled),
        done,
    )


@require_POST
@team_view(Action.MANAGE_MEMBERS)
def invitation_create(request, team):
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Check the invitation: "
            + " ".join(f"{field}: {', '.join(errs)}" for field, errs in form.errors.items()),
        )
        return redirect("teams:settings", team_slug=team.slug)
    data = form.cleaned_data

    def create():
        services.invitation_create(
            team=team, actor=request.user, role=data["role"], email=data["email"]
        )

    sent = f" and e-mailed to {data['email']}" if data["email"] else ""
    return _back_to_settings(
        request, team, create, f"Invitation created{sent}. Copy its link below."
    )


@require_POST
@team_view(Action.MANAGE_MEMBERS)
def invitation_revoke(request, team, invitation_id: int):
    invitation = selectors.invitation_in_team(team, invitation_id)
    return _back_to_settings(
        request,
        team,
        lambda: services.invitation_revoke(invitation=invitation, actor=request.user),
        "Invitation withdrawn.",
    )


@require_POST
@team_view(Action.MANAGE_MEMBERS)
def member_role(request, team, membership_id: int):
    membership = selectors.membership_in_team(team, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the listed roles.")
        return redirect("teams:settings", team_slug=team.slug)
    role = form.cleaned_data["role"]
    return _back_to_settings(
        request,
        team,
        lambda: services.membership_change_role(
            membership=membership, actor=request.user, role=role
        ),
        f"{membership.user.label} is now {role}.",
    )


@require_POST
@team_view(Action.VIEW)
def member_remove(request, team, membership_id: int):
    membership = selectors.membership_in_team(team, membership_id)
    if membership.user_id == request.user.pk:
        return _leave(request, team)
    return _back_to_settings(
        request,
        team,
        lambda: services.membership_remove(membership=membership, actor=request.user),
        f"{membership.user.label} was removed.",
    )


@require_POST
@team_view(Action.VIEW)
def team_leave(request, team):
    return _leave(request, team)


def _leave(request, team):
    try:
        services.membership_leave(team=team, user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("teams:settings", team_slug=team.slug)
    messages.success(request, f"You left {team.name}.")
    request.session.pop("current_team", None)
    return redirect("dashboard:home")


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_for_token(token)
    except ServiceError as error:
        return render(
            request, "teams/invitation.html", {"error": error.message}, status=error.status
        )
    context = {"invitation": invitation, "token": token}
    if invitation.status != "pending":
        context["error"] = services.UNUSABLE_REASONS[invitation.status]
        return render(request, "teams/invitation.html", context, status=410)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(request.path)
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ServiceError as error:
            context["error"] = error.message
            return render(request, "teams/invitation.html", context, status=error.status)
        messages.success(request, f"Welcome to {membership.team.name}.")
        return redirect("dashboard:team_home", team_slug=membership.team.slug)
    return render(request, "teams/invitation.html", context)
