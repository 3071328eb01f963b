from apps.keys import services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of


def make_key(team=None, actor=None, **fields):
    """A key made through the service, as ``(key, raw)``; the actor is a new team admin."""
    team = team or TeamFactory()
    actor = actor or member_of(team, Role.ADMIN)
    fields.setdefault("name", "CI key")
    fields.setdefault("scopes", ["chat"])
    return services.key_create(team=team, actor=actor, **fields)
