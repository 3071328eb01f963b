"""Events through outbox -> relay -> Kafka -> bridge -> WebSocket: throughput and latency.

Starts uvicorn, ``manage.py relay_events`` and ``manage.py bridge_events`` as
processes (as in production) against PostgreSQL, Redis and a Kafka-protocol
broker, opens one browser-like WebSocket on a team's events page, then:

1. sustained: writer threads commit ``--events`` events as fast as they can
   (``--per-tx`` per transaction); events/s from the first commit to the last
   frame on the WebSocket;
2. latency: one event per transaction at ``--rate`` events/s for
   ``--seconds``; p50/p99 from each commit to its WebSocket frame.

    DATABASE_URL=... REDIS_URL=... KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 \\
        .venv/bin/python bench/events.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack


class Frames:
    def __init__(self, url: str, headers: dict):
        self.url, self.headers = url, headers
        self.arrived: dict[str, float] = {}
        self.opened = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        if not self.opened.wait(15):
            raise RuntimeError("the events WebSocket did not open")

    async def _run(self):
        import websockets

        async with websockets.connect(self.url, additional_headers=self.headers) as ws:
            self.opened.set()
            while not self.stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(), 0.2)
                except TimeoutError:
                    continue
                self.arrived[json.loads(message)["id"]] = time.perf_counter()

    def wait(self, ids, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i in self.arrived for i in ids):
                return True
            time.sleep(0.01)
        return False


def emit_tx(team, n: int, commits: dict) -> None:
    from django.db import transaction

    from apps.events.outbox import emit

    with transaction.atomic():
        rows = [
            emit(
                team,
                "prompt.version_created",
                subject="prompt/bench",
                data={"prompt_id": 1, "prompt": "bench", "version": i, "commit_message": "b"},
            )
            for i in range(n)
        ]
    now = time.perf_counter()
    for row in rows:
        commits[str(row.event_id)] = now


def body(args):
    def run(st: stack.Stack) -> bool:
        from django.conf import settings
        from django.db import connection
        from django.test import Client

        from apps.accounts.models import User
        from apps.teams.models import Membership, Role, Team

        for name in ("relay", "bridge"):
            st.procs.start(name, [sys.executable, "manage.py", f"{name}_events"])
        web = stack.start_web(st.procs)
        user, _ = User.objects.get_or_create(email="events-bench@example.com")
        team = Team.objects.create(name="Events bench", slug=f"events-{uuid.uuid4().hex[:8]}")
        Membership.objects.create(team=team, user=user, role=Role.OWNER)
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        frames = Frames(
            web.replace("http://", "ws://") + f"/ws/teams/{team.slug}/events/",
            {"Origin": web, "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
        )
        warm: dict[str, float] = {}
        emit_tx(team, 1, warm)
        if not frames.wait(warm, 60):
            print("no event reached the WebSocket in 60 s (is the bridge running?)")
            return False
        connection.close()

        commits: dict[str, float] = {}
        per_thread = args.events // args.writers

        def writer():
            for _ in range(per_thread // args.per_tx):
                emit_tx(team, args.per_tx, commits)
            connection.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=writer) for _ in range(args.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        committed = time.perf_counter()
        complete = frames.wait(list(commits), args.timeout)
        last = max(frames.arrived.get(i, 0) for i in commits)
        got = sum(1 for i in commits if i in frames.arrived)
        sustained = got / (last - started) if complete else float("nan")
        commit_rate = len(commits) / (committed - started)

        # Pipeline capacity: a backlog committed at once (as after a Kafka outage), drained
        # through relay -> Kafka -> bridge -> WebSocket.
        from django.db import transaction

        from apps.events.models import OutboxEvent

        with transaction.atomic():
            backlog = OutboxEvent.objects.bulk_create(
                OutboxEvent(
                    team=team,
                    type="prompt.version_created",
                    subject="prompt/bench",
                    data={"prompt_id": 1, "prompt": "bench", "version": i, "commit_message": "b"},
                )
                for i in range(args.events)
            )
        drain_start = time.perf_counter()
        backlog_ids = [str(row.event_id) for row in backlog]
        drained = frames.wait(backlog_ids, args.timeout)
        drain_end = max(frames.arrived.get(i, 0) for i in backlog_ids)
        drain_rate = len(backlog_ids) / (drain_end - drain_start) if drained else float("nan")

        paced: dict[str, float] = {}
        interval = 1 / args.rate
        next_at = time.perf_counter()
        for _ in range(int(args.rate * args.seconds)):
            emit_tx(team, 1, paced)
            next_at += interval
            time.sleep(max(0, next_at - time.perf_counter()))
        frames.wait(list(paced), args.timeout)
        latencies = [
            (frames.arrived[i] - t) * 1000 for i, t in paced.items() if i in frames.arrived
        ]
        # Where the time goes: commit -> the relay marked the row published (NOTIFY,
        # read, produce with acks=all), the rest is Kafka -> bridge -> channel layer ->
        # WebSocket. published_at is wall-clock, so compare with the wall-clock commit.
        offset = time.time() - time.perf_counter()
        published = dict(
            OutboxEvent.objects.filter(event_id__in=list(paced)).values_list(
                "event_id", "published_at"
            )
        )
        to_published = [
            (published[uuid.UUID(i)].timestamp() - (t + offset)) * 1000
            for i, t in paced.items()
            if published.get(uuid.UUID(i))
        ]
        frames.stop.set()
        frames.thread.join(5)
        stack.print_table(
            ["measure", "value"],
            [
                ["events (sustained run)", f"{got}/{len(commits)}"],
                ["commit rate, events/s", stack.fmt(commit_rate, 0)],
                ["end to end, events/s", stack.fmt(sustained, 0)],
                ["backlog drained, events/s", stack.fmt(drain_rate, 0)],
                [f"latency at {args.rate:g}/s, events", f"{len(latencies)}/{len(paced)}"],
                ["commit -> frame p50, ms", stack.pct(latencies, 50)],
                ["commit -> frame p99, ms", stack.pct(latencies, 99)],
                ["  of which commit -> published p50, ms", stack.pct(to_published, 50)],
            ],
            align_left=1,
        )
        return complete and drained and len(latencies) == len(paced)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--per-tx", type=int, default=10, help="events per transaction")
    parser.add_argument("--rate", type=float, default=100, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/portal_bench",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    )
    parser.add_argument("--settings", default="portal.settings")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--relay-interval-ms", type=int, default=None)
    args = parser.parse_args()
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        parser.error("set KAFKA_BOOTSTRAP_SERVERS (a Kafka-protocol broker)")
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    os.environ["KAFKA_EVENTS_TOPIC"] = topic
    os.environ["KAFKA_BRIDGE_GROUP"] = f"bench-{topic}"
    os.environ.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")
    os.environ.setdefault("KAFKA_HEARTBEAT_INTERVAL_MS", "1000")
    return stack.run(args, body(args))


if __name__ == "__main__":
    sys.exit(main())
