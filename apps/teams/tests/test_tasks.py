"""Invitation e-mail through a real Celery worker process on Redis."""

import email
import time

import pytest

from apps.teams import services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_mail(mail_dir, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
        if files:
            return [email.message_from_string(f.read_text()) for f in files]
        time.sleep(0.1)
    raise AssertionError(f"no e-mail written to {mail_dir} within {timeout}s")


def test_invitation_email_is_sent_by_the_worker(celery_worker):
    team = TeamFactory(name="Mailers")
    owner = member_of(team, Role.OWNER, display_name="Olga")
    invitation = services.invitation_create(
        team=team, actor=owner, role=Role.MEMBER, email="friend@example.com"
    )
    (mail,) = wait_for_mail(celery_worker["mail_dir"])
    assert mail["To"] == "friend@example.com"
    assert mail["Subject"] == "You're invited to Mailers"
    body = mail.get_payload(decode=True).decode()
    assert "Olga invited you to join Mailers" in body
    assert services.invitation_url(invitation) in body
    assert "succeeded" in celery_worker["log"].read_text()


def test_withdrawn_invitation_is_not_mailed(celery_worker):
    from apps.teams.tasks import send_invitation_email

    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    invitation = services.invitation_create(team=team, actor=owner, role=Role.MEMBER)
    invitation.email = "late@example.com"
    invitation.save()
    services.invitation_revoke(invitation=invitation, actor=owner)
    send_invitation_email.delay(invitation.pk)
    deadline = time.monotonic() + 20
    while "succeeded" not in celery_worker["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "succeeded" in celery_worker["log"].read_text()
    assert not celery_worker["mail_dir"].exists() or not list(celery_worker["mail_dir"].iterdir())
