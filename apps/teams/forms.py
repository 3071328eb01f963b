from django import forms

from apps.teams.models import Role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name")


class InvitationForm(forms.Form):
    email = forms.EmailField(
        required=False, label="E-mail (optional)", help_text="Leave empty to just get a link."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class EventsContentForm(forms.Form):
    events_include_content = forms.BooleanField(
        required=False,
        label="Include prompts and answers in events",
        help_text=(
            "On: run events carry the messages sent and the answers (or errors) received. "
            "Off: ids, token counts and costs only."
        ),
    )
