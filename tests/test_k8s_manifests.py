"""The Kubernetes manifests (k8s/) and the Dockerfile agree with the code, without a cluster.

PyYAML is not a dependency, so the manifests are read as text: documents split on ``---``, mappings
by indentation. That is enough for these hand-written files, and each check names what it read.
The health probe script is taken out of the Deployments and run against a real mutual-TLS server.
"""

from __future__ import annotations

import importlib
import re
import socket
import textwrap
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from core.settings import Settings
from services.tls import server_credentials
from stack.pki import PlatformCA

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
BASE = K8S / "base"
MIGRATE = K8S / "migrate"
KUSTOMIZATIONS = (BASE, MIGRATE)
EXAMPLE = BASE / "secrets.example.yaml"
SERVICES = ("registry", "identity", "vault", "consent", "log", "judicial", "issuance", "health")
DEPLOYMENTS = {name: BASE / f"{name}-deployment.yaml" for name in SERVICES}
JOB = MIGRATE / "job.yaml"
POD_MANIFESTS = (*DEPLOYMENTS.values(), JOB)
SETTINGS_ENV = BASE / "settings.env"
EDGE_LABELS = {"app.kubernetes.io/component": "edge"}  # allowed in by networkpolicy.yaml, no pods yet

# Settings each process must get in the cluster: the defaults are local-stack paths or empty.
REQUIRED = {
    "registry": {"LISTEN", "POSTGRES_DSN", "TLS_CA", "TLS_CERT", "TLS_KEY", "KEYS_DIR", "ISSUER"},
    "identity": {
        "LISTEN",
        "POSTGRES_DSN",
        "TLS_CA",
        "TLS_CERT",
        "TLS_KEY",
        "REGISTRY_ADDRESS",
        "KEYS_DIR",
        "ARGON2_WORKERS",
    },
    "vault": {
        "LISTEN",
        "POSTGRES_DSN",
        "TLS_CA",
        "TLS_CERT",
        "TLS_KEY",
        "KEYS_DIR",
        "ISSUER",
        "S3_ENDPOINT",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
    },
    "consent": {"LISTEN", "POSTGRES_DSN", "TLS_CA", "TLS_CERT", "TLS_KEY", "KEYS_DIR", "ISSUER"},
    "judicial": {"LISTEN", "POSTGRES_DSN", "TLS_CA", "TLS_CERT", "TLS_KEY"},
    "issuance": {
        "LISTEN",
        "POSTGRES_DSN",
        "TLS_CA",
        "TLS_CERT",
        "TLS_KEY",
        "KEYS_DIR",
        "ISSUER",
        "REGISTRY_ADDRESS",
        "JUDICIAL_ADDRESS",
        "VAULT_ADDRESS",
        "ISSUANCE_CLIENT_ID",
        "ISSUANCE_CLIENT_SECRET",
        "ISSUANCE_DOCUMENT_CERT",
        "ISSUANCE_DOCUMENT_CHAIN",
    },
    "health": {
        "LISTEN",
        "POSTGRES_DSN",
        "TLS_CA",
        "TLS_CERT",
        "TLS_KEY",
        "KEYS_DIR",
        "ISSUER",
        "REGISTRY_ADDRESS",
        "VAULT_ADDRESS",
        "HEALTH_CLIENT_ID",
        "HEALTH_CLIENT_SECRET",
    },
    "log": {
        "LISTEN",
        "POSTGRES_DSN",
        "TLS_CA",
        "TLS_CERT",
        "TLS_KEY",
        "KEYS_DIR",
        "ISSUER",
        "S3_ENDPOINT",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
    },
}
MIGRATION = "from db.migrate import upgrade; import os; upgrade(os.environ['DINHDANH_POSTGRES_DSN'])"


# --- a reader for the YAML these files use ------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def documents(path: Path) -> list[list[str]]:
    """The YAML documents of a file, each as its lines."""
    docs: list[list[str]] = [[]]
    for line in path.read_text().splitlines():
        if line.strip() == "---":
            docs.append([])
        else:
            docs[-1].append(line)
    return [doc for doc in docs if any(_content(line) for line in doc)]


def block(lines: list[str], key: str) -> list[str]:
    """The lines nested under the first ``key:`` (a mapping or list item key) in ``lines``."""
    pattern = re.compile(rf"^(\s*)(?:- )?{re.escape(key)}:\s*(#.*)?$")
    for i, line in enumerate(lines):
        match = pattern.match(line)
        if match:
            start = len(match.group(1))
            body = []
            for rest in lines[i + 1 :]:
                if _content(rest) and _indent(rest) <= start:
                    break
                body.append(rest)
            return body
    raise KeyError(key)


def value(lines: list[str], key: str) -> str:
    """The scalar of the first ``key: value`` in ``lines``."""
    pattern = re.compile(rf"^\s*(?:- )?{re.escape(key)}:\s*(\S.*?)\s*(#.*)?$")
    for line in lines:
        match = pattern.match(line)
        if match:
            return match.group(1).strip("\"'")
    raise KeyError(key)


def mapping(lines: list[str]) -> dict[str, str]:
    """The ``key: scalar`` pairs at the outer indentation of ``lines``."""
    content = [line for line in lines if _content(line)]
    if not content:
        return {}
    outer = min(_indent(line) for line in content)
    pairs = {}
    for line in content:
        if _indent(line) == outer and ":" in line:
            key, _, scalar = line.strip().partition(":")
            if scalar.strip():
                pairs[key] = scalar.strip().strip("\"'")
    return pairs


def entry(lines: list[str], item_name: str) -> list[str]:
    """The lines of the list item ``- name: item_name`` (its first line included)."""
    for i, line in enumerate(lines):
        if line.strip() == f"- name: {item_name}":
            rest = lines[i + 1 :]
            end = next((j for j, r in enumerate(rest) if _content(r) and _indent(r) <= _indent(line)), len(rest))
            return [line, *rest[:end]]
    raise KeyError(item_name)


def items(lines: list[str]) -> list[str]:
    """The scalars of a ``- item`` list."""
    return [line.strip()[2:].strip("\"'") for line in lines if line.strip().startswith("- ")]


def kind(doc: list[str]) -> str:
    return value(doc, "kind")


def name(doc: list[str]) -> str:
    return value(block(doc, "metadata"), "name")


def pod_labels(path: Path) -> dict[str, str]:
    return mapping(block(block(block(documents(path)[0], "template"), "metadata"), "labels"))


def env_file() -> dict[str, str]:
    pairs = {}
    for line in SETTINGS_ENV.read_text().splitlines():
        if _content(line):
            key, _, val = line.partition("=")
            pairs[key] = val
    return pairs


def example_secrets() -> dict[str, dict[str, str]]:
    return {name(doc): mapping(block(doc, "stringData")) for doc in documents(EXAMPLE) if kind(doc) == "Secret"}


def probe_scripts(path: Path) -> list[tuple[str, str]]:
    """The ``python -c`` block scalars of the exec probes in ``path``, each with its kind
    (``readinessProbe``, ``livenessProbe``)."""
    lines = path.read_text().splitlines()
    scripts = []
    kind = ""
    for i, line in enumerate(lines):
        if line.strip() in ("readinessProbe:", "livenessProbe:", "startupProbe:"):
            kind = line.strip().rstrip(":")
        if line.strip() == "- -c" and lines[i + 1].strip() == "- |":
            start = _indent(lines[i + 1])
            body = []
            for rest in lines[i + 2 :]:
                if rest.strip() and _indent(rest) <= start:
                    break
                body.append(rest)
            scripts.append((kind, textwrap.dedent("\n".join(body)).strip() + "\n"))
    return scripts


# --- the checks -------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_kustomization_lists_every_manifest_and_only_existing_files(folder: Path) -> None:
    kustomization = (folder / "kustomization.yaml").read_text().splitlines()
    resources = items(block(kustomization, "resources"))
    assert resources
    for resource in resources:
        assert (folder / resource).is_file(), f"{folder.name}/kustomization.yaml lists missing {resource}"
    if folder == BASE:
        assert items(block(kustomization, "envs")) == [SETTINGS_ENV.name]
    manifests = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml", EXAMPLE.name}
    assert manifests == set(resources), "a manifest in the folder is not applied, or the reverse"
    assert EXAMPLE.name not in resources


def test_no_secret_is_applied_and_every_example_value_is_a_placeholder() -> None:
    for folder in KUSTOMIZATIONS:
        for resource in items(block((folder / "kustomization.yaml").read_text().splitlines(), "resources")):
            for doc in documents(folder / resource):
                assert kind(doc) != "Secret", f"{resource} holds a Secret; document it in {EXAMPLE.name}"
    secrets = example_secrets()
    assert secrets
    for secret, keys in secrets.items():
        assert keys, secret
        for key, placeholder in keys.items():
            assert "PLACEHOLDER" in placeholder, f"{secret}/{key} looks like a real value"


def _setting_names() -> set[str]:
    """Every ``DINHDANH_*`` variable a settings class reads, without the ``DINHDANH_`` (each class's prefix)."""
    from issuance.issuing import IssuingSettings
    from services.health_server import HealthSettings
    from services.issuance_settings import IssuanceSettings
    from services.log_settings import LogSettings

    names = set()
    for cls in (Settings, LogSettings, IssuanceSettings, IssuingSettings, HealthSettings):
        prefix = str(cls.model_config.get("env_prefix", "")).upper().removeprefix("DINHDANH_")
        names |= {(prefix + field).upper() for field in cls.model_fields}
    return names


def test_every_dinhdanh_variable_is_a_setting() -> None:
    fields = _setting_names()
    texts = [p.read_text() for p in K8S.rglob("*") if p.is_file()]
    used = {m for text in texts for m in re.findall(r"\bDINHDANH_([A-Z0-9_]+)", text)}
    assert used
    unknown = {f"DINHDANH_{u}" for u in used if u not in fields}
    assert not unknown, f"not fields of a settings class: {sorted(unknown)}"


@pytest.mark.parametrize("service", DEPLOYMENTS)
def test_each_service_gets_the_settings_it_needs(service: str) -> None:
    doc = documents(DEPLOYMENTS[service])[0]
    container = block(doc, "containers")
    assert value(block(container, "configMapRef"), "name") == "dinhdanh-settings"
    own = {v.removeprefix("name: ") for v in items(block(container, "env")) if v.startswith("name: ")}
    names = set(env_file()) | own
    missing = {f"DINHDANH_{s}" for s in REQUIRED[service]} - names
    assert not missing, f"{service} does not set {sorted(missing)}"


def test_secret_references_exist_in_the_example() -> None:
    secrets = example_secrets()
    for path in POD_MANIFESTS:
        text = path.read_text()
        for secret in re.findall(r"secretName:\s*(\S+)", text):
            assert secret in secrets, f"{path.name} mounts {secret}, not in {EXAMPLE.name}"
        refs = re.findall(r"secretKeyRef:\s*\n\s*name:\s*(\S+)\s*\n\s*key:\s*(\S+)", text)
        for secret, key in refs:
            assert key in secrets.get(secret, {}), f"{path.name} reads {secret}/{key}, not in {EXAMPLE.name}"
    assert {f"dinhdanh-tls-{service}" for service in DEPLOYMENTS} <= set(secrets)


@pytest.mark.parametrize(
    ("setting", "service", "volume"),
    [
        ("DINHDANH_TLS_CA", "registry", "tls"),
        ("DINHDANH_TLS_CERT", "registry", "tls"),
        ("DINHDANH_TLS_KEY", "registry", "tls"),
        ("DINHDANH_TLS_CA", "identity", "tls"),
        ("DINHDANH_TLS_CERT", "identity", "tls"),
        ("DINHDANH_TLS_KEY", "identity", "tls"),
        ("DINHDANH_TLS_CA", "vault", "tls"),
        ("DINHDANH_TLS_CERT", "vault", "tls"),
        ("DINHDANH_TLS_KEY", "vault", "tls"),
    ],
)
def test_file_settings_point_into_their_secret_mounts(setting: str, service: str, volume: str) -> None:
    doc = documents(DEPLOYMENTS[service])[0]
    shared = env_file()
    path = Path(shared[setting] if setting in shared else value(entry(block(doc, "env"), setting), "value"))
    mount = Path(value(entry(block(doc, "volumeMounts"), volume), "mountPath"))
    assert path.parent == mount, f"{setting}={path} is not in the {volume} mount {mount}"
    secret = value(entry(block(doc, "volumes"), volume), "secretName")
    assert path.name in example_secrets()[secret], f"{secret} has no key {path.name}"


@pytest.mark.parametrize("service", DEPLOYMENTS)
def test_each_service_mounts_only_its_own_keys_and_role(service: str) -> None:
    """DINHDANH_KEYS_DIR is the mount of the service's own Secret, which holds exactly the purposes the local
    stack hands that process (stack/secrets.py); its DSN is its own role's (migration 0011)."""
    from stack.secrets import PROCESS_KEYS

    doc = documents(DEPLOYMENTS[service])[0]
    if not PROCESS_KEYS[service]:  # a service holding no key mounts none
        assert "DINHDANH_KEYS_DIR" not in DEPLOYMENTS[service].read_text()
        assert f"dinhdanh-keys-{service}" not in example_secrets()
    else:
        folder = value(entry(block(doc, "env"), "DINHDANH_KEYS_DIR"), "value")
        assert folder == value(entry(block(doc, "volumeMounts"), "keys"), "mountPath")
        secret = value(entry(block(doc, "volumes"), "keys"), "secretName")
        assert secret == f"dinhdanh-keys-{service}"
        assert set(example_secrets()[secret]) == set(PROCESS_KEYS[service])
    dsn = re.search(r"DINHDANH_POSTGRES_DSN\s*\n\s*valueFrom:\s*\n\s*secretKeyRef:\s*\n\s*name:\s*(\S+)",
                    DEPLOYMENTS[service].read_text())  # fmt: skip
    assert dsn
    assert dsn.group(1) == f"dinhdanh-postgres-{service}"
    assert f"dinhdanh_{service}:" in example_secrets()[dsn.group(1)]["dsn"]


@pytest.mark.parametrize("service", DEPLOYMENTS)
def test_ports_line_up(service: str) -> None:
    deployment = documents(DEPLOYMENTS[service])[0]
    ports = block(block(deployment, "containers"), "ports")
    assert value(ports, "name") == "grpc"
    container_port = value(ports, "containerPort")
    assert env_file()["DINHDANH_LISTEN"].rpartition(":")[2] == container_port
    (svc,) = documents(BASE / f"{service}-service.yaml")
    assert kind(svc) == "Service"
    assert name(svc) == service
    assert value(svc, "type") == "ClusterIP"
    assert value(block(svc, "ports"), "targetPort") == "grpc"
    selector = mapping(block(svc, "selector"))
    assert selector.items() <= pod_labels(DEPLOYMENTS[service]).items()
    if service == "registry":
        assert env_file()["DINHDANH_REGISTRY_ADDRESS"] == f"registry:{value(block(svc, 'ports'), 'port')}"


def test_selectors_in_pdbs_and_network_policies_match_pods() -> None:
    pods = [pod_labels(path) for path in DEPLOYMENTS.values()]
    for path in (BASE / "pdb.yaml", BASE / "networkpolicy.yaml"):
        text = path.read_text().splitlines()
        selectors = [mapping(block(text[i:], "matchLabels")) for i, line in enumerate(text) if "matchLabels:" in line]
        assert selectors
        for selector in selectors:
            matches = [labels for labels in pods if selector.items() <= labels.items()]
            assert matches or selector == EDGE_LABELS, f"{path.name}: {selector} selects no pod"
    for service in DEPLOYMENTS:
        assert pod_labels(DEPLOYMENTS[service])["dinhdanh.gov.vn/role"] == "service"
    policies = {name(doc): doc for doc in documents(BASE / "networkpolicy.yaml")}
    assert mapping(block(policies["default-deny-ingress"], "spec")) == {"podSelector": "{}"}
    registry_from = block(policies["registry-ingress"], "ingress")
    assert "app.kubernetes.io/component: identity" in "\n".join(registry_from)


def test_replicas_autoscaling_and_disruption_budgets() -> None:
    for fixed in ("registry", "vault"):
        assert value(block(documents(DEPLOYMENTS[fixed])[0], "spec"), "replicas") == "2"
    identity = documents(DEPLOYMENTS["identity"])[0]
    assert "replicas" not in mapping(block(identity, "spec")), "the HPA owns identity's replica count"
    (hpa,) = documents(BASE / "identity-hpa.yaml")
    target = mapping(block(hpa, "scaleTargetRef"))
    assert (target["kind"], target["name"]) == ("Deployment", "identity")
    assert int(value(hpa, "minReplicas")) == 2
    assert value(block(hpa, "resource"), "name") == "cpu"
    budgets = {name(doc) for doc in documents(BASE / "pdb.yaml") if kind(doc) == "PodDisruptionBudget"}
    assert budgets == set(DEPLOYMENTS)


def test_argon2_workers_follow_identity_cpu_limit() -> None:
    doc = documents(DEPLOYMENTS["identity"])[0]
    workers = entry(block(doc, "env"), "DINHDANH_ARGON2_WORKERS")
    ref = mapping(block(workers, "resourceFieldRef"))
    assert ref == {"containerName": "identity", "resource": "limits.cpu", "divisor": "1"}
    resources = block(doc, "resources")
    assert value(block(resources, "limits"), "cpu") == value(block(resources, "requests"), "cpu")


@pytest.mark.parametrize("path", POD_MANIFESTS, ids=lambda p: p.name)
def test_pods_are_hardened_and_bounded(path: Path) -> None:
    text = path.read_text()
    for setting in (
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        'drop: ["ALL"]',
        "type: RuntimeDefault",
        "automountServiceAccountToken: false",
    ):
        assert setting in text, f"{path.name} lacks {setting}"
    doc = documents(path)[0]
    assert value(block(doc, "securityContext"), "runAsUser") == dockerfile_user()
    resources = block(doc, "resources")
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(mapping(block(resources, bound))), f"{path.name} {bound}"
    mounts = block(doc, "volumeMounts")
    assert any(line.strip() == "mountPath: /tmp" for line in mounts), "no writable /tmp"


def test_migration_job_runs_the_upgrade() -> None:
    (job,) = documents(JOB)
    assert kind(job) == "Job"
    command = items(block(job, "command"))
    assert command == ["python", "-c", MIGRATION]
    compile(MIGRATION, "migration", "exec")
    assert callable(importlib.import_module("db.migrate").upgrade)
    assert value(job, "restartPolicy") == "Never"


def test_images_are_the_same_everywhere() -> None:
    blocks = [block((folder / "kustomization.yaml").read_text().splitlines(), "images") for folder in KUSTOMIZATIONS]
    pinned = [[line.strip() for line in b if _content(line)] for b in blocks]
    assert pinned[0]
    assert all(p == pinned[0] for p in pinned), "base and migrate would run different images"
    image = value(blocks[0], "name")
    for path in POD_MANIFESTS:
        assert set(re.findall(r"\bimage:\s*(\S+)", path.read_text())) == {image}


def dockerfile_user() -> str:
    match = re.search(r"^USER (\d+)(?::\d+)?$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile must switch to a numeric non-root USER"
    assert match.group(1) != "0"
    return match.group(1)


def test_dockerfile_builds_and_runs_the_services() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)
    assert re.search(r"pip install \.$", text, re.MULTILINE)
    assert "python -m protos" in text
    # The pods' root filesystem is read-only: the generated modules are compiled at build time.
    assert "compileall" in text
    assert text.rstrip().endswith('ENTRYPOINT ["python", "-m", "services"]')
    builders = importlib.import_module("services.__main__").BUILDERS
    for service, path in DEPLOYMENTS.items():
        assert value(block(documents(path)[0], "containers"), "args") == f'["{service}"]'
        assert service in builders
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", ".git"} <= ignored


@pytest.fixture
def health_server(tmp_path: Path):
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
        "DINHDANH_LISTEN": f"127.0.0.1:{port}",
        "DINHDANH_TLS_CA": str(paths.ca),
        "DINHDANH_TLS_CERT": str(paths.cert),
        "DINHDANH_TLS_KEY": str(paths.key),
    }
    yield servicer, env
    server.stop(None)


def _probe(scripts: list[tuple[str, str]], kind: str) -> object:
    found = {script for k, script in scripts if k == kind}
    assert len(found) == 1, f"the {kind}s differ between services"
    return compile(found.pop(), kind, "exec")


def _exit_code(code: object) -> object:
    with pytest.raises(SystemExit) as done:
        exec(code, {})  # noqa: S102 - a probe from our own manifests
    return done.value.code


def test_health_probes_check_over_mutual_tls(health_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readiness follows the service's health (NOT_SERVING while PostgreSQL or S3 is unreachable: out of the
    Service's endpoints); liveness only asks whether the process answers at all, so an outage of a store
    takes replicas out of rotation without restarting every pod."""
    scripts = [script for path in DEPLOYMENTS.values() for script in probe_scripts(path)]
    kinds = sorted(k for k, _ in scripts)
    assert kinds == sorted(["livenessProbe", "readinessProbe"] * len(DEPLOYMENTS)), kinds
    readiness, liveness = _probe(scripts, "readinessProbe"), _probe(scripts, "livenessProbe")
    servicer, env = health_server
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert not _exit_code(readiness)
    assert not _exit_code(liveness)
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)  # PostgreSQL or S3 unreachable
    assert _exit_code(readiness)
    assert not _exit_code(liveness), "a store's outage must not restart the pod"
    with socket.socket() as closed:  # a port nothing listens on: the process does not answer
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("DINHDANH_LISTEN", f"127.0.0.1:{closed.getsockname()[1]}")
        with pytest.raises(grpc.RpcError):
            exec(liveness, {})  # noqa: S102
