"""The platform's own issuers, registered before the services start: the agency clients the issuance and health
services deliver into citizens' vaults as, and the issuance service's document-signing certificate.

Each issuer (:data:`ISSUERS`) is an agency client (``client_credentials``) on the FAPI 2.0 profile, authenticated by
``private_key_jwt`` with its signing key and with DPoP-bound tokens (issuance/delivery.py), with the scope
``vault.issue`` and the resource ``urn:dinhdanh:service:vault``, registered once through
``identity.oidc.registration.agency`` as `dinhdanh clients add-agency` would, its ``jwks`` the public JWK of the
process's signing key (``issuance.issuer_keys.SigningKey.from_seed``: the ``issuance`` client's from
ISSUANCE_SIGNING, the ``health`` client's from HEALTH_SIGNING), which is what the vault checks every delivery's
``issuer_signature`` against (vault/signatures.py), and its ``private_key_jwt`` assertions. The client id is kept in
``var/secrets/issuer-clients.json`` (mode 0600) and handed to that process as ``DINHDANH_<NAME>_CLIENT_ID``
(:func:`issuer_env`); there is no secret (one registered with a secret before is moved to its key).
A later start finds the registration and only brings its keys, scopes and resources up to date (idempotent); one
whose client is gone from the database (a new database) is registered again.

The document-signing certificate (ETSI EN 319 142-1 PAdES; RFC 9336 id-kp-documentSigning): the platform CA
certifies the public key of the ISSUANCE_DOCUMENT seed with ``issuance.pades.document_signing_certificate``'s
profile, written to ``var/pki/issuance-document.pem`` (issued again when the key changed or it nears expiry); its
chain (the CA certificate) reaches the issuance process as ``DINHDANH_ISSUANCE_DOCUMENT_CERT`` and
``DINHDANH_ISSUANCE_DOCUMENT_CHAIN`` (paths; the private key stays the seed in its keys folder).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.keys import purposes as p
from identity.oidc import registration
from identity.oidc.store import ClientStore
from issuance.delivery import ClientCredentials
from issuance.issuer_keys import SigningKey
from stack.pki import PlatformCA
from stack.secrets import SecretStore

VAULT = "urn:dinhdanh:service:vault"
CLIENTS_FILE = "issuer-clients.json"
DOCUMENT_CERT = "issuance-document.pem"
DOCUMENT_NAME = "Trung tâm Lý lịch tư pháp quốc gia — ký văn bản"
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class IssuerClient:
    """One platform issuer: the process it runs in, its registered name and purposes, its signing key's purpose."""

    process: str
    name: str
    purposes: tuple[str, ...]
    key_purpose: str


ISSUERS: tuple[IssuerClient, ...] = (
    IssuerClient("issuance", "Trung tâm Lý lịch tư pháp quốc gia", ("CRIMINAL_RECORD_CERTIFICATE",),
                 p.ISSUANCE_SIGNING),
    IssuerClient("health", "Bộ Y tế — Sổ sức khỏe điện tử", ("HEALTH_BOOK_EXTRACT",), p.HEALTH_SIGNING),
)  # fmt: skip


def issuer_jwks(secrets: SecretStore, issuer: IssuerClient) -> dict[str, Any]:
    """The public JWK Set of ``issuer``'s signing key (from the seed its process holds)."""
    seed = secrets.keys(issuer.process).key(issuer.key_purpose)
    return SigningKey.from_seed(seed).jwks()


async def register_issuers(secrets: SecretStore, dsn: str) -> dict[str, dict[str, str]]:
    """Every issuer of :data:`ISSUERS` registered (once) with its current public keys; returns, per process,
    ``{"client_id": …}`` (kept in ``var/secrets/issuer-clients.json``). ``dsn``: the
    database owner's (it writes ``oidc.clients``). Runs after ``SecretStore.ensure_keys``."""
    known: dict[str, dict[str, str]] = secrets.json(CLIENTS_FILE) or {}
    changed = False
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = ClientStore(pool)
        for issuer in ISSUERS:
            jwks = issuer_jwks(secrets, issuer)
            mine = known.get(issuer.process)
            existing = await store.get(mine["client_id"]) if mine else None
            if existing is None:
                client, _ = registration.agency(
                    issuer.name, list(issuer.purposes), scopes=["vault.issue"], resources=[VAULT], jwks=jwks
                )  # FAPI 2.0: private_key_jwt with the signing key, no secret
                await store.add(client)
                known[issuer.process] = {"client_id": client.client_id}
                changed = True
                continue
            if registration.legacy_agency(existing) or "client_secret" in mine:  # registered with a secret before
                await store.set_profile(registration.move_agency_to_fapi2(existing, jwks))
                known[issuer.process] = {"client_id": existing.client_id}
                changed = True
            if existing.jwks != jwks or tuple(existing.scopes) != ("vault.issue",) or existing.resources != (VAULT,):
                await pool.execute(
                    "UPDATE oidc.clients SET jwks = $2::jsonb, scopes = $3, resources = $4, updated_at = now()"
                    " WHERE client_id = $1",
                    existing.client_id, json.dumps(jwks), ["vault.issue"], [VAULT],
                )  # fmt: skip
    finally:
        await pool.close()
    if changed:
        secrets.put_json(CLIENTS_FILE, known)
    return known


def issuer_env(process: str, known: dict[str, dict[str, str]]) -> dict[str, str]:
    """``DINHDANH_<PROCESS>_CLIENT_ID`` for ``process`` ({} when it is no issuer): it authenticates with its signing
    key (``private_key_jwt``, FAPI 2.0), which it holds already; there is no secret to hand over."""
    mine = known.get(process)
    if not mine:
        return {}
    return {f"DINHDANH_{process.upper()}_CLIENT_ID": mine["client_id"]}


def credentials(secrets: SecretStore, process: str) -> ClientCredentials:
    """What ``process`` delivers with (tests, tools run beside the stack): its client id and its signing key, for
    ``private_key_jwt`` and DPoP (issuance/delivery.py)."""
    known = secrets.json(CLIENTS_FILE) or {}
    issuer = next(i for i in ISSUERS if i.process == process)
    key = SigningKey.from_seed(secrets.keys(process).key(issuer.key_purpose))
    return ClientCredentials(known[process]["client_id"], key=key.private, kid=key.kid)


def document_key(seed: bytes) -> ec.EllipticCurvePrivateKey:
    """The PAdES document-signing key of the ISSUANCE_DOCUMENT seed (derived as ``SigningKey.from_seed``)."""
    key = SigningKey.from_seed(seed).private.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def document_certificate(ca: PlatformCA, secrets: SecretStore) -> tuple[Path, Path]:
    """The issuance process's document-signing certificate and its chain (paths), issued by the platform CA for
    the ISSUANCE_DOCUMENT key; issued again when that key changed or the certificate expires within 30 days."""
    path = ca.folder / DOCUMENT_CERT
    public = document_key(secrets.keys("issuance").key(p.ISSUANCE_DOCUMENT)).public_key()
    if path.exists():
        current = x509.load_pem_x509_certificate(path.read_bytes())
        fresh = current.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE
        if current.public_key() == public and fresh:
            return path, ca.ca_cert_path
    ca_key = serialization.load_pem_private_key((ca.folder / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert_path.read_bytes())
    from issuance.pades import document_signing_certificate  # pyHanko: imported by the stack's start only

    certificate = document_signing_certificate(ca_cert, ca_key, DOCUMENT_NAME, public)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    tmp.replace(path)
    return path, ca.ca_cert_path


def document_env(ca: PlatformCA, secrets: SecretStore) -> dict[str, str]:
    """``DINHDANH_ISSUANCE_DOCUMENT_CERT`` and ``DINHDANH_ISSUANCE_DOCUMENT_CHAIN`` for the issuance process."""
    cert, chain = document_certificate(ca, secrets)
    return {"DINHDANH_ISSUANCE_DOCUMENT_CERT": str(cert), "DINHDANH_ISSUANCE_DOCUMENT_CHAIN": str(chain)}
