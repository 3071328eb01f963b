import pytest


@pytest.fixture(autouse=True)
def _no_relay_from_the_test_process(monkeypatch):
    """``finish_run`` ends runs in the test process, where committing would relay the
    final message to browsers. That relay isn't under test here, and sending from
    this process would bind the shared Redis channel layer to an event loop that later
    tests can't use. Patched once per test, never from the threads tests start."""
    monkeypatch.setattr("apps.inference.relay.group_send", lambda group, message: None)
