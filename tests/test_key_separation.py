"""Key separation (issue 9, item 5): each process of the running stack holds only the key material and the
database privileges its own work needs, so a compromised edge cannot open TOTP secrets or vault keys, and a
compromised vault cannot forge login tickets or read the accounts table."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from core.keys import purposes as p
from core.keys.files import FileKeyProvider
from core.keys.provider import KeyUnavailable
from stack.supervisor import Stack

HOLDS = {
    "edge": {p.OIDC_SUBJECT, p.OIDC_SIGNING_KEY, p.SSO_SESSION, p.LOGIN_FLOW, p.AUTHORIZATION_CODE, p.DEVICE_ID},
    "registry": {p.OIDC_SUBJECT},
    "identity": {p.TOTP_SECRET, p.LOGIN_TICKET, p.AUDIT_PSEUDONYM},
    "vault": {p.OIDC_SUBJECT, p.AUDIT_PSEUDONYM, p.VAULT_OWNER, p.VAULT_MASTER},
}
# What the issue names explicitly, checked apart from the table above so that a wider table cannot hide it.
NEVER = {
    "edge": {p.TOTP_SECRET, p.LOGIN_TICKET, p.VAULT_OWNER, p.VAULT_MASTER, p.AUDIT_PSEUDONYM},
    "vault": {p.TOTP_SECRET, p.LOGIN_TICKET, p.OIDC_SIGNING_KEY, p.SSO_SESSION, p.LOGIN_FLOW, p.AUTHORIZATION_CODE},
    "registry": set(p.SIZES) - {p.OIDC_SUBJECT},
    "identity": {p.VAULT_OWNER, p.VAULT_MASTER, p.OIDC_SIGNING_KEY, p.SSO_SESSION, p.OIDC_SUBJECT, p.DEVICE_ID},
}


def env_of(stack: Stack, process: str) -> dict[str, str]:
    env = stack.services[process].env
    assert env is not None
    return env


@pytest.mark.parametrize("process", sorted(HOLDS))
def test_each_process_is_handed_only_its_own_keys(stack: Stack, process: str) -> None:
    env = env_of(stack, process)
    master = str(stack.secrets.path("identity.key"))  # the single master key of earlier releases
    assert not any(master in value for value in env.values()), "the old master key reaches a process"
    assert "DINHDANH_IDENTITY_KEY_FILE" not in env
    keys = FileKeyProvider.in_folder(Path(env["DINHDANH_KEYS_DIR"]))
    assert keys.purposes == HOLDS[process]
    for purpose in NEVER[process]:
        with pytest.raises(KeyUnavailable, match=purpose):
            keys.key(purpose)
    for other, held in HOLDS.items():  # shared purposes are the same key in every process that holds one
        shared = held & HOLDS[process]
        theirs = FileKeyProvider.in_folder(Path(env_of(stack, other)["DINHDANH_KEYS_DIR"]))
        assert {s: keys.key(s) for s in shared} == {s: theirs.key(s) for s in shared}


REFUSED = [
    ("edge", "SELECT FROM vault.documents"),
    ("edge", "SELECT FROM vault.citizen_keys"),
    ("edge", "SELECT FROM identity.accounts"),
    ("edge", "SELECT FROM registry.citizens"),
    ("registry", "SELECT FROM vault.documents"),
    ("registry", "SELECT FROM identity.accounts"),
    ("registry", "SELECT sealed_key FROM oidc.signing_keys"),
    ("registry", "SELECT FROM oidc.refresh_tokens"),
    ("registry", "DELETE FROM registry.citizens"),
    ("identity", "SELECT FROM vault.citizen_keys"),
    ("identity", "SELECT FROM oidc.clients"),
    ("identity", "SELECT FROM audit.events"),  # the audit trail is appended to, never read back
    ("identity", "DELETE FROM audit.events"),
    ("vault", "SELECT FROM identity.accounts"),
    ("vault", "SELECT sealed_key FROM oidc.signing_keys"),
    ("vault", "SELECT secret_hash FROM oidc.clients"),
    ("vault", "SELECT FROM audit.events"),
    ("vault", "SELECT FROM registry.citizens"),
]
ALLOWED = [
    ("edge", "SELECT FROM oidc.signing_keys"),
    ("registry", "SELECT FROM registry.citizens LIMIT 1"),
    ("registry", "SELECT kid, state, retire_after FROM oidc.signing_keys"),
    ("identity", "SELECT FROM identity.accounts LIMIT 1"),
    ("vault", "SELECT FROM vault.documents LIMIT 1"),
    ("vault", "SELECT jti FROM oidc.revoked_tokens LIMIT 1"),
]


@pytest.mark.parametrize(("process", "statement"), REFUSED)
async def test_a_process_database_role_cannot_reach_other_schemas(stack: Stack, process: str, statement: str) -> None:
    connection = await asyncpg.connect(env_of(stack, process)["DINHDANH_POSTGRES_DSN"])
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.mark.parametrize(("process", "statement"), ALLOWED)
async def test_a_process_database_role_reaches_its_own(stack: Stack, process: str, statement: str) -> None:
    connection = await asyncpg.connect(env_of(stack, process)["DINHDANH_POSTGRES_DSN"])
    try:
        await connection.execute(statement)
        assert await connection.fetchval("SELECT current_user") == f"dinhdanh_{process}"
    finally:
        await connection.close()
