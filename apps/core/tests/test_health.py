import pytest

pytestmark = pytest.mark.django_db


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_every_real_service(client, kafka_bootstrap):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "kafka": "ok"}


def test_readyz_names_an_unreachable_kafka(client, settings, kafka_bootstrap):
    from conftest import free_port

    settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{free_port()}"]
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["kafka"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["kafka"].startswith("unreachable")


def test_readyz_names_an_unreachable_redis(client, settings):
    from conftest import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "redis" in response.json()["failed"]


def test_readyz_skips_services_that_are_not_configured(client, settings):
    settings.REDIS_URL = ""
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    body = client.get("/readyz").json()
    assert body["checks"] == {"database": "ok", "redis": "skipped", "kafka": "skipped"}


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
