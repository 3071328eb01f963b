from django.contrib import admin

from apps.conversations.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "content", "run", "created_at")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "assistant", "team", "user", "updated_at")
    list_filter = ("team", "assistant")
    search_fields = ("title", "user__email", "messages__content")
    inlines = [MessageInline]
    readonly_fields = ("created_at", "updated_at")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("conversation", "role", "run", "created_at")
    list_filter = ("role",)
    search_fields = ("content",)
    readonly_fields = ("conversation", "role", "content", "run", "created_at")
