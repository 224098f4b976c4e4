"""Request ids (issue 12 item 3): from the edge's ``X-Request-Id`` through every gRPC call into each service's logs.

On the session stack: the edge answers the id it took (or minted), and the identity service's log line of the
sign-in attempt it served carries the same ``request_id``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from bench.browserless import Browser, csrf_of, pkce_pair
from core import request_id
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as ipb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.oidc_helpers import portal_flow
from tests.waiting import log_events, until

HEX_ID = re.compile(r"[0-9a-f]{32}")


def identity_log(stack: Stack) -> Path:
    return stack.var / "logs" / "identity.log"


def lines(path: Path) -> int:
    return len(path.read_text(errors="replace").splitlines())


async def login_page(http: httpx.AsyncClient, info: StackInfo) -> tuple[Browser, str]:
    """A browser at the edge's password page, and the page's CSRF token."""
    browser = Browser(http)
    _, challenge = pkce_pair()
    page = await browser.follow("GET", portal_flow(info).authorize_url("s", "n", challenge))
    assert page.status_code == 200, page.text[:300]
    assert 'name="password"' in page.text, page.text[:300]
    return browser, csrf_of(page)


async def wrong_password(http: httpx.AsyncClient, info: StackInfo, who: Citizen, sent: str | None) -> httpx.Response:
    """A password attempt through the edge (identity's VerifyPassword, which logs it), ``X-Request-Id: sent``."""
    browser, csrf = await login_page(http, info)
    headers = {"x-request-id": sent.encode()} if sent is not None else {}
    form = {"csrf": csrf, "id_number": who.id_number, "password": "not the password 1"}
    return await browser.request("POST", f"{info.oidc_issuer}/login", data=form, headers=headers)


async def password_events(stack: Stack, skip: int, wanted: str) -> list[dict[str, object]]:
    return await until(
        lambda: log_events(identity_log(stack), skip, "identity.password", request_id=wanted),
        f"identity's log line with request_id {wanted}",
    )


@pytest.fixture
def citizen(fresh_citizens: Iterator[Citizen]) -> Citizen:
    return next(fresh_citizens)


async def test_the_edge_passes_its_callers_id_to_identitys_log(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, citizen: Citizen
) -> None:
    skip = lines(identity_log(stack))
    reply = await wrong_password(http, info, citizen, "abc-123")
    assert reply.headers["x-request-id"] == "abc-123"
    (event,) = await password_events(stack, skip, "abc-123")
    assert event["outcome"] == "failure"
    assert str(event["account"]).endswith(citizen.id_number[-3:])


@pytest.mark.parametrize("sent", [None, "has spaces and <markup>", "x" * 65, "ok-but\u00e9"])
async def test_a_missing_or_malformed_id_is_replaced(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, citizen: Citizen, sent: str | None
) -> None:
    skip = lines(identity_log(stack))
    headers = {"x-request-id": sent.encode()} if sent is not None else {}
    reply = await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration", headers=headers)
    assert reply.status_code == 200
    assert HEX_ID.fullmatch(reply.headers["x-request-id"])
    reply = await wrong_password(http, info, citizen, sent)
    minted = reply.headers["x-request-id"]
    assert HEX_ID.fullmatch(minted)
    assert minted != sent
    await password_events(stack, skip, minted)


async def test_concurrent_requests_keep_their_own_ids(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, fresh_citizens: Iterator[Citizen]
) -> None:
    first, second = next(fresh_citizens), next(fresh_citizens)
    skip = lines(identity_log(stack))
    sent = [f"req.{n}_{request_id.mint()[:12]}" for n in (1, 2)]
    replies = await asyncio.gather(
        *(wrong_password(http, info, who, rid) for who, rid in zip((first, second), sent, strict=True))
    )
    assert [reply.headers["x-request-id"] for reply in replies] == sent
    for who, rid in zip((first, second), sent, strict=True):
        (event,) = await password_events(stack, skip, rid)
        assert event["account"] == "*" * 9 + who.id_number[-3:]


async def test_a_service_takes_the_callers_metadata_or_mints_one(stack: Stack, citizen: Citizen) -> None:
    skip = lines(identity_log(stack))
    request = ipb.VerifyPasswordRequest(
        id_number=citizen.id_number, password="not the password 2", source="ip:10.9.8.7"
    )
    async with channel_as(stack, "identity", "edge") as channel:
        stub = ipb_grpc.IdentityStub(channel)
        for sent in ("grpc-given.1", "bad id!"):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.VerifyPassword(request, metadata=((request_id.METADATA_KEY, sent),), timeout=20)
    await password_events(stack, skip, "grpc-given.1")
    await until(lambda: len(log_events(identity_log(stack), skip, "identity.password")) >= 2, "two attempts logged")
    events = log_events(identity_log(stack), skip, "identity.password")
    ids = [str(event["request_id"]) for event in events]
    assert "grpc-given.1" in ids
    assert "bad id!" not in ids
    assert any(HEX_ID.fullmatch(rid) for rid in ids)


def test_accept_takes_short_tokens_only() -> None:
    assert request_id.accept("A-z_0.9") == "A-z_0.9"
    assert request_id.accept(b"abc-123") == "abc-123"
    for bad in ("", "a b", "a\nb", "x" * 65, b"\xff", None):
        assert HEX_ID.fullmatch(request_id.accept(bad))
