"""A consent's change and its ``audit.events`` row commit in one transaction, or neither does.

The access log (``audit.events``, which feeds the public transparency log) must be complete: a transition, a
request, an expiry or a charged fetch that stands without its row is a defect. Each test makes the audit insert
fail for real inside PostgreSQL (a trigger that raises, ``tests.consent_store.rejecting``, or a revoked INSERT
privilege) and shows the change did not happen and the caller got ``Unavailable``; and that a change that
succeeds has exactly one row, inserted by the same transaction (its ``audit.events.xid`` is the ``xmin`` of the
consent's row version, migration 0014)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from audit.events import AuditEvent
from consent.artefact import ConsentArtefact
from consent.fetch_policy import Allowed, Decision, Denied, Reason
from consent.pg_store import PostgresConsentStore
from consent.signing import ConsentKey
from consent.states import Actor, Event, IllegalTransition, Status
from core.errors import Unavailable
from tests.consent_store.rejecting import rejecting
from tests.consent_store.test_pg_store import AGENCY, active, approval, fetch, now, pending


def row(artefact: ConsentArtefact, action: str, actor: str = "citizen", reason: str | None = None) -> AuditEvent:
    detail = {"consent_id": str(artefact.id), "client_id": artefact.client_id, "purpose": artefact.purpose}
    if reason is not None:
        detail["reason"] = reason
    return AuditEvent(actor, action, "refused" if reason is not None else "success", artefact.subject, None, detail)


def recorder(artefact: ConsentArtefact, action: str, actor: str = "citizen") -> Any:
    return lambda reason: row(artefact, action, actor, reason)


def fetch_row(artefact: ConsentArtefact) -> Any:
    def made(decision: Decision) -> AuditEvent:
        reason = decision.reason.value if isinstance(decision, Denied) else None
        return row(artefact, "consent.fetch", f"agency:{AGENCY}", reason)

    return made


def expiry_row(due: Any) -> AuditEvent:
    detail = {"consent_id": str(due.consent_id), "client_id": due.client_id, "purpose": due.purpose}
    return AuditEvent("system", "consent.expire", "success", due.subject, None, detail)


async def rows(owner_pool: asyncpg.Pool, consent_id: uuid.UUID) -> list[tuple[str, str, str, str | None]]:
    found = await owner_pool.fetch(
        "SELECT actor, action, outcome, subject, detail FROM audit.events WHERE detail->>'consent_id' = $1 ORDER BY id",
        str(consent_id),
    )
    return [(r["actor"], r["action"], r["outcome"], json.loads(r["detail"]).get("reason")) for r in found]


async def same_transaction(owner_pool: asyncpg.Pool, consent_id: uuid.UUID, action: str) -> bool:
    """The (last) row of ``action`` was inserted by the transaction that wrote the consent's current row."""
    xmin = await owner_pool.fetchval("SELECT xmin::text FROM consent.consents WHERE id = $1", consent_id)
    xid = await owner_pool.fetchval(
        "SELECT xid::text FROM audit.events WHERE detail->>'consent_id' = $1 AND action = $2 ORDER BY id DESC"
        " LIMIT 1",
        str(consent_id), action,
    )  # fmt: skip
    return xid is not None and int(xid) % 2**32 == int(xmin)


async def test_a_request_and_each_transition_commit_with_exactly_one_row(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool
) -> None:
    artefact = pending()
    await store.create(artefact, "sub", audit=row(artefact, "consent.request", f"agency:{AGENCY}"))
    assert await rows(owner_pool, artefact.id) == [(f"agency:{AGENCY}", "consent.request", "success", None)]
    assert await same_transaction(owner_pool, artefact.id, "consent.request")
    at = now()
    approved = approval(artefact, key, at)
    await store.transition(
        artefact.id, Event.APPROVE, Actor.CITIZEN, at, approved, recorder(artefact, "consent.approve")
    )
    assert await same_transaction(owner_pool, artefact.id, "consent.approve")
    await store.transition(artefact.id, Event.PAUSE, Actor.CITIZEN, now(), audit=recorder(artefact, "consent.pause"))
    assert await same_transaction(owner_pool, artefact.id, "consent.pause")
    assert await rows(owner_pool, artefact.id) == [
        (f"agency:{AGENCY}", "consent.request", "success", None),
        ("citizen", "consent.approve", "success", None),
        ("citizen", "consent.pause", "success", None),
    ]
    granted = pending()
    await store.create(granted, "sub", approval(granted, key), audit=row(granted, "consent.grant"))
    assert await rows(owner_pool, granted.id) == [("citizen", "consent.grant", "success", None)]
    assert await same_transaction(owner_pool, granted.id, "consent.grant")


async def test_a_failing_audit_insert_undoes_the_transition(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool
) -> None:
    client = f"agency-{uuid.uuid4().hex[:16]}"
    await store.set_notification_url(client, "https://agency.example/events")
    artefact = await active(store, key, client_id=client)
    queued = await owner_pool.fetchval("SELECT count(*) FROM consent.notifications WHERE consent_id = $1", artefact.id)
    before = await store.get(artefact.id)
    async with rejecting(owner_pool, artefact.id):
        with pytest.raises(Unavailable):
            await store.transition(
                artefact.id, Event.REVOKE, Actor.CITIZEN, now(), audit=recorder(artefact, "consent.revoke")
            )
    after = await store.get(artefact.id)
    assert (after.status, after.status_changed_at) == (Status.ACTIVE, before.status_changed_at), "nothing changed"
    assert await rows(owner_pool, artefact.id) == []
    assert (
        await owner_pool.fetchval("SELECT count(*) FROM consent.notifications WHERE consent_id = $1", artefact.id)
        == queued
    ), "no notification of a change that did not happen"
    await store.transition(artefact.id, Event.REVOKE, Actor.CITIZEN, now(), audit=recorder(artefact, "consent.revoke"))
    assert (await store.get(artefact.id)).status is Status.REVOKED
    assert await rows(owner_pool, artefact.id) == [("citizen", "consent.revoke", "success", None)]
    await store.set_notification_url(client, "")


async def test_a_failing_audit_insert_undoes_the_creation_and_the_approval(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool
) -> None:
    artefact = pending()
    async with rejecting(owner_pool, artefact.id):
        with pytest.raises(Unavailable):
            await store.create(artefact, "sub", audit=row(artefact, "consent.request", f"agency:{AGENCY}"))
        assert await owner_pool.fetchval("SELECT count(*) FROM consent.consents WHERE id = $1", artefact.id) == 0
        granted = pending()
    async with rejecting(owner_pool, granted.id):
        with pytest.raises(Unavailable):
            await store.create(granted, "sub", approval(granted, key), audit=row(granted, "consent.grant"))
    assert await owner_pool.fetchval("SELECT count(*) FROM consent.consents WHERE id = $1", granted.id) == 0
    await store.create(artefact, "sub", audit=row(artefact, "consent.request", f"agency:{AGENCY}"))
    async with rejecting(owner_pool, artefact.id):
        with pytest.raises(Unavailable):
            await store.transition(
                artefact.id, Event.APPROVE, Actor.CITIZEN, now(), approval(artefact, key),
                recorder(artefact, "consent.approve"),
            )  # fmt: skip
    got = await store.get(artefact.id)
    assert (got.status, got.signature, got.artefact.approved_at) == (Status.PENDING, "", None)
    assert await rows(owner_pool, artefact.id) == [(f"agency:{AGENCY}", "consent.request", "success", None)]


async def test_a_refusal_found_under_the_lock_commits_its_refused_row_alone(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool
) -> None:
    artefact = pending()
    await store.create(artefact)
    with pytest.raises(IllegalTransition) as refused:
        await store.transition(
            artefact.id, Event.PAUSE, Actor.CITIZEN, now(), audit=recorder(artefact, "consent.pause")
        )
    assert await rows(owner_pool, artefact.id) == [("citizen", "consent.pause", "refused", refused.value.message)]
    assert (await store.get(artefact.id)).status is Status.PENDING
    async with rejecting(owner_pool, artefact.id):  # a refusal that cannot be logged: Unavailable, still nothing
        with pytest.raises(Unavailable):
            await store.transition(
                artefact.id, Event.PAUSE, Actor.CITIZEN, now(), audit=recorder(artefact, "consent.pause")
            )
    assert len(await rows(owner_pool, artefact.id)) == 1


async def test_the_sweep_commits_one_expire_row_per_expired_consent_or_expires_none(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool
) -> None:
    at = now()
    soon = at + timedelta(seconds=5)
    await store.expire_due(soon, 10_000)  # the earlier tests' leftovers
    due = [pending(at=at, expiry=soon), await active(store, key, at=at, expiry=soon)]
    await store.create(due[0])
    async with rejecting(owner_pool, due[1].id):
        with pytest.raises(Unavailable):
            await store.expire_due(soon, 100, expiry_row)
    assert [(await store.get(a.id)).status for a in due] == [Status.PENDING, Status.ACTIVE], "the batch rolled back"
    assert [await rows(owner_pool, a.id) for a in due] == [[], []]
    assert set(await store.expire_due(soon, 100, expiry_row)) == {a.id for a in due}
    for artefact in due:
        assert (await store.get(artefact.id)).status is Status.EXPIRED
        assert await rows(owner_pool, artefact.id) == [("system", "consent.expire", "success", None)]
        assert await same_transaction(owner_pool, artefact.id, "consent.expire")
    detail = await owner_pool.fetchval(
        "SELECT detail FROM audit.events WHERE detail->>'consent_id' = $1", str(due[0].id)
    )
    assert json.loads(detail) == {"consent_id": str(due[0].id), "client_id": AGENCY, "purpose": due[0].purpose}


async def test_a_charged_fetch_and_its_row_commit_together(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool, vault_pool: asyncpg.Pool
) -> None:
    artefact = await active(store, key)
    vault = PostgresConsentStore(vault_pool)
    assert isinstance(await vault.charge_fetch(artefact.id, fetch(artefact), now(), fetch_row(artefact)), Allowed)
    assert await same_transaction(owner_pool, artefact.id, "consent.fetch")
    denied = await vault.charge_fetch(artefact.id, fetch(artefact, document=uuid.uuid4()), now(), fetch_row(artefact))
    assert denied == Denied(Reason.DOCUMENT_NOT_IN_GRANT)
    assert await rows(owner_pool, artefact.id) == [
        (f"agency:{AGENCY}", "consent.fetch", "success", None),
        (f"agency:{AGENCY}", "consent.fetch", "refused", "DOCUMENT_NOT_IN_GRANT"),
    ]
    async with rejecting(owner_pool, artefact.id):
        with pytest.raises(Unavailable):
            await vault.charge_fetch(artefact.id, fetch(artefact), now(), fetch_row(artefact))
    assert (await store.get(artefact.id)).counters.fetches == 1, "the use was not spent"
    assert len(await rows(owner_pool, artefact.id)) == 2
    assert isinstance(await vault.charge_fetch(artefact.id, fetch(artefact), now()), Allowed), "no audit: as before"
    assert len(await rows(owner_pool, artefact.id)) == 2


async def test_without_the_insert_privilege_nothing_is_charged(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool, vault_pool: asyncpg.Pool
) -> None:
    artefact = await active(store, key)
    vault = PostgresConsentStore(vault_pool)
    await owner_pool.execute("REVOKE INSERT ON audit.events FROM dinhdanh_vault")
    try:
        with pytest.raises(Unavailable):
            await vault.charge_fetch(artefact.id, fetch(artefact), now(), fetch_row(artefact))
    finally:
        await owner_pool.execute("GRANT INSERT ON audit.events TO dinhdanh_vault")
    assert (await store.get(artefact.id)).counters.fetches == 0
    assert await rows(owner_pool, artefact.id) == []
