"""Test helpers for agencies: client certificates signed by the platform CA from a CSR (as `dinhdanh clients
issue-cert` does), channels presenting them, and OP tokens re-signed with changed claims."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt

from core.keys.purposes import OIDC_SIGNING_KEY
from core.keys.sealing import Sealer
from identity.oidc import keys
from identity.oidc.store import SigningKeyStore
from services.tls import secure_channel
from stack.info import StackInfo
from stack.pki import PlatformCA
from stack.supervisor import Stack


@dataclass(frozen=True)
class AgencyCert:
    client_id: str
    ca: Path
    cert: Path
    key: Path

    @property
    def thumbprint(self) -> str:
        """RFC 8705 §3.1 x5t#S256 of the certificate."""
        return thumbprint_of(self.cert)

    def channel(self, address: str, server: str) -> grpc.aio.Channel:
        return secure_channel(address, self.ca, self.cert, self.key, server=server)


def thumbprint_of(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def key_and_csr(key_path: Path, common_name: str) -> bytes:
    """A fresh P-256 key written to ``key_path`` (PKCS#8 PEM, mode 0600) and a PKCS#10 CSR for it (PEM, subject
    CN ``common_name``): what an agency sends to `dinhdanh clients issue-cert`."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return csr.public_bytes(serialization.Encoding.PEM)


def issue_agency(ca: PlatformCA, folder: Path, client_id: str) -> AgencyCert:
    """A fresh P-256 key, a CSR for it, and the CA's agency certificate for ``client_id``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{client_id}-{time.monotonic_ns()}"
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(ca.sign_agency_csr(client_id, key_and_csr(key_path, client_id)))
    return AgencyCert(client_id, ca.ca_cert_path, cert_path, key_path)


def agency_channel(stack: Stack, service: str, agency: AgencyCert) -> grpc.aio.Channel:
    return agency.channel(f"127.0.0.1:{getattr(stack.ports, service)}", service)


async def resigned(stack: Stack, info: StackInfo, token: str, **changes: Any) -> str:
    """``token``'s claims with ``changes`` (``None`` removes a claim), signed by the OP's current ES256 key."""
    sealer = Sealer(stack.secrets.keys("edge").key(OIDC_SIGNING_KEY))
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        ring = keys.KeyRing(await SigningKeyStore(pool).keys(), sealer)
    finally:
        await pool.close()
    claims = dict(jwt.decode(token, ring.keyset(), algorithms=["ES256"]).claims)
    claims |= changes
    claims = {name: value for name, value in claims.items() if value is not None}
    kid, key = ring.signing_key("ES256")
    return jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=["ES256"])
