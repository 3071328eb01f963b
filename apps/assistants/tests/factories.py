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
