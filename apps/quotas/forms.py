from django import forms

from apps.quotas import services
from apps.quotas.models import Period


class QuotaForm(forms.Form):
    api_key = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="The whole team", label="For"
    )
    period = forms.ChoiceField(choices=Period.choices, initial=Period.MONTH)
    token_budget = forms.IntegerField(
        required=False, min_value=0, max_value=services.MAX_TOKENS, help_text="Tokens per period."
    )
    cost_budget = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=services.MAX_COST,
        max_digits=16,
        decimal_places=6,
        help_text="Cost per period (at most 6 decimals).",
    )
    requests_per_minute = forms.IntegerField(
        required=False, min_value=0, max_value=services.MAX_REQUESTS_PER_MINUTE
    )
    tokens_per_minute = forms.IntegerField(
        required=False, min_value=0, max_value=services.MAX_TOKENS_PER_MINUTE
    )
    max_concurrent_runs = forms.IntegerField(
        required=False, min_value=0, max_value=services.MAX_CONCURRENT_RUNS
    )
    thresholds = forms.CharField(
        required=False,
        initial="80, 100",
        help_text="Percentages that e-mail the admins once per period, comma-separated.",
    )

    def __init__(self, *args, team, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["api_key"].queryset = team.api_keys.filter(revoked_at__isnull=True).order_by(
            "name"
        )
        if editing:
            del self.fields["api_key"]

    def clean_thresholds(self) -> list[int]:
        raw = self.cleaned_data["thresholds"] or ""
        try:
            values = [int(part) for part in raw.replace(",", " ").split()]
        except ValueError:
            raise forms.ValidationError("Whole percentages, e.g. 80, 100.") from None
        return values


class IncreaseForm(forms.Form):
    # labels as on the page's short form, which this one replaces when it has errors
    extra_tokens = forms.IntegerField(
        required=False, min_value=0, max_value=services.MAX_TOKENS, label="Extra tokens"
    )
    extra_cost = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=16,
        decimal_places=6,
        max_value=services.MAX_COST,
        label="Extra cost",
    )
    extra_requests_per_minute = forms.IntegerField(
        required=False, min_value=0, label="Extra requests/min"
    )
    extra_tokens_per_minute = forms.IntegerField(
        required=False, min_value=0, label="Extra tokens/min"
    )
    extra_concurrent_runs = forms.IntegerField(required=False, min_value=0, label="Extra runs")
    ends_at = forms.DateTimeField(
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In the team's time zone.",
    )
    reason = forms.CharField(required=False, max_length=200)


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(max_length=64, help_text="IANA name, e.g. Europe/Paris.")
