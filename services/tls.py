"""Mutual TLS for every gRPC port: credentials from PEM files, and the caller from the peer certificate.

Both ends are checked. The server takes the caller from the client certificate's SPIFFE URI. The client names
the service it means to reach, and the handshake fails unless the server's certificate carries that name
(``grpc.ssl_target_name_override``: the DNS SAN ``<service>`` the platform CA writes beside the SPIFFE URI
``spiffe://dinhdanh.gov.vn/service/<service>``): a certificate of another service, from the same CA, is
refused whatever address the client dialled. Operator certificates name no host and cannot serve.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core import request_id, tracing
from core.callers import Caller


def server_credentials(ca: Path, cert: Path, key: Path) -> grpc.ServerCredentials:
    """TLS that refuses any client without a certificate signed by the platform CA."""
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=ca.read_bytes(),
        require_client_auth=True,
    )


def channel_credentials(ca: Path, cert: Path, key: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(), private_key=key.read_bytes(), certificate_chain=cert.read_bytes()
    )


def secure_channel(address: str, ca: Path, cert: Path, key: Path, *, server: str) -> grpc.aio.Channel:
    """An asyncio channel to the platform service ``server`` at ``address``, presenting this process's
    certificate; a server whose certificate is not ``server``'s is refused at the handshake."""
    options = (*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", server))
    interceptors = [*tracing.client_interceptors(), *request_id.client_interceptors()]
    return grpc.aio.secure_channel(
        address, channel_credentials(ca, cert, key), options=options, interceptors=interceptors or None
    )


CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
)


def caller_from_auth_context(auth: dict[str, list[bytes]]) -> Caller | None:
    """The platform identity in the verified peer certificate (gRPC checked it against the CA)."""
    pems = auth.get("x509_pem_cert")
    if not pems:
        return None
    return _caller_from_pem(pems[0])


@lru_cache(maxsize=256)
def _caller_from_pem(pem: bytes) -> Caller | None:
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        caller = Caller.from_uri(uri)
        if caller is not None:
            return replace(caller, cert_sha256=thumbprint(cert))
    return None


def thumbprint(cert: x509.Certificate) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (no padding) of the SHA-256 of the DER certificate."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
