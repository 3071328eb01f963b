from django import forms

from apps.keys.models import Scope
from apps.keys.services import MAX_POLICY_DAYS

GRACE_CHOICES = [
    ("0", "None (old secret stops now)"),
    ("3600", "1 hour"),
    ("86400", "24 hours"),
    ("604800", "7 days"),
]


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.CHAT]
    )
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_POLICY_DAYS, help_text="Empty: never expires."
    )
    assistant = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Any assistant", help_text="Bind to one."
    )
    allowed_models = forms.CharField(
        required=False,
        max_length=5000,
        help_text="Comma-separated assistant slugs and model ids; empty: any.",
    )
    requests_per_minute = forms.IntegerField(required=False, min_value=1)
    tokens_per_minute = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assistant"].queryset = team.assistants.order_by("name")


class RotateForm(forms.Form):
    grace_seconds = forms.TypedChoiceField(choices=GRACE_CHOICES, coerce=int, initial="0")


class PolicyForm(forms.Form):
    max_lifetime_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_POLICY_DAYS,
        help_text="New keys must expire within this many days. Empty: no limit.",
    )
