"""``manage.py key_create``: a team API key from a script, printed this once.

Plain output is the raw key alone on stdout, so ``KEY=$(manage.py key_create ...)``
works, with the details on stderr; ``--json`` prints one object holding it.
"""

from datetime import timedelta

from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from apps.assistants.selectors import assistant_for_team
from apps.core.management.setup_commands import (
    SetupCommand,
    acting_user,
    add_actor_argument,
    comma_list,
    service_errors,
    team_by_slug,
)
from apps.keys.models import Scope
from apps.keys.selectors import keys_of
from apps.keys.services import key_create

FLAGS = {
    "name": "--name",
    "scopes": "--scopes",
    "expires_at": "--expires-in-days",
    "assistant": "--assistant",
    "allowed_models": "--allowed-models",
    "requests_per_minute": "--rpm",
    "tokens_per_minute": "--tpm",
}


class Command(SetupCommand):
    help = (
        "Issue a team API key and print it once: the key alone on stdout (details on stderr), "
        "or --json. Exit 1 with a message on bad input."
    )

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, metavar="SLUG")
        parser.add_argument(
            "--name", required=True, help="Unique among the team's active keys here."
        )
        parser.add_argument(
            "--scopes",
            default=Scope.CHAT.value,
            metavar="A,B",
            help=f"Comma-separated, of {', '.join(Scope.values)} (default: chat).",
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            metavar="N",
            help="The key stops working after N days. Default: never (unless the team's "
            "key policy requires an expiry).",
        )
        parser.add_argument(
            "--assistant", metavar="SLUG", help="Bind the key to this one assistant."
        )
        parser.add_argument(
            "--allowed-models",
            metavar="A,B",
            help="Allow-list of assistant slugs and model ids. Default: any.",
        )
        parser.add_argument("--rpm", type=int, help="The key's own requests-per-minute limit.")
        parser.add_argument("--tpm", type=int, help="The key's own tokens-per-minute limit.")
        parser.add_argument(
            "--if-not-exists",
            action="store_true",
            help="If an active key of this name exists, exit 0 without a new key (stdout stays "
            "empty; its secret was shown when it was made).",
        )
        add_actor_argument(parser)
        super().add_arguments(parser)

    def handle(self, *args, **options):
        team = team_by_slug(options["team"])
        actor = acting_user(team, options["as_user"])
        name = options["name"].strip()
        days = options["expires_in_days"]
        with service_errors(FLAGS), transaction.atomic():
            existing = self._active_key(team, name)
            if existing is not None and not options["if_not_exists"]:
                raise CommandError(
                    f"Team {team.slug} already has an active key called {name!r} "
                    f"({existing.prefix}...); pick another --name or pass --if-not-exists."
                )
            if existing is None:
                key, raw = key_create(
                    team=team,
                    actor=actor,
                    name=name,
                    scopes=comma_list(options["scopes"]),
                    expires_at=timezone.now() + timedelta(days=days) if days is not None else None,
                    assistant=self._assistant(team, options["assistant"]),
                    allowed_models=comma_list(options["allowed_models"]),
                    requests_per_minute=options["rpm"],
                    tokens_per_minute=options["tpm"],
                )
            else:
                key, raw = existing, None
        expiry = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "no expiry"
        if raw:
            message = (
                f"Created key {key.name} ({key.prefix}...) in team {team.slug}: scopes "
                f"{', '.join(key.scopes)}, {expiry}. This is the only time it is shown."
            )
        else:
            message = (
                f"Kept the existing key {key.name} ({key.prefix}...) in team {team.slug}; "
                "its secret was shown when it was created and can't be shown again."
            )
        self.report(
            options,
            value=raw,
            data={
                "key": raw,
                "id": key.public_id,
                "prefix": key.prefix,
                "name": key.name,
                "team": team.slug,
                "scopes": key.scopes,
                "expires_at": key.expires_at,
                "assistant": key.assistant.slug if key.assistant else None,
                "allowed_models": key.allowed_models,
                "requests_per_minute": key.requests_per_minute,
                "tokens_per_minute": key.tokens_per_minute,
                "created": raw is not None,
            },
            message=message,
            created=raw is not None,
        )

    @staticmethod
    def _active_key(team, name: str):
        lapsed = Q(revoked_at__isnull=False) | Q(expires_at__lte=timezone.now())
        return keys_of(team).filter(name=name).exclude(lapsed).first()

    @staticmethod
    def _assistant(team, slug: str | None):
        if not slug:
            return None
        try:
            return assistant_for_team(team, slug.strip())
        except Http404:
            raise CommandError(
                f"No assistant {slug!r} in team {team.slug} (--assistant)."
            ) from None
