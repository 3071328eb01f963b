"""The catalogue, its schema files, and every event the services emit."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.assistants import services as assistant_services
from apps.events import envelope
from apps.events.catalogue import SCHEMA_DIR, TYPES, envelope_schema
from apps.events.models import OutboxEvent
from apps.inference import executor
from apps.inference import services as inference_services
from apps.inference.models import Backend
from apps.inference.tests.factories import simulator_backend
from apps.keys import services as key_services
from apps.prompts import services as prompt_services
from apps.prompts.tests.factories import make_prompt
from apps.teams import services as team_services
from apps.teams.models import Membership, Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Secret question 42"}]


def test_schema_files_match_the_catalogue():
    assert json.loads((SCHEMA_DIR / "envelope.json").read_text()) == envelope_schema()
    files = {p.stem for p in SCHEMA_DIR.glob("*.json")} - {"envelope"}
    assert files == set(TYPES)
    for event_type in TYPES.values():
        assert json.loads(event_type.schema_path.read_text()) == event_type.schema()


def test_readme_documents_every_type():
    from django.conf import settings

    readme = (settings.BASE_DIR / "README.md").read_text()
    missing = [name for name in TYPES if f"`{name}`" not in readme]
    assert not missing


def in_thread(fn, *args):
    """Run ``fn`` in a fresh thread: the executor's channel-layer sends use async_to_sync,
    which refuses the main thread once Playwright keeps a loop running there."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def call():
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def _exercise_everything(team, admin, simulator):
    """Every service that emits, once."""
    newcomer = member_of(team, Role.MEMBER)
    membership = Membership.objects.get(team=team, user=newcomer)
    team_services.membership_change_role(membership=membership, actor=admin, role=Role.VIEWER)
    team_services.membership_remove(membership=membership, actor=admin)
    invitation = team_services.invitation_create(team=team, actor=admin, role=Role.MEMBER)
    joiner = member_of(TeamFactory(), Role.MEMBER)
    team_services.invitation_accept(token=team_services.invitation_token(invitation), user=joiner)
    team_services.membership_leave(team=team, user=joiner)

    backend = simulator_backend(team, admin, simulator, api_key="sk-very-secret-value")
    inference_services.backend_update(backend=backend, actor=admin, name="Sim 2", api_key="sk-2")

    prompt = make_prompt(team, admin)
    version = prompt_services.version_create(
        prompt=prompt, actor=admin, system="v2", messages=[], parameters={}, commit_message="two"
    )
    prompt_services.label_move(prompt=prompt, actor=admin, label="production", version=version)

    assistant = assistant_services.assistant_create(
        team=team, actor=admin, name="Helper", backend=backend.pk, model="sim-small"
    )
    assistant_services.assistant_update(assistant=assistant, actor=admin, description="Kind")

    key, raw = key_services.key_create(team=team, actor=admin, name="CI", scopes=["chat", "read"])
    key, raw2 = key_services.key_rotate(key=key, actor=admin, grace_seconds=0)
    key_services.key_revoke(key=key, actor=admin)

    run = inference_services.run_create(
        team=team,
        actor=admin,
        backend_id=backend.pk,
        model="sim-small",
        messages=HELLO,
        assistant=assistant,
    )
    assert executor.execute(run.pk) == "succeeded"
    # a model list not fetched yet takes any name: the backend itself refuses this one
    Backend.objects.filter(pk=backend.pk).update(model_ids=[])
    failing = inference_services.run_create(
        team=team, actor=admin, backend_id=backend.pk, model="no-such-model", messages=HELLO
    )
    assert executor.execute(failing.pk) == "failed"
    cancelled = inference_services.run_create(
        team=team, actor=admin, backend_id=backend.pk, model="sim-small", messages=HELLO
    )
    inference_services.run_cancel(run=cancelled, actor=admin)
    assistant_services.assistant_remove(assistant=assistant, actor=admin)  # has a run: archived
    return [raw, raw2, "sk-very-secret-value", "sk-2"]


@pytest.mark.django_db(transaction=True)
def test_every_emitted_event_validates_and_carries_no_secret_or_content(simulator):
    team = TeamFactory()
    admin = member_of(team, Role.OWNER)
    secrets = in_thread(_exercise_everything, team, admin, simulator)
    from apps.events.tasks import notice_expired_keys

    expiring, _ = key_services.key_create(
        team=team,
        actor=admin,
        name="Short",
        scopes=["read"],
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    OutboxEvent.objects.filter(key_id=expiring.pk).update(time=timezone.now())
    type(expiring).objects.filter(pk=expiring.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert notice_expired_keys() == 1
    assert notice_expired_keys() == 0  # once

    rows = list(OutboxEvent.objects.filter(team=team).order_by("sequence"))
    seen = {row.type for row in rows}
    quota_types = {name for name in TYPES if name.startswith("quota.")}
    assert seen == set(TYPES) - quota_types, set(TYPES) - quota_types - seen
    for row in rows:
        event = envelope.build(row)
        envelope.validate(event)
        assert envelope.parse(envelope.dumps(event), key=str(team.pk).encode()) == event
        text = envelope.dumps(event).decode()
        for secret in secrets:
            assert secret not in text
        assert "Secret question" not in text
        assert "output" not in row.data and "messages" not in row.data
    succeeded = next(r for r in rows if r.type == "run.succeeded")
    assert succeeded.data["total_tokens"] > 0 and "cost" in succeeded.data
    assert succeeded.assistant_id is not None


@pytest.mark.django_db(transaction=True)
def test_content_only_when_the_team_turns_it_on(simulator):
    team = TeamFactory(events_include_content=True)
    admin = member_of(team, Role.ADMIN)
    backend = simulator_backend(team, admin, simulator)
    run = inference_services.run_create(
        team=team, actor=admin, backend_id=backend.pk, model="sim-small", messages=HELLO
    )
    in_thread(executor.execute, run.pk)
    queued = OutboxEvent.objects.get(team=team, type="run.queued")
    assert queued.data["messages"] == HELLO
    done = OutboxEvent.objects.get(team=team, type="run.succeeded")
    assert done.data["output"]
    for row in (queued, done):
        envelope.validate(envelope.build(row))


def test_a_rolled_back_change_emits_nothing():
    team = TeamFactory()
    admin = member_of(team, Role.ADMIN)
    before = OutboxEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        key_services.key_create(team=team, actor=admin, name="Doomed", scopes=["read"])
        assert OutboxEvent.objects.filter(team=team, type="key.created").exists()
        raise RuntimeError("roll back")
    assert OutboxEvent.objects.count() == before


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="Unknown event type"):
        from apps.events.outbox import emit

        emit(TeamFactory(), "team.exploded", subject="x", data={})


@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        (b"", None, "empty"),
        (b"not json", None, "not_json"),
        (b'{"hello": "world"}', None, "not_an_envelope"),
        (None, None, "empty"),
    ],
)
def test_foreign_messages_are_refused(raw, key, reason):
    with pytest.raises(envelope.InvalidEvent) as error:
        envelope.parse(raw, key=key)
    assert error.value.reason == reason


def _sample(spec: dict):
    """A value that the property schema ``spec`` accepts."""
    kind = spec.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if "const" in spec:
        return spec["const"]
    if "enum" in spec:
        return spec["enum"][0]
    if spec.get("format") == "date-time":
        return "2026-11-28T12:00:00Z"
    if spec.get("format") == "uuid":
        return "5f0c6a9e-8d1b-4f3c-9a57-1e2d3c4b5a69"
    if kind == "string":
        pattern = spec.get("pattern", "")
        return "/teams/7" if "teams" in pattern else "12.5" if "." in pattern else "7"
    return {"integer": 3, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(kind)


@pytest.mark.parametrize("name", ["envelope", *sorted(TYPES)])
def test_the_fast_validator_agrees_with_jsonschema(name):
    """envelope.validate compiles the schema files with fastjsonschema; the reference
    implementation must give the same verdict on valid and broken documents."""
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    reference = Draft202012Validator(schema, format_checker=FormatChecker())
    fast = envelope._validator(name)
    valid = {prop: _sample(spec) for prop, spec in schema["properties"].items()}
    documents = [valid, {**valid, "unexpected": 1}]
    for prop in schema.get("required", []):
        documents.append({k: v for k, v in valid.items() if k != prop})
    for prop, spec in schema["properties"].items():
        documents += [{**valid, prop: wrong} for wrong in ({"x": 1}, "not a number ~", -1.25)]
        if spec.get("format") == "date-time":
            documents.append({**valid, prop: "yesterday"})

    def fast_verdict(document) -> bool:
        try:
            fast(document)
        except ValueError:
            return False
        return True

    assert reference.is_valid(valid)
    for document in documents:
        assert fast_verdict(document) == reference.is_valid(document), document
