"""The outbox's insert trigger wakes the relay on commit, and only on commit."""

import pytest
from django.db import transaction

from apps.events.models import OutboxEvent
from apps.events.outbox import emit
from apps.events.relay import Waker
from apps.teams.tests.factories import TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)
DATA = {"prompt_id": 1, "prompt": "p", "version": 1, "commit_message": "m"}


def notifications(waker: Waker, seconds: float) -> int:
    return sum(1 for _ in waker.conn.notifies(timeout=seconds))


def test_a_commit_wakes_the_relay_once_a_rollback_never():
    team = TeamFactory()
    waker = Waker()
    try:
        notifications(waker, 0.2)  # whatever the factory's own events sent
        with transaction.atomic():
            for _ in range(3):
                emit(team, "prompt.version_created", subject="prompt/1", data=DATA)
        assert notifications(waker, 1.0) == 1  # folded into one per transaction

        with pytest.raises(RuntimeError), transaction.atomic():
            emit(team, "prompt.version_created", subject="prompt/1", data=DATA)
            raise RuntimeError("rolled back")
        assert notifications(waker, 0.5) == 0

        OutboxEvent.objects.bulk_create(
            [OutboxEvent(team=team, type="prompt.version_created", subject="s", data=DATA)] * 1
        )
        assert notifications(waker, 1.0) == 1  # rows written without emit wake it too
    finally:
        waker.close()


def test_an_event_that_breaks_its_schema_fails_the_callers_transaction(settings):
    settings.EVENTS_CHECK_ON_EMIT = True
    team = TeamFactory()
    before = OutboxEvent.objects.count()
    with pytest.raises(ValueError), transaction.atomic():
        emit(team, "prompt.version_created", subject="prompt/1", data={"prompt_id": "x"})
    assert OutboxEvent.objects.count() == before
