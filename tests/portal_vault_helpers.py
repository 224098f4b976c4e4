"""Helpers of the demo portal's vault page tests: an agency's delivery, and a portal sign-in over httpx."""

from __future__ import annotations

import httpx

from bench.browserless import Browser, csrf_of
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.oidc_helpers import Person
from tests.vault_helpers import Issuer, deliver


async def issue(stack: Stack, info: StackInfo, issuer: Issuer, id_number: str, reference: str) -> pb.Document:
    """``issuer`` delivers a signed criminal record certificate (``ISSUED_TITLE``) into the citizen's vault."""
    async with httpx.AsyncClient(timeout=20) as http:
        token = await issuer.token(http, info)
    async with channel_as(stack, "vault", "edge") as channel:
        return await deliver(pb_grpc.VaultStub(channel), token, issuer, id_number, reference)


async def vault_session(http: httpx.AsyncClient, info: StackInfo, who: Person) -> tuple[Browser, httpx.Response]:
    """``who`` opens the demo portal's /vault signed out, signs in at the OP (password, TOTP, consent) and is
    sent back there; returns the browser (its cookies) and the /vault page."""
    portal, issuer = info.demo_portal.rstrip("/"), info.oidc_issuer.rstrip("/")
    browser = Browser(http)
    page = await browser.follow("GET", f"{portal}/vault")
    for _ in range(4):
        if str(page.url).startswith(portal):
            break
        if 'name="password"' in page.text:
            fields, path = {"id_number": who.id_number, "password": who.password}, "/login"
        elif 'name="code"' in page.text:
            fields, path = {"code": who.code()}, "/login/totp"
        elif 'name="decision"' in page.text:
            fields, path = {"decision": "allow"}, "/consent"
        else:
            raise AssertionError(f"unexpected page at {page.url}: {page.status_code} {page.text[:300]}")
        page = await browser.follow("POST", f"{issuer}{path}", data={"csrf": csrf_of(page), **fields})
    assert str(page.url) == f"{portal}/vault", (page.url, page.status_code, page.text[:300])
    assert page.status_code == 200, page.text[:300]
    return browser, page
