"""``manage.py backend_create``: an inference backend for a team (or a global one) from a script.

Prints the backend's id (or ``--json``). Its API key is read from an
environment variable or stdin and is never printed.
"""

from django.core.management.base import CommandError
from django.db import transaction

from apps.core.management.setup_commands import (
    SetupCommand,
    acting_user,
    add_actor_argument,
    comma_list,
    service_errors,
    team_by_slug,
)
from apps.inference.backends import KINDS
from apps.inference.models import Backend, BackendKind
from apps.inference.services import backend_create

FLAGS = {
    "name": "--name",
    "kind": "--kind",
    "base_url": "--base-url",
    "azure_endpoint": "--azure-endpoint",
    "api_version": "--api-version",
    "api_key": "--api-key-env or --api-key-stdin",
    "timeout_seconds": "--timeout",
    "max_retries": "--max-retries",
    "models": "--models",
}


class Command(SetupCommand):
    help = (
        "Create an inference backend and print its id; the API key comes from an environment "
        "variable or stdin. Exit 1 with a message on bad input."
    )

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--team", metavar="SLUG", help="The team the backend belongs to.")
        where.add_argument(
            "--global",
            dest="global_backend",
            action="store_true",
            help="A global backend every team may use (needs --as with a staff user).",
        )
        parser.add_argument("--name", required=True, help="Unique within the team.")
        parser.add_argument("--kind", required=True, choices=BackendKind.values)
        parser.add_argument(
            "--base-url", help="openai_compatible: the server's URL, ending in /v1."
        )
        parser.add_argument("--azure-endpoint", help="azure_openai: https://NAME.openai.azure.com")
        parser.add_argument("--azure-deployment", help="azure_openai: the deployment name.")
        parser.add_argument("--api-version", help="azure_openai: e.g. 2024-10-21.")
        parser.add_argument("--timeout", type=float, help="Seconds per call, 1 to 600 (60).")
        parser.add_argument("--max-retries", type=int, help="0 to 10 (3).")
        parser.add_argument(
            "--models",
            metavar="A,B",
            help="Model ids it serves, comma-separated. Default: fetched from the backend "
            "by a worker where the kind lists them.",
        )
        key = parser.add_mutually_exclusive_group()
        key.add_argument(
            "--api-key-env", metavar="VAR", help="The backend's API key is in this variable."
        )
        key.add_argument(
            "--api-key-stdin", action="store_true", help="Read the backend's API key from stdin."
        )
        parser.add_argument(
            "--if-not-exists",
            action="store_true",
            help="If the team has a backend of this name and kind, report it unchanged.",
        )
        add_actor_argument(parser)
        super().add_arguments(parser)

    def handle(self, *args, **options):
        team = None if options["global_backend"] else team_by_slug(options["team"])
        actor = acting_user(team, options["as_user"])
        api_key = self.secret(
            env=options["api_key_env"], stdin=options["api_key_stdin"], what="backend API key"
        )
        name, kind = options["name"].strip(), options["kind"]
        with service_errors(FLAGS), transaction.atomic():
            backend = None
            if options["if_not_exists"]:
                backend = Backend.objects.filter(team=team, name=name).first()
            if backend is not None and backend.kind != kind:
                raise CommandError(
                    f"A backend called {name!r} exists with kind {backend.kind}, not {kind}."
                )
            created = backend is None
            if created:
                backend = backend_create(
                    team=team,
                    actor=actor,
                    kind=kind,
                    name=name,
                    api_key=api_key or "",
                    models=comma_list(options["models"]),
                    base_url=options["base_url"],
                    azure_endpoint=options["azure_endpoint"],
                    azure_deployment=options["azure_deployment"],
                    api_version=options["api_version"],
                    timeout_seconds=options["timeout"],
                    max_retries=options["max_retries"],
                )
        where = f"team {team.slug}" if team else "every team (global)"
        listed = "fetched by a worker" if KINDS[kind].lists_models else "none (see --models)"
        state = "Created" if created else "Kept the existing"
        self.report(
            options,
            value=str(backend.pk),
            data={
                "id": backend.pk,
                "name": backend.name,
                "kind": backend.kind,
                "team": team.slug if team else None,
                "base_url": backend.base_url,
                "azure_endpoint": backend.azure_endpoint,
                "azure_deployment": backend.azure_deployment,
                "api_version": backend.api_version,
                "models": backend.model_ids,
                "has_api_key": backend.has_api_key,
                "enabled": backend.enabled,
                "created": created,
            },
            message=f"{state} backend {backend.name} (id {backend.pk}, {backend.kind}) for "
            f"{where}; models: {', '.join(backend.model_ids) or listed}.",
            created=created,
        )
