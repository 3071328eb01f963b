from django.contrib import admin

from apps.assistants.models import Assistant


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "team", "created_by", "updated_at", "archived_at")
    list_filter = ("team", ("archived_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "slug", "description", "team__name")
    autocomplete_fields = ("team", "created_by")
    readonly_fields = ("created_at", "updated_at")
