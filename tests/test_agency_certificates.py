"""Agencies' client certificates from the platform CA (issue 10 item 2; RFC 8705 §2.1.2): ``dinhdanh clients
issue-cert`` for an agency's CSR, and the demo agency the stack registers with one."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.callers import AGENCY_URI_PREFIX
from services.tls import secure_channel, thumbprint
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.test_cli import dinhdanh


def csr_for(key: ec.EllipticCurvePrivateKey, common_name: str = "Sở Tư pháp (thử)") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    builder = builder.add_extension(  # asks for more than it may have: the CA ignores it
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://dinhdanh.gov.vn/service/vault")]),
        critical=False,
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def agency(stack: Stack) -> str:
    code, made = dinhdanh(stack, "clients", "add-agency", "--name", "Sở Tư pháp (thử)", "--purpose",
                          "EMPLOYMENT_BACKGROUND_CHECK", "--scope", "vault.read")  # fmt: skip
    assert code == 0, made
    return str(made["client_id"])


def uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def test_issue_cert_for_an_agency_names_only_its_uri_and_client_auth(stack: Stack, tmp_path: Path) -> None:
    client_id = agency(stack)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "agency.csr").write_bytes(csr_for(key))
    code, issued = dinhdanh(stack, "clients", "issue-cert", client_id, "--csr", str(tmp_path / "agency.csr"))
    assert code == 0, issued
    assert issued["cert"] == str(tmp_path / "agency.pem")
    cert = x509.load_pem_x509_certificate((tmp_path / "agency.pem").read_bytes())
    assert uris(cert) == [AGENCY_URI_PREFIX + client_id]
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == []  # fmt: skip
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # it can never serve
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    ca = x509.load_pem_x509_certificate(stack.ca.ca_cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert issued["tls_client_auth_san_uri"] == AGENCY_URI_PREFIX + client_id
    assert issued["x5t#S256"] == thumbprint(cert)
    code, listed = dinhdanh(stack, "clients", "list")
    mine = next(c for c in listed["clients"] if c["client_id"] == client_id)
    assert mine["tls_client_auth_san_uri"] == AGENCY_URI_PREFIX + client_id
    assert mine["cert_sha256"] == thumbprint(cert)
    out = tmp_path / "elsewhere.pem"
    code, again = dinhdanh(stack, "clients", "issue-cert", client_id, "--csr", str(tmp_path / "agency.csr"),
                           "--out", str(out))  # fmt: skip
    assert (code, again["cert"], out.exists()) == (0, str(out), True)


def test_issue_cert_refuses_a_portal_an_unknown_client_and_a_bad_csr(stack: Stack, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ok.csr").write_bytes(csr_for(key))
    code, portal = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng thử", "--redirect-uri",
                            "https://cong.example/cb")  # fmt: skip
    assert code == 0
    code, refused = dinhdanh(stack, "clients", "issue-cert", portal["client_id"], "--csr", str(tmp_path / "ok.csr"))
    assert code == 1
    assert "only an agency" in refused["error"], refused
    assert not (tmp_path / "ok.pem").exists()
    code, refused = dinhdanh(stack, "clients", "issue-cert", "agency-nobody", "--csr", str(tmp_path / "ok.csr"))
    assert (code, refused["error"]) == (1, "no client agency-nobody")
    client_id = agency(stack)
    der = bytearray(x509.load_pem_x509_csr(csr_for(key)).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the signature no longer verifies: no proof of possession
    forged = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)) + \
        b"-----END CERTIFICATE REQUEST-----\n"  # fmt: skip
    (tmp_path / "forged.csr").write_bytes(forged)
    (tmp_path / "junk.csr").write_bytes(b"not a CSR")
    rsa_free = ec.generate_private_key(ec.SECP256K1())  # a curve the CA does not accept
    (tmp_path / "k1.csr").write_bytes(csr_for(rsa_free))
    for name, words in (("forged", "signature"), ("junk", "CSR"), ("k1", "P-256")):
        code, refused = dinhdanh(stack, "clients", "issue-cert", client_id, "--csr", str(tmp_path / f"{name}.csr"))
        assert code == 1
        assert words in refused["error"], (name, refused)
        assert not (tmp_path / f"{name}.pem").exists()
    code, listed = dinhdanh(stack, "clients", "list")
    mine = next(c for c in listed["clients"] if c["client_id"] == client_id)
    assert mine["tls_client_auth_san_uri"] is None  # nothing recorded for a refused CSR


def test_the_demo_agency_has_a_certificate_for_its_own_key(stack: Stack, info: StackInfo) -> None:
    demo = info.clients["agency_demo"]
    assert set(demo) >= {"client_id", "cert", "key", "ca"}
    assert "client_secret" not in demo  # FAPI 2.0: tls_client_auth with this certificate
    cert = x509.load_pem_x509_certificate(Path(demo["cert"]).read_bytes())
    key = serialization.load_pem_private_key(Path(demo["key"]).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert uris(cert) == [AGENCY_URI_PREFIX + demo["client_id"]]
    assert Path(demo["key"]).stat().st_mode & 0o077 == 0
    _, listed = dinhdanh(stack, "clients", "list")
    mine = next(c for c in listed["clients"] if c["client_id"] == demo["client_id"])
    assert (mine["kind"], mine["cert_sha256"]) == ("agency", thumbprint(cert))
    assert "EMPLOYMENT_BACKGROUND_CHECK" in mine["purposes"]


async def test_the_demo_agency_calls_grpc_with_its_certificate(info: StackInfo) -> None:
    demo = info.clients["agency_demo"]
    channel = secure_channel(info.services["vault"], Path(demo["ca"]), Path(demo["cert"]), Path(demo["key"]),
                             server="vault")  # fmt: skip
    async with channel:  # the vault's TLS accepts the agency's certificate
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
