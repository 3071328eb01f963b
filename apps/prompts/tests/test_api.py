import pytest

from apps.prompts import services
from apps.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion
from apps.prompts.tests.factories import make_prompt, team_with_editor
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def call(client, method, url, body=None):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


def error_of(response):
    return response.json()["error"]


def test_prompt_versions_labels_diff_and_render_round_trip(client):
    team, editor = team_with_editor()
    client.force_login(editor)
    base = f"/api/v1/teams/{team.slug}/prompts"

    created = call(
        client,
        "post",
        base,
        {
            "name": "Support reply",
            "description": "Answers tickets",
            "system": "You help customers of {{ company }}.\nBe brief.",
            "messages": [{"role": "user", "content": "{{ question }}"}],
            "parameters": {"temperature": 0.2},
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["slug"], body["latest_version"], body["created_by"]) == (
        "support-reply",
        1,
        editor.email,
    )
    assert body["latest"]["variables"] == ["company", "question"]
    assert body["latest"]["commit_message"] == "Initial version"
    url = f"{base}/support-reply"

    v2 = call(
        client,
        "post",
        f"{url}/versions",
        {
            "system": "You help customers of {{ company }}.\nBe thorough.",
            "messages": [{"role": "user", "content": "{{ question }}"}],
            "parameters": {"temperature": 0.7},
            "commit_message": "More detail",
        },
    )
    assert v2.status_code == 201, v2.content
    assert v2.json()["number"] == 2 and v2.json()["author"] == editor.email

    same = call(
        client,
        "post",
        f"{url}/versions",
        {
            "system": "You help customers of {{ company }}.\nBe thorough.",
            "messages": [{"role": "user", "content": "{{ question }}"}],
            "parameters": {"temperature": 0.7},
        },
    )
    assert same.status_code == 400 and error_of(same)["code"] == "nothing_changed"

    versions = client.get(f"{url}/versions").json()["items"]
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[0]["usage"] == {"runs": 0, "tokens": 0}
    one = client.get(f"{url}/versions/1").json()
    assert one["parameters"] == {"temperature": 0.2} and one["usage"]["runs"] == 0

    moved = call(client, "put", f"{url}/labels/production", {"version": 1})
    assert moved.status_code == 200, moved.content
    assert moved.json()["version"] == 1 and moved.json()["updated_by"] == editor.email
    assert call(client, "put", f"{url}/labels/staging", {"version": 2}).status_code == 200
    assert call(client, "put", f"{url}/labels/production", {"version": 2}).status_code == 200
    labels = client.get(f"{url}/labels").json()["items"]
    assert [(lb["name"], lb["version"]) for lb in labels] == [("production", 2), ("staging", 2)]
    assert client.get(url).json()["labels"] == {"production": 2, "staging": 2}
    assert client.get(f"{url}/versions/2").json()["labels"] == ["production", "staging"]

    history = client.get(f"{url}/labels/history").json()["items"]
    assert [(h["label"], h["from_version"], h["to_version"]) for h in history] == [
        ("production", 1, 2),
        ("staging", None, 2),
        ("production", None, 1),
    ]
    assert history[0]["moved_by"] == editor.email
    only = client.get(f"{url}/labels/history?label=staging").json()["items"]
    assert [h["label"] for h in only] == ["staging"]

    diff = client.get(f"{url}/diff?from=1&to=2")
    assert diff.status_code == 200, diff.content
    diff = diff.json()
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    assert "-Be brief." in diff["system"] and "+Be thorough." in diff["system"]
    assert diff["messages"] == []
    assert diff["parameters"] == {"temperature": [0.2, 0.7]}

    rendered = call(
        client,
        "post",
        f"{url}/render",
        {
            "label": "production",
            "variables": {"company": "Acme", "question": "Where is it?", "unused": 1},
        },
    )
    assert rendered.status_code == 200, rendered.content
    assert rendered.json() == {
        "version": 2,
        "messages": [
            {"role": "system", "content": "You help customers of Acme.\nBe thorough."},
            {"role": "user", "content": "Where is it?"},
        ],
        "extra_variables": ["unused"],
    }
    by_number = call(
        client, "post", f"{url}/render", {"version": 1, "variables": {"company": 1, "question": 2}}
    )
    assert by_number.json()["version"] == 1
    latest = call(client, "post", f"{url}/render", {"variables": {"company": "A", "question": "B"}})
    assert latest.json()["version"] == 2

    assert call(client, "delete", f"{url}/labels/staging").status_code == 204
    assert [lb["name"] for lb in client.get(f"{url}/labels").json()["items"]] == ["production"]

    patched = call(client, "patch", url, {"name": "Support answer"})
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["slug"]) == ("Support answer", "support-reply")

    archived = call(client, "delete", url)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert client.get(base).json() == {"items": [], "count": 0, "next_offset": None}
    assert [p["slug"] for p in client.get(f"{base}?include_archived=true").json()["items"]] == [
        "support-reply"
    ]
    assert client.get(url).status_code == 200
    refused = call(client, "post", f"{url}/versions", {"system": "after archive"})
    assert refused.status_code == 409 and error_of(refused)["code"] == "archived"


def test_errors_have_the_right_status_code_and_param(client):
    team, editor = team_with_editor()
    client.force_login(editor)
    base = f"/api/v1/teams/{team.slug}/prompts"
    prompt = make_prompt(team, editor, name="Greeter", system="Hi {{ name }}")
    url = f"{base}/{prompt.slug}"

    broken = call(client, "post", base, {"name": "Broken", "system": "Hi {{ name"})
    assert broken.status_code == 400
    assert error_of(broken)["param"] == "system"
    assert "Unclosed {{" in error_of(broken)["message"]
    assert not Prompt.objects.filter(name="Broken").exists()

    bad_params = call(client, "post", base, {"name": "Hot", "parameters": {"temperature": 9}})
    assert bad_params.status_code == 400
    assert error_of(bad_params)["param"] == "parameters.temperature"

    duplicate = call(client, "post", base, {"name": "greeter"})
    assert duplicate.status_code == 409 and error_of(duplicate)["param"] == "name"

    for bad_body in ({}, {"name": "x", "messages": [{"role": "robot", "content": "x"}]}):
        response = call(client, "post", base, bad_body)
        assert response.status_code == 422, bad_body
        assert error_of(response)["code"] == "validation_error"
    assert call(client, "put", f"{url}/labels/production", {"version": "x"}).status_code == 422
    assert call(client, "put", f"{url}/labels/production", {}).status_code == 422
    assert client.get(f"{url}/diff?from=1").status_code == 422

    bad_message = call(
        client, "post", f"{url}/versions", {"messages": [{"role": "user", "content": "{{}}"}]}
    )
    assert bad_message.status_code == 400
    assert error_of(bad_message)["param"] == "messages[0].content"
    assert PromptVersion.objects.filter(prompt=prompt).count() == 1

    assert client.get(f"{url}/versions/7").status_code == 404
    assert client.get(f"{url}/diff?from=1&to=7").status_code == 404
    assert call(client, "put", f"{url}/labels/production", {"version": 7}).status_code == 404
    bad_label = call(client, "put", f"{url}/labels/not.ok", {"version": 1})
    assert bad_label.status_code == 400 and error_of(bad_label)["param"] == "label"
    assert call(client, "put", f"{url}/labels/production", {"version": 1}).status_code == 200
    again = call(client, "put", f"{url}/labels/production", {"version": 1})
    assert again.status_code == 409 and error_of(again)["type"] == "conflict_error"
    assert call(client, "delete", f"{url}/labels/staging").status_code == 404

    missing = call(client, "post", f"{url}/render", {"variables": {}})
    assert missing.status_code == 400
    assert error_of(missing) == {
        "type": "invalid_request_error",
        "message": "Missing variable: name",
        "param": "variables.name",
        "code": "missing_variable",
    }
    wrong_type = call(client, "post", f"{url}/render", {"variables": {"name": ["x"]}})
    assert wrong_type.status_code == 400 and error_of(wrong_type)["param"] == "variables.name"
    no_label = call(client, "post", f"{url}/render", {"label": "staging", "variables": {}})
    assert no_label.status_code == 404 and "staging" in error_of(no_label)["message"]
    both = call(client, "post", f"{url}/render", {"label": "production", "version": 1})
    assert both.status_code == 400


def test_viewers_read_and_render_but_cannot_write(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor, system="Hi {{ name }}")
    client.force_login(member_of(team, Role.VIEWER))
    base = f"/api/v1/teams/{team.slug}/prompts"
    url = f"{base}/{prompt.slug}"
    assert client.get(base).status_code == 200
    assert client.get(f"{url}/versions").status_code == 200
    render = call(client, "post", f"{url}/render", {"variables": {"name": "Ana"}})
    assert render.status_code == 200
    writes = [
        ("post", base, {"name": "New"}),
        ("patch", url, {"name": "Renamed"}),
        ("delete", url, None),
        ("post", f"{url}/versions", {"system": "changed"}),
        ("put", f"{url}/labels/production", {"version": 1}),
        ("delete", f"{url}/labels/production", None),
    ]
    for method, path, body in writes:
        response = call(client, method, path, body)
        assert response.status_code == 403, (method, path)
        assert error_of(response)["code"] == "forbidden"
    assert Prompt.objects.get().name == prompt.name
    assert not PromptLabel.objects.exists()


def prompt_endpoints(team_slug: str, prompt_slug: str):
    url = f"/api/v1/teams/{team_slug}/prompts/{prompt_slug}"
    return [
        ("get", url, None),
        ("patch", url, {"name": "Stolen"}),
        ("delete", url, None),
        ("get", f"{url}/versions", None),
        ("post", f"{url}/versions", {"system": "stolen"}),
        ("get", f"{url}/versions/1", None),
        ("get", f"{url}/diff?from=1&to=1", None),
        ("get", f"{url}/labels", None),
        ("get", f"{url}/labels/history", None),
        ("put", f"{url}/labels/production", {"version": 1}),
        ("delete", f"{url}/labels/production", None),
        ("post", f"{url}/render", {"variables": {"company": "x"}}),
    ]


def test_another_teams_prompt_is_404_on_every_endpoint(client):
    theirs_team, their_editor = team_with_editor()
    theirs = make_prompt(theirs_team, their_editor, name="Secret")
    services.label_move(
        prompt=theirs, actor=their_editor, label="production", version=theirs.versions.get()
    )
    mine, me = team_with_editor(Role.OWNER)
    client.force_login(me)
    # Their prompt's slug under my team, and their team's slug itself.
    for team_slug in (mine.slug, theirs_team.slug):
        for method, path, body in prompt_endpoints(team_slug, theirs.slug):
            response = call(client, method, path, body)
            assert response.status_code == 404, (method, path, response.content)
            assert error_of(response)["type"] == "not_found_error"
    for method, body in (("get", None), ("post", {"name": "Planted"})):
        path = f"/api/v1/teams/{theirs_team.slug}/prompts"
        assert call(client, method, path, body).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Secret" and theirs.archived_at is None
    assert theirs.versions.count() == 1
    assert PromptLabel.objects.get().version.number == 1
    assert LabelMove.objects.count() == 1
    assert not Prompt.objects.filter(team=theirs_team, name="Planted").exists()


def test_prompts_list_only_shows_this_team(client):
    team, editor = team_with_editor()
    make_prompt(team, editor, name="Ours")
    make_prompt(TeamFactory(), name="Theirs")
    client.force_login(editor)
    body = client.get(f"/api/v1/teams/{team.slug}/prompts").json()["items"]
    assert [(p["slug"], p["latest_version"]) for p in body] == [("ours", 1)]


def test_openapi_documents_the_prompt_operations(client):
    _team, editor = team_with_editor()
    client.force_login(editor)
    document = client.get("/api/v1/openapi.json").json()
    operations = {
        op["operationId"]
        for path in document["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {
        "prompts_list",
        "prompts_create",
        "prompts_get",
        "prompts_update",
        "prompts_archive",
        "prompt_versions_list",
        "prompt_versions_create",
        "prompt_versions_get",
        "prompt_versions_diff",
        "prompt_labels_list",
        "prompt_labels_history",
        "prompt_labels_move",
        "prompt_labels_delete",
        "prompts_render",
    } <= operations
    diff = document["paths"]["/api/v1/teams/{team_slug}/prompts/{prompt_slug}/diff"]["get"]
    assert {p["name"] for p in diff["parameters"]} >= {"from", "to"}


def test_the_list_costs_the_same_queries_for_many_prompts(client, django_assert_max_num_queries):
    team, editor = team_with_editor()
    for i in range(6):
        prompt = make_prompt(team, editor, name=f"Prompt {i}")
        services.label_move(
            prompt=prompt, actor=editor, label="production", version=prompt.versions.get()
        )
    client.force_login(editor)
    with django_assert_max_num_queries(8):
        body = client.get(f"/api/v1/teams/{team.slug}/prompts").json()
    assert [p["labels"] for p in body["items"]] == [{"production": 1}] * 6


def test_prompts_search_order_and_versions_page(client):
    team, editor = team_with_editor()
    make_prompt(team, editor, name="Support reply", description="Answers tickets")
    make_prompt(team, editor, name="Release notes", description="From commits")
    greeter = make_prompt(team, editor, name="Greeter", description="Says hello")
    for i in range(2, 5):
        services.version_create(
            prompt=greeter,
            actor=editor,
            system=f"Hello v{i}",
            messages=[],
            parameters={},
            commit_message=f"v{i}",
        )
    client.force_login(editor)
    base = f"/api/v1/teams/{team.slug}/prompts"

    def slugs(query: str = "") -> list[str]:
        response = client.get(f"{base}?{query}")
        assert response.status_code == 200, response.content
        return [p["slug"] for p in response.json()["items"]]

    assert slugs() == ["greeter", "release-notes", "support-reply"]
    assert slugs("order=-name") == ["support-reply", "release-notes", "greeter"]
    assert slugs("order=-created_at") == ["greeter", "release-notes", "support-reply"]
    assert slugs("q=TICKETS") == ["support-reply"]
    assert slugs("q=re") == ["greeter", "release-notes", "support-reply"]
    assert slugs("q=notes") == ["release-notes"]
    assert slugs("q=nothing-like-it") == []
    bad = client.get(f"{base}?order=latest_version")
    assert bad.status_code == 422 and error_of(bad)["param"] == "order"

    versions = f"{base}/greeter/versions"
    first = client.get(f"{versions}?limit=3").json()
    assert [v["number"] for v in first["items"]] == [4, 3, 2]
    assert (first["count"], first["next_offset"]) == (4, 3)
    rest = client.get(f"{versions}?limit=3&offset=3").json()
    assert ([v["number"] for v in rest["items"]], rest["next_offset"]) == ([1], None)
    assert rest["items"][0]["usage"] == {"runs": 0, "tokens": 0}
