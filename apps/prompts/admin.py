"""Admin for the prompt library, read-mostly on purpose.

Versions are immutable and label moves must land in ``LabelMove``, which only
the services write; so the admin can browse versions, labels and history and
delete a label, but not edit any of them behind the services' back.
"""

from django.contrib import admin

from apps.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PromptVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PromptVersion
    fields = ("number", "commit_message", "variables", "author", "created_at")
    readonly_fields = fields
    ordering = ("-number",)
    extra = 0
    show_change_link = True


class PromptLabelInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PromptLabel
    fields = ("name", "version", "updated_by", "updated_at")
    readonly_fields = fields
    extra = 0


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "team", "created_by", "updated_at", "archived_at")
    list_filter = ("team", ("archived_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "slug", "description", "team__name")
    readonly_fields = ("team", "slug", "created_by", "created_at", "updated_at")
    fields = ("team", "name", "slug", "description", "archived_at", "created_by", "created_at")
    inlines = (PromptVersionInline, PromptLabelInline)

    def has_add_permission(self, request):
        return False  # version 1 and the slug come from services.prompt_create


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("prompt", "number", "commit_message", "author", "created_at")
    list_filter = ("prompt__team",)
    search_fields = ("prompt__name", "prompt__slug", "commit_message", "system")
    list_select_related = ("prompt", "author")
    readonly_fields = (
        "prompt",
        "number",
        "system",
        "messages",
        "variables",
        "parameters",
        "commit_message",
        "author",
        "created_at",
    )


@admin.register(PromptLabel)
class PromptLabelAdmin(admin.ModelAdmin):
    list_display = ("prompt", "name", "version", "updated_by", "updated_at")
    list_filter = ("name", "prompt__team")
    search_fields = ("name", "prompt__name", "prompt__slug")
    list_select_related = ("prompt", "version__prompt", "updated_by")
    readonly_fields = ("prompt", "name", "version", "updated_by", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LabelMove)
class LabelMoveAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("prompt", "label", "from_version", "to_version", "moved_by", "moved_at")
    list_filter = ("label", "prompt__team")
    search_fields = ("label", "prompt__name", "prompt__slug")
    list_select_related = ("prompt", "from_version__prompt", "to_version__prompt", "moved_by")
    readonly_fields = ("prompt", "label", "from_version", "to_version", "moved_by", "moved_at")
    date_hierarchy = "moved_at"
