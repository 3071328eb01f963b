import pytest
from django.core.exceptions import PermissionDenied

from apps.assistants import services as assistants
from apps.conversations import selectors, services
from apps.conversations.models import Conversation, Message
from apps.core.errors import ServiceError
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.prompts import services as prompts
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    prompt = prompts.prompt_create(
        team=team, actor=admin, name="Tone", system="Speak like {{style}}."
    )
    prompts.label_move(
        prompt=prompt, actor=admin, label="production", version=prompt.versions.get(number=1)
    )
    assistant = assistants.assistant_create(
        team=team,
        actor=admin,
        name="Bot",
        backend=backend.pk,
        model="local-echo",
        instructions_source="label",
        prompt=prompt.slug,
        prompt_label="production",
        memory_messages=2,
        temperature=0.5,
    )
    return assistant, admin


def finish(run: ChatRun, output: str) -> None:
    ChatRun.objects.filter(pk=run.pk).update(status="succeeded", output=output)


def test_conversation_over_several_turns_applies_the_memory_window(bot):
    assistant, admin = bot
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    style = {"style": "a pirate"}
    first = services.message_send(
        conversation=conversation, actor=admin, content="One", variables=style
    )
    assert first.run.messages == [
        {"role": "system", "content": "Speak like a pirate."},
        {"role": "user", "content": "One"},
    ]
    assert first.run.parameters == {"temperature": 0.5}
    assert first.run.prompt_version.number == 1 and first.run.assistant == assistant
    finish(first.run, "Arr one")
    second = services.message_send(
        conversation=conversation, actor=admin, content="Two", variables=style
    )
    finish(second.run, "Arr two")
    third = services.message_send(
        conversation=conversation, actor=admin, content="Three", variables=style
    )
    # memory_messages=2: only the last two stored messages travel with the new one
    assert third.run.messages == [
        {"role": "system", "content": "Speak like a pirate."},
        {"role": "user", "content": "Two"},
        {"role": "assistant", "content": "Arr two"},
        {"role": "user", "content": "Three"},
    ]
    assert [m.text for m in selectors.messages_of(conversation)] == [
        "One",
        "Arr one",
        "Two",
        "Arr two",
        "Three",
        "",
    ]
    conversation.refresh_from_db()
    assert conversation.title == "One"


def test_failed_empty_answers_are_left_out_of_the_history(bot):
    assistant, admin = bot
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    turn = services.message_send(
        conversation=conversation, actor=admin, content="Hi", variables={"style": "x"}
    )
    ChatRun.objects.filter(pk=turn.run.pk).update(status="failed", output="")
    assert selectors.history(conversation, 10) == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("content", "variables", "param"),
    [
        ("Hi", {}, "variables.style"),
        ("", {"style": "x"}, "content"),
        ("x" * 2_000_000, {"style": "x"}, "content"),
        ("Hi", "style=x", "variables"),
    ],
)
def test_bad_messages_save_nothing(bot, content, variables, param):
    assistant, admin = bot
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    with pytest.raises(ServiceError) as error:
        services.message_send(
            conversation=conversation, actor=admin, content=content, variables=variables
        )
    assert error.value.param == param
    assert not Message.objects.exists() and not ChatRun.objects.exists()


def test_draft_instructions_are_tried_without_a_prompt_version(bot):
    assistant, admin = bot
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    turn = services.message_send(
        conversation=conversation,
        actor=admin,
        content="Hi",
        draft="Unsaved: be {{mood}}",
        variables={"mood": "calm"},
    )
    assert turn.run.messages[0] == {"role": "system", "content": "Unsaved: be calm"}
    assert turn.run.prompt_version is None


def test_compare_sends_the_same_message_to_two_versions(bot):
    assistant, admin = bot
    prompts.version_create(
        prompt=assistant.prompt,
        actor=admin,
        system="Talk like {{style}}!",
        messages=[],
        parameters={},
        commit_message="v2",
    )
    turns = services.compare_send(
        assistant=assistant,
        actor=admin,
        content="Hello",
        versions=[1, 2],
        variables={"style": "a poet"},
    )
    assert [t.run.prompt_version.number for t in turns] == [1, 2]
    assert [t.run.messages[0]["content"] for t in turns] == [
        "Speak like a poet.",
        "Talk like a poet!",
    ]
    assert not Conversation.objects.exists()
    with pytest.raises(ServiceError):
        services.compare_send(
            assistant=assistant, actor=admin, content="x", versions=[1, 7], variables={"style": "y"}
        )


def test_search_finds_user_text_and_answers(bot):
    assistant, admin = bot
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    turn = services.message_send(
        conversation=conversation, actor=admin, content="About llamas", variables={"style": "x"}
    )
    finish(turn.run, "Alpacas are cousins")
    team = assistant.team
    assert list(selectors.conversations_for(team, admin, search="llama")) == [conversation]
    assert list(selectors.conversations_for(team, admin, search="alpacas")) == [conversation]
    assert list(selectors.conversations_for(team, admin, search="zebra")) == []
    other = member_of(team, Role.MEMBER)
    assert list(selectors.conversations_for(team, other, search="llama")) == []


def test_viewers_cannot_chat_and_archived_assistants_refuse(bot):
    assistant, admin = bot
    with pytest.raises(PermissionDenied):
        services.conversation_start(
            assistant=assistant, actor=member_of(assistant.team, Role.VIEWER)
        )
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    assistants.assistant_remove(assistant=assistant, actor=admin)  # has history: archived
    with pytest.raises(ServiceError, match="archived"):
        services.message_send(
            conversation=conversation, actor=admin, content="Hi", variables={"style": "x"}
        )


def test_only_the_owner_deletes_a_conversation(bot):
    assistant, admin = bot
    conversation = services.conversation_start(assistant=assistant, actor=admin)
    teammate = member_of(assistant.team, Role.OWNER)
    with pytest.raises(ServiceError):
        services.conversation_delete(conversation=conversation, actor=teammate)
    services.conversation_delete(conversation=conversation, actor=admin)
    assert not Conversation.objects.exists()
