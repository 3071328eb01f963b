"""A run's cost where its tokens are shown: the final message the worker broadcasts, the
run socket's catch-up and the run page all give the ledger's sum for its attempts, and
say "unpriced" for a model without a price. Real Redis channel layer."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.inference.backends import CallResult
from apps.inference.executor import Outcome, Target, write_final
from apps.inference.models import ChatRun, RunAttempt, RunStatus
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.usage.models import UsageRecord
from apps.usage.tests.factories import HELLO, attempt, finish_run, price
from conftest import run_async
from portal.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture
def setup():
    team, admin = team_with_admin()
    return team, admin, local_backend(team, admin)


def ledger_sum(run) -> Decimal:
    return sum((r.cost for r in UsageRecord.objects.filter(run=run)), Decimal(0))


def plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def finish_watched(run_id: int, backend) -> None:
    """End a running run the way the worker does, with a failed then a good attempt."""
    with transaction.atomic():
        run = ChatRun.objects.select_for_update().get(pk=run_id)
        now = timezone.now()
        rows = [
            RunAttempt(
                run=run,
                number=number,
                backend=backend,
                model=run.model,
                succeeded=ok,
                error="" if ok else "boom",
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=prompt + completion,
                latency_ms=50,
                started_at=now - timedelta(milliseconds=50),
                finished_at=now,
            )
            for number, ok, prompt, completion in ((1, False, 400, 0), (2, True, 1000, 3000))
        ]
        outcome = Outcome(
            RunStatus.SUCCEEDED,
            CallResult(text="hi", finish_reason="stop"),
            Target(backend, run.model),
            attempts=rows,
        )
        write_final(run, outcome)


def test_the_broadcast_final_message_carries_the_ledger_sum(setup):
    team, admin, backend = setup
    price(model="local-echo", inp="2.5", out="10", backend=backend)
    run = ChatRun.objects.create(
        team=team,
        created_by=admin,
        backend=backend,
        model="local-echo",
        messages=HELLO,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
    )

    async def scenario():
        from channels.db import database_sync_to_async

        comm = WebsocketCommunicator(app, f"/ws/runs/{run.pk}/")
        comm.scope["user"] = admin
        await comm.connect()
        await comm.receive_from(timeout=5)  # the state
        await database_sync_to_async(finish_watched)(run.pk, backend)
        done = json.loads(await comm.receive_from(timeout=5))
        if done["type"] == "run.delta":  # the output first, then the end
            assert done["delta"] == "hi"
            done = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return done

    done = run_async(scenario())
    assert done["type"] == "run.done"
    # 1400 prompt tokens at 2.5/M and 3000 completion tokens at 10/M, both attempts billed
    assert ledger_sum(run) == Decimal("0.0335")
    assert done["cost"] == {"amount": plain(ledger_sum(run)), "priced": True}


def connect_finished(user, run) -> dict:
    async def scenario():
        comm = WebsocketCommunicator(app, f"/ws/runs/{run.pk}/")
        comm.scope["user"] = user
        await comm.connect()
        await comm.receive_from(timeout=5)
        final = json.loads(await comm.receive_from(timeout=5))
        while final["type"] == "run.delta":  # the output comes first, then the end
            final = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return final

    return run_async(scenario())


def test_a_finished_run_read_back_gives_the_same_cost_and_the_page_shows_it(setup, client):
    team, admin, backend = setup
    price(model="local-echo", inp="1", out="2", backend=backend)
    run = finish_run(
        team,
        admin,
        backend,
        model="local-echo",
        attempts=[attempt(10, 0, succeeded=False), attempt(30, 40)],
    )
    expected = plain(ledger_sum(run))
    assert expected == "0.00012"
    assert connect_finished(admin, run)["cost"] == {"amount": expected, "priced": True}

    client.force_login(admin)
    page = client.get(reverse("inference:run", args=[team.slug, run.pk])).content.decode()
    assert f'data-testid="run-cost">${expected}</dd>' in page


def test_an_unpriced_model_says_so_rather_than_a_silent_zero(setup, client):
    team, admin, backend = setup
    run = finish_run(team, admin, backend, model="local-echo", attempts=[attempt(30, 40)])
    assert connect_finished(admin, run)["cost"] == {"amount": "0", "priced": False}
    client.force_login(admin)
    page = client.get(reverse("inference:run", args=[team.slug, run.pk])).content.decode()
    assert ">unpriced</dd>" in page
    assert "$0<" not in page


def test_a_running_run_has_no_cost_yet_on_its_page(setup, client):
    team, admin, backend = setup
    run = ChatRun.objects.create(
        team=team, backend=backend, model="local-echo", messages=HELLO, status=RunStatus.RUNNING
    )
    client.force_login(admin)
    page = client.get(reverse("inference:run", args=[team.slug, run.pk])).content.decode()
    assert 'data-testid="run-cost">—</dd>' in page
