"""Mutual-TLS client authentication and certificate-bound access tokens (RFC 8705).

The edge serves its token endpoint a second time on a port that requires a client certificate from the platform
CA (RFC 8705 §5: ``mtls_endpoint_aliases``). The TLS layer has verified the chain; what reaches the provider is
the verified leaf (``PeerCertificate``), through the per-request ``Work`` (work.py).

- ``tls_client_auth`` (§2.1): a client registered with ``tls_client_auth_san_uri`` (§2.1.2; set by
  ``dinhdanh clients issue-cert``) authenticates when the certificate's URI SAN equals it, the certificate is the
  one last issued to it (its ``x5t#S256`` equals the recorded ``cert_sha256``: a reissue retires the previous
  certificate at once, though the CA's signature on it and its URI are still good) and the request names its
  ``client_id`` (§2). A client with no recorded certificate cannot use it. Only over the mTLS port: elsewhere
  there is no certificate.
- Bound tokens (§3): every ``client_credentials`` access token issued over the mTLS port carries
  ``cnf: {"x5t#S256": <thumbprint of that certificate>}`` (§3.1), whatever the client authenticated with, and the
  resource server accepts it only over a connection with the same certificate. An agency gets one only over its
  registered certificate (server.py ``ClientCredentialsGrant``), so a retired certificate gets no new token.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError
from cryptography import x509

from identity.oidc import work
from identity.oidc.clients import Client
from services.tls import thumbprint

TLS_EXTENSION = "tls"  # the ASGI TLS extension (asgiref: specs/tls.html): scope["extensions"]["tls"]
NOT_REGISTERED = (
    "the client certificate is not the registered one: only the certificate last issued to this client"
    " (dinhdanh clients issue-cert) authenticates it (RFC 8705 section 2.1)"
)
NONE_REGISTERED = "no client certificate is registered for this client (RFC 8705 section 2.1.2)"


@dataclass(frozen=True)
class PeerCertificate:
    """The client certificate a mutual-TLS connection presented, verified against the platform CA."""

    cert: x509.Certificate
    x5t_s256: str  # RFC 8705 §3.1
    uris: tuple[str, ...]  # its URI SANs

    @classmethod
    def of(cls, cert: x509.Certificate) -> PeerCertificate:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        except x509.ExtensionNotFound:
            uris = ()
        return cls(cert, thumbprint(cert), uris)

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    def names(self, client: Client) -> bool:
        """The certificate is ``client``'s (RFC 8705 §2.1.2: its URI SAN equals the registered one)."""
        return client.tls_client_auth_san_uri is not None and client.tls_client_auth_san_uri in self.uris

    def is_registered(self, client: Client) -> bool:
        """The certificate is the one recorded for ``client`` (RFC 8705 §2.1.2 and its ``x5t#S256``, §3.1, equal to
        ``cert_sha256``): naming the client is not enough, an earlier certificate names it too."""
        return (
            self.names(client)
            and client.cert_sha256 is not None
            and hmac.compare_digest(client.cert_sha256, self.x5t_s256)
        )


def from_scope(scope: dict[str, Any]) -> PeerCertificate | None:
    """The verified client certificate of an ASGI request (the TLS extension's ``client_cert_chain``: PEM
    strings, the client's own certificate first), or None."""
    chain = ((scope.get("extensions") or {}).get(TLS_EXTENSION) or {}).get("client_cert_chain") or ()
    if not chain:
        return None
    first = chain[0]
    return PeerCertificate.of(x509.load_pem_x509_certificate(first.encode() if isinstance(first, str) else first))


def authenticate_tls_client(query_client: Any, request: Any) -> Client | None:
    """authlib client authentication method ``tls_client_auth`` (RFC 8705 §2.1, §2.1.2): the certificate must be
    the client's registered one. A certificate naming the client that is not (an earlier one, or one the
    registration never recorded) is ``invalid_client`` saying so; authlib tries this method last."""
    peer = work.current().peer
    client_id = request.payload.data.get("client_id")
    if peer is None or not isinstance(client_id, str) or not client_id:
        return None
    client: Client | None = query_client(client_id)
    if client is None or not peer.names(client):
        return None
    if client.cert_sha256 is None:
        raise InvalidClientError(description=NONE_REGISTERED)
    if not peer.is_registered(client):
        raise InvalidClientError(description=NOT_REGISTERED)
    return client
