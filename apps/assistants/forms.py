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


OTHER_MODEL = "__other__"


class BackendModelSelect(forms.Select):
    """The models each backend lists, grouped under the backend's name, so a person
    picks one the backend serves instead of typing a name it may not know. A backend
    that lists none (Azure deployments, a list not fetched yet) offers "Other", which
    the ``model_other`` box fills in. Each option names its backend
    (``data-backend``): ``static/js/assistant-form.js`` shows only the chosen
    backend's; without it every group is shown under its backend's name."""

    def __init__(self, backends=(), attrs=None):
        super().__init__(attrs={"data-model-select": "", **(attrs or {})})
        self.backends = list(backends)

    def optgroups(self, name, value, attrs=None):
        current = value[0] if value else None
        groups = []
        for index, backend in enumerate(self.backends):
            models = list(backend.model_ids or ())
            choices = [(m, m, m == current) for m in models]
            if models and current and current not in models and current != OTHER_MODEL:
                # kept visible (and refused on save) rather than silently replaced
                choices.append((current, f"{current} (not served by this backend)", True))
                current = None
            if not models:
                choices.append((OTHER_MODEL, "Other (type the name)…", current == OTHER_MODEL))
            options = []
            for value_, label, selected in choices:
                option = self.create_option(name, value_, label, selected, index)
                option["attrs"]["data-backend"] = str(backend.pk)  # Select options take none
                options.append(option)
            groups.append((backend.name, options, index))
        return groups


class AssistantForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    backend = forms.TypedChoiceField(coerce=int, choices=())
    model = forms.CharField(max_length=200, widget=BackendModelSelect())
    model_other = forms.CharField(
        required=False,
        max_length=200,
        label="Model name",
        help_text="For a backend that doesn't list its models, such as an Azure deployment.",
    )
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
        backends = list(backends)
        self.fields["backend"].choices = [(b.pk, b.name) for b in backends]
        self.fields["model"].widget = BackendModelSelect(backends)
        chosen = next((b for b in backends if b.pk == self.initial.get("backend")), None)
        model = self.initial.get("model")
        if chosen is not None and model and not chosen.model_ids:
            self.initial.update(model=OTHER_MODEL, model_other=model)
        self.fields["prompt"].choices = [("", "—")] + [(p.slug, p.name) for p in prompts]
        self.fields["prompt_version"].choices = [("", "—")] + [
            (v.number, f"{v.prompt.name} v{v.number}") for v in versions
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("model") == OTHER_MODEL:
            other = (cleaned.get("model_other") or "").strip()
            if not other:
                self.add_error("model_other", "Type the model's name for this backend.")
            cleaned["model"] = other
        return cleaned

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("model_other", None)
        data["prompt"] = data.get("prompt") or None
        return data
