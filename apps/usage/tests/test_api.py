"""The usage REST API: summary, records, CSV exports and prices."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.assistants.tests.factories import AssistantFactory
from apps.inference.tests.factories import compatible_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.tests.factories import member_of
from apps.usage import export, selectors
from apps.usage.models import Price, UsageRecord
from apps.usage.query import Filters, window_for
from apps.usage.tests.factories import attempt, finish_run, price

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def usage():
    """A team with a week of varied usage: two models (one unpriced), an assistant, a key."""
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    bot = AssistantFactory(team=team, backend=backend, model="sim-small")
    key, raw = make_key(team, admin, scopes=["read", "chat"])
    price("sim-small", inp="1.5", out="2")
    now = timezone.now()
    runs = [
        finish_run(team, admin, backend, attempts=[attempt(100, 50, latency_ms=80, at=now)]),
        finish_run(
            team,
            admin,
            backend,
            assistant=bot,
            attempts=[
                attempt(0, 0, succeeded=False, http_status=503, latency_ms=400, at=now),
                attempt(200, 100, latency_ms=900, at=now),
            ],
        ),
        finish_run(
            team,
            admin,
            backend,
            api_key=key,
            attempts=[attempt(10, 10, estimated=True, latency_ms=2500, at=now - timedelta(days=2))],
        ),
        finish_run(
            team,
            admin,
            backend,
            model="mystery-model",
            attempts=[attempt(5, 5, at=now - timedelta(days=3))],
        ),
    ]
    return {"team": team, "admin": admin, "backend": backend, "bot": bot, "key": key,
            "raw": raw, "runs": runs}  # fmt: skip


def get(client, team, path="", **params):
    return client.get(f"/api/v1/teams/{team.slug}/usage{path}", params)


def test_summary_totals_match_the_ledger(usage):
    team = usage["team"]
    body = get(signed_in(usage["admin"]), team).json()
    records = UsageRecord.objects.filter(team=team)
    totals = body["totals"]
    assert totals["requests"] == records.count() == 5
    assert totals["errors"] == 1
    assert totals["estimated_requests"] == 1
    assert totals["unpriced_requests"] == 1
    assert totals["total_tokens"] == records.aggregate(t=Sum("total_tokens"))["t"] == 480
    assert Decimal(totals["cost"]) == records.aggregate(c=Sum("cost"))["c"]
    assert Decimal(totals["cost"]) == (Decimal("1.5") * 310 + 2 * 160) / 10**6
    assert totals["latency_p50_ms"] and totals["latency_p95_ms"] >= totals["latency_p50_ms"]
    assert body["unpriced_models"] == ["mystery-model"]
    assert body["granularity"] == "day" and len(body["series"]) == 7
    assert sum(p["requests"] for p in body["series"]) == 5
    assert sum(Decimal(p["cost"]) for p in body["series"]) == Decimal(totals["cost"])
    assert body["time_zone"] == "UTC"


def test_top_lists_name_assistants_models_and_keys(usage):
    body = get(signed_in(usage["admin"]), usage["team"]).json()
    assert [m["id"] for m in body["top_models"]] == ["sim-small", "mystery-model"]
    assert body["top_assistants"][0]["id"] == usage["bot"].slug
    assert {a["name"] for a in body["top_assistants"]} == {usage["bot"].name, "(no assistant)"}
    assert [(k["id"], k["requests"]) for k in body["top_keys"]] == [(usage["key"].public_id, 1)]


def test_filters_narrow_every_number(usage):
    client = signed_in(usage["admin"])
    team = usage["team"]
    by_bot = get(client, team, assistant=usage["bot"].slug).json()["totals"]
    assert (by_bot["requests"], by_bot["errors"], by_bot["total_tokens"]) == (2, 1, 300)
    by_key = get(client, team, key=usage["key"].public_id).json()["totals"]
    assert by_key["requests"] == 1 and by_key["estimated_requests"] == 1
    by_model = get(client, team, model="mystery-model").json()
    assert by_model["totals"]["cost"] == "0" and by_model["totals"]["unpriced_requests"] == 1
    missing = get(client, team, assistant="nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "assistant"


def test_filtered_records_come_from_the_days_the_rollups_name(usage):
    """The key's only record is two days old, the model's three: the list and the
    export look on those days only and still find them; a filter nothing matches
    answers without walking the ledger (only its unfolded tail, through the fold index)."""
    client = signed_in(usage["admin"])
    team = usage["team"]
    window = window_for(team.zone, "7d")
    total, days = selectors.records_span(team, window, Filters(api_key_id=usage["key"].pk))
    two_days_ago = (timezone.now() - timedelta(days=2)).astimezone(team.zone).date()
    assert total == 1 and days.start == days.end == two_days_ago
    by_key = get(client, team, "/records", key=usage["key"].public_id).json()
    assert by_key["count"] == 1 and by_key["items"][0]["total_tokens"] == 20
    exported = read_csv(get(client, team, "/records/export", model="mystery-model"))
    assert [int(r["run_id"]) for r in exported] == [usage["runs"][3].pk]

    other = AssistantFactory(team=team, backend=usage["backend"], model="sim-small")
    with CaptureQueriesContext(connection) as queries:
        empty = get(client, team, "/records", assistant=other.slug).json()
    assert empty["count"] == 0 and empty["items"] == []
    ledger = [q["sql"] for q in queries.captured_queries if "usage_usagerecord" in q["sql"]]
    assert ledger and all('"usage_usagerecord"."txid" >=' in sql for sql in ledger)
    assert read_csv(get(client, team, "/records/export", assistant=other.slug)) == []


def test_today_is_hourly_and_a_month_is_daily(usage):
    client = signed_in(usage["admin"])
    today = get(client, usage["team"], range="today").json()
    assert today["granularity"] == "hour" and len(today["series"]) == 24
    assert sum(p["requests"] for p in today["series"]) == today["totals"]["requests"] == 3
    month = get(client, usage["team"], range="30d").json()
    assert month["granularity"] == "day" and len(month["series"]) == 30


def test_bad_ranges_are_clear_4xx_errors(usage):
    client = signed_in(usage["admin"])
    team = usage["team"]
    too_long = get(client, team, range="custom", start="2025-01-01", end="2026-01-02")
    assert too_long.status_code == 400
    assert too_long.json()["error"] == {
        "type": "invalid_request_error",
        "message": "A range may span at most 366 days; ask for less at a time.",
        "param": "end",
        "code": "range_too_long",
    }
    reversed_ = get(client, team, range="custom", start="2026-02-02", end="2026-02-01")
    assert reversed_.status_code == 400 and reversed_.json()["error"]["code"] == "invalid_range"
    half = get(client, team, range="custom", start="2026-02-02")
    assert half.status_code == 400 and half.json()["error"]["param"] == "end"
    assert get(client, team, range="forever").status_code == 422
    bad_date = get(client, team, range="custom", start="2026-02-30", end="2026-03-01")
    assert bad_date.status_code == 422 and bad_date.json()["error"]["param"] == "start"
    export_too_long = get(
        client, team, "/records/export", range="custom", start="2024-01-01", end="2026-01-01"
    )
    assert export_too_long.status_code == 400


def test_records_are_paged_with_cost_and_flags(usage):
    client = signed_in(usage["admin"])
    page = get(client, usage["team"], "/records", limit=2).json()
    assert page["count"] == 5 and len(page["items"]) == 2 and page["next_offset"] == 2
    every = get(client, usage["team"], "/records", limit=50).json()["items"]
    unpriced = [r for r in every if r["unpriced"]]
    assert [(r["model"], r["cost"]) for r in unpriced] == [("mystery-model", "0")]
    estimated = [r for r in every if r["usage_estimated"]]
    assert estimated[0]["api_key"] == usage["key"].public_id and estimated[0]["user"] is None
    assert {r["status"] for r in every} == {"succeeded", "failed"}


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_records_export_streams_every_row_in_batches(usage, monkeypatch):
    monkeypatch.setattr(export, "BATCH_SIZE", 2)
    rows = read_csv(get(signed_in(usage["admin"]), usage["team"], "/records/export"))
    records = UsageRecord.objects.filter(team=usage["team"]).order_by("-occurred_at", "-pk")
    assert [int(r["run_id"]) for r in rows] == [r.run_id for r in records]
    assert sum(Decimal(r["cost"]) for r in rows) == sum(r.cost for r in records)
    assert [r["unpriced"] for r in rows].count("true") == 1


def test_aggregates_export_adds_up_to_the_summary(usage, monkeypatch):
    monkeypatch.setattr(export, "BATCH_SIZE", 1)
    client = signed_in(usage["admin"])
    summary = get(client, usage["team"]).json()["totals"]
    for granularity in ("day", "hour"):
        rows = read_csv(get(client, usage["team"], "/aggregates/export", granularity=granularity))
        assert sum(int(r["requests"]) for r in rows) == summary["requests"]
        assert sum(Decimal(r["cost"]) for r in rows) == Decimal(summary["cost"])
        assert {r["assistant"] for r in rows} == {"", usage["bot"].slug}


def test_a_csv_cell_is_never_a_formula(usage):
    team, admin, backend = usage["team"], usage["admin"], usage["backend"]
    finish_run(team, admin, backend, model="=HYPERLINK(1)")
    rows = read_csv(get(signed_in(admin), team, "/records/export"))
    assert "'=HYPERLINK(1)" in {r["model"] for r in rows}


def test_another_team_sees_nothing(usage):
    stranger_team, stranger = team_with_admin()
    _key, raw = make_key(stranger_team, stranger, scopes=["read"])
    for client in (signed_in(stranger), Client(HTTP_AUTHORIZATION=f"Bearer {raw}")):
        for path in ("", "/records", "/records/export", "/aggregates/export"):
            response = get(client, usage["team"], path)
            assert response.status_code == 404, path
            assert response.json()["error"]["type"] == "not_found_error"


def test_a_read_key_of_the_team_sees_the_summary(usage):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {usage['raw']}")
    assert get(client, usage["team"]).json()["totals"]["requests"] == 5


def test_api_usage_without_a_team_in_the_path(usage):
    """``/api/v1/usage``: a key's own team; a signed-in user names it with ?team=."""
    team = usage["team"]
    by_key = Client(HTTP_AUTHORIZATION=f"Bearer {usage['raw']}")
    summary = by_key.get("/api/v1/usage", {"range": "7d"})
    assert summary.status_code == 200
    assert summary.json() == get(by_key, team, range="7d").json()
    records = by_key.get("/api/v1/usage/records", {"limit": 2}).json()
    assert records["count"] == 5 and len(records["items"]) == 2
    assert by_key.get("/api/v1/usage", {"team": team.slug}).status_code == 200

    other, _other_admin = team_with_admin()
    assert by_key.get("/api/v1/usage", {"team": other.slug}).status_code == 404

    admin = signed_in(usage["admin"])
    unnamed = admin.get("/api/v1/usage")
    assert unnamed.status_code == 400 and unnamed.json()["error"]["param"] == "team"
    assert admin.get("/api/v1/usage", {"team": team.slug}).json()["totals"]["requests"] == 5
    assert admin.get("/api/v1/usage", {"team": other.slug}).status_code == 404
    assert Client().get("/api/v1/usage", {"team": team.slug}).status_code == 401


# --- prices ----------------------------------------------------------------------


def post_price(client, team, **body):
    return client.post(f"/api/v1/teams/{team.slug}/prices", body, content_type="application/json")


def test_an_admin_sets_an_override_that_bills_from_then_on(usage):
    team, admin, backend = usage["team"], usage["admin"], usage["backend"]
    before = UsageRecord.objects.filter(team=team).aggregate(c=Sum("cost"))["c"]
    created = post_price(
        signed_in(admin),
        team,
        backend=backend.pk,
        model="mystery-model",
        input_per_million="0.123456",
        output_per_million=4,
    )
    assert created.status_code == 201, created.content
    assert created.json()["scope"] == "team"
    assert Decimal(created.json()["input_per_million"]) == Decimal("0.123456")
    run = finish_run(team, admin, backend, model="mystery-model", attempts=[attempt(10**6, 0)])
    assert run.usage_records.get().cost == Decimal("0.123456")
    assert not run.usage_records.get().unpriced
    assert (
        UsageRecord.objects.filter(team=team).exclude(run=run).aggregate(c=Sum("cost"))["c"]
        == before
    ), "past cost unchanged"
    listed = signed_in(admin).get(f"/api/v1/teams/{team.slug}/prices", {"scope": "team"}).json()
    assert [p["model"] for p in listed["items"]] == ["mystery-model"]


def test_a_price_with_seven_decimals_is_refused(usage):
    response = post_price(
        signed_in(usage["admin"]),
        usage["team"],
        backend=usage["backend"].pk,
        model="m",
        input_per_million="0.1234567",
        output_per_million="1",
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "input_per_million" and "decimal places" in error["message"]
    assert not Price.objects.filter(team=usage["team"]).exists()


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"output_per_million": "-1"}, 422, "output_per_million"),
        ({"effective_from": "2020-01-01T00:00:00Z"}, 400, "effective_from"),
        ({"backend": 999999}, 404, "backend"),
        ({"global_backend": True}, 400, "backend"),
    ],
)
def test_bad_prices_are_refused(usage, change, status, param):
    from apps.inference.models import Backend, BackendKind

    body = {"backend": usage["backend"].pk, "model": "m", "input_per_million": "1",
            "output_per_million": "1"}  # fmt: skip
    if change.pop("global_backend", False):
        change["backend"] = Backend.objects.create(name="Shared", kind=BackendKind.LOCAL).pk
    response = post_price(signed_in(usage["admin"]), usage["team"], **{**body, **change})
    assert response.status_code == status, response.content
    assert response.json()["error"]["param"] == param


def test_members_may_read_prices_but_not_set_them(usage):
    member = member_of(usage["team"], Role.MEMBER)
    client = signed_in(member)
    assert client.get(f"/api/v1/teams/{usage['team'].slug}/prices").status_code == 200
    refused = post_price(
        client,
        usage["team"],
        backend=usage["backend"].pk,
        model="m",
        input_per_million="1",
        output_per_million="1",
    )
    assert refused.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_big_export_streams_over_asgi(asgi_live_server, monkeypatch):
    """Through the real ASGI server: the body arrives in pieces (no Content-Length),
    batch after batch, and every row is there once."""
    import urllib.request

    monkeypatch.setattr(export, "BATCH_SIZE", 50)
    batches = []
    real_sync_to_async = export.sync_to_async

    def counting(fetch):
        batches.append(fetch)
        return real_sync_to_async(fetch)

    monkeypatch.setattr(export, "sync_to_async", counting)
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    _key, raw = make_key(team, admin, scopes=["read"])
    now = timezone.now()
    finish_run(
        team,
        admin,
        backend,
        attempts=[attempt(1, 1, at=now - timedelta(seconds=i)) for i in range(260)],
    )
    url = f"{asgi_live_server.url}/api/v1/teams/{team.slug}/usage/records/export"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {raw}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local server
        assert response.status == 200
        assert response.headers["Content-Length"] is None
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["Content-Type"].startswith("text/csv")
        body = response.read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 260 == len({r["time"] for r in rows})
    assert len(batches) == 6, "read a batch at a time by the async body, not all at once"
