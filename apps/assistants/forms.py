import json

from django import forms

from apps.assistants.models import InstructionsSource


class JSONListField(forms.CharField):
    """A textarea holding a JSON list; empty means an empty list."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value or not value.strip():
            return []
        try:
            parsed = json.loads(value)
        except ValueError:
            raise forms.ValidationError("This must be valid JSON (a list).") from None
        if not isinstance(parsed, list):
            raise forms.ValidationError("This must be a JSON list.")
        return parsed


class AssistantForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    backend = forms.TypedChoiceField(coerce=int, choices=())
    model = forms.CharField(max_length=200)
    instructions_source = forms.ChoiceField(
        choices=InstructionsSource.choices, label="Instructions from"
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Inline instructions",
        help_text="Used when instructions are written inline; {{variables}} allowed.",
    )
    prompt = forms.ChoiceField(required=False, choices=(), label="Prompt")
    prompt_label = forms.CharField(
        required=False, max_length=40, label="Prompt label", initial="production"
    )
    prompt_version = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=(), label="Pinned version"
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(required=False, min_value=0, max_value=1)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    stop = JSONListField(required=False, label="Stop sequences (JSON list)")
    memory_messages = forms.IntegerField(
        min_value=0, max_value=200, initial=20, label="Past messages sent"
    )
    tools = JSONListField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Function tools (JSON list)"
    )
    fallbacks = JSONListField(
        required=False, label='Fallbacks (JSON: [{"backend": id, "model": "..."}])'
    )

    def __init__(self, *args, backends=(), prompts=(), versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [(b.pk, b.name) for b in backends]
        self.fields["prompt"].choices = [("", "—")] + [(p.slug, p.name) for p in prompts]
        self.fields["prompt_version"].choices = [("", "—")] + [
            (v.number, f"{v.prompt.name} v{v.number}") for v in versions
        ]

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["prompt"] = data.get("prompt") or None
        return data
