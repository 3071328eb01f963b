"""The gateway's routing cache: a warm request costs no query, and every change that
alters routing is used by the very next request, whichever process made it.

Entries never age out in these tests (``MAX_AGE_SECONDS`` is infinite unless a test
says otherwise), so what invalidates is the routing version and nothing else.
Changes run their ``on_commit`` callbacks as a real commit would.
"""

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.tests.factories import UserFactory
from apps.assistants import services as assistants
from apps.assistants.models import Assistant
from apps.assistants.tests.factories import greeter_on_two_versions
from apps.core import routing_versions, shared_redis
from apps.core.errors import NotFound, ServiceError
from apps.gateway import routing, services
from apps.gateway.errors import GatewayError
from apps.gateway.requests import ChatRequest
from apps.inference import services as inference
from apps.inference.models import Backend, BackendKind
from apps.inference.tests.factories import compatible_backend, simulator_backend, team_with_admin
from apps.keys.actor import KeyActor
from apps.keys.tests.factories import make_key
from apps.prompts import services as prompts
from apps.prompts.tests.factories import add_version

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Hello"}]
GREETING = {"name": "Ada", "tone": "warmly"}


@pytest.fixture(autouse=True)
def _only_versions_invalidate(monkeypatch, settings):
    monkeypatch.setattr(routing, "MAX_AGE_SECONDS", float("inf"))
    settings.QUOTA_RULES_CACHE_SECONDS = 3600  # keep the quota rules' own cache warm too
    routing.forget()
    yield
    routing.forget()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs the block's on-commit callbacks, as its commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def greeter():
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    assistant, prompt = greeter_on_two_versions(team, admin, backend, "sim-small")
    key, _raw = make_key(team, admin)
    return team, admin, backend, assistant, prompt, KeyActor(key)


def start(actor, model: str, **fields):
    chat = ChatRequest(model=model, messages=HELLO, parameters={}, **fields)
    return services.chat_start(actor=actor, chat=chat).run


def statements_before_the_run(queries) -> list[str]:
    """What ran before the run's INSERT (one statement with its event, no transaction
    of its own; savepoints, if any, are the test's)."""
    before = []
    for query in queries.captured_queries:
        sql = query["sql"]
        if sql.startswith('WITH inserted AS (INSERT INTO "inference_chatrun"'):
            return before
        if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            before.append(sql)
    raise AssertionError("no run was inserted")


def test_a_warm_request_runs_no_sql_before_the_run_is_inserted(greeter):
    team, admin, backend, assistant, _prompt, actor = greeter
    pinned = assistants.assistant_create(
        team=team,
        actor=admin,
        name="Pinned",
        backend=backend.pk,
        model="sim-large",
        instructions_source="pinned",
        prompt="greeter",
        prompt_version=1,
    )
    inline = assistants.assistant_create(
        team=team, actor=admin, name="Inline", backend=backend.pk, model="sim-small"
    )
    calls = [
        (assistant.slug, GREETING),
        (pinned.slug, {"name": "Bo"}),
        (inline.slug, {}),
        ("sim-large", {}),
    ]
    for name, variables in calls:
        with CaptureQueriesContext(connection) as cold:
            start(actor, name, variables=variables)
        assert statements_before_the_run(cold), name  # the first one reads the routing

        with CaptureQueriesContext(connection) as warm:
            run = start(actor, name, variables=variables)
        assert statements_before_the_run(warm) == [], name
        assert run.backend_id == backend.pk
    greeted = team.runs.filter(assistant=assistant).first()
    assert greeted.messages[0] == {"role": "system", "content": "Greet Ada, warmly."}
    assert greeted.prompt_version.number == 2
    assert team.runs.filter(assistant=pinned).first().prompt_version.number == 1


def test_an_unknown_name_is_remembered_too_until_it_exists(greeter, committed):
    team, admin, backend, _assistant, _prompt, actor = greeter
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries, pytest.raises(GatewayError) as caught:
            start(actor, "helper")
        assert caught.value.status == 404 and caught.value.code == "model_not_found"
    assert queries.captured_queries == []  # the second refusal came from memory

    with committed():
        helper = assistants.assistant_create(
            team=team, actor=admin, name="Helper", backend=backend.pk, model="sim-small"
        )
    assert start(actor, "helper").assistant_id == helper.pk

    with pytest.raises(GatewayError):
        start(actor, "sim-xl")
    with committed():
        other = compatible_backend(team, admin, name="Other", models=["sim-xl"])
    assert start(actor, "sim-xl").backend_id == other.pk


def test_an_assistant_edit_is_used_by_the_next_request(greeter, committed):
    _team, admin, _backend, assistant, _prompt, actor = greeter
    first = start(actor, assistant.slug, variables=GREETING)
    assert first.model == "sim-small" and "temperature" not in first.parameters

    with committed():
        assistants.assistant_update(
            assistant=assistant, actor=admin, model="sim-large", temperature=0.2
        )
    run = start(actor, assistant.slug, variables=GREETING)
    assert run.model == "sim-large" and run.parameters["temperature"] == 0.2


def test_a_label_promotion_rollback_and_removal_are_used_by_the_next_request(greeter, committed):
    _team, admin, _backend, assistant, prompt, actor = greeter
    assert start(actor, assistant.slug, variables=GREETING).prompt_version.number == 2

    with committed():
        v3 = add_version(prompt, admin, "Hello {{name}}!")
        prompts.label_move(prompt=prompt, actor=admin, label="production", version=v3)
    run = start(actor, assistant.slug, variables={"name": "Ada"})
    assert run.prompt_version == v3
    assert run.messages[0]["content"] == "Hello Ada!"

    with committed():  # the rollback
        prompts.label_move(
            prompt=prompt, actor=admin, label="production", version=prompt.versions.get(number=1)
        )
    run = start(actor, assistant.slug, variables={"name": "Ada"})
    assert run.prompt_version.number == 1 and run.messages[0]["content"] == "Greet Ada."

    with committed():
        prompts.label_delete(prompt=prompt, actor=admin, label="production")
    with pytest.raises(NotFound) as caught:
        start(actor, assistant.slug, variables={"name": "Ada"})
    assert caught.value.param == "label"


def test_a_disabled_backend_is_refused_on_the_next_request(greeter, committed):
    _team, admin, backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)
    start(actor, "sim-large")

    with committed():
        inference.backend_update(backend=backend, actor=admin, enabled=False)
    with pytest.raises(ServiceError) as caught:
        start(actor, assistant.slug, variables=GREETING)
    assert caught.value.code == "backend_disabled"
    with pytest.raises(GatewayError) as caught:
        start(actor, "sim-large")
    assert caught.value.code == "model_not_found"

    with committed():
        inference.backend_update(backend=backend, actor=admin, enabled=True)
    assert start(actor, "sim-large").backend_id == backend.pk


def test_a_changed_model_list_is_used_by_the_next_request(greeter, committed):
    _team, admin, backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)
    start(actor, "sim-large")
    with pytest.raises(GatewayError):
        start(actor, "sim-xl")

    with committed():
        inference.backend_update(backend=backend, actor=admin, models=["sim-large", "sim-xl"])
    assert start(actor, "sim-xl").model == "sim-xl"
    with pytest.raises(ServiceError) as caught:  # the assistant's model is gone from the list
        start(actor, assistant.slug, variables=GREETING)
    assert caught.value.code == "model_not_served"


def test_a_model_list_refreshed_by_a_worker_is_used_by_the_next_request(committed, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, models=["sim-small"])
    actor = KeyActor(make_key(team, admin)[0])
    with pytest.raises(GatewayError):
        start(actor, "sim-large")

    with committed():
        assert "sim-large" in inference.backend_models_refresh_by_id(backend.pk)
    assert start(actor, "sim-large").backend_id == backend.pk


def test_a_deleted_backend_is_refused_on_the_next_request(greeter, committed):
    _team, admin, backend, assistant, _prompt, actor = greeter
    # warmed without starting runs, which would turn the delete into a disable
    assert routing.route(assistant.team, assistant.slug).assistant.backend_id == backend.pk
    assert routing.route(assistant.team, "sim-large").backend.pk == backend.pk

    with committed():
        assert inference.backend_delete(backend=backend, actor=admin) == "deleted"
    with pytest.raises(GatewayError) as caught:
        start(actor, assistant.slug, variables=GREETING)
    assert caught.value.status == 400 and "no backend" in caught.value.message
    with pytest.raises(GatewayError) as caught:
        start(actor, "sim-large")
    assert caught.value.code == "model_not_found"


def test_a_removed_assistant_is_not_found_on_the_next_request(greeter, committed):
    team, admin, backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)

    with committed():
        assert assistants.assistant_remove(assistant=assistant, actor=admin) == "archived"
    with pytest.raises(GatewayError) as caught:
        start(actor, assistant.slug, variables=GREETING)
    assert caught.value.code == "model_not_found"

    with committed():
        assistants.assistant_restore(assistant=assistant, actor=admin)
    assert start(actor, assistant.slug, variables=GREETING).assistant_id == assistant.pk

    fresh = assistants.assistant_create(
        team=team, actor=admin, name="Fresh", backend=backend.pk, model="sim-small"
    )
    assert routing.route(team, "fresh").assistant.pk == fresh.pk  # warm, and no run
    with committed():
        assert assistants.assistant_remove(assistant=fresh, actor=admin) == "deleted"
    with pytest.raises(GatewayError) as caught:
        start(actor, "fresh")
    assert caught.value.code == "model_not_found"


def test_a_change_made_by_another_process_is_seen(greeter, committed):
    team, _admin, backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)
    # Written as another process would: this one's memory knows nothing of it.
    Assistant.objects.filter(pk=assistant.pk).update(temperature=1.5)
    assert "temperature" not in start(actor, assistant.slug, variables=GREETING).parameters

    with committed():
        routing_versions.invalidate(team_id=team.pk)  # what that process's service did on commit
    assert start(actor, assistant.slug, variables=GREETING).parameters["temperature"] == 1.5

    # and for a global backend, whose version every team's entries carry
    staff = UserFactory(is_staff=True)
    shared = inference.backend_create(
        team=None,
        actor=staff,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name="Shared",
        base_url="http://127.0.0.1:9/v1",
        models=["shared-model"],
    )
    assert start(actor, "shared-model").backend_id == shared.pk
    Backend.objects.filter(pk=shared.pk).update(enabled=False)
    with committed():
        routing_versions.invalidate(team_id=None)
    with pytest.raises(GatewayError) as caught:
        start(actor, "shared-model")
    assert caught.value.code == "model_not_found"
    assert start(actor, "sim-large").backend_id == backend.pk


def test_lost_versions_invalidate_everything(greeter):
    _team, _admin, _backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)
    Assistant.objects.filter(pk=assistant.pk).update(model="sim-large")
    cache.clear()  # Redis restarted or evicted the versions: nobody knows what changed
    assert start(actor, assistant.slug, variables=GREETING).model == "sim-large"


def test_an_entry_older_than_the_age_limit_is_reloaded(greeter, monkeypatch):
    """The safety net for a version write that never happened (a process that died
    between commit and on_commit, or a write that bypassed the services)."""
    _team, _admin, _backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)
    Assistant.objects.filter(pk=assistant.pk).update(model="sim-large")
    monkeypatch.setattr(routing, "MAX_AGE_SECONDS", 0)
    assert start(actor, assistant.slug, variables=GREETING).model == "sim-large"


def test_without_the_versions_routing_comes_from_the_database(greeter, monkeypatch):
    _team, _admin, _backend, assistant, _prompt, actor = greeter

    def unreachable(*args, **kwargs):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(shared_redis.client(), "mget", unreachable)
    assert start(actor, assistant.slug, variables=GREETING).assistant_id == assistant.pk
    Assistant.objects.filter(pk=assistant.pk).update(model="sim-large")
    assert start(actor, assistant.slug, variables=GREETING).model == "sim-large"


def test_a_team_never_routes_another_teams_names(greeter, committed):
    team, _admin, _backend, assistant, _prompt, actor = greeter
    other_team, other_admin = team_with_admin()
    other = KeyActor(make_key(other_team, other_admin)[0])
    start(actor, assistant.slug, variables=GREETING)
    start(actor, "sim-large")  # both warm for the first team

    for name in (assistant.slug, "sim-large"):
        with pytest.raises(GatewayError) as caught:
            start(other, name, variables=GREETING)
        assert caught.value.code == "model_not_found"

    with committed():
        own_backend = compatible_backend(other_team, other_admin, name="Own")
        own = assistants.assistant_create(
            team=other_team,
            actor=other_admin,
            name="Greeter bot",
            backend=own_backend.pk,
            model="sim-small",
            instructions="Hi.",
        )
    run = start(other, assistant.slug)
    assert run.assistant_id == own.pk and run.team_id == other_team.pk
    assert start(actor, assistant.slug, variables=GREETING).assistant_id == assistant.pk
    assert start(other, "sim-large").backend_id == own_backend.pk
    assert team.runs.filter(backend=own_backend).count() == 0


def test_each_keys_allow_list_still_applies_to_a_warm_route(greeter):
    team, admin, backend, assistant, _prompt, actor = greeter
    start(actor, assistant.slug, variables=GREETING)
    start(actor, "sim-large")
    other_bot = assistants.assistant_create(
        team=team, actor=admin, name="Other", backend=backend.pk, model="sim-small"
    )
    bound = KeyActor(make_key(team, admin, assistant=other_bot)[0])
    listed = KeyActor(make_key(team, admin, allowed_models=["sim-small"])[0])
    for key_actor, name in [(bound, assistant.slug), (bound, "sim-large"), (listed, "sim-large")]:
        with pytest.raises(PermissionDenied):
            start(key_actor, name, variables=GREETING)
    assert start(listed, assistant.slug, variables=GREETING).assistant_id == assistant.pk
