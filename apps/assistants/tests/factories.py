import factory

from apps.assistants.models import Assistant
from apps.teams.tests.factories import TeamFactory


class AssistantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assistant

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Assistant {n}")
    slug = factory.Sequence(lambda n: f"assistant-{n}")
    description = "Helps."


def greeter_on_two_versions(team, actor, backend, model: str):
    """An assistant following the production label of a prompt whose v1 uses
    {{name}} and whose v2 (production) uses {{name}} and {{tone}}."""
    from apps.assistants import services as assistants
    from apps.prompts import services as prompts

    prompt = prompts.prompt_create(team=team, actor=actor, name="Greeter", system="Greet {{name}}.")
    prompts.version_create(
        prompt=prompt,
        actor=actor,
        system="Greet {{name}}, {{tone}}.",
        messages=[],
        parameters={},
        commit_message="tone",
    )
    prompts.label_move(
        prompt=prompt, actor=actor, label="production", version=prompt.versions.get(number=2)
    )
    assistant = assistants.assistant_create(
        team=team,
        actor=actor,
        name="Greeter bot",
        backend=backend.pk,
        model=model,
        instructions_source="label",
        prompt="greeter",
        prompt_label="production",
    )
    return assistant, prompt
