"""Throttling sources chosen by the edge, not the client (issue 9, item 3), through a real edge over HTTP.

The tests run a second edge of the session stack that trusts 127.0.0.1 as its proxy, so each test speaks
from its own documentation address (``X-Forwarded-For``) and no test's counters touch another's. A
citizen signs in once from a browser at an address (the edge mints a sealed device id, which becomes
familiar); then an attacker at the same address either rotates invented device cookies across accounts,
or sends 100 wrong passwords without any cookie; the citizen's browser still signs in.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair
from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from registry.generator import generate
from services.edge.http import DEVICE_COOKIE, SESSION_COOKIE
from stack import web
from stack.info import StackInfo
from stack.ports import Ports
from stack.supervisor import Stack
from tests.conftest import SEEDED
from tests.oidc_helpers import PASSWORD, portal_flow

BURST = 5  # new device ids per address at once, on the test edge
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))  # RFC 5737 documentation addresses


@pytest.fixture(scope="module")
async def proxied_edge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A second edge of the stack behind a 'proxy' at 127.0.0.1; its issuer URL."""
    free = Ports.free()  # its own port, and its own metrics port (the stack's edge serves the stack's)
    ports = dataclasses.replace(stack.ports, edge=free.edge, metrics_edge=free.metrics_edge)
    var: Path = tmp_path_factory.mktemp("proxied-edge")
    dsn = stack._service_dsn("edge") if hasattr(stack, "_service_dsn") else StackInfo.load(stack.info_path).postgres_dsn
    extra = {"DINHDANH_TRUSTED_PROXIES": "127.0.0.1/32", "DINHDANH_DEVICE_MINT_BURST": str(BURST)}
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)  # start_edge passes the test process's environment on
    try:
        process = web.start_edge(stack.ca, stack.secrets, ports, dsn, var)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        await web.wait_http(process, f"{web.issuer(ports)}/.well-known/openid-configuration")
        yield web.issuer(ports)
    finally:
        process.stop()


@pytest.fixture
def address() -> str:
    return next(_addresses)


@pytest.fixture
async def db(info: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(info.postgres_dsn)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
def strangers() -> Iterator[str]:
    """Well-formed ID numbers of nobody on record (citizens the stack did not seed)."""
    return iter([c.id_number for c in generate(SEEDED + 200)][SEEDED:])


@dataclasses.dataclass
class At(Browser):
    """A browser whose requests reach the edge through the proxy, from ``address``."""

    address: str = ""

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        kwargs["headers"] = {**kwargs.pop("headers", {}), "x-forwarded-for": self.address}
        return await super().request(method, url, **kwargs)


def _flow(info: StackInfo, issuer: str) -> SignIn:
    return dataclasses.replace(portal_flow(info, scope="openid"), issuer=issuer)


async def _login_page(browser: Browser, flow: SignIn) -> httpx.Response:
    _, challenge = pkce_pair()
    page = await browser.follow("GET", flow.authorize_url("state", "nonce", challenge), stop_at=flow.redirect_uri)
    assert 'name="password"' in page.text, page.text[:300]
    return page


async def _password(browser: Browser, flow: SignIn, csrf: str, id_number: str, password: str) -> httpx.Response:
    return await browser.request(
        "POST", f"{flow.issuer}/login", data={"csrf": csrf, "id_number": id_number, "password": password}
    )


async def _finish(browser: Browser, flow: SignIn, page: httpx.Response) -> dict[str, str]:
    if page.status_code == 200 and 'name="decision"' in page.text:
        page = await browser.follow(
            "POST", f"{flow.issuer}/consent", data={"csrf": csrf_of(page), "decision": "allow"},
            stop_at=flow.redirect_uri,
        )  # fmt: skip
    return callback_params(page)


async def _first_sign_in(info: StackInfo, http: httpx.AsyncClient, flow: SignIn, citizen: Citizen, address: str,
                         identity: grpc.aio.Channel) -> tuple[At, str]:  # fmt: skip
    """Activate ``citizen`` and sign in once from a new browser at ``address``, enrolling TOTP on the way;
    the browser (with its sealed device id) and the TOTP secret."""
    await pb_grpc.IdentityStub(identity).ActivateAccount(
        pb.ActivateAccountRequest(id_number=citizen.id_number, phone=citizen.phone, password=PASSWORD, source="ops"),
        timeout=10,
    )
    browser = At(http, address=address)
    page = await _login_page(browser, flow)
    form = {"csrf": csrf_of(page), "id_number": citizen.id_number, "password": PASSWORD}
    enroll = await browser.follow("POST", f"{flow.issuer}/login", data=form)
    found = re.search(r'<code id="secret">([A-Z2-7]+)</code>', enroll.text)
    assert found, enroll.text[:300]
    secret = found.group(1)
    done = await browser.follow("POST", f"{flow.issuer}/login/enroll", stop_at=flow.redirect_uri,
                                data={"csrf": csrf_of(enroll), "code": totp.code_at(secret)})  # fmt: skip
    assert "code" in await _finish(browser, flow, done)
    return browser, secret


async def _signs_in(browser: At, flow: SignIn, id_number: str, secret: str) -> None:
    """A complete sign-in from ``browser``, its SSO session over but its device id kept (the next step's code:
    the enrollment used the current one)."""
    browser.cookies.pop(SESSION_COOKIE, None)
    page = await _login_page(browser, flow)
    step = await browser.follow("POST", f"{flow.issuer}/login", stop_at=flow.redirect_uri,
                                data={"csrf": csrf_of(page), "id_number": id_number, "password": PASSWORD})  # fmt: skip
    assert 'name="code"' in step.text, step.text[:400]
    code = totp.code_at(secret, time.time() + totp.STEP)
    done = await browser.follow("POST", f"{flow.issuer}/login/totp", data={"csrf": csrf_of(step), "code": code},
                                stop_at=flow.redirect_uri)  # fmt: skip
    assert "code" in await _finish(browser, flow, done)


async def test_a_cookie_rotating_attacker_hits_the_source_wide_wait(
    info: StackInfo, http: httpx.AsyncClient, proxied_edge: str, fresh_citizen: Citizen, address: str,
    strangers: Iterator[str], operator_identity: grpc.aio.Channel,
) -> None:  # fmt: skip
    flow = _flow(info, proxied_edge)
    citizen, secret = await _first_sign_in(info, http, flow, fresh_citizen, address, operator_identity)
    attacker = At(http, address=address)
    csrf = csrf_of(await _login_page(attacker, flow))
    statuses = []
    for _ in range(25):  # one guess on each of 25 accounts, each with a new invented device cookie
        attacker.cookies[DEVICE_COOKIE] = secrets.token_urlsafe(18)
        statuses.append((await _password(attacker, flow, csrf, next(strangers), "a wrong guess 2026")).status_code)
    assert statuses[:20] == [401] * 20  # the source-wide counter's free failures, all on ip:<address>
    assert 429 in statuses[20:], statuses
    await _signs_in(citizen, flow, fresh_citizen.id_number, secret)  # the sealed device is not slowed


async def test_hundred_cookieless_failures_from_the_citizens_address_do_not_lock_the_account(
    info: StackInfo, http: httpx.AsyncClient, proxied_edge: str, fresh_citizen: Citizen, address: str,
    db: asyncpg.Connection, operator_identity: grpc.aio.Channel,
) -> None:  # fmt: skip
    flow = _flow(info, proxied_edge)
    account = fresh_citizen.id_number
    citizen, secret = await _first_sign_in(info, http, flow, fresh_citizen, address, operator_identity)
    attacker = At(http, address=address)
    csrf = csrf_of(await _login_page(attacker, flow))
    statuses = []
    for _ in range(100):
        attacker.cookies.pop(DEVICE_COOKIE, None)  # never a device: the source is the address
        statuses.append((await _password(attacker, flow, csrf, account, "a wrong guess 2026")).status_code)
        await db.execute(  # as if an hour had passed since each failure: the waits never hold the attacker
            "UPDATE identity.throttle SET last_failure = last_failure - interval '1 hour'"
            " WHERE account = $1 OR (account = '*' AND source = ANY($2::text[]))",
            account,
            [f"ip:{address}", "ip:127.0.0.1"],
        )
    assert statuses.count(401) == 50, statuses  # the strangers' pool: 50, then new devices are paused
    assert set(statuses[50:]) == {429}
    failures = await db.fetchval(
        "SELECT failures FROM identity.throttle WHERE account = $1 AND source = '*all'", account
    )
    assert failures == 50
    view = await pb_grpc.IdentityStub(operator_identity).GetAccount(pb.GetAccountRequest(id_number=account))
    assert not view.locked
    remembered = await db.fetch("SELECT source FROM identity.known_sources WHERE account = $1", account)
    kinds = sorted(r["source"].split(":")[0] for r in remembered)
    assert kinds == ["device", "ops"]  # the sealed device (and the activation's source), never the address
    await _signs_in(citizen, flow, account, secret)


async def test_new_device_ids_are_minted_only_so_often_per_address(
    info: StackInfo, http: httpx.AsyncClient, proxied_edge: str, address: str
) -> None:
    flow = _flow(info, proxied_edge)
    minted = []
    for _ in range(BURST + 3):
        browser = At(http, address=address)  # a new browser each time: no cookies
        await _login_page(browser, flow)
        minted.append(DEVICE_COOKIE in browser.cookies)
    assert minted == [True] * BURST + [False] * 3
    elsewhere = At(http, address=next(_addresses))
    await _login_page(elsewhere, flow)
    assert DEVICE_COOKIE in elsewhere.cookies


async def test_forwarded_for_is_ignored_without_trusted_proxies(
    info: StackInfo, http: httpx.AsyncClient, fresh_citizen: Citizen, db: asyncpg.Connection
) -> None:
    """The session's own edge trusts no proxy: a client's X-Forwarded-For never picks its source."""
    flow = portal_flow(info, scope="openid")
    spoofer = At(http, address="192.0.2.77")
    csrf = csrf_of(await _login_page(spoofer, flow))
    spoofer.cookies.pop(DEVICE_COOKIE, None)
    assert (await _password(spoofer, flow, csrf, fresh_citizen.id_number, "a wrong guess 2026")).status_code == 401
    sources = await db.fetch("SELECT source FROM identity.throttle WHERE account = $1", fresh_citizen.id_number)
    assert {r["source"] for r in sources} == {"ip:127.0.0.1", "*all", "*unfamiliar"}
