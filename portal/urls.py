from django.contrib import admin
from django.urls import include, path

from apps.core import views as core_views
from portal.api import api

admin.site.site_header = "AI portal administration"
admin.site.site_title = "AI portal admin"

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("v1/", include("apps.gateway.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("", include("apps.teams.urls")),
    path("", include("apps.assistants.urls")),
    path("", include("apps.prompts.urls")),
    path("", include("apps.inference.urls")),
    path("", include("apps.conversations.urls")),
    path("", include("apps.keys.urls")),
    path("", include("apps.quotas.urls")),
    path("", include("apps.usage.urls")),
    path("", include("apps.events.urls")),
    path("", include("apps.dashboard.urls")),
]
