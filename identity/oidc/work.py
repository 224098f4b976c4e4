"""The bridge between authlib's synchronous server and our asyncio stores.

authlib's grants call storage hooks synchronously. Rather than run them in a thread whose hooks block
on the event loop, the provider *loads what the hooks need before the grant runs* (the client, the
refresh token record) and lets the hooks *record the writes* they want (a used code, a rotated
refresh token); the provider performs the writes after the grant returns and may still veto the
response (a code or refresh token used twice in a race). The grant itself runs on the event loop
thread without awaiting, so one ``Work`` per request lives in a context variable.
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from identity.oidc.clients import Client
from identity.oidc.store import RefreshRecord

if TYPE_CHECKING:
    from consent.storage import StoredConsent
    from identity.oidc.authorization_details import ConsentDetail
    from identity.oidc.mtls import PeerCertificate
    from identity.oidc.subjects import Released


@dataclass
class Work:
    clients: dict[str, Client] = field(default_factory=dict)
    refresh: RefreshRecord | None = None
    # writes the grant asked for
    used_code: tuple[str, dt.datetime] | None = None
    new_refresh: RefreshRecord | None = None
    rotated_from: bytes | None = None
    code_id: str | None = None
    revoke_family: RefreshRecord | None = None
    revoke_access: tuple[str, dt.datetime] | None = None
    asked: list[str] = field(default_factory=list)  # the resources the request names (RFC 8707 §2), known ones
    resources: list[str] = field(default_factory=list)  # the resources of the code or token being made
    granted: list[str] = field(default_factory=list)  # the grant's resources, which a new refresh token keeps
    code_claims: dict[str, Any] | None = None
    issued_access: list[tuple[str, dt.datetime]] = field(default_factory=list)  # jti, exp of access tokens made
    assertion: tuple[str, str, dt.datetime] | None = None  # private_key_jwt (client_id, jti, accepted until)
    token: Any = None  # the token a revocation or introspection request names, loaded
    peer: PeerCertificate | None = None  # the verified client certificate (mTLS port only, RFC 8705)
    consent_detail: ConsentDetail | None = None  # the request's RFC 9396 consent detail, parsed
    consent: StoredConsent | None = None  # the artefact it names, loaded (None: unknown)
    granted_detail: dict[str, str] | None = None  # the consent token's authorization_details entry, once allowed
    consent_expiry: dt.datetime | None = None  # the artefact's expiry: the consent token never outlives it
    subject: Released | None = None  # the sub released to the client of the token being made (OIDC Core §8)
    dpop_jkt: str | None = None  # the thumbprint of the token request's verified DPoP proof key (RFC 9449 §5)
    id_token_claims: tuple[str, dict[str, Any]] | None = None  # (code jti, claims asked for in its ID token: §5.5)


_current: ContextVar[Work | None] = ContextVar("oidc_work", default=None)


def current() -> Work:
    work = _current.get()
    if work is None:
        raise RuntimeError("authlib hook called outside a provider request")
    return work


def begin(work: Work) -> object:
    return _current.set(work)


def end(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
