"""``issuance.agencies``: the one check of an agency caller (registered, enabled, its registered certificate, the
role an RPC needs), against the real PostgreSQL with the issuance service's own role (migration 0018's grant)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509

from core.callers import Caller
from core.errors import PermissionDenied, Unauthenticated
from issuance.agencies import Agency, PostgresAgencyDirectory
from services.tls import thumbprint
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import register_agency
from tests.consent_agency_helpers import DemoAgency
from tests.test_cli import dinhdanh


def _caller(agency: DemoAgency) -> Caller:
    cert = x509.load_pem_x509_certificate(agency.cert.read_bytes())
    return Caller("agency", agency.client_id, cert_sha256=thumbprint(cert))


@pytest.fixture(scope="module")
async def directory(stack: Stack) -> AsyncIterator[PostgresAgencyDirectory]:
    pool = await asyncpg.create_pool(stack._service_dsn("issuance"), min_size=1, max_size=2)
    try:
        yield PostgresAgencyDirectory(pool)
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def officer(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> DemoAgency:
    return register_agency(stack, "Trung tâm LLTP (agencies test)", tmp_path_factory.mktemp("officer"),
                           roles=("officer", "authorised_by_law"))  # fmt: skip


async def test_a_registered_agency_with_the_role(directory: PostgresAgencyDirectory, officer: DemoAgency) -> None:
    agency = await directory.require(_caller(officer), "officer")
    assert agency == Agency(officer.client_id, "Trung tâm LLTP (agencies test)", ("officer", "authorised_by_law"))
    assert await directory.roles_of(_caller(officer)) == agency


async def test_without_the_role(directory: PostgresAgencyDirectory, officer: DemoAgency) -> None:
    with pytest.raises(PermissionDenied, match="this agency is not registered as facility"):
        await directory.require(_caller(officer), "facility")


async def test_an_agency_without_roles(directory: PostgresAgencyDirectory, stack: Stack, tmp_path: Path) -> None:
    bare = register_agency(stack, "Sở không vai trò", tmp_path)
    assert (await directory.roles_of(_caller(bare))).roles == ()
    with pytest.raises(PermissionDenied, match="not registered as procedural_authority"):
        await directory.require(_caller(bare), "procedural_authority")


async def test_another_certificate_of_the_same_client(directory: PostgresAgencyDirectory, officer: DemoAgency) -> None:
    stale = Caller("agency", officer.client_id, cert_sha256="A" * 43)
    with pytest.raises(Unauthenticated, match="not the agency's registered one"):
        await directory.require(stale, "officer")
    with pytest.raises(Unauthenticated):
        await directory.roles_of(Caller("agency", officer.client_id))


async def test_not_an_agency(directory: PostgresAgencyDirectory, info: StackInfo) -> None:
    for caller in (Caller("service", "vault"), Caller("operator", "operator")):
        with pytest.raises(PermissionDenied, match="only a registered agency"):
            await directory.require(caller, "officer")
    portal = info.clients["portal"]["client_id"]
    with pytest.raises(PermissionDenied, match="not a registered, enabled agency"):
        await directory.require(Caller("agency", portal, cert_sha256="A" * 43), "officer")
    with pytest.raises(PermissionDenied, match="not a registered, enabled agency"):
        await directory.require(Caller("agency", "agency-unknown", cert_sha256="A" * 43), "officer")


async def test_a_disabled_agency(directory: PostgresAgencyDirectory, stack: Stack, tmp_path: Path) -> None:
    gone = register_agency(stack, "Bệnh viện đã ngừng", tmp_path, roles=("facility",))
    assert (await directory.require(_caller(gone), "facility")).client_id == gone.client_id
    code, _ = dinhdanh(stack, "clients", "disable", gone.client_id)
    assert code == 0
    with pytest.raises(PermissionDenied, match="not a registered, enabled agency"):
        await directory.require(_caller(gone), "facility")


async def test_an_unknown_role_is_a_programming_error(directory: PostgresAgencyDirectory, officer: DemoAgency) -> None:
    with pytest.raises(ValueError, match="judge"):
        await directory.require(_caller(officer), "judge")
