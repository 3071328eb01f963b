import json

import pytest
from django.urls import reverse

from apps.prompts import services
from apps.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion
from apps.prompts.tests.factories import add_version, make_prompt, team_with_editor
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def detail_url(prompt):
    return reverse("prompts:detail", args=[prompt.team.slug, prompt.slug])


def test_create_a_prompt_from_the_list_page(client):
    team, editor = team_with_editor()
    client.force_login(editor)
    url = reverse("prompts:list", args=[team.slug])
    page = client.get(url).content.decode()
    for label in ("Name", "Description", "System template", "Commit message", "Create prompt"):
        assert label in page
    response = client.post(
        url,
        {
            "name": "Support reply",
            "description": "Tickets",
            "system": "You help {{ company }} customers.",
            "commit_message": "First draft",
        },
    )
    prompt = Prompt.objects.get()
    assert response.status_code == 302 and response.url == detail_url(prompt)
    version = prompt.versions.get()
    assert (version.commit_message, version.variables) == ("First draft", ["company"])
    listing = client.get(url).content.decode()
    assert 'data-testid="prompt-row"' in listing and "Support reply" in listing


def test_create_errors_are_400_and_save_nothing(client):
    team, editor = team_with_editor()
    client.force_login(editor)
    url = reverse("prompts:list", args=[team.slug])
    response = client.post(url, {"name": "Broken", "system": "Hello {{ name"})
    assert response.status_code == 400
    assert "Unclosed {{" in response.content.decode()
    assert not Prompt.objects.exists() and not PromptVersion.objects.exists()
    assert client.post(url, {"name": ""}).status_code == 400
    make_prompt(team, editor, name="Taken")
    taken = client.post(url, {"name": "taken"})
    assert taken.status_code == 400 and "already has a prompt" in taken.content.decode()


def test_save_a_new_version_from_the_detail_page(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system="Be brief.")
    client.force_login(editor)
    page = client.get(detail_url(prompt)).content.decode()
    for label in ("System template", "Parameters (JSON)", "Commit message", "Save as new version"):
        assert label in page
    assert page.count('data-testid="version-row"') == 1
    response = client.post(
        detail_url(prompt),
        {
            "system": "Be brief, {{ name }}.",
            "messages": json.dumps([{"role": "user", "content": "{{ q }}"}]),
            "parameters": '{"temperature": 0.3}',
            "commit_message": "Greet by name",
        },
    )
    assert response.status_code == 302
    v2 = prompt.versions.get(number=2)
    assert v2.variables == ["name", "q"] and v2.parameters == {"temperature": 0.3}
    assert v2.messages == [{"role": "user", "content": "{{ q }}"}]
    page = client.get(detail_url(prompt)).content.decode()
    assert page.count('data-testid="version-row"') == 2
    assert "Greet by name" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"system": "Be brief."}, "Nothing changed since version 1"),
        ({"system": "{{ oops"}, "Unclosed {{"),
        ({"system": "x", "parameters": "{not json"}, "Not valid JSON"),
        ({"system": "x", "parameters": "[1]"}, "Must be a JSON object"),
        ({"system": "x", "parameters": '{"temperature": 3}'}, "temperature must be"),
        ({"system": "x", "messages": '[{"role": "robot", "content": "x"}]'}, "role must be"),
    ],
)
def test_version_form_errors_are_400_and_save_nothing(client, data, message):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system="Be brief.")
    client.force_login(editor)
    response = client.post(detail_url(prompt), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert prompt.versions.count() == 1


def test_move_a_label_from_the_page_and_see_its_history(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    add_version(prompt, editor, "second")
    client.force_login(editor)
    page = client.get(detail_url(prompt)).content.decode()
    assert "Move label" in page and 'list="label-suggestions"' in page
    assert '<option value="production">' in page and '<option value="staging">' in page
    url = reverse("prompts:label_move", args=[team.slug, prompt.slug])
    assert client.post(url, {"label": "production", "version": 1}).status_code == 302
    assert client.post(url, {"label": "production", "version": 2}).status_code == 302
    assert PromptLabel.objects.get().version.number == 2
    page = client.get(detail_url(prompt)).content.decode()
    assert 'data-testid="label-production" data-version="2"' in page
    assert page.count('data-testid="label-history-row"') == 2

    same = client.post(url, {"label": "production", "version": 2})
    assert same.status_code == 400 and "already points at version 2" in same.content.decode()
    bad = client.post(url, {"label": "Not OK!", "version": 1})
    assert bad.status_code == 400 and "lowercase letters" in bad.content.decode()
    assert client.post(url, {"label": "qa", "version": 9}).status_code == 400
    assert LabelMove.objects.count() == 2

    delete = reverse("prompts:label_delete", args=[team.slug, prompt.slug, "production"])
    assert client.post(delete).status_code == 302
    assert not PromptLabel.objects.exists()
    assert client.post(delete).status_code == 404


def test_render_form_shows_the_messages_or_the_error(client):
    team, editor = team_with_editor()
    prompt = make_prompt(
        team, editor, system="Dear {{ customer_name }}", messages=[{"role": "user", "content": "x"}]
    )
    client.force_login(member_of(team, Role.VIEWER))
    url = reverse("prompts:render", args=[team.slug, prompt.slug])
    page = client.get(detail_url(prompt)).content.decode()
    assert 'name="var_customer_name"' in page
    ok = client.post(url, {"version": 1, "var_customer_name": "Ana"})
    assert ok.status_code == 200
    body = ok.content.decode()
    assert 'data-testid="render-result"' in body and "Dear Ana" in body
    missing = client.post(url, {"version": 1})
    assert missing.status_code == 400
    assert "Missing variable: customer_name" in missing.content.decode()


def test_diff_page_marks_added_and_removed_lines(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system="Line one\nBe brief.", parameters={"temperature": 0})
    add_version(prompt, editor, "Line one\nBe thorough.", parameters={"temperature": 1})
    client.force_login(member_of(team, Role.VIEWER))
    url = reverse("prompts:diff", args=[team.slug, prompt.slug])
    page = client.get(url, {"from": 1, "to": 2}).content.decode()
    assert '<div class="diff-del">-Be brief.</div>' in page
    assert '<div class="diff-add">+Be thorough.</div>' in page
    assert '<div class="diff-ctx"> Line one</div>' in page
    assert 'data-testid="diff-parameter-temperature"' in page
    assert "Changes from v1 to v2" in client.get(url).content.decode()
    assert client.get(url, {"from": 1, "to": 5}).status_code == 404


def test_viewers_read_everything_but_every_post_is_403(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    services.label_move(
        prompt=prompt, actor=editor, label="production", version=prompt.versions.get()
    )
    client.force_login(member_of(team, Role.VIEWER))
    assert client.get(reverse("prompts:list", args=[team.slug])).status_code == 200
    page = client.get(detail_url(prompt))
    assert page.status_code == 200
    assert "Save as new version" not in page.content.decode()
    posts = [
        (reverse("prompts:list", args=[team.slug]), {"name": "New"}),
        (detail_url(prompt), {"system": "changed"}),
        (
            reverse("prompts:label_move", args=[team.slug, prompt.slug]),
            {"label": "x", "version": 1},
        ),
        (reverse("prompts:label_delete", args=[team.slug, prompt.slug, "production"]), {}),
        (reverse("prompts:archive", args=[team.slug, prompt.slug]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert Prompt.objects.count() == 1 and PromptVersion.objects.count() == 1
    assert PromptLabel.objects.count() == 1 and Prompt.objects.get().archived_at is None


def test_outsiders_get_404_on_every_prompt_page(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    mine, me = team_with_editor(Role.OWNER)
    client.force_login(me)
    for team_slug in (team.slug, mine.slug):
        pages = [
            ("get", reverse("prompts:detail", args=[team_slug, prompt.slug])),
            ("get", reverse("prompts:diff", args=[team_slug, prompt.slug])),
            ("post", reverse("prompts:detail", args=[team_slug, prompt.slug])),
            ("post", reverse("prompts:render", args=[team_slug, prompt.slug])),
            ("post", reverse("prompts:label_move", args=[team_slug, prompt.slug])),
            ("post", reverse("prompts:label_delete", args=[team_slug, prompt.slug, "x"])),
            ("post", reverse("prompts:archive", args=[team_slug, prompt.slug])),
        ]
        for method, url in pages:
            response = getattr(client, method)(url, {"system": "x", "label": "a", "version": 1})
            assert response.status_code == 404, url
    assert client.get(reverse("prompts:list", args=[team.slug])).status_code == 404
    assert client.post(reverse("prompts:list", args=[team.slug]), {"name": "x"}).status_code == 404
    assert prompt.versions.count() == 1 and Prompt.objects.count() == 1


def test_archive_from_the_page(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, name="Old")
    client.force_login(editor)
    response = client.post(reverse("prompts:archive", args=[team.slug, prompt.slug]))
    assert response.url == reverse("prompts:list", args=[team.slug])
    listing = client.get(response.url).content.decode()
    assert 'data-slug="old"' not in listing
    assert 'data-slug="old"' in client.get(response.url, {"archived": "1"}).content.decode()


def test_pages_show_only_this_teams_prompts(client):
    team, editor = team_with_editor()
    make_prompt(team, editor, name="Ours")
    make_prompt(TeamFactory(), name="Theirs")
    client.force_login(editor)
    page = client.get(reverse("prompts:list", args=[team.slug])).content.decode()
    assert "Ours" in page and "Theirs" not in page
