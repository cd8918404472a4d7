"""Kubernetes manifests, the Dockerfile and the compose file, validated offline."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import build_parser
from services.common.config_docs import SETTINGS_CLASSES
from services.handoff.settings import HandoffSettings
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings
from tests.ops.tools import ROOT

K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
BIN = Path(sys.executable).parent
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def config_data() -> dict[str, str]:
    config = find("ConfigMap", "hotlead-config")["data"]
    return {**config, **find("Secret", "hotlead-secrets")["stringData"]}


def known_settings() -> set[str]:
    return {
        f"HOTLEAD_{name.upper()}"
        for _, settings_class in SETTINGS_CLASSES
        for name in settings_class.model_fields
    }


def test_every_manifest_passes_kubernetes_validate_strict() -> None:
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count(" passed for resource ") == len(documents()), output


def test_kubernetes_validate_strict_refuses_an_unknown_field(tmp_path: Path) -> None:
    broken = find("Deployment", "hotlead-ingest")
    container(broken)["livenessProbe"]["httpGet"]["pathh"] = "/healthz"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "pathh" in result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]


def test_services_take_configuration_from_the_configmap_and_the_secret_with_probes() -> None:
    probes = {
        "hotlead-ingest": ("/healthz", "/readyz"),
        "hotlead-handoff": ("/healthz", "/readyz"),
        "hotlead-scorer": ("/metrics", "/metrics"),  # faust's web server has no /healthz
    }
    workloads = [find("Deployment", "hotlead-ingest"), find("Deployment", "hotlead-handoff")]
    workloads.append(find("StatefulSet", "hotlead-scorer"))
    for workload in workloads:
        spec = container(workload)
        refs = [next(iter(ref.values()))["name"] for ref in spec["envFrom"]]
        assert refs == ["hotlead-config", "hotlead-secrets"]
        live, ready = probes[workload["metadata"]["name"]]
        assert spec["livenessProbe"]["httpGet"]["path"] == live
        assert spec["readinessProbe"]["httpGet"]["path"] == ready
        assert spec["startupProbe"]["httpGet"]["path"] == live
        assert set(spec["resources"]["requests"]) == {"cpu", "memory"}
        assert "memory" in spec["resources"]["limits"]
        port = spec["ports"][0]["containerPort"]
        assert workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(
            port
        )


def test_the_scorer_is_a_statefulset_with_its_rocksdb_on_a_volume_and_standbys() -> None:
    data = config_data()
    scorer = find("StatefulSet", "hotlead-scorer")
    mounts = {m["name"]: m["mountPath"] for m in container(scorer)["volumeMounts"]}
    claims = [c["metadata"]["name"] for c in scorer["spec"]["volumeClaimTemplates"]]
    assert claims == ["data"]
    assert mounts["data"] == data["HOTLEAD_SCORER_DATADIR"]
    assert data["HOTLEAD_SCORER_STORE"] == "rocksdb://"
    standby = int(data["HOTLEAD_SCORER_STANDBY_REPLICAS"])
    assert 1 <= standby < scorer["spec"]["replicas"]
    assert scorer["spec"]["replicas"] <= int(data["HOTLEAD_EVENTS_PARTITIONS"])
    web_host = next(e for e in container(scorer)["env"] if e["name"] == "HOTLEAD_SCORER_WEB_HOST")
    assert web_host["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_ingest_scales_horizontally_and_topics_are_created_by_a_job() -> None:
    hpa = find("HorizontalPodAutoscaler", "hotlead-ingest")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "hotlead-ingest",
    }
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"] >= 2
    job = find("Job", "hotlead-topics")
    assert container(job)["args"] == ["topics", "create"]


def test_commands_in_manifests_and_compose_are_hotlead_commands() -> None:
    parser = build_parser()
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    workloads = {"Deployment", "StatefulSet", "Job"}
    commands = [container(d)["args"] for d in documents() if d["kind"] in workloads]
    ours = [s for s in compose["services"].values() if s.get("image", "").startswith("hotlead:")]
    commands += [service["command"] for service in ours]
    assert len(commands) == 8
    for args in commands:
        assert callable(parser.parse_args(args).run), args
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["hotlead"]' in dockerfile


def test_every_configured_variable_is_a_real_setting_and_the_settings_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = config_data()
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    compose_env = {
        key
        for service in compose["services"].values()
        for key in service.get("environment", {})
        if key.startswith("HOTLEAD_")
    }
    dockerfile_env = set(re.findall(r"(HOTLEAD_[A-Z_]+)=", (DOCKER / "Dockerfile").read_text()))
    unknown = (set(data) | compose_env | dockerfile_env) - known_settings()
    assert not unknown, unknown
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    ingest = IngestSettings()
    assert ingest.environment == "production"
    assert ingest.keyring() is not None  # production: the Secret's keys, not the dev ones
    assert list(ingest.api_key_sources().values()) == ["crm"]
    assert ingest.proxy_networks()
    scorer = ScorerSettings()
    assert scorer.scorer_standby_replicas == 1
    assert HandoffSettings().handoff_port == 8002


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DOCKER / "docker-compose.yml"),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validation done" in result.stdout


def test_compose_runs_kafka_in_kraft_mode_and_mounts_what_exists() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), source
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file()


def test_the_package_ships_every_data_file_the_services_read() -> None:
    """The image installs the package (not the work tree): non-Python files must be data."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "services", "schemas"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in tracked:
        path = Path(name)
        if path.suffix == ".py":
            continue
        package = ".".join(path.parts[:2]) if path.parts[0] == "services" else path.parts[0]
        patterns = package_data.get(package, [])
        relative = path.relative_to(*package.split("."))
        assert any(relative.match(p) for p in patterns), f"{name} is not in package-data"
