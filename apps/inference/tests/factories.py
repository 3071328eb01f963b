from apps.inference.models import BackendKind
from apps.inference.services import backend_create
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of


def team_with_admin():
    team = TeamFactory()
    return team, member_of(team, Role.ADMIN)


def simulator_backend(
    team, actor, server, *, name="Simulator", max_retries=2, timeout=10.0, api_key="", models=None
):
    """An openai_compatible backend pointing at a running SimulatorServer."""
    return backend_create(
        team=team,
        actor=actor,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name=name,
        base_url=server.base_url,
        api_key=api_key,
        models=models or ["sim-small", "sim-large"],
        max_retries=max_retries,
        timeout_seconds=timeout,
    )


def local_backend(team, actor, name="Local"):
    return backend_create(team=team, actor=actor, kind=BackendKind.LOCAL, name=name)


def compatible_backend(team, actor, name="Compatible", models=("sim-small", "sim-large")):
    """An OpenAI-compatible backend nothing listens behind, for tests that record runs
    without calling it: unlike the local one, its models carry their global prices."""
    return backend_create(
        team=team,
        actor=actor,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name=name,
        base_url="http://127.0.0.1:9/v1",
        models=list(models),
    )


def azure_backend(team, actor, name="Azure"):
    """Azure serves deployments by name and lists no models."""
    return backend_create(
        team=team,
        actor=actor,
        kind=BackendKind.AZURE_OPENAI,
        name=name,
        api_key="az-secret",
        azure_endpoint="https://example.openai.azure.com",
        azure_deployment="prod",
        api_version="2024-10-21",
    )
