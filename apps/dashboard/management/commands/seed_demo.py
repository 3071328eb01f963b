"""Create the demo team, user and assistant if missing, and print how to sign in."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.assistants.models import Assistant
from apps.assistants.services import assistant_create
from apps.inference.models import Backend, BackendKind
from apps.inference.services import backend_create
from apps.teams.models import Membership, Role, Team
from apps.teams.services import team_create

User = get_user_model()
DEMO_TEAM = "Demo team"


class Command(BaseCommand):
    help = (
        "Seed a demo team, user, assistant and the local development backend (idempotent) "
        "and print the demo login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Do not print the login.")

    @transaction.atomic
    def handle(self, *args, quiet: bool = False, **options):
        email, password = settings.DEMO_EMAIL, settings.DEMO_PASSWORD
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email,
                password=password,
                display_name="Demo User",
                is_staff=True,
                is_superuser=True,
            )
        team = Team.objects.filter(memberships__user=user, name=DEMO_TEAM).first()
        if team is None:
            team = team_create(name=DEMO_TEAM, created_by=user)
        Membership.objects.filter(team=team, user=user).update(role=Role.OWNER)
        backend = Backend.objects.filter(team=team, kind=BackendKind.LOCAL).first()
        if backend is None:
            backend = backend_create(
                team=team, actor=user, kind=BackendKind.LOCAL, name="Local (development)"
            )
        if not Assistant.objects.filter(team=team, slug="helpdesk").exists():
            assistant_create(
                team=team,
                actor=user,
                name="Helpdesk",
                description="Answers questions about the portal.",
                backend=backend.pk,
                model="local-echo",
                instructions="You are a concise, friendly helpdesk assistant for the AI portal.",
            )
        if not quiet:
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  Demo login: {email} / {password}\n"
                    f"  Team: {team.name} ({settings.SITE_URL}/t/{team.slug}/)\n"
                    f"  Admin: {settings.SITE_URL}/admin/\n"
                )
            )
