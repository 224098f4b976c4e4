"""Agency callers of the issuance services: the one check every RPC open to agencies makes.

An agency calls over mutual TLS with the client certificate the platform CA issued it (URI SAN
``spiffe://dinhdanh.gov.vn/agency/<client_id>``, ``core.callers.Caller.kind == "agency"``). The certificate alone
proves only that the CA issued it once, so every call is checked against the registration in ``oidc.clients``
(read on every call: a disabled agency or a reissued certificate takes effect at once):

- the client is registered, of kind ``agency`` and enabled (else PERMISSION_DENIED);
- the certificate is the one last issued to it (RFC 8705 §2.1.2, §3.1: the caller's ``x5t#S256`` equals
  ``oidc.clients.cert_sha256``; an earlier certificate of the same client is UNAUTHENTICATED, as in
  ``consent.service``);
- it is registered with the role the RPC needs (migration 0016, ``identity.oidc.clients.AGENCY_ROLES``: a health
  facility, the Judicial Records Centre's officers, a procedural authority under the Law on Judicial Records 2009
  Art. 7(2), an agency a law allows to obtain Form No. 1 under Art. 7(3)); else PERMISSION_DENIED.

The issuance and health roles may SELECT exactly (client_id, name, kind, jwks, disabled, cert_sha256, roles) of
``oidc.clients`` (migrations 0018, 0019).
"""

from __future__ import annotations

import contextlib
import hmac
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from core.callers import Caller
from core.errors import PermissionDenied, Unauthenticated, Unavailable
from db import outages
from identity.oidc.clients import AGENCY_ROLES

NOT_AN_AGENCY = "only a registered agency's certificate may call this method"
NOT_REGISTERED = "this certificate's client is not a registered, enabled agency"
NOT_ITS_CERTIFICATE = "this certificate is not the agency's registered one"
UNREACHABLE = "the agencies' registrations cannot be read right now; try again"


@dataclass(frozen=True, slots=True)
class Agency:
    """A registered, enabled agency that called with its registered certificate: its id, name and roles."""

    client_id: str
    name: str
    roles: tuple[str, ...] = ()

    def has(self, role: str) -> bool:
        return role in self.roles


class AgencyDirectory(Protocol):
    """Who an agency caller is, as the issuance services need it."""

    async def roles_of(self, caller: Caller) -> Agency:
        """The calling agency, checked (registered, enabled, its certificate), whatever its roles."""
        ...

    async def require(self, caller: Caller, role: str) -> Agency:
        """The calling agency, checked as by ``roles_of``, registered with ``role``."""
        ...


def check_role_name(role: str) -> str:
    """A role an RPC may require: one of ``AGENCY_ROLES`` (another name is a programming error, ValueError)."""
    if role not in AGENCY_ROLES:
        raise ValueError(f"unknown agency role {role!r}; known: {', '.join(AGENCY_ROLES)}")
    return role


def judge(caller: Caller, row: asyncpg.Record | None) -> Agency:
    """The rules above applied to the caller and its registration row (``None``: no such client)."""
    if row is None or row["kind"] != "agency" or row["disabled"]:
        raise PermissionDenied(NOT_REGISTERED)
    registered, presented = row["cert_sha256"], caller.cert_sha256
    if not registered or not presented or not hmac.compare_digest(registered, presented):
        raise Unauthenticated(NOT_ITS_CERTIFICATE)
    return Agency(row["client_id"], row["name"], tuple(row["roles"] or ()))


def _reachable() -> contextlib.AbstractAsyncContextManager[None]:
    """A lost or refused PostgreSQL connection is ``Unavailable`` (``db.outages``)."""
    return outages.reachable(Unavailable, UNREACHABLE)


class PostgresAgencyDirectory:
    """``AgencyDirectory`` over ``oidc.clients``, read on every call (no cache: disabling and reissuing are
    immediate)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def roles_of(self, caller: Caller) -> Agency:
        if caller.kind != "agency":
            raise PermissionDenied(NOT_AN_AGENCY)
        async with _reachable():
            row = await self._pool.fetchrow(
                "SELECT client_id, name, kind, disabled, cert_sha256, roles FROM oidc.clients WHERE client_id = $1",
                caller.name,
            )
        return judge(caller, row)

    async def require(self, caller: Caller, role: str) -> Agency:
        check_role_name(role)
        agency = await self.roles_of(caller)
        if not agency.has(role):
            raise PermissionDenied(f"this agency is not registered as {role}")
        return agency
