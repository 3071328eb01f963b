"""The playground page as the server renders it: a past answer's cost from the ledger,
and a box for every variable the next message (or a compared version) needs."""

import pytest
from django.urls import reverse

from apps.assistants import services as assistants
from apps.conversations.models import Conversation, Message
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.prompts import services as prompts
from apps.usage.tests.factories import attempt, finish_run, price

pytestmark = pytest.mark.django_db


def playground(client, assistant, **query):
    url = reverse("assistants:playground", args=[assistant.team.slug, assistant.slug])
    return client.get(url, query).content.decode()


def test_a_past_answer_shows_what_the_ledger_billed(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    assistant = assistants.assistant_create(
        team=team, actor=admin, name="Bot", backend=backend.pk, model="local-echo"
    )
    price(model="local-echo", inp="1", out="2", backend=backend)
    conversation = Conversation.objects.create(team=team, assistant=assistant, user=admin)
    priced = finish_run(team, admin, backend, model="local-echo", attempts=[attempt(30, 40)])
    unpriced = finish_run(team, admin, backend, model="local-other", attempts=[attempt(5, 5)])
    for run in (priced, unpriced):
        Message.objects.create(conversation=conversation, role="user", content="Hi")
        Message.objects.create(conversation=conversation, role="assistant", run=run)
    client.force_login(admin)
    page = playground(client, assistant, conversation=conversation.pk)
    assert 'data-testid="run-cost">$0.00011</span>' in page  # 30 x 1/M + 40 x 2/M
    assert 'records it at $0, which is not free.">unpriced</span>' in page


def test_inline_instructions_and_other_versions_get_variable_boxes(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    inline = assistants.assistant_create(
        team=team,
        actor=admin,
        name="Inline",
        backend=backend.pk,
        model="local-echo",
        instructions="Answer {{ customer }} about {{order}}.",
    )
    prompt = prompts.prompt_create(team=team, actor=admin, name="P", system="Hi {{old}}.")
    prompts.version_create(
        prompt=prompt,
        actor=admin,
        system="Hi {{new}}.",
        messages=[],
        parameters={},
        commit_message="2",
    )
    prompts.label_move(
        prompt=prompt, actor=admin, label="production", version=prompt.versions.get(number=2)
    )
    labelled = assistants.assistant_create(
        team=team,
        actor=admin,
        name="Labelled",
        backend=backend.pk,
        model="local-echo",
        instructions_source="label",
        prompt="p",
        prompt_label="production",
    )
    client.force_login(admin)
    page = playground(client, inline)
    assert 'data-variables="customer,order"' in page
    assert 'data-var="customer"' in page and 'data-var="order"' in page
    page = playground(client, labelled)
    assert 'data-variables="new"' in page
    assert 'data-var="new"' in page
    assert 'data-var="old"' in page, "comparing with v1 needs its variable"
    assert 'value="1" data-variables="old"' in page
