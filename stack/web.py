"""The HTTP side of the local stack: the edge (OpenID Provider) and two demo portals."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from identity.oidc import registration
from identity.oidc.store import ClientStore
from stack.pki import PlatformCA
from stack.ports import HOST, Ports
from stack.postgres import StackError
from stack.process import ManagedProcess
from stack.seaweed import LOG_BUCKET, log_reader_keys
from stack.secrets import SecretStore

PORTALS = (
    ("portal", "Cổng Dịch vụ công quốc gia (demo)"),
    ("portal_2", "Cổng thông tin Bộ Y tế (demo)"),
)
# Their sectors (OpenID Connect Core §8.1): two ministries, so their citizens' pairwise ``sub`` differ (issue 13 §2).
SECTORS = {"portal": "dichvucong.gov.vn", "portal_2": "moh.gov.vn"}
# What the demo portals ask for: the claims they show, and the vault pages (portal/vault.py).
DEMO_SCOPES = ("address", "phone", "national_id", "offline_access", "vault.read", "vault.write", "consent.manage",
               "log.read", "issuance.apply", "health.read")  # fmt: skip
DEMO_RESOURCES = ("urn:dinhdanh:service:vault", "urn:dinhdanh:service:consent", "urn:dinhdanh:service:log",
                  "urn:dinhdanh:service:issuance", "urn:dinhdanh:service:health")  # fmt: skip
# The demo agency: an employer-vetting office that asks citizens for their papers (issue 10).
DEMO_AGENCY = "Sở Lao động - Thương binh và Xã hội (demo)"
DEMO_AGENCY_PURPOSES = ("EMPLOYMENT_BACKGROUND_CHECK", "PUBLIC_SERVICE_DOSSIER", "SOCIAL_INSURANCE_BENEFIT",
                        "HEALTH_INSURANCE_CLAIM")  # fmt: skip
DEMO_AGENCY_SCOPES = ("vault.read", "vault.issue", "registry.read")
DEMO_AGENCY_RESOURCES = ("urn:dinhdanh:service:vault", "urn:dinhdanh:service:consent", "urn:dinhdanh:service:registry")


def issuer(ports: Ports) -> str:
    """``localhost``, not 127.0.0.1: browsers treat it as a secure context, so Secure cookies work."""
    return f"http://localhost:{ports.edge}"


def portal_url(ports: Ports, name: str) -> str:
    return f"http://localhost:{getattr(ports, name)}"


def start_edge(ca: PlatformCA, secrets: SecretStore, ports: Ports, dsn: str, var: Path) -> ManagedProcess:
    paths = ca.issue("edge")
    env = {
        **os.environ,
        "DINHDANH_LISTEN": f"{HOST}:{ports.edge}",
        "DINHDANH_MTLS_LISTEN": f"{HOST}:{ports.edge_mtls}",
        "DINHDANH_METRICS_LISTEN": f"{HOST}:{ports.metrics('edge')}",  # the mTLS token endpoint alias (RFC 8705 §5)
        "DINHDANH_ISSUER": issuer(ports),
        "DINHDANH_POSTGRES_DSN": dsn,
        "DINHDANH_TLS_CA": str(paths.ca),
        "DINHDANH_TLS_CERT": str(paths.cert),
        "DINHDANH_TLS_KEY": str(paths.key),
        "DINHDANH_REGISTRY_ADDRESS": f"{HOST}:{ports.registry}",
        "DINHDANH_IDENTITY_ADDRESS": f"{HOST}:{ports.identity}",
        "DINHDANH_LOG_ADDRESS": f"{HOST}:{ports.log}",  # the security page's history (a citizen's log.read token)
        "DINHDANH_KEYS_DIR": str(secrets.keys_dir("edge")),
    }
    s3 = secrets.json("s3.json") or {}  # the edge serves the log's tiles with the read-only pair only
    reader = log_reader_keys(s3.get("access_key", ""), s3.get("secret_key", ""))
    env |= {"DINHDANH_S3_ENDPOINT": f"{HOST}:{ports.s3}", "DINHDANH_S3_ACCESS_KEY": reader[0],
            "DINHDANH_S3_SECRET_KEY": reader[1], "DINHDANH_LOG_BUCKET": LOG_BUCKET}  # fmt: skip
    process = ManagedProcess("edge", [sys.executable, "-m", "services.edge"], var / "logs" / "edge.log", env)
    process.start()
    return process


async def demo_clients(secrets: SecretStore, ports: Ports, dsn: str) -> dict[str, dict[str, Any]]:
    """The demo portals' registrations, made once through the same path as `dinhdanh clients add-portal`
    (``--scope`` each of DEMO_SCOPES, ``--resource`` the vault); a registration from an earlier version is
    brought to the same scopes and resources."""
    known = secrets.json("clients.json") or {}
    missing = [(name, title) for name, title in PORTALS if name not in known]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = ClientStore(pool)
        for name, title in PORTALS:
            base = portal_url(ports, name)
            client, secret = registration.portal(title, [f"{base}/callback"], [f"{base}/"], scopes=list(DEMO_SCOPES),
                                                 resources=list(DEMO_RESOURCES), sector=SECTORS[name])  # fmt: skip
            if (name, title) in missing:
                await store.add(client)
                known[name] = {"client_id": client.client_id, "client_secret": secret, "base_url": base}
            else:
                await store.set_access(known[name]["client_id"], client.scopes, client.resources)
    finally:
        await pool.close()
    if missing:
        secrets.put_json("clients.json", known)
    return known


@dataclass(frozen=True)
class DemoAgency:
    """One demo agency: its ``stack.json`` name (``clients[key]``), the stem of its files (``var/secrets/<stem>.json``
    with client_id and secret, ``var/pki/<stem>.key`` and ``.pem``), and its registration."""

    key: str
    stem: str
    name: str
    purposes: tuple[str, ...]
    scopes: tuple[str, ...] = ("vault.read",)
    resources: tuple[str, ...] = ("urn:dinhdanh:service:vault", "urn:dinhdanh:service:consent")
    roles: tuple[str, ...] = ()


# The demo agencies (issues 10, 11): the employer-vetting office, and one agency for each role issue 11 opens RPCs
# to: the Judicial Records Centre's officers (Officers), a hospital (HealthRecords), a procuracy (AgencyRequests).
DEMO_AGENCIES = (
    DemoAgency("agency_demo", "agency-demo", DEMO_AGENCY, DEMO_AGENCY_PURPOSES, DEMO_AGENCY_SCOPES,
               DEMO_AGENCY_RESOURCES),
    DemoAgency("officer_demo", "officer-demo", "Trung tâm Lý lịch tư pháp quốc gia — cán bộ (demo)",
               ("PUBLIC_SERVICE_DOSSIER",), roles=("officer",)),
    DemoAgency("facility_demo", "facility-demo", "Bệnh viện Đa khoa (demo)", ("HEALTH_INSURANCE_CLAIM",),
               roles=("facility",)),
    DemoAgency("authority_demo", "authority-demo", "Viện kiểm sát nhân dân (demo)", ("PUBLIC_SERVICE_DOSSIER",),
               roles=("procedural_authority",)),
)  # fmt: skip


async def demo_agency(ca: PlatformCA, secrets: SecretStore, dsn: str) -> dict[str, Any]:
    """The employer-vetting demo agency (``clients["agency_demo"]``, files ``agency-demo.*``): see
    ``register_demo_agency``."""
    return await register_demo_agency(ca, secrets, dsn, DEMO_AGENCIES[0])


async def demo_agencies(ca: PlatformCA, secrets: SecretStore, dsn: str) -> dict[str, dict[str, Any]]:
    """Every demo agency of ``DEMO_AGENCIES``, by its ``stack.json`` name."""
    return {agency.key: await register_demo_agency(ca, secrets, dsn, agency) for agency in DEMO_AGENCIES}


async def register_demo_agency(ca: PlatformCA, secrets: SecretStore, dsn: str, agency: DemoAgency) -> dict[str, Any]:
    """A demo agency, registered once as `dinhdanh clients add-agency` would (with its ``--role``s), with its client
    certificate: a key made here (``var/pki/<stem>.key``), a CSR for it signed by the platform CA through the same
    function as `dinhdanh clients issue-cert` (``var/pki/<stem>.pem``). Returns what ``stack.json`` lists as
    ``clients[agency.key]``: client_id, name, roles, cert, key and ca paths. It is on the FAPI 2.0 profile with
    ``tls_client_auth`` (no client secret; one registered earlier with a secret is moved, docs/fapi.md)."""
    known = secrets.json(f"{agency.stem}.json")
    key_path, cert_path = ca.folder / f"{agency.stem}.key", ca.folder / f"{agency.stem}.pem"
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = ClientStore(pool)
        registered = known is not None and await store.get(known["client_id"]) is not None
        if not registered:
            client, _ = registration.agency(agency.name, list(agency.purposes), list(agency.scopes),
                                            list(agency.resources), agency.roles)  # fmt: skip
            await store.add(client)  # FAPI 2.0, tls_client_auth with the certificate below: no secret
            known = {"client_id": client.client_id}
            secrets.put_json(f"{agency.stem}.json", known)
        assert known is not None
        if not registered or not (key_path.exists() and cert_path.exists()):
            key = ec.generate_private_key(ec.SECP256R1())
            # The CA names the certificate by client id; a registered name may pass the 64 characters of a CN
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, known["client_id"])])  # (RFC 5280 ub-common-name)
            csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
            pem = csr.public_bytes(serialization.Encoding.PEM)
            issued = await registration.issue_certificate(store, ca.sign_agency_csr, known["client_id"], pem)
            private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())  # fmt: skip
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(private)
            cert_path.write_bytes(issued.pem)
        current = await store.get(known["client_id"])
        if current is not None and registration.legacy_agency(current):  # registered with a secret before
            await store.set_profile(registration.move_agency_to_fapi2(current))
        known = {"client_id": known["client_id"]}
    finally:
        await pool.close()
    described = {"name": agency.name, "roles": list(agency.roles)}
    return {**known, **described, "cert": str(cert_path), "key": str(key_path), "ca": str(ca.ca_cert_path)}


def start_portal(name: str, title: str, client: dict[str, Any], secrets: SecretStore, ports: Ports,
                 var: Path, ca: PlatformCA | None = None) -> ManagedProcess:  # fmt: skip
    """One demo portal; with ``ca``, it also serves the vault, consent and access history pages (mTLS as the
    platform peer ``portal``, one certificate for both demo portals: the citizen's access token decides whose
    documents, consents and entries they see), the log's verifier key pinned."""
    env = {
        **os.environ,
        "DINHDANH_PORTAL_ISSUER": issuer(ports),
        "DINHDANH_PORTAL_CLIENT_ID": client["client_id"],
        "DINHDANH_PORTAL_CLIENT_SECRET": client["client_secret"],
        "DINHDANH_PORTAL_BASE_URL": client["base_url"],
        "DINHDANH_PORTAL_LISTEN": f"{HOST}:{getattr(ports, name)}",
        "DINHDANH_PORTAL_METRICS_LISTEN": f"{HOST}:{ports.metrics(name)}",
        "DINHDANH_PORTAL_TITLE": title,
        "DINHDANH_PORTAL_SESSION_KEY": secrets.token(f"{name}-session-key", 32),
        "DINHDANH_PORTAL_COOKIE_NAME": f"{name}_session",
        "DINHDANH_KEYS_DIR": str(secrets.keys_dir("portal")),  # HOLDER_KEY only: the citizens' holder keys
    }
    if ca is not None:
        from audit.sequencer import Signer
        from core.keys.purposes import LOG_SIGNING
        from core.settings import Settings, key_provider
        from services.log_settings import LogSettings

        paths = ca.issue("portal")
        # The log's verifier key (C2SP signed-note), from the log process's seed, pinned as a relying party would
        # configure it: the history's marks never rest on a key fetched from the platform they check.
        # (The log's keys as the log holds them: its seed, or its key in the token with DINHDANH_KEY_BACKEND=pkcs11.)
        log_keys = key_provider(Settings(keys_dir=secrets.keys_dir("log")))
        log_key = Signer.from_signer(LogSettings().origin, log_keys.signer(LOG_SIGNING)).vkey
        env |= {
            "DINHDANH_PORTAL_LOG_KEY": log_key,
            "DINHDANH_PORTAL_VAULT_ADDRESS": f"{HOST}:{ports.vault}",
            "DINHDANH_PORTAL_CONSENT_ADDRESS": f"{HOST}:{ports.consent}",
            "DINHDANH_PORTAL_LOG_ADDRESS": f"{HOST}:{ports.log}",
            "DINHDANH_PORTAL_HEALTH_ADDRESS": f"{HOST}:{ports.health}",  # the health book pages (portal/health.py)
            "DINHDANH_PORTAL_ISSUANCE_ADDRESS": f"{HOST}:{ports.issuance}",
            "DINHDANH_PORTAL_TLS_CA": str(paths.ca),
            "DINHDANH_PORTAL_TLS_CERT": str(paths.cert),
            "DINHDANH_PORTAL_TLS_KEY": str(paths.key),
        }
    process = ManagedProcess(name, [sys.executable, "-m", "portal"], var / "logs" / f"{name}.log", env)
    process.start()
    return process


async def wait_http(process: ManagedProcess, url: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if not process.alive():
                raise StackError(f"{process.name} exited on start:\n{process.tail()}")
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if loop.time() > deadline:
                raise StackError(f"{process.name} did not answer at {url}:\n{process.tail()}")
            await asyncio.sleep(0.2)
