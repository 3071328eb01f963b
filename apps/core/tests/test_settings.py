"""Production mode must refuse unsafe settings; checked in a fresh interpreter each time."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

GOOD_KEY = "k" * 50
FERNET_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def load_settings(print_expr: str = "'ok'", **env):
    unset = {"SECRET_KEY", "DEBUG", "ENCRYPTION_KEYS", "SECURE_COOKIES"}
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); print({print_expr})"],
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


COOKIES = (
    "(lambda s: f'{s.SESSION_COOKIE_SECURE} {s.CSRF_COOKIE_SECURE}')"
    "(__import__('django.conf').conf.settings)"
)


@pytest.mark.parametrize(
    ("env", "secure"),
    [
        ({"PORTAL_ENV": "development"}, "False False"),
        ({"PORTAL_ENV": "production"}, "True True"),
        # production mode over plain http on a private host (Compose on localhost)
        ({"PORTAL_ENV": "production", "SECURE_COOKIES": "false"}, "False False"),
    ],
)
def test_cookies_are_secure_in_production_unless_told_otherwise(env, secure):
    result = load_settings(COOKIES, SECRET_KEY=GOOD_KEY, ENCRYPTION_KEYS=FERNET_KEY, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == secure
