import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from apps.core.errors import Conflict, NotFound, ServiceError
from apps.prompts import services
from apps.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion
from apps.prompts.tests.factories import add_version, make_prompt, team_with_editor
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_create_makes_version_one_with_its_variables():
    team, editor = team_with_editor()
    prompt = services.prompt_create(
        team=team,
        actor=editor,
        name="  Support reply ",
        description="Answers tickets",
        system="You help customers of {{ company }}.",
        messages=[{"role": "user", "content": "{{ question }}"}],
        parameters={"temperature": 0.2, "max_tokens": 300},
    )
    assert (prompt.name, prompt.slug, prompt.created_by) == (
        "Support reply",
        "support-reply",
        editor,
    )
    version = prompt.versions.get()
    assert version.number == 1
    assert version.commit_message == "Initial version"
    assert version.variables == ["company", "question"]
    assert version.parameters == {"temperature": 0.2, "max_tokens": 300}
    assert version.author == editor


def test_versions_are_numbered_in_order_and_old_ones_never_change():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system="one")
    v2 = add_version(prompt, editor, "two {{ x }}", commit_message="add x")
    v3 = add_version(prompt, editor, "three")
    assert [v.number for v in prompt.versions.order_by("number")] == [1, 2, 3]
    assert (v2.commit_message, v2.variables) == ("add x", ["x"])
    v1 = prompt.versions.get(number=1)
    assert v1.system == "one"
    assert PromptVersion.objects.get(pk=v2.pk).system == "two {{ x }}"
    assert v3.number == 3
    assert not any(name.startswith("version_update") for name in dir(services))


def test_an_unchanged_edit_is_refused():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system="Same", parameters={"temperature": 1})
    with pytest.raises(ServiceError) as raised:
        services.version_create(
            prompt=prompt,
            actor=editor,
            system="Same",
            messages=None,
            parameters={"temperature": 1.0},
            commit_message="a different message is not a change",
        )
    assert raised.value.code == "nothing_changed"
    assert "Nothing changed since version 1" in raised.value.message
    assert prompt.versions.count() == 1
    add_version(prompt, editor, "Same", parameters={"temperature": 0.5})
    assert prompt.versions.count() == 2


def test_broken_templates_are_refused_at_save_and_nothing_is_saved():
    team, editor = team_with_editor()
    with pytest.raises(ServiceError) as raised:
        make_prompt(team, editor, name="Broken", system="Hello {{ name")
    assert raised.value.param == "system"
    assert not Prompt.objects.exists() and not PromptVersion.objects.exists()

    prompt = make_prompt(team, editor)
    with pytest.raises(ServiceError) as raised:
        add_version(prompt, editor, "fine", messages=[{"role": "user", "content": "{{ 1x }}"}])
    assert raised.value.param == "messages[0].content"
    with pytest.raises(ServiceError) as raised:
        add_version(prompt, editor, "ok", messages=[{"role": "robot", "content": "hi"}])
    assert raised.value.param == "messages[0].role"
    assert prompt.versions.count() == 1


def test_literal_single_braces_are_saved():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system='Reply with {"answer": "{{ answer }}"}')
    assert prompt.versions.get().variables == ["answer"]


def test_parameters_are_checked_like_run_parameters():
    team, editor = team_with_editor()
    with pytest.raises(ServiceError) as raised:
        make_prompt(team, editor, parameters={"temperature": 5})
    assert raised.value.param == "parameters.temperature"
    with pytest.raises(ServiceError) as raised:
        make_prompt(team, editor, parameters={"bogus": 1})
    assert raised.value.param == "parameters.bogus"
    with pytest.raises(ServiceError) as raised:
        make_prompt(team, editor, parameters=["temperature"])
    assert raised.value.param == "parameters"
    assert not Prompt.objects.exists()


def test_slug_conflict_in_a_team_but_not_across_teams():
    team, editor = team_with_editor()
    make_prompt(team, editor, name="Support Reply")
    with pytest.raises(Conflict) as raised:
        make_prompt(team, editor, name="support reply!")
    assert raised.value.param == "name"
    other, other_editor = team_with_editor()
    assert make_prompt(other, other_editor, name="Support Reply").slug == "support-reply"
    with pytest.raises(ServiceError):
        make_prompt(team, editor, name="!!!")


def test_viewers_cannot_write_and_outsiders_neither():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    viewer = member_of(team, Role.VIEWER)
    outsider = member_of(TeamFactory(), Role.OWNER)
    for actor in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            make_prompt(team, actor, name="Nope")
        with pytest.raises(PermissionDenied):
            add_version(prompt, actor, "changed")
        with pytest.raises(PermissionDenied):
            services.label_move(
                prompt=prompt, actor=actor, label="production", version=prompt.versions.get()
            )
        with pytest.raises(PermissionDenied):
            services.prompt_archive(prompt=prompt, actor=actor)
    assert Prompt.objects.count() == 1 and PromptVersion.objects.count() == 1


def test_update_keeps_the_slug_and_archive_freezes_the_prompt():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, name="Old name")
    prompt = services.prompt_update(prompt=prompt, actor=editor, name="New name", description="d")
    assert (prompt.name, prompt.slug, prompt.description) == ("New name", "old-name", "d")
    with pytest.raises(ServiceError):
        services.prompt_update(prompt=prompt, actor=editor, name="  ")
    archived = services.prompt_archive(prompt=prompt, actor=editor)
    assert archived.archived_at is not None
    assert services.prompt_archive(prompt=prompt, actor=editor).archived_at == archived.archived_at
    with pytest.raises(Conflict, match="archived"):
        add_version(prompt, editor, "more")
    with pytest.raises(Conflict, match="archived"):
        services.label_move(
            prompt=prompt, actor=editor, label="production", version=prompt.versions.get()
        )


def test_labels_move_and_every_move_is_recorded():
    team, editor = team_with_editor()
    other_editor = member_of(team, Role.ADMIN)
    prompt = make_prompt(team, editor)
    v1 = prompt.versions.get()
    v2 = add_version(prompt, editor, "v2")
    label = services.label_move(prompt=prompt, actor=editor, label="Production", version=v1)
    assert (label.name, label.version, label.updated_by) == ("production", v1, editor)
    label = services.label_move(prompt=prompt, actor=other_editor, label="production", version=v2)
    assert PromptLabel.objects.get(pk=label.pk).version == v2
    assert label.updated_by == other_editor
    moves = list(LabelMove.objects.filter(prompt=prompt).order_by("pk"))
    assert [(m.label, m.from_version, m.to_version, m.moved_by) for m in moves] == [
        ("production", None, v1, editor),
        ("production", v1, v2, other_editor),
    ]


def test_moving_a_label_to_its_current_version_is_a_conflict():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    v1 = prompt.versions.get()
    services.label_move(prompt=prompt, actor=editor, label="staging", version=v1)
    with pytest.raises(Conflict) as raised:
        services.label_move(prompt=prompt, actor=editor, label="staging", version=v1)
    assert "already points at version 1" in raised.value.message
    assert LabelMove.objects.count() == 1


def test_a_label_cannot_point_at_another_prompts_or_another_teams_version():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, name="Mine")
    sibling = make_prompt(team, editor, name="Sibling")
    foreign = make_prompt(name="Theirs")
    for version in (sibling.versions.get(), foreign.versions.get()):
        with pytest.raises(NotFound) as raised:
            services.label_move(prompt=prompt, actor=editor, label="production", version=version)
        assert raised.value.param == "version"
    assert not PromptLabel.objects.exists() and not LabelMove.objects.exists()


@pytest.mark.parametrize("name", ["", "Has space", "ünïcode", "x" * 41, "-lead", "history", "a/b"])
def test_label_names_are_slug_like(name):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    with pytest.raises(ServiceError) as raised:
        services.label_move(prompt=prompt, actor=editor, label=name, version=prompt.versions.get())
    assert raised.value.param == "label"


def test_label_delete_keeps_the_history():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    services.label_move(prompt=prompt, actor=editor, label="qa_1", version=prompt.versions.get())
    services.label_delete(prompt=prompt, actor=editor, label="qa_1")
    assert not PromptLabel.objects.exists()
    assert LabelMove.objects.count() == 1
    with pytest.raises(NotFound):
        services.label_delete(prompt=prompt, actor=editor, label="qa_1")


def test_deleting_the_team_takes_its_labelled_prompts_with_it():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    services.label_move(
        prompt=prompt, actor=editor, label="production", version=prompt.versions.get()
    )
    team.delete()
    assert not Prompt.objects.exists() and not PromptLabel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_never_share_a_version_number():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    barrier = threading.Barrier(6)
    errors: list[Exception] = []

    def save(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            add_version(prompt, editor, f"edit {i}")
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(prompt.versions.values_list("number", flat=True)) == [1, 2, 3, 4, 5, 6, 7]
