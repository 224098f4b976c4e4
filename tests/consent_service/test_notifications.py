"""Status notifications to an agency's URL on the real stack: a local receiver that fails twice, then accepts;
the Security Event Token verifies with GetSigningKeys' JWKS (RFC 8417, RFC 8935 push)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import pytest

from consent.notifications import CONTENT_TYPE, Backoff, check_url
from consent.signing import SET_TYPE, STATUS_EVENT, verify_jwt
from core.errors import InvalidArgument
from protos.consent.v1 import consent_pb2 as pb
from tests.consent_service.conftest import Agency, Person
from tests.consent_service.test_consent_service import ask, jwks, refused
from tests.waiting import until

MakePerson = Callable[..., Awaitable[Person]]


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server: answers 500 to the first ``failures`` posts, then 202; keeps what it got."""

    failures: int = 2
    posts: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = 500 if len(self.posts) < self.failures else 202
            self.posts.append((headers | {":request": lines[0]}, body, status))
            reason = "Accepted" if status == 202 else "Internal Server Error"
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/consent-events"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    server = await asyncio.start_server(made.handle, "127.0.0.1", 0)
    made.port = server.sockets[0].getsockname()[1]
    async with server:
        yield made
        server.close()


def test_notification_urls_are_https_or_loopback_http() -> None:
    assert check_url("https://agency.example/events", False) == "https://agency.example/events"
    assert check_url("http://127.0.0.1:8080/e", True) == "http://127.0.0.1:8080/e"
    assert check_url("http://localhost/e", True) == "http://localhost/e"
    assert check_url("  ", True) == ""
    for bad, loopback in (
        ("http://agency.example/events", True),
        ("http://127.0.0.1/e", False),
        ("ftp://agency.example/", True),
        ("https://user:secret@agency.example/", True),
        ("https://agency.example/#x", True),
        ("https:///nohost", True),
        ("https://" + "a" * 2000 + ".example/", True),
    ):
        with pytest.raises(InvalidArgument):
            check_url(bad, loopback)


def test_the_back_off_doubles_with_jitter_up_to_its_ceiling() -> None:
    backoff = Backoff(initial=1, maximum=300, give_up=86400)
    assert [backoff.delay(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [backoff.delay(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1, 2]
    assert backoff.delay(30, lambda: 1.0) == 300


async def test_a_status_change_is_posted_until_accepted_and_verifies(
    agency: Agency, portal: Any, people: MakePerson, receiver: Receiver, owner_db: asyncpg.Pool
) -> None:
    for bad in ("http://agency.example/events", "ftp://127.0.0.1/"):
        await refused(agency.stub.SetNotificationUrl(pb.SetNotificationUrlRequest(url=bad), timeout=10),
                      grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    registered = await agency.stub.SetNotificationUrl(pb.SetNotificationUrlRequest(url=receiver.url), timeout=10)
    assert registered.url == receiver.url
    citizen = await people()
    asked = await ask(agency, citizen)
    await portal.Approve(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)

    await until(lambda: any(status == 202 for _, _, status in receiver.posts), "the third post accepted", timeout=30)
    assert [status for _, _, status in receiver.posts] == [500, 500, 202]
    keys = await jwks(agency.stub)
    tokens = [body.decode() for _, body, _ in receiver.posts]
    claims = [verify_jwt(token, keys, SET_TYPE) for token in tokens]
    assert len({c["jti"] for c in claims}) == 1, "every retry carries the same jti"
    headers, _, _ = receiver.posts[-1]
    assert headers[":request"].startswith("POST /consent-events ")
    assert headers["content-type"] == CONTENT_TYPE
    last = claims[-1]
    assert last["aud"] == agency.client_id
    assert last["iss"].startswith("http")
    assert isinstance(last["iat"], int)
    assert last["events"] == {STATUS_EVENT: {"consent_id": asked.id, "status": "ACTIVE", "fetches": 0}}

    async def delivered() -> Any:
        row = await owner_db.fetchrow("SELECT state, attempts FROM consent.notifications WHERE consent_id = $1",
                                      asked.id)  # fmt: skip
        return row if row["state"] != "pending" else None

    row = await until(delivered, "the outbox row marked", timeout=10)
    assert (row["state"], row["attempts"]) == ("delivered", 3)

    await portal.Revoke(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
    await until(lambda: len(receiver.posts) == 4, "the revocation posted", timeout=30)
    revoked = verify_jwt(receiver.posts[-1][1].decode(), keys, SET_TYPE)
    assert revoked["events"][STATUS_EVENT]["status"] == "REVOKED"
    assert revoked["jti"] != last["jti"]

    removed = await agency.stub.SetNotificationUrl(pb.SetNotificationUrlRequest(url=""), timeout=10)
    assert removed.url == ""
    other = await ask(agency, citizen)
    await portal.Reject(pb.ConsentIdRequest(id=other.id), metadata=citizen.metadata, timeout=10)
    queued = await owner_db.fetchval("SELECT count(*) FROM consent.notifications WHERE consent_id = $1", other.id)
    assert queued == 0, "no URL, no notification"
    assert json.loads(json.dumps(revoked))  # plain JSON claims
