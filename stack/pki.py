"""The platform CA and per-service certificates for mutual TLS.

Every certificate carries a SPIFFE-style URI SAN (``spiffe://dinhdanh.gov.vn/service/<name>`` or
``…/operator/<name>``) that the transport reads as the caller's identity. A service certificate also names
the DNS SAN ``<name>``, the name its clients check (services/tls.py: a client dialling ``registry`` refuses
any other certificate), plus ``localhost`` and 127.0.0.1 for the health probes. An operator certificate
names no host and is for client authentication only, so it can never pose as a service. Keys are ECDSA P-256.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.callers import AGENCY_URI_PREFIX, OPERATOR_URI_PREFIX, SERVICE_URI_PREFIX

CA_NAME = "Dinhdanh Platform CA"
VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True, slots=True)
class CertPaths:
    ca: Path
    cert: Path
    key: Path

    def as_dict(self, relative_to: Path | None = None) -> dict[str, str]:
        def show(p: Path) -> str:
            return str(p.relative_to(relative_to)) if relative_to else str(p)

        return {"ca": show(self.ca), "cert": show(self.cert), "key": show(self.key)}


class PlatformCA:
    """A CA kept in one folder: ``ca.pem``, ``ca.key`` and ``<name>.pem``/``<name>.key`` per identity."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def ca_cert_path(self) -> Path:
        return self.folder / "ca.pem"

    def ensure(self) -> None:
        """Create the CA on first use; an existing one is kept."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.ca_cert_path.exists():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write_key(self.folder / "ca.key", key)
        self.ca_cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, operator: bool = False, hosts: tuple[str, ...] = ()) -> CertPaths:
        """Issue (once) the certificate of service or operator ``name``; return its paths."""
        paths = CertPaths(self.ca_cert_path, self.folder / f"{name}.pem", self.folder / f"{name}.key")
        if paths.cert.exists() and paths.key.exists():
            return paths
        ca_key = serialization.load_pem_private_key((self.folder / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        uri = (OPERATOR_URI_PREFIX if operator else SERVICE_URI_PREFIX) + name
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
        if not operator:
            sans.extend(x509.DNSName(host) for host in (name, "localhost", *hosts))
            sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if operator else [ExtendedKeyUsageOID.SERVER_AUTH,
                                                                      ExtendedKeyUsageOID.CLIENT_AUTH]  # fmt: skip
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(paths.key, key)
        paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return paths

    def sign_agency_csr(self, client_id: str, csr_pem: bytes, validity: dt.timedelta = VALIDITY) -> bytes:
        """An agency's client certificate (PEM) for the key of ``csr_pem``: URI SAN
        ``spiffe://dinhdanh.gov.vn/agency/<client_id>``, client authentication only (it can never serve). The
        CSR's signature must verify (proof of possession); its requested names are ignored: the CA decides."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        public = csr.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in ("secp256r1", "secp384r1"):
            raise ValueError("the CSR's key must be ECDSA P-256 or P-384")
        ca_key = serialization.load_pem_private_key((self.folder / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        now = dt.datetime.now(dt.UTC)
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(AGENCY_URI_PREFIX + client_id)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)]))
            .issuer_name(ca_cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
