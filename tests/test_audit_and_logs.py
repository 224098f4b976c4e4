"""Every success and failure leaves an audit event; no log or event holds a secret or a full ID number."""

from __future__ import annotations

import asyncpg
import grpc

from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.identity_calls import PASSWORD, activate, password_step, refused


async def test_success_and_failure_are_audited_without_personal_data(
    edge_identity, info: StackInfo, stack: Stack, fresh_citizen: Citizen, source: str
) -> None:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        before = await conn.fetchval("SELECT max(id) FROM audit.events") or 0
        await activate(edge_identity, fresh_citizen, source)
        await password_step(edge_identity, fresh_citizen.id_number, source)
        await refused(
            password_step(edge_identity, fresh_citizen.id_number, source, "wrong-password-1"),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        rows = await conn.fetch("SELECT * FROM audit.events WHERE id > $1 ORDER BY id", before)
    finally:
        await conn.close()
    seen = {(r["action"], r["outcome"]) for r in rows}
    assert {
        ("identity.activate", "success"),
        ("identity.password", "success"),
        ("identity.password", "failure"),
    } <= seen
    assert all(r["actor"] == "service:edge" for r in rows)
    text = " ".join(str(dict(r)) for r in rows)
    assert fresh_citizen.id_number not in text
    assert source not in text
    logs = (stack.var / "logs" / "identity.log").read_text()
    assert fresh_citizen.id_number not in logs
    assert "*********" + fresh_citizen.id_number[-3:] in logs
    assert PASSWORD not in logs
    assert "wrong-password-1" not in logs
