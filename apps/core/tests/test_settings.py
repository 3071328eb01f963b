"""Production mode must refuse unsafe settings; checked in a fresh interpreter each time."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

GOOD_KEY = "k" * 50
FERNET_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def load_settings(**env):
    environment = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ENCRYPTION_KEYS"}
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ok')"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY"),
        ({"SECRET_KEY": "dev-insecure-secret-key-change-me"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": GOOD_KEY, "DEBUG": "true", "ENCRYPTION_KEYS": FERNET_KEY}, "DEBUG"),
        ({"SECRET_KEY": GOOD_KEY}, "ENCRYPTION_KEYS"),
    ],
)
def test_production_refuses_unsafe_settings(env, message):
    result = load_settings(PORTAL_ENV="production", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_starts_with_safe_settings():
    result = load_settings(PORTAL_ENV="production", SECRET_KEY=GOOD_KEY, ENCRYPTION_KEYS=FERNET_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_bad_boolean_is_a_clear_error():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr
