import pytest
from django.core.exceptions import PermissionDenied

from apps.assistants import resolution, services
from apps.assistants.models import Assistant
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.prompts import services as prompts
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    prompt = prompts.prompt_create(
        team=team, actor=admin, name="Support", system="You help {{customer}}. Version one."
    )
    v1 = prompt.versions.get(number=1)
    v2 = prompts.version_create(
        prompt=prompt,
        actor=admin,
        system="You help {{customer}}. Version two.",
        messages=[],
        parameters={"temperature": 0.3},
        commit_message="Friendlier",
    )
    prompts.label_move(prompt=prompt, actor=admin, label="production", version=v1)
    return team, admin, backend, prompt, v1, v2


def make(team, admin, backend, **data):
    return services.assistant_create(
        team=team,
        actor=admin,
        name=data.pop("name", "Bot"),
        backend=backend.pk,
        model="local-echo",
        **data,
    )


def test_label_assistant_follows_promotions(setup):
    team, admin, backend, prompt, v1, v2 = setup
    bot = make(
        team,
        admin,
        backend,
        instructions_source="label",
        prompt=prompt.slug,
        prompt_label="production",
    )
    first = resolution.resolve(bot, variables={"customer": "Ann"})
    assert first.prompt_version == v1
    assert first.messages == [{"role": "system", "content": "You help Ann. Version one."}]
    prompts.label_move(prompt=prompt, actor=admin, label="production", version=v2)
    bot.refresh_from_db()
    second = resolution.resolve(bot, variables={"customer": "Ann"})
    assert second.prompt_version == v2
    assert second.parameters == {"temperature": 0.3}


def test_pinned_assistant_never_moves(setup):
    team, admin, backend, prompt, v1, v2 = setup
    bot = make(
        team, admin, backend, instructions_source="pinned", prompt=prompt.slug, prompt_version=1
    )
    prompts.label_move(prompt=prompt, actor=admin, label="production", version=v2)
    assert resolution.resolve(bot, variables={"customer": "x"}).prompt_version == v1


def test_inline_and_draft_instructions(setup):
    team, admin, backend, *_ = setup
    bot = make(team, admin, backend, instructions="Be brief with {{who}}.")
    assert (
        resolution.resolve(bot, variables={"who": "Bo"}).messages[0]["content"]
        == "Be brief with Bo."
    )
    draft = resolution.resolve(bot, variables={}, draft="Draft text")
    assert draft.messages == [{"role": "system", "content": "Draft text"}]
    assert draft.prompt_version is None


def test_missing_variable_is_named(setup):
    team, admin, backend, prompt, *_ = setup
    bot = make(
        team,
        admin,
        backend,
        instructions_source="label",
        prompt=prompt.slug,
        prompt_label="production",
    )
    with pytest.raises(ServiceError, match="customer"):
        resolution.resolve(bot, variables={})


@pytest.mark.parametrize(
    ("data", "error", "param"),
    [
        (
            {"instructions_source": "label", "prompt": "support", "prompt_label": "staging"},
            NotFound,
            None,
        ),
        (
            {"instructions_source": "pinned", "prompt": "support", "prompt_version": 99},
            NotFound,
            "prompt_version",
        ),
        (
            {"instructions_source": "label", "prompt": "nope", "prompt_label": "production"},
            NotFound,
            "prompt",
        ),
        ({"instructions": "Unbalanced {{ braces"}, ServiceError, "instructions"),
        ({"temperature": 5}, ServiceError, "temperature"),
        ({"instructions_source": "sideways"}, ServiceError, "instructions_source"),
    ],
)
def test_bad_references_are_refused_and_nothing_saved(setup, data, error, param):
    team, admin, backend, *_ = setup
    with pytest.raises(error) as raised:
        make(team, admin, backend, **data)
    if param:
        assert raised.value.param == param
    assert not Assistant.objects.exists()


def test_another_teams_prompt_label_or_backend_is_refused(setup):
    team, admin, backend, prompt, *_ = setup
    other_team, other_admin = team_with_admin()
    other_backend = local_backend(other_team, other_admin, name="Theirs")
    with pytest.raises(NotFound):
        make(
            other_team,
            other_admin,
            other_backend,
            instructions_source="label",
            prompt=prompt.slug,
            prompt_label="production",
        )
    with pytest.raises(NotFound):
        make(team, admin, other_backend)
    with pytest.raises(NotFound):
        make(team, admin, backend, fallbacks=[{"backend": other_backend.pk, "model": "m"}])


def test_duplicate_archive_and_restore(setup):
    team, admin, backend, *_ = setup
    bot = make(team, admin, backend, name="Helper", temperature=0.2, memory_messages=4)
    copy = services.assistant_duplicate(assistant=bot, actor=admin)
    assert (copy.name, copy.slug, copy.temperature, copy.memory_messages) == (
        "Helper (copy)",
        "helper-copy",
        0.2,
        4,
    )
    assert services.assistant_remove(assistant=copy, actor=admin) == "deleted"
    ChatRun.objects.create(
        team=team,
        backend=backend,
        model="m",
        assistant=bot,
        messages=[{"role": "user", "content": "x"}],
    )
    assert services.assistant_remove(assistant=bot, actor=admin) == "archived"
    bot.refresh_from_db()
    assert bot.is_archived
    services.assistant_restore(assistant=bot, actor=admin)
    bot.refresh_from_db()
    assert not bot.is_archived


def test_duplicate_names_conflict_and_viewers_cannot_create(setup):
    team, admin, backend, *_ = setup
    make(team, admin, backend, name="Same")
    with pytest.raises(Conflict):
        make(team, admin, backend, name="Same")
    with pytest.raises(PermissionDenied):
        make(team, member_of(team, Role.VIEWER), backend, name="Viewer bot")
