"""The one NinjaAPI, mounted at ``/api/v1``; each app contributes a router."""

from ninja import NinjaAPI
from ninja.security import django_auth

from apps.assistants.api import router as assistants_router
from apps.conversations.api import router as conversations_router
from apps.core import api_errors
from apps.inference.api import router as inference_router
from apps.prompts.api import router as prompts_router
from apps.teams.api import router as teams_router

api = NinjaAPI(
    title="AI developer portal API",
    version="1",
    description="Manage teams, assistants, prompts and runs of the portal.",
    urls_namespace="api-v1",
    docs_url="/docs",
    auth=django_auth,
)
api_errors.install(api)

api.add_router("/teams", teams_router)
api.add_router("/teams", assistants_router)
api.add_router("/teams", inference_router)
api.add_router("/teams", prompts_router)
api.add_router("/teams", conversations_router)
