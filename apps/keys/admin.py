"""Admin for API keys: a list without secrets, and an action to revoke keys.

Keys are issued on the team's page (the raw key must be shown to whoever
made it), so the admin neither adds keys nor shows any hash.
"""

from django.contrib import admin, messages
from django.utils import timezone

from apps.core.errors import ServiceError
from apps.keys import services
from apps.keys.models import ApiKey, KeyPolicy


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "public_id",
        "scopes",
        "status",
        "last_used_at",
        "expires_at",
        "created_at",
    ]
    list_filter = [StatusFilter, "team", "expires_at", "last_used_at"]
    search_fields = ["name", "public_id", "team__name", "team__slug"]
    list_select_related = ["team"]
    fields = [
        "team",
        "name",
        "public_id",
        "scopes",
        "assistant",
        "allowed_models",
        "requests_per_minute",
        "tokens_per_minute",
        "expires_at",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Status")
    def status(self, obj):
        return obj.status

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = 0
        for key in queryset.select_related("team"):
            try:
                services.key_revoke(key=key, actor=request.user)
            except ServiceError:
                continue
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


@admin.register(KeyPolicy)
class KeyPolicyAdmin(admin.ModelAdmin):
    list_display = ["team", "max_lifetime_days"]
    search_fields = ["team__name", "team__slug"]
