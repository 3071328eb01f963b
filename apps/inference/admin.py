"""Admin for backends (global ones are made here) and a read-only view of runs.

The API key is a write-only form field: it is encrypted by the service on
save and only its last four characters are ever shown.
"""

from django import forms
from django.contrib import admin

from apps.core.errors import ServiceError
from apps.inference import services
from apps.inference.models import Backend, ChatRun, RunAttempt

# The admin rebuilds the form's Meta.fields to include the extra fields below,
# so the model fields handed to the service are named here once.
MODEL_FIELDS = ["team", "kind", *services.BACKEND_FIELDS]


class BackendAdminForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored key. Stored encrypted; never shown again.",
    )
    models_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Models",
        help_text="One model id per line; empty to fetch them from the server.",
    )

    class Meta:
        model = Backend
        fields = MODEL_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["models_text"].initial = "\n".join(self.instance.model_ids)
            self.fields["team"].disabled = True
            self.fields["kind"].disabled = True

    def clean(self):
        cleaned = super().clean()
        fields = {name: cleaned.get(name) for name in MODEL_FIELDS if name in cleaned}
        try:
            services.backend_check(
                instance=self.instance if self.instance.pk else None,
                api_key=cleaned.get("api_key") or None,
                **fields,
            )
        except ServiceError as error:
            raise forms.ValidationError(error.message) from None
        return cleaned


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    form = BackendAdminForm
    list_display = ("name", "kind", "scope", "key_hint", "enabled", "models_fetched_at")
    list_filter = ("kind", "enabled", ("team", admin.EmptyFieldListFilter))
    search_fields = ("name", "base_url", "team__name")
    readonly_fields = ("key_hint", "models_fetched_at", "created_at", "updated_at")

    @admin.display(description="scope")
    def scope(self, obj: Backend) -> str:
        return "global" if obj.is_global else obj.team.name

    @admin.display(description="API key")
    def key_hint(self, obj: Backend) -> str:
        return f"…{obj.api_key_last4}" if obj.api_key_last4 else ("set" if obj.has_api_key else "—")

    def save_model(self, request, obj, form, change):
        """Saved through the service, so admin edits get the same checks and encryption."""
        data = {name: form.cleaned_data.get(name) for name in MODEL_FIELDS}
        api_key = form.cleaned_data.get("api_key") or None
        models = form.cleaned_data.get("models_text") or None
        if change:
            data.pop("team", None)
            data.pop("kind", None)
            saved = services.backend_update(
                backend=obj, actor=request.user, api_key=api_key, models=models, **data
            )
        else:
            team = data.pop("team")
            saved = services.backend_create(
                team=team, actor=request.user, api_key=api_key or "", models=models, **data
            )
        obj.pk = saved.pk
        obj.refresh_from_db()


class RunAttemptInline(admin.TabularInline):
    model = RunAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "backend",
        "model",
        "succeeded",
        "http_status",
        "error",
        "prompt_tokens",
        "completion_tokens",
        "usage_estimated",
        "latency_ms",
        "ttft_ms",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ChatRun)
class ChatRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "team",
        "status",
        "backend",
        "model",
        "total_tokens",
        "usage_estimated",
        "latency_ms",
        "created_at",
    )
    list_filter = ("status", "usage_estimated", "team", "backend")
    search_fields = ("id", "model", "error", "team__name")
    date_hierarchy = "created_at"
    inlines = [RunAttemptInline]
    readonly_fields = [f.name for f in ChatRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RunAttempt)
class RunAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "run",
        "number",
        "backend",
        "model",
        "succeeded",
        "http_status",
        "total_tokens",
        "latency_ms",
        "started_at",
    )
    list_filter = ("succeeded", "usage_estimated")
    readonly_fields = [f.name for f in RunAttempt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
