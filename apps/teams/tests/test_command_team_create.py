"""``manage.py team_create`` as a script runs it: plain slug or JSON, refusals as CommandError."""

import io
import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.accounts.tests.factories import PASSWORD, UserFactory
from apps.teams.models import Membership, Role, Team
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db
User = get_user_model()
NEW_PASSWORD = "a-long-and-unusual-passphrase-7"


def run(*args, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    extra = {"stdin": stdin} if stdin is not None else {}
    call_command("team_create", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def test_creates_the_team_with_the_owner_and_prints_only_its_slug():
    owner = UserFactory(email="admin@example.com")
    out, err = run("--name", "Platform", "--owner", "ADMIN@example.com")
    assert out == "platform\n"
    team = Team.objects.get(slug="platform")
    assert team.name == "Platform"
    assert Membership.objects.get(team=team).user == owner
    assert Membership.objects.get(team=team).role == Role.OWNER
    assert f"id {team.pk}" in err and "admin@example.com" in err and "/t/platform/" in err


def test_json_is_one_object_with_the_slug_and_id():
    UserFactory(email="admin@example.com")
    out, _err = run(
        "--name", "Platform Team", "--slug", "plat", "--owner", "admin@example.com", "--json"
    )
    data = json.loads(out)
    team = Team.objects.get()
    assert data == {
        "id": team.pk,
        "slug": "plat",
        "name": "Platform Team",
        "owner": "admin@example.com",
        "owner_created": False,
        "created": True,
        "url": f"{settings.SITE_URL}/t/plat/",
    }


def test_the_slug_defaults_to_one_made_from_the_name():
    UserFactory(email="admin@example.com")
    out, _err = run("--name", "  Data Science & ML ", "--owner", "admin@example.com")
    assert out == "data-science-ml\n"
    assert Team.objects.get().name == "Data Science & ML"


def test_an_existing_slug_is_an_error_without_if_not_exists():
    TeamFactory(slug="platform", name="Platform")
    UserFactory(email="admin@example.com")
    with pytest.raises(CommandError, match="already a team with the slug 'platform'"):
        run("--name", "Platform", "--owner", "admin@example.com")
    assert Team.objects.count() == 1


def test_if_not_exists_reports_the_existing_team_of_a_member():
    team = TeamFactory(slug="platform", name="Platform")
    owner = member_of(team, Role.OWNER, email="admin@example.com")
    out, err = run("--name", "Platform", "--owner", owner.email, "--if-not-exists", "--json")
    data = json.loads(out)
    assert data["id"] == team.pk and data["created"] is False
    assert Team.objects.count() == 1 and Membership.objects.filter(team=team).count() == 1
    assert "existing team" in err


def test_if_not_exists_refuses_a_team_the_owner_is_not_in():
    TeamFactory(slug="platform")
    UserFactory(email="stranger@example.com")
    with pytest.raises(CommandError, match=r"stranger@example\.com is not a member"):
        run("--name", "Platform", "--owner", "stranger@example.com", "--if-not-exists")


def test_if_not_exists_creates_a_missing_team():
    UserFactory(email="admin@example.com")
    out, _err = run("--name", "Platform", "--owner", "admin@example.com", "--if-not-exists")
    assert out == "platform\n" and Team.objects.filter(slug="platform").exists()


def test_an_unknown_owner_is_refused_and_nothing_is_written():
    with pytest.raises(
        CommandError, match=r"No user with the e-mail address nobody@example.com \(--owner\)"
    ):
        run("--name", "Platform", "--owner", "nobody@example.com")
    assert not Team.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Admin"], r"The slug 'admin' is reserved \(--slug\)"),
        (["--name", "Platform", "--slug", "Not A Slug"], "lowercase letters"),
        (["--name", "Platform", "--slug", "x" * 61], "1 to 60"),
        (["--name", "   "], "pass --slug"),
        (["--name", "!!!"], "pass --slug"),
        (["--name", "x" * 101, "--slug", "long"], r"at most 100 characters \(--name\)"),
    ],
)
def test_bad_names_and_slugs_are_refused(args, message):
    UserFactory(email="admin@example.com")
    with pytest.raises(CommandError, match=message):
        run(*args, "--owner", "admin@example.com")
    assert not Team.objects.exists()


def test_create_owner_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("OWNER_PASSWORD", NEW_PASSWORD)
    out, err = run(
        "--name",
        "Platform",
        "--owner",
        "New.Owner@Example.com",
        "--create-owner",
        "--password-env",
        "OWNER_PASSWORD",
        "--json",
    )
    user = User.objects.get(email="new.owner@example.com")
    assert user.check_password(NEW_PASSWORD) and not user.is_staff
    assert json.loads(out)["owner_created"] is True
    assert NEW_PASSWORD not in out + err
    assert Membership.objects.get(user=user).role == Role.OWNER


def test_create_owner_reads_the_password_from_stdin():
    run(
        "--name",
        "Platform",
        "--owner",
        "owner@example.com",
        "--create-owner",
        "--password-stdin",
        stdin=io.StringIO(NEW_PASSWORD + "\n"),
    )
    assert User.objects.get(email="owner@example.com").check_password(NEW_PASSWORD)


def test_create_owner_without_a_password_makes_an_account_that_cannot_sign_in():
    _out, err = run("--name", "Platform", "--owner", "owner@example.com", "--create-owner")
    assert not User.objects.get(email="owner@example.com").has_usable_password()
    assert "changepassword" in err


def test_create_owner_keeps_an_existing_account_as_it_is(monkeypatch):
    existing = UserFactory(email="admin@example.com")
    monkeypatch.setenv("OWNER_PASSWORD", NEW_PASSWORD)
    out, err = run(
        "--name",
        "Platform",
        "--owner",
        "admin@example.com",
        "--create-owner",
        "--password-env",
        "OWNER_PASSWORD",
        "--json",
    )
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD) and json.loads(out)["owner_created"] is False
    assert "unchanged" in err


def test_a_weak_password_is_refused_and_no_account_or_team_is_left(monkeypatch):
    monkeypatch.setenv("OWNER_PASSWORD", "short")
    with pytest.raises(CommandError, match="too short"):
        run(
            "--name",
            "Platform",
            "--owner",
            "owner@example.com",
            "--create-owner",
            "--password-env",
            "OWNER_PASSWORD",
        )
    assert not User.objects.exists() and not Team.objects.exists()


def test_a_failing_team_leaves_no_new_account_behind():
    TeamFactory(slug="platform")
    with pytest.raises(CommandError, match="already a team"):
        run("--name", "Platform", "--owner", "owner@example.com", "--create-owner")
    assert not User.objects.filter(email="owner@example.com").exists()


def test_a_missing_password_variable_is_refused(monkeypatch):
    monkeypatch.delenv("OWNER_PASSWORD", raising=False)
    with pytest.raises(CommandError, match=r"OWNER_PASSWORD .* is not set"):
        run(
            "--name",
            "Platform",
            "--owner",
            "owner@example.com",
            "--create-owner",
            "--password-env",
            "OWNER_PASSWORD",
        )
    assert not User.objects.exists()


def test_a_password_without_create_owner_is_refused(monkeypatch):
    UserFactory(email="admin@example.com")
    monkeypatch.setenv("OWNER_PASSWORD", NEW_PASSWORD)
    with pytest.raises(CommandError, match="go with --create-owner"):
        run("--name", "P", "--owner", "admin@example.com", "--password-env", "OWNER_PASSWORD")


def test_an_invalid_email_for_a_new_owner_is_refused():
    with pytest.raises(CommandError, match="valid email"):
        run("--name", "Platform", "--owner", "not-an-address", "--create-owner")
    assert not User.objects.exists() and not Team.objects.exists()


def test_missing_required_options_are_a_command_error():
    with pytest.raises(CommandError, match="--owner"):
        run("--name", "Platform")
