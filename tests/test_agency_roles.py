"""Agencies' roles (issue 11, migration 0016): registered with ``dinhdanh clients add-agency --role``, stored in
``oidc.clients.roles``, listed; an unknown role is refused clearly; a portal has none."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from core.errors import InvalidArgument
from identity.oidc import registration
from identity.oidc.clients import AGENCY_ROLES, Client
from identity.oidc.store import ClientStore
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import register_agency
from tests.test_cli import dinhdanh


def test_the_four_roles() -> None:
    assert AGENCY_ROLES == ("facility", "officer", "procedural_authority", "authorised_by_law")


def test_an_agency_keeps_its_roles_once_each() -> None:
    roles = ["facility", "officer", "facility"]
    client, _ = registration.agency("Bệnh viện A", ["PUBLIC_SERVICE_DOSSIER"], roles=roles)
    assert client.roles == ("facility", "officer")
    bare, _ = registration.agency("Sở B", ["PUBLIC_SERVICE_DOSSIER"])
    assert bare.roles == ()


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown agency roles: judge; known: facility, officer"):
        registration.agency("Sở C", ["PUBLIC_SERVICE_DOSSIER"], roles=["judge"])


def test_a_portal_has_no_roles() -> None:
    client, _ = registration.portal("Cổng D", ["https://portal.example/cb"])
    assert client.roles == ()
    assert Client.__dataclass_fields__["roles"].default == ()


def test_the_cli_registers_and_lists_roles(stack: Stack) -> None:
    roles = ("--role", "procedural_authority", "--role", "authorised_by_law")
    code, agency = dinhdanh(stack, "clients", "add-agency", "--name", "Viện kiểm sát (roles test)", "--purpose",
                            "PUBLIC_SERVICE_DOSSIER", *roles)  # fmt: skip
    assert code == 0, agency
    assert agency["roles"] == ["procedural_authority", "authorised_by_law"]
    code, listed = dinhdanh(stack, "clients", "list")
    assert code == 0
    mine = next(c for c in listed["clients"] if c["client_id"] == agency["client_id"])
    assert mine["roles"] == ["procedural_authority", "authorised_by_law"]
    portals = [c for c in listed["clients"] if c["kind"] == "portal"]
    assert portals
    assert all(c["roles"] == [] for c in portals)


def test_the_cli_refuses_an_unknown_role(stack: Stack) -> None:
    code, refused = dinhdanh(stack, "clients", "add-agency", "--name", "Sở E", "--purpose", "PUBLIC_SERVICE_DOSSIER",
                             "--role", "judge")  # fmt: skip
    assert code == 1
    assert "unknown agency roles: judge" in refused["error"]


async def test_the_store_reads_what_it_wrote(stack: Stack, info: StackInfo, tmp_path: Path) -> None:
    registered = register_agency(stack, "Bệnh viện (roles test)", tmp_path, roles=("facility",))
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        client = await ClientStore(pool).get(registered.client_id)
        assert client is not None
        assert client.roles == ("facility",)
        row = await pool.fetchval("SELECT roles FROM oidc.clients WHERE client_id = $1", registered.client_id)
        assert row == ["facility"]
    finally:
        await pool.close()
