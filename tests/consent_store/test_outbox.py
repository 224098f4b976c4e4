"""The notification outbox on a real PostgreSQL: replicas never claim the same row, a consent's notifications
go out in order, leases expire, retries wait, old ones are given up (consent.notifications)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from consent.notifications import Backoff, PostgresOutbox, Sender
from consent.pg_store import PostgresConsentStore
from consent.signing import ConsentKey
from consent.states import Actor, Event
from tests.consent_store.test_pg_store import active, now, pending

LEASE = timedelta(minutes=2)


async def _agency(store: PostgresConsentStore, url: str = "https://agency.example/events") -> str:
    client = f"agency-{secrets.token_hex(8)}"
    await store.set_notification_url(client, url)
    return client


async def _states(owner_pool: asyncpg.Pool, consent_id: uuid.UUID) -> list[tuple[str, str, int]]:
    rows = await owner_pool.fetch(
        "SELECT status, state, attempts FROM consent.notifications WHERE consent_id = $1 ORDER BY created_at",
        consent_id,
    )
    return [(r["status"], r["state"], r["attempts"]) for r in rows]


async def test_replicas_claim_disjoint_rows(
    store: PostgresConsentStore, key: ConsentKey, consent_pool: asyncpg.Pool
) -> None:
    client = await _agency(store)
    made = [await active(store, key, client_id=client) for _ in range(12)]
    far = datetime.now(UTC) + timedelta(days=1)  # every row is due then, also the other tests' leftovers
    outboxes = [PostgresOutbox(consent_pool) for _ in range(4)]
    claims = await asyncio.gather(*(outbox.claim(far, 5, LEASE) for outbox in outboxes))
    ids = [item.id for batch in claims for item in batch]
    assert len(ids) == len(set(ids)), "no row claimed twice"
    mine = {item.consent_id for batch in claims for item in batch if item.client_id == client}
    assert mine <= {a.id for a in made}
    again = await PostgresOutbox(consent_pool).claim(far, 1000, LEASE)
    assert not {item.id for item in again} & set(ids), "a claimed row waits for its lease to end"
    later = await PostgresOutbox(consent_pool).claim(far + LEASE + timedelta(seconds=1), 1000, LEASE)
    assert set(ids) <= {item.id for item in later}, "after the lease, another replica takes it again"


async def test_a_consents_notifications_go_out_in_order(
    store: PostgresConsentStore, key: ConsentKey, consent_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    client = await _agency(store)
    artefact = await active(store, key, client_id=client)
    await store.transition(artefact.id, Event.PAUSE, Actor.CITIZEN, now() + timedelta(seconds=1))
    await store.transition(artefact.id, Event.REVOKE, Actor.CITIZEN, now() + timedelta(seconds=2))
    outbox = PostgresOutbox(consent_pool)
    at = datetime.now(UTC) + timedelta(days=2)
    seen = []
    for step in range(3):
        batch = [
            item for item in await outbox.claim(at + step * (LEASE * 2), 1000, LEASE) if item.consent_id == artefact.id
        ]
        assert len(batch) == 1, batch
        seen.append(batch[0].status.value)
        await outbox.delivered(batch[0].id, at)
    assert seen == ["ACTIVE", "PAUSED", "REVOKED"]
    assert [s for _, s, _ in await _states(owner_pool, artefact.id)] == ["delivered"] * 3


class Refusing(httpx.AsyncBaseTransport):
    """An agency endpoint that answers 503 to everything (no network needed)."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(503)


async def test_failures_are_retried_later_and_given_up_after_the_deadline(
    store: PostgresConsentStore, key: ConsentKey, consent_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    await owner_pool.execute("UPDATE consent.notifications SET state = 'failed' WHERE state = 'pending'")  # isolation
    client = await _agency(store)
    artefact = await active(store, key, client_id=client)
    transport = Refusing()
    clock = [datetime.now(UTC)]
    async with httpx.AsyncClient(transport=transport) as http:
        sender = Sender(PostgresOutbox(consent_pool), key, "https://id.example", http,
                        Backoff(initial=10, maximum=40, give_up=100), clock=lambda: clock[0])  # fmt: skip
        assert await sender.send_due() == 0
        assert transport.calls == 1
        row = await owner_pool.fetchrow(
            "SELECT next_attempt_at, last_error FROM consent.notifications WHERE consent_id = $1", artefact.id
        )
        wait = (row["next_attempt_at"] - clock[0]).total_seconds()
        assert 5 <= wait <= 10, wait  # the first retry after 10 s with equal jitter
        assert row["last_error"] == "HTTP 503"
        assert await sender.send_due() == 0
        assert transport.calls == 1, "not due yet"
        clock[0] += timedelta(seconds=101)
        await sender.send_due()
        assert transport.calls == 2
    assert await _states(owner_pool, artefact.id) == [("ACTIVE", "failed", 2)]


async def test_a_removed_url_gives_the_notification_up(
    store: PostgresConsentStore, key: ConsentKey, consent_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    await owner_pool.execute("UPDATE consent.notifications SET state = 'failed' WHERE state = 'pending'")
    client = await _agency(store)
    artefact = pending(client_id=client)
    await store.create(artefact)
    await store.transition(artefact.id, Event.REJECT, Actor.CITIZEN, now())
    await store.set_notification_url(client, "")
    transport = Refusing()
    async with httpx.AsyncClient(transport=transport) as http:
        await Sender(PostgresOutbox(consent_pool), key, "https://id.example", http).send_due()
    assert transport.calls == 0
    assert await _states(owner_pool, artefact.id) == [("REJECTED", "failed", 1)]
