"""Status notifications to agencies: a transactional outbox and its sender (issue 10, item 4).

Every status change of a consent whose agency registered a notification URL queues one row in
``consent.notifications`` in the transaction of the change (``consent.pg_store``), so a notification exists
if and only if the change committed. The ``Sender`` takes due rows and POSTs each as a Security Event Token
(RFC 8417: ``typ: secevent+jwt``, claims ``{iss, iat, jti, aud, events}``, ``consent.signing``) in the push
delivery of RFC 8935 §2: ``Content-Type: application/secevent+jwt``, the SET as the body; ``202 Accepted``
(or ``200``) is success, anything else (another status, a timeout, a refused connection) is retried.

- **At least once**: a row is claimed with a lease (its ``next_attempt_at`` pushed forward in the claiming
  statement, rows ``FOR UPDATE SKIP LOCKED``, so several replicas never take the same row at once); a sender
  that dies mid-POST leaves the row to be taken again once the lease ends. The ``jti`` (the row's id) is the
  same on every attempt, so a receiver drops duplicates by it (RFC 8935 §2.3 leaves that to it).
- **Order**: a consent's notifications go out one at a time, oldest first (a later change waits for the
  earlier one to be delivered or given up), so a receiver never sees ACTIVE after REVOKED.
- **Back-off**: exponential with "equal jitter": the n-th retry waits ``d/2 + random(0, d/2)`` with
  ``d = min(max_backoff, initial × 2^(n−1))`` (1 s, 2 s, 4 s … up to 5 min by default); after ``give_up``
  (24 h) a notification is marked failed. The agency can always poll ``GetConsentStatus``.

Notification URLs (``check_url``): ``https`` only, with a host, no credentials nor fragment; ``http`` only to
``127.0.0.1``, ``::1`` or ``localhost`` when ``loopback_http`` (the local stack; off in production).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx

from consent.pg_store import reachable
from consent.signing import ConsentKey
from consent.states import Status
from core import logs
from core.errors import InvalidArgument

log = logs.get("consent.notifications")

CONTENT_TYPE = "application/secevent+jwt"  # RFC 8417 §7.2, RFC 8935 §2
SUCCESS = frozenset({200, 202})
MAX_URL = 2000
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def check_url(url: str, loopback_http: bool) -> str:
    """The URL to register ('' removes), or INVALID_ARGUMENT saying what is wrong with it."""
    url = url.strip()
    if not url:
        return ""
    if len(url) > MAX_URL:
        raise InvalidArgument(f"a notification URL has at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidArgument("the notification URL does not parse") from None
    del port
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidArgument("the notification URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("the notification URL must not carry credentials")
    if parts.fragment:
        raise InvalidArgument("the notification URL must not have a fragment")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and loopback_http and host in LOOPBACK:
        return url
    raise InvalidArgument("a notification URL must use https (http only to 127.0.0.1 or localhost on the local stack)")


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 300.0
    give_up: float = 86400.0

    def delay(self, attempts: int, rnd: Callable[[], float] = random.random) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones (equal jitter)."""
        ceiling = min(self.maximum, self.initial * 2 ** max(0, attempts - 1))
        return ceiling / 2 + rnd() * ceiling / 2


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed notification: what to send and where (``url`` '' when the agency removed its URL)."""

    id: uuid.UUID
    consent_id: uuid.UUID
    client_id: str
    status: Status
    fetches: int
    created_at: datetime
    attempts: int  # including this one
    url: str


def _due(r: asyncpg.Record) -> Due:
    return Due(r["id"], r["consent_id"], r["client_id"], Status(r["status"]), r["fetches"], r["created_at"],
               r["attempts"], r["url"] or "")  # fmt: skip


class PostgresOutbox:
    """``consent.notifications``: claim due rows under a lease, then record the outcome."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Due]:
        async with reachable():
            rows = await self._pool.fetch(
                "UPDATE consent.notifications n SET next_attempt_at = $2, attempts = n.attempts + 1"
                " FROM (SELECT id FROM consent.notifications o WHERE o.state = 'pending' AND o.next_attempt_at <= $1"
                "       AND NOT EXISTS (SELECT 1 FROM consent.notifications e WHERE e.consent_id = o.consent_id"
                "                       AND e.state = 'pending' AND (e.created_at, e.id) < (o.created_at, o.id))"
                "       ORDER BY o.next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due"
                " WHERE n.id = due.id RETURNING n.id, n.consent_id, n.client_id, n.status, n.fetches, n.created_at,"
                " n.attempts, (SELECT url FROM consent.notification_urls u WHERE u.client_id = n.client_id) AS url",
                now, now + lease, limit,
            )  # fmt: skip
        return [
            Due(
                r["id"],
                r["consent_id"],
                r["client_id"],
                Status(r["status"]),
                r["fetches"],
                r["created_at"],
                r["attempts"],
                r["url"] or "",
            )
            for r in rows
        ]

    async def delivered(self, notification_id: uuid.UUID, now: datetime) -> None:
        async with reachable():
            await self._pool.execute(
                "UPDATE consent.notifications SET state = 'delivered', finished_at = $2, last_error = ''"
                " WHERE id = $1",
                notification_id, now,
            )  # fmt: skip

    async def retry(self, notification_id: uuid.UUID, at: datetime, error: str) -> None:
        async with reachable():
            await self._pool.execute(
                "UPDATE consent.notifications SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
                notification_id, at, error[:500],
            )  # fmt: skip

    async def failed(self, notification_id: uuid.UUID, now: datetime, error: str) -> None:
        async with reachable():
            await self._pool.execute(
                "UPDATE consent.notifications SET state = 'failed', finished_at = $2, last_error = $3 WHERE id = $1",
                notification_id, now, error[:500],
            )  # fmt: skip


class Sender:
    """Sends due notifications (see the module docstring); one ``send_due`` is one round."""

    def __init__(
        self,
        outbox: PostgresOutbox,
        key: ConsentKey,
        issuer: str,
        http: httpx.AsyncClient,
        backoff: Backoff = Backoff(),
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._outbox = outbox
        self._key = key
        self._issuer = issuer
        self._http = http
        self._backoff = backoff
        self._batch = batch
        self._lease = lease
        self._clock = clock

    async def send_due(self) -> int:
        """Claim and send one batch; the number delivered."""
        due = await self._outbox.claim(self._clock(), self._batch, self._lease)
        results = await asyncio.gather(*(self._send(item) for item in due))
        return sum(results)

    async def _send(self, item: Due) -> bool:
        now = self._clock()
        if not item.url:
            await self._outbox.failed(item.id, now, "the agency has no notification URL any more")
            return False
        token = self._key.status_event(
            self._issuer, item.id, item.client_id, item.consent_id, item.status, item.fetches, now
        )
        try:
            reply = await self._http.post(
                item.url, content=token, headers={"Content-Type": CONTENT_TYPE, "Accept": "application/json"}
            )
            error = "" if reply.status_code in SUCCESS else f"HTTP {reply.status_code}"
        except httpx.HTTPError as failure:
            error = type(failure).__name__
        if not error:
            await self._outbox.delivered(item.id, self._clock())
            log.info("consent.notification_delivered", notification=str(item.id), client_id=item.client_id,
                     attempts=item.attempts)  # fmt: skip
            return True
        if (now - item.created_at).total_seconds() >= self._backoff.give_up:
            await self._outbox.failed(item.id, now, error)
            log.warning("consent.notification_given_up", notification=str(item.id), client_id=item.client_id,
                        attempts=item.attempts, error=error)  # fmt: skip
            return False
        wait = self._backoff.delay(item.attempts)
        await self._outbox.retry(item.id, now + timedelta(seconds=wait), error)
        log.info("consent.notification_retry", notification=str(item.id), client_id=item.client_id,
                 attempts=item.attempts, error=error, wait=round(wait, 2))  # fmt: skip
        return False

    async def run_forever(self, interval: float) -> None:
        """A round every ``interval`` seconds; errors are logged, never fatal."""
        while True:
            try:
                await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a database outage: try again next round
                log.warning("consent.notification_round_failed", error=type(error).__name__)
            await asyncio.sleep(interval)
