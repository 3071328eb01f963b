"""Prompts for tests, made through the services so they look like real ones (version 1 included)."""

import factory

from apps.prompts import services
from apps.prompts.models import Prompt, PromptVersion
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of


class PromptFactory(factory.django.DjangoModelFactory):
    """A bare prompt row without versions, for selector and admin tests."""

    class Meta:
        model = Prompt

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Prompt {n}")
    slug = factory.Sequence(lambda n: f"prompt-{n}")


class PromptVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptVersion

    prompt = factory.SubFactory(PromptFactory)
    number = factory.Sequence(lambda n: n + 1)
    system = "You are helpful."


def team_with_editor(role: str = Role.MEMBER):
    team = TeamFactory()
    return team, member_of(team, role)


def make_prompt(team=None, actor=None, *, name="Support reply", **fields) -> Prompt:
    """A prompt with its version 1, created by a member of the team."""
    if team is None:
        team = TeamFactory()
    if actor is None:
        actor = member_of(team, Role.MEMBER)
    fields.setdefault("system", "You help customers of {{ company }}.")
    return services.prompt_create(team=team, actor=actor, name=name, **fields)


def add_version(prompt: Prompt, actor, system: str, **fields) -> PromptVersion:
    return services.version_create(
        prompt=prompt,
        actor=actor,
        system=system,
        messages=fields.pop("messages", []),
        parameters=fields.pop("parameters", {}),
        commit_message=fields.pop("commit_message", f"edit: {system[:20]}"),
    )
