"""What the headless set-up commands (``team_create``, ``backend_create``, ``key_create``) share.

Scripts (CI, a Helm post-install job, a demo) drive them, so each one behaves
the same way: bad input is a :class:`CommandError` (exit 1, one line on stderr,
no traceback; argparse's own usage errors exit 2); the one value a script
wants goes alone on stdout and the words for people go to stderr, or
``--json`` puts one object on stdout; secrets come from an environment variable
or stdin, never from an argument that ``ps`` would show.
"""

import contextlib
import getpass
import json
import os
import sys
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from apps.core.errors import ServiceError
from apps.teams.models import Role, Team
from apps.teams.selectors import members


class SetupCommand(BaseCommand):
    """A command for scripts: ``--json``, and ``stdin`` replaceable from ``call_command``."""

    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object on stdout instead of the plain value.",
        )

    def execute(self, *args, **options):
        self.stdin = options.get("stdin") or sys.stdin
        return super().execute(*args, **options)

    def report(
        self, options, *, value: str | None, data: dict, message: str, created: bool = True
    ) -> None:
        """``value`` alone on stdout (or ``data`` as JSON), ``message`` on stderr
        (``-v 0`` drops it)."""
        if options["json"]:
            self.stdout.write(json.dumps(data, default=_json_value))
        elif value is not None:
            self.stdout.write(value)
        if options["verbosity"] > 0:
            style = self.style.SUCCESS if created else self.style.WARNING
            self.stderr.write(message, style_func=style)

    def secret(self, *, env: str | None, stdin: bool, what: str) -> str | None:
        """The secret from ``$env`` or one line of stdin; None when neither was asked for."""
        if env:
            value = os.environ.get(env, "")
            if not value.strip():
                raise CommandError(f"The environment variable {env} ({what}) is not set or empty.")
            return value
        if not stdin:
            return None
        if self.stdin.isatty():
            value = getpass.getpass(f"{what}: ")
        else:
            value = self.stdin.readline().rstrip("\r\n")
        if not value.strip():
            raise CommandError(f"Nothing was read from stdin ({what}).")
        return value


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextlib.contextmanager
def service_errors(flags: dict[str, str] | None = None):
    """Turn what services refuse with into a CommandError naming the flag to fix.

    ``flags`` maps a service's ``param`` to the command's option, so
    "This kind needs an API key." reads "... (--api-key-env or --api-key-stdin)".
    """
    try:
        yield
    except ServiceError as error:
        flag = (flags or {}).get(error.param or "")
        message = f"{error.message.rstrip('.')} ({flag})." if flag else error.message
        raise CommandError(message) from None
    except PermissionDenied as error:
        raise CommandError(f"Not allowed: {error}") from None
    except Http404 as error:
        raise CommandError(str(error)) from None
    except ValidationError as error:
        raise CommandError(" ".join(error.messages)) from None


def user_by_email(email: str, *, flag: str):
    user = get_user_model().objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise CommandError(f"No user with the e-mail address {email} ({flag}).")
    if not user.is_active:
        raise CommandError(f"The user {user.email} is deactivated ({flag}).")
    return user


def team_by_slug(slug: str) -> Team:
    team = Team.objects.filter(slug=slug.strip()).first()
    if team is None:
        raise CommandError(f"No team with the slug {slug!r} (--team).")
    return team


def acting_user(team: Team | None, email: str | None):
    """Whom the services judge: ``--as``, else the team's longest-standing active owner."""
    if email:
        return user_by_email(email, flag="--as")
    if team is None:
        raise CommandError("Without a team, name the acting user with --as.")
    owner = (
        members(team)
        .filter(role=Role.OWNER, user__is_active=True)
        .order_by("created_at", "pk")
        .first()
    )
    if owner is None:
        raise CommandError(f"Team {team.slug} has no active owner; name the acting user with --as.")
    return owner.user


def add_actor_argument(parser) -> None:
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="EMAIL",
        help="Act as this user (their role decides what is allowed). Default: the team's owner.",
    )


def comma_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]
