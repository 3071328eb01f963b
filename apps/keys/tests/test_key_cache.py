"""The process's kept key lookups (apps/keys/key_cache.py): no query while warm, dropped
by a message from any process, copies handed out. Real Redis and PostgreSQL."""

import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.keys import key_cache
from apps.keys.auth import authenticate
from apps.keys.tests.factories import make_key

pytestmark = pytest.mark.django_db


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as queries:
        fn()
    return len(queries)


def test_a_warm_check_reads_nothing_and_hands_out_copies():
    key, raw = make_key()
    first = authenticate(raw)
    assert first.pk == key.pk
    first.name = "changed by one request"
    first.team.name = "changed too"
    assert _queries(lambda: authenticate(raw)) == 0
    again = authenticate(raw)
    assert again.name == key.name and again.team.name == key.team.name


def test_a_forget_published_by_another_process_drops_the_entry_here():
    key, raw = make_key()
    assert authenticate(raw) is not None  # kept, and this process listens
    other_process = redis.Redis.from_url(settings.REDIS_URL)
    assert other_process.publish(key_cache._channel(), key.public_id) >= 1
    deadline = time.monotonic() + 5
    while key_cache.get(key.public_id)[0]:
        assert time.monotonic() < deadline, "the entry was never dropped"
        time.sleep(0.01)
    assert _queries(lambda: authenticate(raw)) >= 1


def test_entries_expire_after_a_second():
    key, raw = make_key()
    assert authenticate(raw) is not None
    assert key_cache.get(key.public_id)[0]
    time.sleep(key_cache.TTL_SECONDS + 0.1)
    assert not key_cache.get(key.public_id)[0]


def test_unknown_ids_are_kept_too_but_never_grow_past_the_bound(monkeypatch):
    monkeypatch.setattr(key_cache, "MAX_ENTRIES", 3)
    for index in range(10):
        key_cache.put(f"unknown{index}", None, time.monotonic())
        assert len(key_cache._entries) <= 3
    assert key_cache.get("unknown9") == (True, None)
