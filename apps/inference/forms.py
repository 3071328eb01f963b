from django import forms

from apps.inference.models import BackendKind


class BackendForm(forms.Form):
    kind = forms.ChoiceField(choices=BackendKind.choices)
    name = forms.CharField(max_length=100)
    base_url = forms.CharField(
        required=False, label="Base URL", help_text="OpenAI-compatible servers: ending in /v1."
    )
    api_key = forms.CharField(
        required=False,
        label="API key",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; afterwards only its last four characters are shown.",
    )
    azure_endpoint = forms.CharField(required=False, label="Azure endpoint")
    azure_deployment = forms.CharField(required=False, label="Azure deployment")
    api_version = forms.CharField(required=False, label="Azure API version")
    models = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One model id per line. Leave empty to fetch them from the server's /v1/models.",
    )
    timeout_seconds = forms.FloatField(initial=60, min_value=1, max_value=600)
    max_retries = forms.IntegerField(initial=3, min_value=0, max_value=10)
    enabled = forms.BooleanField(required=False, initial=True)


class BackendEditForm(BackendForm):
    """Editing keeps the kind; an empty API key field keeps the stored key."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["kind"]
        self.fields["api_key"].help_text = "Leave empty to keep the stored key."


class TestConnectionForm(forms.Form):
    model = forms.CharField(max_length=200)
    prompt = forms.CharField(
        max_length=2000,
        initial="Say hello and name the model you are, in one sentence.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
