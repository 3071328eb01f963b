import json
import logging

import pytest

from apps.core.logging import JsonFormatter, RequestIdFilter
from apps.core.request_context import request_id_var

pytestmark = pytest.mark.django_db


def test_request_id_is_generated_and_returned(client):
    response = client.get("/healthz")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32


def test_sane_incoming_request_id_is_kept_and_junk_replaced(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123").headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline").headers[
        "X-Request-ID"
    ]
    assert replaced != "bad id\nwith newline" and len(replaced) == 32


def test_json_log_line_carries_request_id_and_extras():
    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord(
            "portal.test", logging.INFO, __file__, 1, "hello %s", ("world",), None
        )
        record.team_id = 7
        RequestIdFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    payload = json.loads(line)
    assert payload["message"] == "hello world"
    assert payload["request_id"] == "req-42"
    assert payload["team_id"] == 7
    assert payload["level"] == "INFO"
    assert "\n" not in line


def test_logs_during_a_request_carry_its_id(client, caplog):
    caplog.set_level(logging.WARNING)
    client.get("/definitely-missing/", HTTP_X_REQUEST_ID="trace-me")
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(getattr(r, "request_id", None) == "trace-me" for r in records)
