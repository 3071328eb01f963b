"""``manage.py key_create``: the raw key once on stdout (or in ``--json``), refusals as CommandError.

The last test runs all three set-up commands as a script would, in subprocesses
against the embedded default (SQLite, no Redis or Kafka), and calls the gateway
with the printed key through the openai SDK.
"""

import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.assistants.tests.factories import AssistantFactory
from apps.keys.auth import authenticate
from apps.keys.models import ApiKey, KeyPolicy
from apps.keys.services import key_revoke
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of
from conftest import ROOT, free_port, uvicorn_process

SCANNER_RE = r"aip_[a-z2-7]{12}_[A-Za-z0-9]{40}"


@pytest.fixture
def team(db):
    team = TeamFactory(slug="platform")
    team.owner = member_of(team, Role.OWNER, email="owner@example.com")
    return team


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("key_create", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_plain_output_is_the_key_alone_and_it_authenticates(team):
    out, err = run("--team", "platform", "--name", "ci")
    raw = out.removesuffix("\n")
    assert re.fullmatch(SCANNER_RE, raw) and out.count("\n") == 1
    key = authenticate(raw)
    assert key is not None and key.team == team and key.name == "ci"
    assert key.scopes == ["chat"] and key.expires_at is None
    assert key.created_by == team.owner
    secret = raw.removeprefix(key.prefix)
    assert secret not in err and key.prefix in err and "only time" in err


def test_json_holds_the_key_once_with_its_details(team):
    assistant = AssistantFactory(team=team, slug="helpdesk")
    before = timezone.now()
    out, err = run(
        "--team",
        "platform",
        "--name",
        "deploy",
        "--scopes",
        "read, chat",
        "--expires-in-days",
        "30",
        "--assistant",
        "helpdesk",
        "--allowed-models",
        "helpdesk,gpt-4o",
        "--rpm",
        "60",
        "--tpm",
        "100000",
        "--json",
    )
    after = timezone.now()
    data = json.loads(out)
    key = ApiKey.objects.get()
    assert data["key"].startswith(key.prefix) and authenticate(data["key"]) == key
    assert out.count(data["key"]) == 1 and data["key"].removeprefix(key.prefix) not in err
    expires_at = data.pop("expires_at")
    assert before + timedelta(days=30) <= key.expires_at <= after + timedelta(days=30)
    assert expires_at == key.expires_at.isoformat()
    del data["key"]
    assert data == {
        "id": key.public_id,
        "prefix": key.prefix,
        "name": "deploy",
        "team": "platform",
        "scopes": ["chat", "read"],
        "assistant": "helpdesk",
        "allowed_models": ["gpt-4o", "helpdesk"],
        "requests_per_minute": 60,
        "tokens_per_minute": 100000,
        "created": True,
    }
    assert key.assistant == assistant


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--scopes", "chat,sudo"],
            r"Unknown scope\(s\): sudo\. Use chat, read, write, admin \(--scopes\)",
        ),
        (["--scopes", " , "], r"at least one scope \(--scopes\)"),
        (["--expires-in-days", "0"], r"must be in the future \(--expires-in-days\)"),
        (["--expires-in-days", "-3"], r"must be in the future \(--expires-in-days\)"),
        (["--expires-in-days", "soon"], "invalid int value"),
        (["--assistant", "nope"], r"No assistant 'nope' in team platform \(--assistant\)"),
        (["--rpm", "0"], r"at least 1 \(--rpm\)"),
        (["--name", " "], r"a name of at most 100 characters \(--name\)"),
    ],
)
def test_bad_input_is_refused_and_no_key_is_made(team, args, message):
    with pytest.raises(CommandError, match=message):
        run("--team", "platform", "--name", "ci", *args)
    assert not ApiKey.objects.exists()


def test_the_team_policy_decides_the_expiry(team):
    KeyPolicy.objects.create(team=team, max_lifetime_days=90)
    with pytest.raises(CommandError, match="must expire within 90 days"):
        run("--team", "platform", "--name", "ci")
    with pytest.raises(CommandError, match=r"at most 90 days \(--expires-in-days\)"):
        run("--team", "platform", "--name", "ci", "--expires-in-days", "91")
    run("--team", "platform", "--name", "ci", "--expires-in-days", "90")
    assert ApiKey.objects.count() == 1


def test_an_unknown_team_is_refused(db):
    with pytest.raises(CommandError, match=r"No team with the slug 'nope' \(--team\)"):
        run("--team", "nope", "--name", "ci")


def test_a_viewer_may_not_issue_keys(team):
    viewer = member_of(team, Role.VIEWER)
    with pytest.raises(CommandError, match="Not allowed"):
        run("--team", "platform", "--name", "ci", "--as", viewer.email)
    with pytest.raises(CommandError, match=r"No user .* \(--as\)"):
        run("--team", "platform", "--name", "ci", "--as", "ghost@example.com")
    assert not ApiKey.objects.exists()


def test_an_admin_issues_keys_as_themselves(team):
    admin = member_of(team, Role.ADMIN)
    run("--team", "platform", "--name", "ci", "--as", admin.email)
    assert ApiKey.objects.get().created_by == admin


def test_a_duplicate_active_name_is_refused_unless_if_not_exists(team):
    first, _ = run("--team", "platform", "--name", "ci")
    key = ApiKey.objects.get()
    with pytest.raises(CommandError, match=r"already has an active key called 'ci'"):
        run("--team", "platform", "--name", "ci")
    out, err = run("--team", "platform", "--name", "ci", "--if-not-exists")
    assert out == "" and "can't be shown again" in err
    out, err = run("--team", "platform", "--name", "ci", "--if-not-exists", "--json")
    data = json.loads(out)
    assert data["key"] is None and data["created"] is False and data["id"] == key.public_id
    assert first.strip().removeprefix(key.prefix) not in out + err
    assert ApiKey.objects.count() == 1


def test_a_revoked_or_expired_key_frees_its_name(team):
    run("--team", "platform", "--name", "ci")
    key_revoke(key=ApiKey.objects.get(), actor=team.owner)
    run("--team", "platform", "--name", "ci")
    ApiKey.objects.filter(revoked_at__isnull=True).update(expires_at=timezone.now())
    out, _err = run("--team", "platform", "--name", "ci", "--if-not-exists")
    assert authenticate(out.strip()) is not None
    assert ApiKey.objects.count() == 3


# --- The whole headless set-up as a script runs it -------------------------------

SERVICE_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CELERY_BROKER_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}
OWNER_PASSWORD = "headless-owner-passphrase-42"


def test_headless_set_up_in_subprocesses_on_the_embedded_default(tmp_path):
    """Exit codes, the key in a shell variable authenticating at the gateway, and no
    secret (owner password, backend key, API key) printed twice or logged."""
    import openai

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        SQLITE_PATH=str(tmp_path / "portal.sqlite3"),
        SITE_URL=f"http://127.0.0.1:{port}",
        OWNER_PASSWORD=OWNER_PASSWORD,
        UPSTREAM_KEY="sk-upstream-never-printed-0123456789",
    )
    outputs: list[str] = []

    def manage(*args, stdin=None):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
        )
        outputs.extend([done.stdout, done.stderr])
        assert "Traceback" not in done.stderr, done.stderr
        return done

    assert manage("migrate", "--no-input", "-v", "0").returncode == 0
    team = manage(
        "team_create",
        "--name",
        "Platform",
        "--owner",
        "admin@example.com",
        "--create-owner",
        "--password-env",
        "OWNER_PASSWORD",
    )
    assert (team.returncode, team.stdout) == (0, "platform\n"), team.stderr
    again = manage(
        "team_create", "--name", "Platform", "--owner", "admin@example.com", "--if-not-exists"
    )
    assert (again.returncode, again.stdout) == (0, "platform\n")
    taken = manage("team_create", "--name", "Platform", "--owner", "admin@example.com")
    assert taken.returncode == 1 and taken.stdout == ""
    assert taken.stderr.strip() == (
        "CommandError: There is already a team with the slug 'platform' (--slug)."
    )

    local = manage("backend_create", "--team", "platform", "--name", "Local", "--kind", "local")
    assert local.returncode == 0 and local.stdout.strip().isdigit(), local.stderr
    upstream = manage(
        "backend_create",
        "--team",
        "platform",
        "--name",
        "Upstream",
        "--kind",
        "openai_compatible",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--models",
        "upstream-model",
        "--api-key-stdin",
        "--json",
        stdin="sk-from-stdin-never-printed-0123456789\n",
    )
    assert upstream.returncode == 0 and json.loads(upstream.stdout)["has_api_key"] is True
    openai_backend = manage(
        "backend_create",
        "--team",
        "platform",
        "--name",
        "OpenAI",
        "--kind",
        "openai",
        "--api-key-env",
        "UPSTREAM_KEY",
        "--models",
        "gpt-4o-mini",
    )
    assert openai_backend.returncode == 0, openai_backend.stderr
    no_key = manage("backend_create", "--team", "platform", "--name", "O", "--kind", "openai")
    assert no_key.returncode == 1 and "needs an API key" in no_key.stderr
    bad_kind = manage("backend_create", "--team", "platform", "--name", "O", "--kind", "nope")
    assert bad_kind.returncode == 2 and "invalid choice: 'nope'" in bad_kind.stderr

    made = manage("key_create", "--team", "platform", "--name", "ci")
    assert made.returncode == 0, made.stderr
    raw = made.stdout.removesuffix("\n")
    assert re.fullmatch(SCANNER_RE, raw)
    described = manage("key_create", "--team", "platform", "--name", "ci-json", "--json")
    as_json = json.loads(described.stdout)
    assert as_json["key"].startswith(as_json["prefix"]) and as_json["scopes"] == ["chat"]
    duplicate = manage("key_create", "--team", "platform", "--name", "ci")
    assert duplicate.returncode == 1 and duplicate.stdout == ""

    with uvicorn_process(env, tmp_path / "server.log", port):
        for key in (raw, as_json["key"]):
            client = openai.OpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0
            )
            listed = {model.id for model in client.models.list()}
            assert {"local-echo", "upstream-model", "gpt-4o-mini"} <= listed
        answer = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=raw, max_retries=0, timeout=30
        ).chat.completions.create(
            model="local-echo", messages=[{"role": "user", "content": "Hello"}]
        )
        assert answer.choices[0].message.content
    outputs.append((tmp_path / "server.log").read_text())

    everything = "".join(outputs)
    for secret in (raw, as_json["key"]):
        assert everything.count(secret) == 1
        assert everything.count(secret.split("_")[-1]) == 1  # the secret part is nowhere else
    for never in (OWNER_PASSWORD, env["UPSTREAM_KEY"], "sk-from-stdin-never-printed-0123456789"):
        assert never not in everything
