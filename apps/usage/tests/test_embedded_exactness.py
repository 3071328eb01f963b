"""The embedded default (SQLite, tasks in-process, no beat) stays exact to the
ledger: in a shell (``embedded_check``: partial folds, two folders and a writer,
warm prices) and through the running server, where reading usage folds first
since nothing else would."""

import json
import sqlite3
import urllib.request

import openai

LEDGER_THIS_WEEK = (
    "import json; from django.conf import settings; from django.db.models import Sum; "
    "from apps.teams.models import Team; from apps.usage.models import UsageRecord; "
    "from apps.usage.query import window_for; "
    "team = Team.objects.get(memberships__user__email=settings.DEMO_EMAIL); "
    "week = window_for(team.zone, '7d'); "
    "rows = UsageRecord.objects.filter(team=team, occurred_at__gte=week.start_at); "
    "print(json.dumps([rows.count(), rows.aggregate(t=Sum('total_tokens'))['t']]))"
)


def usage_this_week(portal, key: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{portal.url}/api/v1/usage?range=7d", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)["totals"]


def unfolded(portal) -> int:
    with sqlite3.connect(portal.env["SQLITE_PATH"]) as db:
        (position,) = db.execute("SELECT position FROM usage_foldwatermark").fetchone()
        query = "SELECT COUNT(*) FROM usage_usagerecord WHERE id >= ?"
        return db.execute(query, (position,)).fetchone()[0]


def test_the_embedded_default_is_exact_before_and_after_folding(embedded_portal):
    portal = embedded_portal
    checked = portal.manage(
        "shell", "-c", "from apps.usage.tests.embedded_check import main; main()", check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout.strip().splitlines()[-1])["ok"]

    client = openai.OpenAI(
        base_url=f"{portal.url}/v1", api_key=portal.api_key("chat"), timeout=30, max_retries=0
    )
    for i in range(4):
        client.chat.completions.create(
            model="local-echo", messages=[{"role": "user", "content": f"call {i}"}]
        )
    assert unfolded(portal) == 4, "no beat: the calls wait in the tail"

    totals = usage_this_week(portal, portal.api_key("read"))
    count, tokens = json.loads(portal.manage("shell", "-v", "0", "-c", LEDGER_THIS_WEEK).stdout)
    assert (totals["requests"], totals["total_tokens"]) == (count, tokens)
    assert unfolded(portal) == 0, "reading usage folded the tail"
    assert usage_this_week(portal, portal.api_key("read", name="again")) == totals
    assert "Traceback" not in portal.log
