"""Quotas in the Django admin: staff set them for any team, with the same checks
as the page and the API (the form validates through the service's cleaners)."""

from django import forms
from django.contrib import admin

from apps.core.errors import ServiceError
from apps.quotas import rules, services
from apps.quotas.models import Quota, QuotaAlert, QuotaIncrease


class QuotaAdminForm(forms.ModelForm):
    class Meta:
        model = Quota
        fields = ["team", "api_key", *services.QUOTA_FIELDS]

    def clean(self):
        data = super().clean()
        try:
            for name, maximum in services.COUNT_LIMITS.items():
                services.clean_count(data.get(name), name, maximum)
            services.clean_cost(data.get("cost_budget"))
            data["thresholds"] = services.clean_thresholds(data.get("thresholds"))
        except ServiceError as error:
            raise forms.ValidationError({error.param: error.message}) from None
        key = data.get("api_key")
        if key is not None and data.get("team") is not None and key.team_id != data["team"].pk:
            raise forms.ValidationError({"api_key": "The key belongs to another team."})
        return data


class IncreaseInline(admin.TabularInline):
    model = QuotaIncrease
    extra = 0
    fields = [
        "extra_tokens",
        "extra_cost",
        "extra_requests_per_minute",
        "extra_tokens_per_minute",
        "extra_concurrent_runs",
        "starts_at",
        "ends_at",
        "reason",
    ]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    form = QuotaAdminForm
    list_display = [
        "team",
        "api_key",
        "period",
        "token_budget",
        "cost_budget",
        "requests_per_minute",
        "tokens_per_minute",
        "max_concurrent_runs",
        "updated_at",
    ]
    list_filter = ["period"]
    search_fields = ["team__name", "team__slug", "api_key__public_id", "api_key__name"]
    list_select_related = ["team", "api_key"]
    raw_id_fields = ["team", "api_key", "created_by"]
    inlines = [IncreaseInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.counters_refresh(obj)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        rules.forget()


@admin.register(QuotaAlert)
class QuotaAlertAdmin(admin.ModelAdmin):
    list_display = ["team", "quota", "period", "metric", "threshold", "created_at", "emailed_at"]
    list_filter = ["metric", "threshold"]
    search_fields = ["team__name", "team__slug", "period"]
    list_select_related = ["team", "quota"]
    readonly_fields = [f.name for f in QuotaAlert._meta.fields]

    def has_add_permission(self, request):
        return False
