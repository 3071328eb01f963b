"""Background work for teams, run by the ``default`` queue's workers."""

from celery import shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string

from apps.teams.models import Invitation


@shared_task(
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_invitation_email(invitation_id: int) -> None:
    """Mail the invitation link; a link that is no longer usable is not sent."""
    from apps.teams.services import invitation_url

    invitation = (
        Invitation.objects.select_related("team", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or not invitation.email or invitation.status != "pending":
        return
    context = {"invitation": invitation, "url": invitation_url(invitation)}
    send_mail(
        subject=f"You're invited to {invitation.team.name}",
        message=render_to_string("teams/emails/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
