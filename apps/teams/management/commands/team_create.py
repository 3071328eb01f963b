"""``manage.py team_create``: a team and its owner from a script.

Prints the team's slug (or ``--json``). The owner must exist unless
``--create-owner``; the owner's password comes from ``--password-env VAR`` or
``--password-stdin``, never the command line.
"""

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.management.base import CommandError
from django.db import transaction
from django.utils.text import slugify

from apps.accounts.services import user_create
from apps.core.management.setup_commands import SetupCommand, service_errors, user_by_email
from apps.teams.models import Team
from apps.teams.selectors import members
from apps.teams.services import team_create

FLAGS = {"name": "--name", "slug": "--slug"}


class Command(SetupCommand):
    help = (
        "Create a team owned by --owner and print its slug. Exit 1 with a message on bad "
        "input (an existing slug included, unless --if-not-exists)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The team's name.")
        parser.add_argument(
            "--slug",
            default="",
            help="The slug in URLs and for --team in the other commands. Default: from the name.",
        )
        parser.add_argument("--owner", required=True, metavar="EMAIL", help="The team's owner.")
        parser.add_argument(
            "--create-owner",
            action="store_true",
            help="Create the owner's account if there is none (an existing one is used as is).",
        )
        password = parser.add_mutually_exclusive_group()
        password.add_argument(
            "--password-env",
            metavar="VAR",
            help="With --create-owner: the new owner's password is in this environment variable.",
        )
        password.add_argument(
            "--password-stdin",
            action="store_true",
            help="With --create-owner: read the new owner's password from stdin. Without either, "
            "the account can't sign in until `manage.py changepassword` gives it a password.",
        )
        parser.add_argument(
            "--if-not-exists",
            action="store_true",
            help="If a team with this slug exists and the owner is a member, report it instead "
            "of failing.",
        )
        super().add_arguments(parser)

    def handle(self, *args, **options):
        if (options["password_env"] or options["password_stdin"]) and not options["create_owner"]:
            raise CommandError("--password-env and --password-stdin go with --create-owner.")
        name = options["name"].strip()
        slug = options["slug"].strip() or slugify(name)[:60].strip("-_")
        if not slug:
            raise CommandError(f"No slug can be made from the name {name!r}; pass --slug.")
        with service_errors(FLAGS), transaction.atomic():
            owner, owner_created, note = self._owner(options)
            team = Team.objects.filter(slug=slug).first() if options["if_not_exists"] else None
            created = team is None
            if created:
                team = team_create(name=name, created_by=owner, slug=slug)
            elif not members(team).filter(user=owner).exists():
                raise CommandError(
                    f"A team with the slug {slug!r} exists and {owner.email} is not a member."
                )
        url = f"{settings.SITE_URL}/t/{team.slug}/"
        state = "Created" if created else "Kept the existing"
        self.report(
            options,
            value=team.slug,
            data={
                "id": team.pk,
                "slug": team.slug,
                "name": team.name,
                "owner": owner.email,
                "owner_created": owner_created,
                "created": created,
                "url": url,
            },
            message=f"{state} team {team.name} (slug {team.slug}, id {team.pk}), "
            f"owner {owner.email}{note}: {url}",
            created=created,
        )

    def _owner(self, options):
        """The owner, whether this run created the account, and a note for people."""
        email = options["owner"].strip()
        if not options["create_owner"]:
            return user_by_email(email, flag="--owner"), False, ""
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is not None:
            return user_by_email(email, flag="--owner"), False, " (existing account, unchanged)"
        password = self.secret(
            env=options["password_env"], stdin=options["password_stdin"], what="owner's password"
        )
        if password is not None:
            password_validation.validate_password(password, get_user_model()(email=email))
        user = user_create(email=email, password=password)
        if password is None:
            return user, True, " (new account without a password: set one with changepassword)"
        return user, True, " (new account)"
