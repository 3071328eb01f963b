"""The Helm chart renders, for each ``ci/`` values file, into valid Kubernetes manifests.

No ``helm`` binary and no cluster here, but rendering is still real: the PyPI wheel
``helm-python-sdk`` carries Helm itself (its Go SDK as a native library), so
``Chart.load(...).render(...)`` runs the same template engine, values coalescing
and ``values.schema.json`` validation as ``helm template`` / ``helm install``, and
``helm_python.lint`` is ``helm lint``. The manifests are then checked against the
Kubernetes OpenAPI schemas that the PyPI package ``kubernetes-validate`` ships
(strict: unknown fields fail) for the oldest Kubernetes the chart supports, a
current one and the newest the package knows. What this cannot show: that a
cluster admits the pods (admission webhooks, quotas, pulling the image) and that
the probes pass against real services; ``helm test`` does the latter on a cluster.

The values files under ``bad-values/`` are overlays on ``ci/minimal-values.yaml``,
each wrong in one way, with the error it must produce on its first line.
"""

import base64
import copy
import json
import os
from pathlib import Path

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "portal"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
BAD_VALUES = sorted((Path(__file__).parent / "bad-values").glob("*.yaml"))
# The chart's kubeVersion floor, one in wide use, and the newest schemas shipped.
KUBE_VERSIONS = ["1.27", "1.32", kubernetes_validate.latest_version()]
PROCESSES = ["web", "worker", "beat", "relay", "bridge"]


def load_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def deep_merge(base: dict, overlay: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def render(chart, values: dict) -> dict[str, str]:
    return chart.render(values, name="demo", namespace="portal", is_install=True)


def documents(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def deployments(docs: list[dict]) -> dict[str, dict]:
    """Deployments by their component label."""
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc
        for doc in docs
        if doc["kind"] == "Deployment"
    }


def minimal() -> dict:
    return load_values(CHART / "ci" / "minimal-values.yaml")


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_ci_values_render_into_valid_kubernetes_manifests(chart, values_file):
    docs = documents(render(chart, load_values(values_file)))
    assert docs
    for doc in docs:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} on {version}: {error}")


def test_the_kubernetes_validation_is_strict(chart):
    """A control: the validator really rejects a misplaced field in our own output."""
    deployment = deployments(documents(render(chart, minimal())))["web"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.32", strict=True)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_ci_values_lint_clean(values_file):
    report = helm_python.lint(CHART, load_values(values_file), strict=True, kube_version="v1.32.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"], report
    assert not problems, problems


def test_the_schema_is_valid_draft_7_and_accepts_the_ci_values():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = load_values(CHART / "values.yaml")
    for values_file in CI_VALUES:
        jsonschema.validate(deep_merge(defaults, load_values(values_file)), schema)


@pytest.mark.parametrize("bad_file", BAD_VALUES, ids=lambda p: p.stem)
def test_the_schema_rejects_bad_values(chart, bad_file):
    first_line = bad_file.read_text().splitlines()[0]
    assert first_line.startswith("# expect: "), f"{bad_file.name} must say what it expects"
    expected = first_line.removeprefix("# expect: ")
    values = deep_merge(minimal(), load_values(bad_file))
    with pytest.raises(helm_python.HelmValuesError) as rejected:
        render(chart, values)
    assert expected in str(rejected.value)
    # The same schema with a second, independent validator.
    schema = json.loads((CHART / "values.schema.json").read_text())
    merged = deep_merge(load_values(CHART / "values.yaml"), values)
    assert list(jsonschema.Draft7Validator(schema).iter_errors(merged))


def test_a_deployment_per_process_with_component_labels_probes_and_resources(chart):
    docs = documents(render(chart, minimal()))
    found = deployments(docs)
    assert sorted(found) == sorted(PROCESSES)
    for component, deployment in found.items():
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert labels["app.kubernetes.io/component"] == component
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == component
        (container,) = pod["spec"]["containers"]
        assert container["args"][0] == component
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert "readinessProbe" in container, component
        assert pod["metadata"]["annotations"]["checksum/config"]

    web = found["web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    worker = found["worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["livenessProbe"]["exec"]["command"][-2:] == ["probe", "worker"]
    for component in ("worker", "beat", "relay", "bridge"):
        container = found[component]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["exec"]["command"][-2:] == ["probe", "ready"]

    beat = found["beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"


def test_pods_run_as_non_root_on_a_read_only_root_filesystem(chart):
    docs = documents(render(chart, load_values(CHART / "ci" / "full-values.yaml")))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in {"Deployment", "Job"}]
    pods += [d["spec"] for d in docs if d["kind"] == "Pod"]
    assert len(pods) == len(PROCESSES) + 2  # + the migration Job and the helm test pod
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
        if pod.get("volumes"):
            assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]


def _checksums(chart, values: dict) -> set[str]:
    docs = documents(render(chart, values))
    return {
        d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
    }


def test_pods_roll_when_the_configuration_changes_and_only_then(chart):
    base = _checksums(chart, minimal())
    assert len(base) == 1, "every process carries the same configuration checksum"
    config_change = deep_merge(minimal(), {"config": {"logLevel": "DEBUG"}})
    secret_change = deep_merge(minimal(), {"database": {"url": "postgres://other@db/portal"}})
    extra_env = deep_merge(minimal(), {"config": {"extraEnv": {"INFERENCE_STALE_SECONDS": 90}}})
    scale_only = deep_merge(minimal(), {"worker": {"replicas": 7}})
    assert _checksums(chart, config_change).isdisjoint(base)
    assert _checksums(chart, secret_change).isdisjoint(base)
    assert _checksums(chart, extra_env).isdisjoint(base)
    assert _checksums(chart, scale_only) == base


def test_the_migration_job_runs_before_install_and_upgrade(chart):
    docs = documents(render(chart, minimal()))
    (job,) = by_kind(docs, "Job").values()
    hooks = job["metadata"]["annotations"]
    assert set(hooks["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["migrate"]
    assert "serviceAccountName" not in pod, "the release's ServiceAccount does not exist yet"
    # It runs before the release's ConfigMap and Secret exist: configuration inline,
    # secrets from a copy made by an earlier hook.
    env = {e["name"]: e["value"] for e in container["env"]}
    configmap = by_kind(docs, "ConfigMap")["demo-portal"]
    assert {k: env[k] for k in configmap["data"]} == configmap["data"]
    secret_name = container["envFrom"][0]["secretRef"]["name"]
    hook_secret = by_kind(docs, "Secret")[secret_name]
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        hooks.get("helm.sh/hook-weight", "0")
    )
    assert hook_secret["data"] == by_kind(docs, "Secret")["demo-portal"]["data"]


def test_the_full_install_scales_and_routes_websockets(chart):
    docs = documents(render(chart, load_values(CHART / "ci" / "full-values.yaml")))
    found = deployments(docs)
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {
        "demo-portal-web",
        "demo-portal-worker",
    }
    for component in ("web", "worker"):
        assert "replicas" not in found[component]["spec"], "the HPA owns the replica count"
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for p in pdbs.values()
    } == {
        "web",
        "worker",
        "relay",
        "bridge",
    }
    (ingress,) = by_kind(docs, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert (rule["http"]["paths"][0]["path"], backend["name"]) == ("/", "demo-portal-web")
    service = by_kind(docs, "Service")["demo-portal-web"]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "web"
    # WebSockets and streamed answers: long proxy timeouts and no buffering.
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    config = by_kind(docs, "ConfigMap")["demo-portal"]["data"]
    assert "portal.example.com" in config["ALLOWED_HOSTS"].split(",")
    assert "localhost" in config["ALLOWED_HOSTS"].split(","), "the probes send Host: localhost"
    worker = found["worker"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "WORKER_CONCURRENCY", "value": "200"} in worker["env"]


def test_an_existing_secret_replaces_the_chart_made_one(chart):
    values = {
        "secret": {"existingSecret": "portal-credentials"},
        "kafka": {"bootstrapServers": "kafka:9092"},
    }
    docs = documents(render(chart, values))
    assert not by_kind(docs, "Secret")
    for deployment in deployments(docs).values():
        env_from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"secretRef": {"name": "portal-credentials"}} in env_from
    (job,) = by_kind(docs, "Job").values()
    job_env_from = job["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert job_env_from == [{"secretRef": {"name": "portal-credentials"}}]


def test_notes_say_how_to_reach_the_portal(chart):
    notes = render(chart, minimal())["portal/templates/NOTES.txt"]
    assert "kubectl --namespace portal port-forward service/demo-portal-web 8000:80" in notes
    full = render(chart, load_values(CHART / "ci" / "full-values.yaml"))
    assert "https://portal.example.com/" in full["portal/templates/NOTES.txt"]


# --- Events and Kafka security settings -----------------------------------------------

EVENTS_SETTINGS = [
    ("kafka.eventsTopic", "team-events", "KAFKA_EVENTS_TOPIC", "team-events"),
    ("kafka.eventsDlqTopic", "team-events.dead", "KAFKA_EVENTS_DLQ_TOPIC", "team-events.dead"),
    ("kafka.eventsPartitions", 24, "KAFKA_EVENTS_PARTITIONS", "24"),
    ("kafka.bridgeGroup", "portal-bridge-eu", "KAFKA_BRIDGE_GROUP", "portal-bridge-eu"),
    ("kafka.securityProtocol", "SSL", "KAFKA_SECURITY_PROTOCOL", "SSL"),
    ("events.retentionDays", 7, "EVENTS_RETENTION_DAYS", "7"),
    ("events.relayBatchSize", 250, "EVENTS_RELAY_BATCH_SIZE", "250"),
]
SASL_VALUES = {
    "kafka": {
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-256", "username": "portal", "password": "kafka-pw-42"},
    }
}


def nested(path: str, value) -> dict:
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


def config_and_secret(chart, values: dict) -> tuple[dict, dict]:
    docs = documents(render(chart, values))
    configmap = by_kind(docs, "ConfigMap")["demo-portal"]["data"]
    secret = by_kind(docs, "Secret").get("demo-portal", {}).get("data", {})
    return configmap, secret


@pytest.mark.parametrize(
    ("path", "value", "variable", "expected"), EVENTS_SETTINGS, ids=[s[2] for s in EVENTS_SETTINGS]
)
def test_an_events_value_reaches_the_configmap(chart, path, value, variable, expected):
    configmap, _ = config_and_secret(chart, deep_merge(minimal(), nested(path, value)))
    assert configmap[variable] == expected


def test_the_chart_defaults_are_the_settings_defaults(chart):
    """Installing the chart changes none of the events settings a bare process has."""
    import subprocess
    import sys

    variables = [variable for _, _, variable, _ in EVENTS_SETTINGS]
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{v: str(getattr(settings, v)) for v in {variables!r}}}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in variables}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    configmap, _ = config_and_secret(chart, minimal())
    assert {v: configmap[v] for v in variables} == json.loads(result.stdout)


def test_sasl_puts_the_password_in_the_secret_only(chart):
    values = deep_merge(minimal(), SASL_VALUES)
    configmap, secret = config_and_secret(chart, values)
    assert configmap["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert configmap["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
    assert configmap["KAFKA_SASL_USERNAME"] == "portal"
    assert "KAFKA_SASL_PASSWORD" not in configmap
    assert base64.b64decode(secret["KAFKA_SASL_PASSWORD"]).decode() == "kafka-pw-42"
    docs = documents(render(chart, values))
    for doc in docs:
        if doc["kind"] != "Secret":
            assert "kafka-pw-42" not in json.dumps(doc), f"{doc['kind']} shows the password"
    # The migration hook's copy of the Secret carries it too.
    assert by_kind(docs, "Secret")["demo-portal-migrate"]["data"]["KAFKA_SASL_PASSWORD"]
    # A new password rolls the pods.
    changed = deep_merge(values, {"kafka": {"sasl": {"password": "kafka-pw-43"}}})
    assert _checksums(chart, changed).isdisjoint(_checksums(chart, values))


def test_plaintext_renders_no_sasl_or_tls_settings(chart):
    """The settings refuse SASL or TLS variables under a protocol that doesn't use them."""
    configmap, secret = config_and_secret(chart, minimal())
    assert configmap["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    rendered = set(configmap) | set(secret)
    assert not {k for k in rendered if k.startswith(("KAFKA_SASL_", "KAFKA_SSL_"))}


def test_sasl_with_an_existing_secret_reads_the_password_from_it(chart):
    values = deep_merge(
        SASL_VALUES,
        {
            "secret": {"existingSecret": "portal-credentials"},
            "kafka": {"bootstrapServers": "kafka:9092", "sasl": {"password": ""}},
        },
    )
    docs = documents(render(chart, values))
    assert not by_kind(docs, "Secret")
    assert by_kind(docs, "ConfigMap")["demo-portal"]["data"]["KAFKA_SASL_USERNAME"] == "portal"


def test_the_kafka_tls_secret_is_mounted_where_the_settings_look(chart):
    docs = documents(render(chart, load_values(CHART / "ci" / "kafka-mtls-values.yaml")))
    configmap = by_kind(docs, "ConfigMap")["demo-portal"]["data"]
    files = {k: v for k, v in configmap.items() if k.startswith("KAFKA_SSL_")}
    assert files == {
        "KAFKA_SSL_CAFILE": "/etc/portal/kafka-tls/ca.crt",
        "KAFKA_SSL_CERTFILE": "/etc/portal/kafka-tls/tls.crt",
        "KAFKA_SSL_KEYFILE": "/etc/portal/kafka-tls/tls.key",
    }
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in {"Deployment", "Job"}]
    assert len(pods) == len(PROCESSES) + 1  # every process and the migration (it loads settings)
    for pod in pods:
        assert {"name": "kafka-tls", "secret": {"secretName": "portal-kafka-client"}} in pod[
            "volumes"
        ]
        (container,) = pod["containers"]
        assert {
            "name": "kafka-tls",
            "mountPath": "/etc/portal/kafka-tls",
            "readOnly": True,
        } in container["volumeMounts"]


def _configuration_table() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_documents_every_variable_the_chart_sets(chart):
    table = _configuration_table()
    rendered = set()
    for values in (
        load_values(CHART / "ci" / "full-values.yaml"),
        load_values(CHART / "ci" / "kafka-mtls-values.yaml"),
        deep_merge(minimal(), SASL_VALUES),
    ):
        configmap, secret = config_and_secret(chart, values)
        rendered |= set(configmap) | set(secret)
    missing = sorted(v for v in rendered if f"`{v}`" not in table)
    assert not missing, f"README's configuration table lacks {missing}"


def test_the_readme_documents_the_kafka_security_settings():
    table = _configuration_table()
    for variable in (
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
        "KAFKA_SSL_CERTFILE",
        "KAFKA_SSL_KEYFILE",
        "KAFKA_EVENTS_TOPIC",
        "KAFKA_EVENTS_DLQ_TOPIC",
        "KAFKA_EVENTS_PARTITIONS",
        "KAFKA_BRIDGE_GROUP",
        "EVENTS_RETENTION_DAYS",
        "EVENTS_RELAY_BATCH_SIZE",
    ):
        assert f"`{variable}`" in table, variable
