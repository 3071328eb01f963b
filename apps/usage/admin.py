"""Admin for prices (staff set global ones here) and a read-only view of the ledger.

A saved price is never edited: its amounts and start are read-only afterwards,
so a change is a new row with a later ``effective_from`` and recorded cost
stays what it was.
"""

from django import forms
from django.contrib import admin

from apps.usage.models import DailyRollup, Price, UsageRecord

AMOUNTS = ("input_per_million", "output_per_million", "cached_input_per_million")


class PriceAdminForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = ["team", "backend", "model", *AMOUNTS, "effective_from", "note"]

    def clean(self):
        cleaned = super().clean()  # the model's fields refuse a 7th decimal place
        team, backend = cleaned.get("team"), cleaned.get("backend")
        if team and not backend:
            self.add_error("backend", "A team's price names one of its backends.")
        if team and backend and backend.team_id != team.pk:
            self.add_error("backend", "That backend belongs to another team (or is global).")
        return cleaned


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    form = PriceAdminForm
    list_display = ("model", "team", "backend", *AMOUNTS, "effective_from", "note")
    list_filter = (("team", admin.EmptyFieldListFilter),)
    search_fields = ("model", "team__slug", "backend__name")
    ordering = ("model", "-effective_from")
    raw_id_fields = ("team", "backend")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("created_by",)
        return ("team", "backend", "model", *AMOUNTS, "effective_from", "created_by")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "team",
        "model",
        "status",
        "total_tokens",
        "cost",
        "unpriced",
        "usage_estimated",
    )
    list_filter = ("status", "unpriced", "usage_estimated")
    search_fields = ("model", "team__slug")
    raw_id_fields = ("team", "run", "attempt", "user", "api_key", "assistant", "prompt_version")
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = ("bucket", "team", "model", "requests", "errors", "total_tokens", "cost")
    search_fields = ("model", "team__slug")
    raw_id_fields = ("team",)
    show_full_result_count = False
