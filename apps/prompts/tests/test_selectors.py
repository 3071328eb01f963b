import pytest
from django.http import Http404

from apps.core.errors import NotFound
from apps.inference.models import ChatRun
from apps.prompts import selectors, services
from apps.prompts.tests.factories import add_version, make_prompt, team_with_editor
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


def test_prompts_for_team_hides_archived_and_other_teams():
    team, editor = team_with_editor()
    live = make_prompt(team, editor, name="Live")
    old = make_prompt(team, editor, name="Old")
    add_version(live, editor, "second")
    services.prompt_archive(prompt=old, actor=editor)
    make_prompt(name="Elsewhere")
    listed = list(selectors.prompts_for_team(team))
    assert [(p.slug, p.latest_number, p.version_count) for p in listed] == [("live", 2, 2)]
    assert [p.slug for p in selectors.prompts_for_team(team, include_archived=True)] == [
        "live",
        "old",
    ]


def test_prompt_and_version_lookups_are_404_outside_the_team_or_range():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, name="Ours")
    other = make_prompt(name="Theirs")
    assert selectors.prompt_for_team(team, "ours") == prompt
    with pytest.raises(Http404):
        selectors.prompt_for_team(team, other.slug)
    assert selectors.version_for_prompt(prompt, 1).number == 1
    with pytest.raises(Http404):
        selectors.version_for_prompt(prompt, 2)


def test_version_by_label_resolves_or_names_the_missing_label():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    v2 = add_version(prompt, editor, "v2")
    services.label_move(prompt=prompt, actor=editor, label="production", version=v2)
    assert selectors.version_by_label(prompt, "production") == v2
    with pytest.raises(NotFound) as raised:
        selectors.version_by_label(prompt, "staging")
    assert "staging" in raised.value.message
    assert raised.value.param == "label"


def test_label_history_is_newest_first_and_filters_by_label():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    v1 = prompt.versions.get()
    v2 = add_version(prompt, editor, "v2")
    services.label_move(prompt=prompt, actor=editor, label="production", version=v1)
    services.label_move(prompt=prompt, actor=editor, label="staging", version=v2)
    services.label_move(prompt=prompt, actor=editor, label="production", version=v2)
    assert [(m.label, m.to_version.number) for m in selectors.label_history(prompt)] == [
        ("production", 2),
        ("staging", 2),
        ("production", 1),
    ]
    production = selectors.label_history(prompt, "production")
    assert [(m.from_version_id, m.to_version_id) for m in production] == [
        (v1.pk, v2.pk),
        (None, v1.pk),
    ]


def test_version_diff_shows_template_message_and_parameter_changes():
    team, editor = team_with_editor()
    prompt = make_prompt(
        team,
        editor,
        system="You help customers.\nBe brief.",
        messages=[{"role": "user", "content": "{{ q }}"}],
        parameters={"temperature": 0.2, "stop": ["END"]},
    )
    v2 = add_version(
        prompt,
        editor,
        "You help customers.\nBe thorough.",
        messages=[{"role": "user", "content": "{{ q }}"}, {"role": "assistant", "content": "OK"}],
        parameters={"temperature": 0.7, "max_tokens": 100, "stop": ["END"]},
    )
    diff = selectors.version_diff(prompt.versions.get(number=1), v2)
    assert (diff["from"], diff["to"]) == (1, 2)
    assert diff["system"][:2] == ["--- v1", "+++ v2"]
    assert "-Be brief." in diff["system"] and "+Be thorough." in diff["system"]
    assert " You help customers." in diff["system"]
    assert "+assistant: OK" in diff["messages"]
    assert not any(line.startswith("-user") for line in diff["messages"])
    assert diff["parameters"] == {"max_tokens": (None, 100), "temperature": (0.2, 0.7)}
    same = selectors.version_diff(v2, v2)
    assert same == {"from": 2, "to": 2, "system": [], "messages": [], "parameters": {}}


def test_version_usage_counts_runs_when_runs_record_their_version():
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    v1 = prompt.versions.get()
    v2 = add_version(prompt, editor, "v2")
    zeros = {v1.pk: {"runs": 0, "tokens": 0}, v2.pk: {"runs": 0, "tokens": 0}}
    assert selectors.version_usage([]) == {}
    if not selectors._runs_link_versions():
        assert selectors.version_usage([v1, v2]) == zeros
        return
    from apps.inference.tests.factories import local_backend

    backend = local_backend(team, member_of(team, Role.ADMIN))
    for tokens in (10, 5):
        ChatRun.objects.create(
            team=team,
            backend=backend,
            model="local-echo",
            messages=[],
            prompt_version=v2,
            total_tokens=tokens,
        )
    usage = selectors.version_usage(prompt.versions.all())
    assert usage == {v1.pk: {"runs": 0, "tokens": 0}, v2.pk: {"runs": 2, "tokens": 15}}
