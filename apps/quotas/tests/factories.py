from apps.quotas import services
from apps.teams.models import Role
from apps.teams.tests.factories import member_of


def make_quota(team, actor=None, api_key=None, **fields):
    """A quota set through the service, by a new team admin unless ``actor`` is given."""
    actor = actor or member_of(team, Role.ADMIN)
    fields.setdefault("thresholds", [])
    return services.quota_create(team=team, actor=actor, api_key=api_key, **fields)
