"""Forms of the prompt pages. They only parse what the browser sends; the services check it."""

import json

from django import forms

SUGGESTED_LABELS = ("production", "staging")

_TEMPLATE_HELP = "Placeholders look like {{ customer_name }}; single braces are plain text."


def _json_field(text: str, *, kind: type, empty, what: str):
    text = (text or "").strip()
    if not text:
        return empty
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise forms.ValidationError(f"Not valid JSON: {error.msg} (line {error.lineno}).") from None
    if not isinstance(value, kind):
        raise forms.ValidationError(f"Must be a JSON {what}.")
    return value


class PromptCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    system = forms.CharField(
        label="System template",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_TEMPLATE_HELP,
    )
    commit_message = forms.CharField(
        label="Commit message", max_length=500, required=False, initial="Initial version"
    )


class VersionForm(forms.Form):
    system = forms.CharField(
        label="System template",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_TEMPLATE_HELP,
    )
    messages = forms.CharField(
        label="Messages (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='Optional, after the system message: [{"role": "user", "content": "{{ q }}"}].',
    )
    parameters = forms.CharField(
        label="Parameters (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Default model parameters, e.g. {"temperature": 0.2, "max_tokens": 400}.',
    )
    commit_message = forms.CharField(label="Commit message", max_length=500, required=False)

    def clean_messages(self):
        return _json_field(self.cleaned_data["messages"], kind=list, empty=[], what="list")

    def clean_parameters(self):
        return _json_field(self.cleaned_data["parameters"], kind=dict, empty={}, what="object")

    @staticmethod
    def initial_for(version) -> dict:
        if version is None:
            return {}
        return {
            "system": version.system,
            "messages": json.dumps(version.messages, indent=2) if version.messages else "",
            "parameters": json.dumps(version.parameters, indent=2) if version.parameters else "",
        }


class LabelMoveForm(forms.Form):
    label = forms.CharField(
        label="Label",
        max_length=40,
        widget=forms.TextInput(attrs={"list": "label-suggestions", "autocomplete": "off"}),
        help_text="Lowercase letters, digits, - and _; e.g. production or staging.",
    )
    version = forms.TypedChoiceField(label="Version", coerce=int)

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [
            (v.number, f"v{v.number} · {v.commit_message or 'no message'}"[:80]) for v in versions
        ]


class RenderForm(forms.Form):
    """One text field per variable of the selected version, named ``var_<name>``."""

    def __init__(self, *args, variables=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in variables:
            self.fields[f"var_{name}"] = forms.CharField(
                label=name, required=False, strip=False, widget=forms.Textarea(attrs={"rows": 1})
            )

    def variables(self) -> dict[str, str]:
        """Only the variables filled in, so an empty one is reported missing, not rendered."""
        return {
            key.removeprefix("var_"): value
            for key, value in self.cleaned_data.items()
            if key.startswith("var_") and value != ""
        }
