"""The one NinjaAPI, mounted at ``/api/v1``; each app contributes a router."""

from django.conf import settings
from ninja import NinjaAPI
from ninja.security import django_auth

from apps.assistants.api import router as assistants_router
from apps.conversations.api import router as conversations_router
from apps.core import api_errors
from apps.events.api import implied_router as events_implied_router
from apps.events.api import router as events_router
from apps.inference.api import router as inference_router
from apps.inference.api_stream import router as run_stream_router
from apps.keys.api import router as keys_router
from apps.keys.api_auth import ApiKeyBearer
from apps.prompts.api import router as prompts_router
from apps.quotas.api import router as quotas_router
from apps.teams.api import router as teams_router
from apps.usage.api import implied_router as usage_implied_router
from apps.usage.api import router as usage_router

api = NinjaAPI(
    title="AI developer portal API",
    version="1",
    description=(
        "Manage teams, members, backends, assistants, prompts, conversations, runs and API "
        "keys of the portal. Programs send a team API key as `Authorization: Bearer "
        "aip_...`; the browser's session works on the same endpoints. Every error has the "
        'body `{"error": {"type", "message", "param", "code"}}`. Lists take `limit` '
        "(default 50, at most 200) and `offset` and answer `{items, count, next_offset}`; "
        "the main ones take `order` (a field, `-` first for descending) and filters."
    ),
    urls_namespace="api-v1",
    docs_url="/docs",
    auth=[ApiKeyBearer(), django_auth],
    servers=[{"url": settings.SITE_URL, "description": "This portal"}],
    openapi_extra={
        "tags": [
            {"name": "teams", "description": "Teams, their members and invitations."},
            {"name": "assistants", "description": "Chat assistants a team configures."},
            {"name": "backends", "description": "Inference backends and their models."},
            {"name": "runs", "description": "Chat completions a worker runs, and their output."},
            {"name": "prompts", "description": "Versioned prompts, labels and rendering."},
            {"name": "conversations", "description": "Your conversations with assistants."},
            {"name": "keys", "description": "Team API keys and the key policy."},
            {"name": "quotas", "description": "Budgets, rate limits and their increases."},
            {"name": "usage", "description": "Usage, cost, prices and CSV exports."},
            {"name": "events", "description": "The team's event log and its live stream."},
        ]
    },
)
api_errors.install(api)

api.add_router("/teams", teams_router)
api.add_router("/teams", assistants_router)
api.add_router("/teams", inference_router)
api.add_router("/teams", prompts_router)
api.add_router("/teams", conversations_router)
api.add_router("/teams", keys_router)
api.add_router("/teams", run_stream_router)
api.add_router("/teams", quotas_router)
api.add_router("/teams", usage_router)
api.add_router("/teams", events_router)
# /api/v1/usage and /api/v1/events: the team is the API key's own (or ?team=<slug>)
api.add_router("/", usage_implied_router)
api.add_router("/", events_implied_router)
