"""Contract tests of ``consent.pg_store.PostgresConsentStore`` against a real PostgreSQL (consent.storage)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from consent.artefact import ConsentArtefact, Frequency, FrequencyUnit, canonical, draft, sign
from consent.fetch_policy import Allowed, Denied, FetchRequest, Reason, RequestedDocument
from consent.pg_store import PostgresConsentStore
from consent.signing import ConsentKey
from consent.states import Actor, ActorNotAllowed, Event, IllegalTransition, Status
from core.errors import AlreadyExists, DataLoss, InvalidArgument, NotFound, Unavailable
from tests.consent_store.conftest import Database
from vault.documents import DocumentType

AGENCY = "agency-0123456789abcdef"
PURPOSE = "PUBLIC_SERVICE_DOSSIER"
DOCUMENT = uuid.uuid4()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def subject() -> str:
    return secrets.token_hex(16)


def pending(who: str | None = None, **changes: Any) -> ConsentArtefact:
    at = changes.pop("at", None) or now()
    fields: dict[str, Any] = {
        "subject": who or subject(),
        "client_id": AGENCY,
        "purpose": PURPOSE,
        "documents": (DOCUMENT,),
        "document_types": (DocumentType.BIRTH_CERTIFICATE,),
        "start": at,
        "expiry": at + timedelta(days=30),
        "data_life": timedelta(days=90),
        "max_fetches": 10,
        "frequency": Frequency(5, FrequencyUnit.DAY),
        "now": at,
    }
    return draft(**(fields | changes))


def approval(artefact: ConsentArtefact, key: ConsentKey, at: datetime | None = None) -> tuple[ConsentArtefact, str]:
    approved = artefact.approved(at or now())
    return approved, sign(approved, key.private)


async def active(store: PostgresConsentStore, key: ConsentKey, **changes: Any) -> ConsentArtefact:
    artefact = pending(**changes)
    await store.create(artefact, citizen_sub="sub-" + artefact.subject)
    await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now(), approval(artefact, key))
    return artefact


def fetch(artefact: ConsentArtefact, client_id: str = AGENCY, document: uuid.UUID = DOCUMENT) -> FetchRequest:
    return FetchRequest(client_id, artefact.purpose, RequestedDocument(document, DocumentType.OTHER, artefact.subject))


async def test_a_created_consent_reads_back_pending_with_zero_counters(store: PostgresConsentStore) -> None:
    artefact = pending()
    await store.create(artefact, citizen_sub="opaque-sub")
    got = await store.get(artefact.id)
    assert got.artefact == artefact
    assert got.status is Status.PENDING
    assert (got.counters.fetches, got.counters.window_fetches, got.counters.last_fetch) == (0, 0, None)
    assert got.signature == ""
    assert got.citizen_sub == "opaque-sub"
    assert got.canonical == canonical(artefact)
    assert got.status_changed_at == artefact.created_at


async def test_an_id_is_taken_once_and_an_unknown_one_is_not_found(store: PostgresConsentStore) -> None:
    artefact = pending()
    await store.create(artefact)
    with pytest.raises(AlreadyExists):
        await store.create(artefact)
    with pytest.raises(NotFound):
        await store.get(uuid.uuid4())
    with pytest.raises(NotFound):
        await store.transition(uuid.uuid4(), Event.REJECT, Actor.CITIZEN, now())
    with pytest.raises(NotFound):
        await store.charge_fetch(uuid.uuid4(), fetch(artefact), now())


async def test_approval_stores_the_signed_artefact_readable_by_the_vault_and_the_edge(
    store: PostgresConsentStore, key: ConsentKey, vault_pool: asyncpg.Pool, edge_pool: asyncpg.Pool
) -> None:
    artefact = pending()
    await store.create(artefact)
    approved, jws = approval(artefact, key)
    assert await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now(), (approved, jws)) is Status.ACTIVE
    for reader in (store, PostgresConsentStore(vault_pool), PostgresConsentStore(edge_pool)):
        got = await reader.get(artefact.id)
        assert (got.status, got.artefact, got.signature) == (Status.ACTIVE, approved, jws)


async def test_a_grant_on_the_citizens_initiative_is_active_at_once(
    store: PostgresConsentStore, key: ConsentKey
) -> None:
    artefact = pending()
    approved, jws = approval(artefact, key)
    await store.create(artefact, "sub", approved=(approved, jws))
    got = await store.get(artefact.id)
    assert (got.status, got.artefact, got.signature) == (Status.ACTIVE, approved, jws)


async def test_illegal_and_forbidden_transitions_pass_the_domain_errors_and_write_nothing(
    store: PostgresConsentStore, key: ConsentKey
) -> None:
    artefact = pending()
    await store.create(artefact)
    with pytest.raises(IllegalTransition):
        await store.transition(artefact.id, Event.REVOKE, Actor.CITIZEN, now())
    with pytest.raises(ActorNotAllowed):
        await store.transition(artefact.id, Event.APPROVE, Actor.AGENCY, now(), approval(artefact, key))
    with pytest.raises(InvalidArgument):  # an approval needs the approved artefact and its JWS
        await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now())
    other = pending(artefact.subject)
    with pytest.raises(InvalidArgument):  # the JWS of another artefact
        await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now(), approval(other, key))
    stranger = ConsentKey.from_seed(secrets.token_bytes(32))
    with pytest.raises(InvalidArgument):  # signed under a key the platform does not know
        await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now(), approval(artefact, stranger))
    assert (await store.get(artefact.id)).status is Status.PENDING
    assert await store.transition(artefact.id, Event.REJECT, Actor.CITIZEN, now()) is Status.REJECTED
    with pytest.raises(IllegalTransition):
        await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now(), approval(artefact, key))


async def test_pause_resume_revoke(store: PostgresConsentStore, key: ConsentKey) -> None:
    artefact = await active(store, key)
    assert await store.transition(artefact.id, Event.PAUSE, Actor.CITIZEN, now()) is Status.PAUSED
    assert await store.transition(artefact.id, Event.RESUME, Actor.CITIZEN, now()) is Status.ACTIVE
    assert await store.transition(artefact.id, Event.REVOKE, Actor.AGENCY, now()) is Status.REVOKED
    with pytest.raises(IllegalTransition):
        await store.transition(artefact.id, Event.REVOKE, Actor.CITIZEN, now())


async def test_parallel_transitions_end_in_one_legal_outcome(store: PostgresConsentStore, key: ConsentKey) -> None:
    artefact = pending()
    await store.create(artefact)
    attempts = [store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, now(), approval(artefact, key))
                for _ in range(5)] + [store.transition(artefact.id, Event.REJECT, Actor.CITIZEN, now())
                                      for _ in range(5)]  # fmt: skip
    results = await asyncio.gather(*attempts, return_exceptions=True)
    won = [r for r in results if isinstance(r, Status)]
    assert len(won) == 1, results
    assert all(isinstance(r, IllegalTransition) for r in results if not isinstance(r, Status))
    assert (await store.get(artefact.id)).status is won[0]


async def test_a_citizens_listing_is_newest_first_by_status_and_paged(
    store: PostgresConsentStore, key: ConsentKey
) -> None:
    who, start = subject(), now()
    made = []
    for i in range(5):
        artefact = pending(who, at=start + timedelta(seconds=i))
        await store.create(artefact)
        made.append(artefact)
    await store.transition(made[1].id, Event.REJECT, Actor.CITIZEN, now())
    await store.create(pending())  # someone else's
    listed = await store.list_for_subject(who, None, 10)
    assert [c.artefact.id for c in listed] == [a.id for a in reversed(made)]
    assert [c.artefact.id for c in await store.list_for_subject(who, Status.REJECTED, 10)] == [made[1].id]
    first = await store.list_for_subject(who, None, 2)
    last = first[-1].artefact
    second = await store.list_for_subject(who, None, 2, (last.created_at, last.id))
    assert [c.artefact.id for c in first + second] == [a.id for a in reversed(made)][:4]


async def test_a_fetch_is_charged_and_a_denial_writes_nothing(
    store: PostgresConsentStore, key: ConsentKey, vault_pool: asyncpg.Pool
) -> None:
    artefact = await active(store, key)
    vault = PostgresConsentStore(vault_pool)
    at = now()
    decision = await vault.charge_fetch(artefact.id, fetch(artefact), at)
    assert isinstance(decision, Allowed)
    assert (decision.counters.fetches, decision.counters.window_fetches, decision.counters.last_fetch) == (1, 1, at)
    denied = await vault.charge_fetch(artefact.id, fetch(artefact, client_id="agency-other"), at)
    assert denied == Denied(Reason.WRONG_AGENCY)
    assert await vault.charge_fetch(artefact.id, fetch(artefact, document=uuid.uuid4()), at) == Denied(
        Reason.DOCUMENT_NOT_IN_GRANT
    )
    stored = await store.get(artefact.id)
    assert (stored.counters.fetches, stored.counters.window_fetches, stored.counters.last_fetch) == (1, 1, at)
    await store.transition(artefact.id, Event.PAUSE, Actor.CITIZEN, now())
    assert await vault.charge_fetch(artefact.id, fetch(artefact), now()) == Denied(Reason.NOT_ACTIVE)


async def test_concurrent_fetches_never_overspend(
    store: PostgresConsentStore, key: ConsentKey, vault_pool: asyncpg.Pool
) -> None:
    artefact = await active(store, key, max_fetches=5, frequency=Frequency(5, FrequencyUnit.DAY))
    vault = PostgresConsentStore(vault_pool)
    decisions = await asyncio.gather(*(vault.charge_fetch(artefact.id, fetch(artefact), now()) for _ in range(20)))
    assert sum(isinstance(d, Allowed) for d in decisions) == 5
    assert {d for d in decisions if isinstance(d, Denied)} == {Denied(Reason.USES_EXHAUSTED)}
    assert (await store.get(artefact.id)).counters.fetches == 5


async def test_the_frequency_holds_under_concurrency(
    store: PostgresConsentStore, key: ConsentKey, vault_pool: asyncpg.Pool
) -> None:
    artefact = await active(store, key, max_fetches=50, frequency=Frequency(3, FrequencyUnit.DAY))
    vault = PostgresConsentStore(vault_pool)
    decisions = await asyncio.gather(*(vault.charge_fetch(artefact.id, fetch(artefact), now()) for _ in range(10)))
    assert sum(isinstance(d, Allowed) for d in decisions) == 3
    assert {d for d in decisions if isinstance(d, Denied)} == {Denied(Reason.FREQUENCY_EXCEEDED)}


async def test_expire_due_moves_open_consents_past_expiry_only(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool
) -> None:
    at = now()
    soon = at + timedelta(minutes=10)  # expire_due is told the time: a second here was not enough to approve in
    due_pending = pending(at=at, expiry=soon)
    await store.create(due_pending)
    due_active = await active(store, key, at=at, expiry=soon)
    due_paused = await active(store, key, at=at, expiry=soon)
    await store.transition(due_paused.id, Event.PAUSE, Actor.CITIZEN, now())
    due_rejected = pending(at=at, expiry=soon)
    await store.create(due_rejected)
    await store.transition(due_rejected.id, Event.REJECT, Actor.CITIZEN, now())
    later = await active(store, key, at=at)
    expired = set(await store.expire_due(soon, 1000))
    assert {due_pending.id, due_active.id, due_paused.id} <= expired
    assert due_rejected.id not in expired
    assert later.id not in expired
    for artefact in (due_pending, due_active, due_paused):
        got = await store.get(artefact.id)
        assert (got.status, got.status_changed_at) == (Status.EXPIRED, soon)
    assert (await store.get(due_rejected.id)).status is Status.REJECTED
    assert (await store.get(later.id)).status is Status.ACTIVE
    assert await store.expire_due(soon, 1000) == []


async def test_expire_due_takes_at_most_limit(store: PostgresConsentStore) -> None:
    at = now()
    for _ in range(3):
        await store.create(pending(at=at, expiry=at + timedelta(seconds=1)))
    await store.expire_due(at + timedelta(seconds=1), 1000)  # the earlier tests' leftovers
    batch = [pending(at=at, expiry=at + timedelta(seconds=2)) for _ in range(3)]
    for artefact in batch:
        await store.create(artefact)
    assert len(await store.expire_due(at + timedelta(seconds=2), 2)) == 2
    assert len(await store.expire_due(at + timedelta(seconds=2), 2)) == 1


async def _tampered(owner_pool: asyncpg.Pool, consent_id: uuid.UUID, column: str, value: Any) -> None:
    await owner_pool.execute(f"UPDATE consent.consents SET {column} = $2 WHERE id = $1", consent_id, value)  # noqa: S608


async def test_a_stored_artefact_that_no_longer_verifies_is_data_loss(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool, consent_pool: asyncpg.Pool
) -> None:
    widened = await active(store, key)
    raw, widened_jws = (await store.get(widened.id)).canonical, (await store.get(widened.id)).signature
    await _tampered(owner_pool, widened.id, "artefact", raw.replace(b'"max_fetches":10', b'"max_fetches":99'))
    garbled = await active(store, key)
    await _tampered(owner_pool, garbled.id, "artefact", b"{not json")
    resigned = await active(store, key)
    stranger = ConsentKey.from_seed(secrets.token_bytes(32))
    await _tampered(owner_pool, resigned.id, "signature", approval(resigned, stranger)[1])
    other = await active(store, key)
    await _tampered(owner_pool, other.id, "signature", widened_jws)
    unsigned = pending()
    await store.create(unsigned)
    await _tampered(owner_pool, unsigned.id, "artefact", canonical(unsigned.approved(now())))
    fresh = PostgresConsentStore(consent_pool)
    for consent_id in (widened.id, garbled.id, resigned.id, other.id, unsigned.id):
        with pytest.raises(DataLoss):
            await fresh.get(consent_id)
        with pytest.raises(DataLoss):
            await fresh.charge_fetch(consent_id, fetch(widened), now())


async def test_the_vault_may_charge_but_not_change_a_status_and_the_edge_may_only_read(
    store: PostgresConsentStore, key: ConsentKey, vault_pool: asyncpg.Pool, edge_pool: asyncpg.Pool
) -> None:
    artefact = await active(store, key)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await vault_pool.execute("UPDATE consent.consents SET status = 'ACTIVE' WHERE id = $1", artefact.id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await PostgresConsentStore(vault_pool).transition(artefact.id, Event.REVOKE, Actor.AGENCY, now())
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await vault_pool.execute("DELETE FROM consent.consents WHERE id = $1", artefact.id)
    for statement in (
        "UPDATE consent.consents SET fetches = 0 WHERE id = $1",
        "UPDATE consent.consents SET status = 'REVOKED' WHERE id = $1",
        "DELETE FROM consent.consents WHERE id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await edge_pool.execute(statement, artefact.id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await PostgresConsentStore(edge_pool).charge_fetch(artefact.id, fetch(artefact), now())
    assert (await store.get(artefact.id)).status is Status.ACTIVE


async def _queued(owner_pool: asyncpg.Pool, consent_id: uuid.UUID) -> list[tuple[str, int]]:
    rows = await owner_pool.fetch(
        "SELECT status, fetches FROM consent.notifications WHERE consent_id = $1 ORDER BY created_at, status",
        consent_id,
    )
    return [(row["status"], row["fetches"]) for row in rows]


async def test_status_changes_queue_notifications_for_an_agency_with_a_url(
    store: PostgresConsentStore, key: ConsentKey, owner_pool: asyncpg.Pool, vault_pool: asyncpg.Pool
) -> None:
    client = f"agency-{secrets.token_hex(8)}"
    quiet = await active(store, key, client_id=client)
    assert await _queued(owner_pool, quiet.id) == []
    await store.set_notification_url(client, "https://agency.example/consent-events")
    assert await store.notification_url(client) == "https://agency.example/consent-events"
    artefact = pending(client_id=client)
    await store.create(artefact)
    assert await _queued(owner_pool, artefact.id) == [], "a request is no change of status"
    at = now()
    await store.transition(artefact.id, Event.APPROVE, Actor.CITIZEN, at, approval(artefact, key, at))
    await PostgresConsentStore(vault_pool).charge_fetch(artefact.id, fetch(artefact, client_id=client), now())
    with pytest.raises(IllegalTransition):
        await store.transition(artefact.id, Event.RESUME, Actor.CITIZEN, now())
    await store.transition(artefact.id, Event.REVOKE, Actor.CITIZEN, now() + timedelta(seconds=1))
    assert await _queued(owner_pool, artefact.id) == [("ACTIVE", 0), ("REVOKED", 1)]
    granted = pending(client_id=client)
    await store.create(granted, approved=approval(granted, key))
    assert await _queued(owner_pool, granted.id) == [("ACTIVE", 0)]
    await store.set_notification_url(client, "")
    assert await store.notification_url(client) == ""


async def test_an_unreachable_database_is_unavailable(database: Database) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = database.role_dsn("edge").replace(f":{database.server.port}/", f":{port}/")
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=1)
    assert pool is not None
    try:
        with pytest.raises(Unavailable):
            await PostgresConsentStore(pool).get(uuid.uuid4())
    finally:
        await pool.close()


async def test_artefacts_signed_under_an_earlier_key_stay_readable(
    store: PostgresConsentStore, key: ConsentKey, consent_pool: asyncpg.Pool, edge_pool: asyncpg.Pool
) -> None:
    earlier = ConsentKey.from_seed(secrets.token_bytes(32))
    await PostgresConsentStore(consent_pool).publish_key(earlier)
    artefact = pending()
    await store.create(artefact, approved=approval(artefact, earlier))
    for reader in (store, PostgresConsentStore(edge_pool)):
        assert (await reader.get(artefact.id)).status is Status.ACTIVE
    published = {jwk["kid"]: jwk for jwk in await store.public_keys()}
    assert {key.kid, earlier.kid} <= set(published)
    assert all("d" not in jwk for jwk in published.values()), "public halves only"


async def test_replicas_sweeping_at_once_expire_each_consent_once(store: PostgresConsentStore) -> None:
    at = now()
    batch = [pending(at=at, expiry=at + timedelta(seconds=3)) for _ in range(30)]
    for artefact in batch:
        await store.create(artefact)
    sweeps = await asyncio.gather(*(store.expire_due(at + timedelta(seconds=3), 4) for _ in range(12)))
    swept = [consent_id for sweep in sweeps for consent_id in sweep]
    assert len(swept) == len(set(swept)), "no consent expired twice"
    while await store.expire_due(at + timedelta(seconds=3), 100):
        pass
    assert {(await store.get(a.id)).status for a in batch} == {Status.EXPIRED}
