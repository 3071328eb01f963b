"""``manage.py backend_create``: credentials only from the environment or stdin, never printed."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.tests.factories import UserFactory
from apps.core.crypto import decrypt
from apps.inference.models import Backend
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db
SECRET = "sk-test-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def team():
    team = TeamFactory(slug="platform")
    member_of(team, Role.OWNER, email="owner@example.com")
    return team


def run(*args, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    extra = {"stdin": stdin} if stdin is not None else {}
    call_command("backend_create", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def test_openai_backend_with_the_key_from_the_environment(team, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out, err = run(
        "--team",
        "platform",
        "--name",
        "OpenAI",
        "--kind",
        "openai",
        "--api-key-env",
        "OPENAI_API_KEY",
        "--models",
        "gpt-4o-mini, gpt-4o",
    )
    backend = Backend.objects.get(team=team)
    assert out == f"{backend.pk}\n"
    assert backend.kind == "openai" and backend.name == "OpenAI"
    assert backend.model_ids == ["gpt-4o", "gpt-4o-mini"]
    assert decrypt(backend.api_key_encrypted) == SECRET and SECRET not in backend.api_key_encrypted
    assert backend.created_by.email == "owner@example.com"
    assert SECRET not in out + err
    assert "OpenAI" in err and f"id {backend.pk}" in err


def test_json_describes_the_backend_without_its_key(team):
    out, err = run(
        "--team",
        "platform",
        "--name",
        "vLLM",
        "--kind",
        "openai_compatible",
        "--base-url",
        "http://vllm.internal:8000/v1/",
        "--api-key-stdin",
        "--models",
        "llama-3.1-8b",
        "--timeout",
        "30",
        "--max-retries",
        "1",
        "--json",
        stdin=io.StringIO(SECRET + "\n"),
    )
    backend = Backend.objects.get(team=team)
    assert json.loads(out) == {
        "id": backend.pk,
        "name": "vLLM",
        "kind": "openai_compatible",
        "team": "platform",
        "base_url": "http://vllm.internal:8000/v1",
        "azure_endpoint": "",
        "azure_deployment": "",
        "api_version": "",
        "models": ["llama-3.1-8b"],
        "has_api_key": True,
        "enabled": True,
        "created": True,
    }
    assert decrypt(backend.api_key_encrypted) == SECRET
    assert (backend.timeout_seconds, backend.max_retries) == (30, 1)
    assert SECRET not in out + err


def test_azure_needs_its_endpoint_and_version(team, monkeypatch):
    monkeypatch.setenv("AZURE_KEY", SECRET)
    base = ["--team", "platform", "--name", "Azure", "--kind", "azure_openai"]
    with pytest.raises(CommandError, match=r"endpoint and the API version \(--azure-endpoint\)"):
        run(*base, "--api-key-env", "AZURE_KEY")
    run(
        *base,
        "--api-key-env",
        "AZURE_KEY",
        "--azure-endpoint",
        "https://contoso.openai.azure.com",
        "--azure-deployment",
        "gpt-4o",
        "--api-version",
        "2024-10-21",
        "--models",
        "gpt-4o",
    )
    backend = Backend.objects.get(team=team)
    assert (backend.azure_endpoint, backend.azure_deployment, backend.api_version) == (
        "https://contoso.openai.azure.com",
        "gpt-4o",
        "2024-10-21",
    )


def test_local_backend_needs_no_credential_and_lists_its_models(team):
    out, _err = run("--team", "platform", "--name", "Local", "--kind", "local", "--json")
    data = json.loads(out)
    assert data["kind"] == "local" and data["models"] and data["has_api_key"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "openai"], r"needs an API key \(--api-key-env or --api-key-stdin\)"),
        (["--kind", "openai_compatible"], r"base URL .*\(--base-url\)"),
        (
            ["--kind", "openai_compatible", "--base-url", "ftp://models.internal/v1"],
            r"base_url must be an http\(s\) URL \(--base-url\)",
        ),
        (
            ["--kind", "openai_compatible", "--base-url", "http://x/v1", "--timeout", "0"],
            r"between 1 and 600 \(--timeout\)",
        ),
        (["--kind", "wat"], "invalid choice: 'wat'"),
        (["--kind", "local", "--api-key-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE .*not set"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(team, args, message, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(CommandError, match=message):
        run("--team", "platform", "--name", "B", *args)
    assert not Backend.objects.exists()


def test_an_empty_stdin_is_refused(team):
    with pytest.raises(CommandError, match="Nothing was read from stdin"):
        run(
            "--team",
            "platform",
            "--name",
            "OpenAI",
            "--kind",
            "openai",
            "--api-key-stdin",
            stdin=io.StringIO(""),
        )


def test_an_unknown_team_is_refused():
    with pytest.raises(CommandError, match=r"No team with the slug 'nope' \(--team\)"):
        run("--team", "nope", "--name", "Local", "--kind", "local")


def test_a_duplicate_name_is_a_conflict_unless_if_not_exists(team):
    first, _ = run("--team", "platform", "--name", "Local", "--kind", "local")
    with pytest.raises(CommandError, match="already a backend called 'Local'"):
        run("--team", "platform", "--name", "Local", "--kind", "local")
    again, err = run("--team", "platform", "--name", "Local", "--kind", "local", "--if-not-exists")
    assert again == first and Backend.objects.count() == 1
    assert "existing backend" in err
    with pytest.raises(CommandError, match="exists with kind local, not openai"):
        run("--team", "platform", "--name", "Local", "--kind", "openai", "--if-not-exists")


def test_if_not_exists_leaves_the_existing_credential_alone(team, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    args = ["--team", "platform", "--name", "OpenAI", "--kind", "openai", "--models", "gpt-4o"]
    run(*args, "--api-key-env", "OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-another-one-entirely-000000")
    out, _err = run(*args, "--api-key-env", "OPENAI_API_KEY", "--if-not-exists", "--json")
    assert json.loads(out)["created"] is False
    assert decrypt(Backend.objects.get().api_key_encrypted) == SECRET


def test_the_same_name_in_another_team_is_fine(team):
    other = TeamFactory(slug="other")
    member_of(other, Role.OWNER)
    run("--team", "platform", "--name", "Local", "--kind", "local")
    run("--team", "other", "--name", "Local", "--kind", "local")
    assert Backend.objects.filter(name="Local").count() == 2


def test_acting_as_a_member_is_not_allowed(team):
    member = member_of(team, Role.MEMBER)
    with pytest.raises(CommandError, match="Not allowed"):
        run("--team", "platform", "--name", "Local", "--kind", "local", "--as", member.email)
    assert not Backend.objects.exists()


def test_acting_as_an_admin_records_them(team):
    admin = member_of(team, Role.ADMIN)
    run("--team", "platform", "--name", "Local", "--kind", "local", "--as", admin.email)
    assert Backend.objects.get().created_by == admin


def test_a_team_without_an_owner_needs_as():
    TeamFactory(slug="orphan")
    with pytest.raises(CommandError, match="no active owner"):
        run("--team", "orphan", "--name", "Local", "--kind", "local")


def test_global_backends_need_a_staff_user():
    with pytest.raises(CommandError, match="--as"):
        run("--global", "--name", "Shared", "--kind", "local")
    plain = UserFactory()
    with pytest.raises(CommandError, match="Only staff"):
        run("--global", "--name", "Shared", "--kind", "local", "--as", plain.email)
    staff = UserFactory(is_staff=True)
    out, _err = run(
        "--global", "--name", "Shared", "--kind", "local", "--as", staff.email, "--json"
    )
    data = json.loads(out)
    assert data["team"] is None and Backend.objects.get(pk=data["id"]).team is None


def test_team_and_global_are_exclusive(team):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("--team", "platform", "--global", "--name", "X", "--kind", "local")
