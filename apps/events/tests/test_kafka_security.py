"""Kafka TLS and SASL: read from the environment, refused at start-up when incomplete,
handed to every client through ``apps.events.kafka.connection_options()``, and the
password kept out of logs.

The settings cases run in a fresh interpreter each (the settings are read once per
process). The client cases use the suite's broker: it speaks PLAINTEXT only and
refuses a SASL handshake, which shows that the options reach a real client. No
broker here does TLS or SASL, so a successful authenticated connection is not
exercised.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
SECURITY_ENV = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
)
PASSWORD = "kafka-pw-never-in-a-log-7f3a"
PRINT_OPTIONS = (
    "import json, django; django.setup(); "
    "from apps.events.kafka import connection_options; print(json.dumps(connection_options()))"
)


def load_settings(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in SECURITY_ENV}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", PRINT_OPTIONS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("kafka-tls")
    files = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        (folder / name).write_text("-----BEGIN CERTIFICATE-----\n")
        files[name] = str(folder / name)
    return files


SASL = {"KAFKA_SASL_USERNAME": "portal", "KAFKA_SASL_PASSWORD": PASSWORD}


def test_plaintext_is_the_default():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"security_protocol": "PLAINTEXT"}


def test_ssl_passes_the_certificate_files(pem_files):
    result = load_settings(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=pem_files["ca.pem"],
        KAFKA_SSL_CERTFILE=pem_files["client.pem"],
        KAFKA_SSL_KEYFILE=pem_files["client.key"],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "security_protocol": "SSL",
        "ssl_cafile": pem_files["ca.pem"],
        "ssl_certfile": pem_files["client.pem"],
        "ssl_keyfile": pem_files["client.key"],
    }


def test_ssl_without_files_trusts_the_system_certificates():
    result = load_settings(KAFKA_SECURITY_PROTOCOL="SSL")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"security_protocol": "SSL"}


def test_sasl_plaintext_passes_the_credentials_and_no_tls():
    result = load_settings(
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_MECHANISM="SCRAM-SHA-512", **SASL
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "portal",
        "sasl_plain_password": PASSWORD,
    }


def test_sasl_ssl_passes_both_and_defaults_to_plain(pem_files):
    result = load_settings(
        KAFKA_SECURITY_PROTOCOL="sasl_ssl",  # case does not matter
        KAFKA_SSL_CAFILE=pem_files["ca.pem"],
        **SASL,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "portal",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": pem_files["ca.pem"],
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI", **SASL},
            "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "portal"},
            "needs KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": PASSWORD},
            "needs KAFKA_SASL_USERNAME",
        ),
        (SASL, "KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SSL_CAFILE": "/etc/hosts", **SASL},
            "does not use TLS",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "KAFKA_SSL_CAFILE names '/nonexistent/ca.pem', but there is no file there",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/etc/hosts"},
            "KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE",
        ),
    ],
    ids=[
        "unknown-protocol",
        "unknown-mechanism",
        "sasl-without-credentials",
        "sasl-without-password",
        "sasl-without-username",
        "sasl-credentials-without-sasl",
        "tls-files-without-tls",
        "missing-ca-file",
        "key-without-cert",
    ],
)
def test_an_incomplete_configuration_stops_the_start(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def _sasl(settings, protocol: str = "SASL_PLAINTEXT") -> None:
    settings.KAFKA_SECURITY_PROTOCOL = protocol
    settings.KAFKA_SASL_MECHANISM = "SCRAM-SHA-256"
    settings.KAFKA_SASL_USERNAME = "portal"
    settings.KAFKA_SASL_PASSWORD = PASSWORD


def test_the_event_clients_carry_the_options(settings):
    from apps.events import kafka

    _sasl(settings, "SASL_SSL")
    settings.KAFKA_SSL_CAFILE = "/etc/ssl/certs/ca-certificates.crt"
    # Nothing listens there: with api_version given the clients don't connect to build.
    settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{free_port()}"]
    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "portal",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": "/etc/ssl/certs/ca-certificates.crt",
    }
    consumer = kafka.consumer("portal.events", group_id="security-test", api_version=(2, 8))
    producer = kafka.producer(api_version=(2, 8))
    try:
        for client in (consumer, producer):
            assert {k: client.config[k] for k in expected} == expected
        # The tuned options are still there: the security ones are only added.
        assert producer.config["enable_idempotence"] is True
        assert producer.config["acks"] == -1  # "all"
        assert consumer.config["enable_auto_commit"] is False
    finally:
        consumer.close()
        producer.close(timeout=1)


@pytest.mark.kafka
def test_plaintext_clients_still_work_against_the_broker(settings, kafka_bootstrap):
    from kafka import KafkaAdminClient

    from apps.core import health
    from apps.events import kafka

    assert kafka.connection_options() == {"security_protocol": "PLAINTEXT"}
    topic = f"kafka-security-{free_port()}"
    kafka.ensure_topics(topic, partitions=1)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap(), **kafka.connection_options())
    try:
        assert topic in admin.list_topics()
    finally:
        admin.close()
    producer = kafka.producer()
    try:
        producer.send(topic, key=b"1", value=b"hello").get(timeout=10)
    finally:
        producer.close()
    assert health.check_kafka() is None


@pytest.mark.kafka
def test_the_readiness_check_speaks_sasl_and_logs_no_password(settings, kafka_bootstrap, caplog):
    """The suite's broker has no SASL: it refuses the handshake the settings asked for."""
    from apps.core import health

    _sasl(settings)
    caplog.set_level(logging.DEBUG)
    assert health.run_checks()["kafka"].startswith("unreachable")
    assert "UnsupportedSaslMechanism" in caplog.text, "the client tried SASL"
    assert PASSWORD not in caplog.text


def test_kafka_python_never_logs_at_debug_here():
    """kafka-python's admin client logs its whole configuration, password included, at
    DEBUG: the logging settings keep its loggers at WARNING whatever LOG_LEVEL says."""
    assert logging.getLogger("kafka.admin.client").getEffectiveLevel() >= logging.INFO
