"""The demo agencies ``dinhdanh up`` registers (``stack.json`` ``clients``): the employer-vetting office of issue 10
and one agency per role issue 11 opens RPCs to, each with its own platform-CA certificate that the agency check
(``issuance.agencies``) accepts for its role and only for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509

from core.callers import AGENCY_URI_PREFIX, Caller
from core.errors import PermissionDenied
from issuance.agencies import PostgresAgencyDirectory
from services.tls import thumbprint
from stack.info import StackInfo
from stack.supervisor import Stack

EXPECTED = {
    "officer_demo": ("Trung tâm Lý lịch tư pháp quốc gia — cán bộ (demo)", ["officer"]),
    "facility_demo": ("Bệnh viện Đa khoa (demo)", ["facility"]),
    "authority_demo": ("Viện kiểm sát nhân dân (demo)", ["procedural_authority"]),
    "agency_demo": ("Sở Lao động - Thương binh và Xã hội (demo)", []),
}


@pytest.fixture(scope="module")
async def directory(stack: Stack) -> AsyncIterator[PostgresAgencyDirectory]:
    pool = await asyncpg.create_pool(stack._service_dsn("health"), min_size=1, max_size=1)
    try:
        yield PostgresAgencyDirectory(pool)
    finally:
        await pool.close()


def _caller(entry: dict[str, str]) -> tuple[Caller, x509.Certificate]:
    cert = x509.load_pem_x509_certificate(Path(entry["cert"]).read_bytes())
    return Caller("agency", entry["client_id"], cert_sha256=thumbprint(cert)), cert


@pytest.mark.parametrize("key", sorted(EXPECTED))
async def test_a_demo_agency(info: StackInfo, directory: PostgresAgencyDirectory, key: str) -> None:
    entry = info.clients[key]
    name, roles = EXPECTED[key]
    assert entry["name"] == name
    assert entry["roles"] == roles
    assert entry["client_id"].startswith("agency-")
    assert "client_secret" not in entry  # FAPI 2.0: tls_client_auth with its certificate, no secret
    caller, cert = _caller(entry)
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uris.get_values_for_type(x509.UniformResourceIdentifier) == [AGENCY_URI_PREFIX + entry["client_id"]]
    agency = await directory.roles_of(caller)
    assert (agency.name, list(agency.roles)) == (name, roles)
    for role in roles:
        assert await directory.require(caller, role) == agency
    for other in {"officer", "facility", "procedural_authority", "authorised_by_law"} - set(roles):
        with pytest.raises(PermissionDenied, match=f"not registered as {other}"):
            await directory.require(caller, other)


def test_their_files(stack: Stack, info: StackInfo) -> None:
    for key in EXPECTED:
        entry = info.clients[key]
        assert Path(entry["key"]).stat().st_mode & 0o077 == 0
        assert Path(entry["ca"]) == stack.ca.ca_cert_path
        assert Path(entry["cert"]).exists()


def test_each_has_its_own_certificate(info: StackInfo) -> None:
    prints = {_caller(info.clients[key])[0].cert_sha256 for key in EXPECTED}
    assert len(prints) == len(EXPECTED)


async def test_a_restart_keeps_them(stack: Stack, info: StackInfo) -> None:
    """Registered once: the same clients and certificates come back from a second registration pass."""
    from stack import web

    again = await web.demo_agencies(stack.ca, stack.secrets, info.postgres_dsn)
    for key in EXPECTED:
        assert again[key] == info.clients[key]
