"""The usage page's filter bar and the team's price form."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from apps.assistants.models import Assistant
from apps.inference.models import Backend
from apps.inference.selectors import backends_for_team
from apps.keys.models import ApiKey
from apps.prompts.models import PromptVersion
from apps.usage import selectors
from apps.usage.query import RANGES

CHOICE_DAYS = 45


class UsageFilterForm(forms.Form):
    """GET parameters of the page; the same names as the API's query parameters."""

    range = forms.ChoiceField(choices=list(RANGES.items()), required=False, initial="7d")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    assistant = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)
    key = forms.ChoiceField(required=False, label="API key")
    prompt_version = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Prompt version"
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        everything = [("", "All")]
        assistants = Assistant.objects.filter(team=team).order_by("name")
        self.fields["assistant"].choices = everything + [(a.slug, a.name) for a in assistants]
        keys = ApiKey.objects.filter(team=team).order_by("name")
        self.fields["key"].choices = everything + [(k.public_id, k.name) for k in keys]
        # Choices from the last weeks' rollups and the backends' model lists: reading
        # every rollup row of a busy team to fill a drop-down would cost more than the
        # page itself. Whatever the URL asks for is always offered.
        models, version_ids = selectors.recent_dimensions(
            team, timezone.now().date() - timedelta(days=CHOICE_DAYS)
        )
        for ids in backends_for_team(team).values_list("model_ids", flat=True):
            models.update(m for m in ids or [] if isinstance(m, str))
        asked = self.data.get("model") if self.is_bound else None
        models.update([asked] if asked else [])
        self.fields["model"].choices = everything + [(m, m) for m in sorted(models)]
        asked_version = self.data.get("prompt_version") if self.is_bound else None
        if asked_version and str(asked_version).isdigit():
            version_ids.add(int(asked_version))
        versions = (
            PromptVersion.objects.filter(prompt__team=team, pk__in=version_ids)
            .select_related("prompt")
            .order_by("prompt__slug", "number")
        )
        self.fields["prompt_version"].choices = everything + [(v.pk, str(v)) for v in versions]


class PriceForm(forms.Form):
    backend = forms.ModelChoiceField(queryset=Backend.objects.none())
    model = forms.CharField(max_length=200)
    input_per_million = forms.DecimalField(
        min_value=0, max_digits=14, decimal_places=6, label="Input per 1M tokens (USD)"
    )
    output_per_million = forms.DecimalField(
        min_value=0, max_digits=14, decimal_places=6, label="Output per 1M tokens (USD)"
    )
    cached_input_per_million = forms.DecimalField(
        min_value=0,
        max_digits=14,
        decimal_places=6,
        required=False,
        label="Cached input per 1M tokens (USD)",
        help_text="Empty bills cached tokens at the input price.",
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backend"].queryset = Backend.objects.filter(team=team).order_by("name")
