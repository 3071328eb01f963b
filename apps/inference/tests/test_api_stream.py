"""A run followed as server-sent events over real HTTP, with a real worker."""

import json

import httpx2
import pytest

from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.keys.tests.factories import make_key

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def events_of(body: str) -> list[tuple[str, dict]]:
    parsed = []
    for block in body.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue
        event = lines[0].removeprefix("event: ")
        parsed.append((event, json.loads(lines[1].removeprefix("data: "))))
    return parsed


def test_stream_a_run_while_it_runs_and_after_it_ended(asgi_live_server, celery_worker, simulator):
    simulator.config.tokens_per_second = 80
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    _key, raw = make_key(team, admin, scopes=["chat", "read"])
    _key, stranger = make_key(*team_with_admin(), scopes=["chat", "read"])
    headers = {"Authorization": f"Bearer {raw}"}
    base = f"{asgi_live_server.url}/api/v1/teams/{team.slug}/runs"

    created = httpx2.post(
        base,
        headers=headers,
        json={
            "backend": backend.pk,
            "model": "sim-small",
            "messages": [{"role": "user", "content": "Tell me a story"}],
            "parameters": {"max_tokens": 30},
        },
    )
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]

    with httpx2.stream("GET", f"{base}/{run_id}/stream", headers=headers, timeout=30) as live:
        assert live.status_code == 200
        assert live.headers["content-type"] == "text/event-stream"
        events = events_of("".join(live.iter_text()))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and kinds.count("delta") >= 2
    done = events[-1][1]
    assert done["status"] == "succeeded"
    assert "".join(data["delta"] for kind, data in events if kind == "delta") == done["output"]

    with httpx2.stream("GET", f"{base}/{run_id}/stream", headers=headers, timeout=30) as replay:
        again = events_of("".join(replay.iter_text()))
    assert [kind for kind, _ in again] == ["delta", "done"]
    assert again[0][1]["delta"] == done["output"]

    refused = httpx2.get(f"{base}/{run_id}/stream", headers={"Authorization": f"Bearer {stranger}"})
    assert refused.status_code == 404
    assert refused.json()["error"]["type"] == "not_found_error"
