from django.apps import AppConfig


class UsageConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.usage"
    verbose_name = "Usage and cost"

    def ready(self):
        from apps.usage import pricing

        pricing.connect_signals()
