"""The bearer verifier trusts a signing key only while the OP's key table lists it as live (issue 9, item 4):
a key still in the verifier's cached JWKS stops verifying the moment its ``retire_after`` passes or its row
is removed (``dinhdanh keys revoke``), within one revocation poll."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core.errors import Unauthenticated
from services.bearer import TokenVerifier
from stack.info import StackInfo
from tests.bearer_helpers import AUDIENCE, ISSUER, JwksServer, Signer

WITHIN = 5.0  # seconds: ten polls of 0.1 s and more; a staleness bound, not a speed claim


async def outcome(checking: TokenVerifier, token: str) -> str:
    try:
        await checking.verify(token)
    except Unauthenticated as error:
        return error.message
    return "ok"


async def until(checking: TokenVerifier, token: str, wanted: str) -> str:
    deadline = time.monotonic() + WITHIN
    while not ((seen := await outcome(checking, token)) == wanted or (wanted != "ok" and wanted in seen)):
        assert time.monotonic() < deadline, f"still {seen!r} after {WITHIN} s"
        await asyncio.sleep(0.05)
    return seen


@pytest.fixture
async def pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    opened = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    yield opened
    await opened.close()


async def test_a_key_verifies_only_while_the_key_table_lists_it(pool: asyncpg.Pool) -> None:
    signer = Signer("key-states-test", alg="ES256")
    jwks = JwksServer([signer.jwk])  # the key stays in the JWKS all along: only the table decides
    await jwks.start()
    checking = TokenVerifier(ISSUER, AUDIENCE, jwks.url, pool, poll_interval=0.1)
    try:
        token = signer.mint()
        assert "retired or revoked" in await outcome(checking, token)  # not a key of this OP's table
        await pool.execute(
            "INSERT INTO oidc.signing_keys (kid, alg, sealed_key, public_jwk, state, retire_after)"
            " VALUES ($1, 'ES256', '\\x00', $2::jsonb, 'retired', now() + interval '1 hour')",
            signer.kid, json.dumps(signer.jwk),
        )  # fmt: skip
        assert await until(checking, token, "ok") == "ok"
        assert await outcome(checking, token) == "ok"  # from the cache of verified tokens, checked again
        await pool.execute("UPDATE oidc.signing_keys SET retire_after = now() WHERE kid = $1", signer.kid)
        assert "retired or revoked" in await until(checking, token, "retired or revoked")
        await pool.execute("UPDATE oidc.signing_keys SET retire_after = NULL WHERE kid = $1", signer.kid)
        assert await until(checking, token, "ok") == "ok"
        await pool.execute("DELETE FROM oidc.signing_keys WHERE kid = $1", signer.kid)  # what revoke does
        assert "retired or revoked" in await until(checking, token, "retired or revoked")
    finally:
        await pool.execute("DELETE FROM oidc.signing_keys WHERE kid = $1", signer.kid)
        await checking.stop()
        await jwks.stop()
