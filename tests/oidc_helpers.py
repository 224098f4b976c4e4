"""Shared pieces of the OpenID Provider tests: a fresh citizen who can sign in, and a relying party."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from bench.browserless import Browser, SignIn, sign_in
from identity import totp
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.provision import activate_with_totp

PASSWORD = "Một mật khẩu đủ dài 2026"


@dataclass
class Person:
    id_number: str
    password: str
    totp_secret: str
    uses: int = 0

    def code(self) -> str:
        """The next step's code (the enrollment used the current one; ±1 step is accepted): once only."""
        self.uses += 1
        assert self.uses == 1, "a person can sign in once per 30-second step; use another"
        return totp.code_at(self.totp_secret, time.time() + totp.STEP)


async def person(info: StackInfo, citizen: Citizen) -> Person:
    async with info.channel("registry") as registry, info.channel("identity") as identity:
        secret = await activate_with_totp(registry, identity, citizen.id_number, PASSWORD)
    return Person(citizen.id_number, PASSWORD, secret)


def portal_flow(info: StackInfo, name: str = "portal", **kwargs: str) -> SignIn:
    client = info.clients[name]
    scope = kwargs.pop("scope", "openid profile national_id")
    return SignIn(info.oidc_issuer, client["client_id"], client["client_secret"], client["redirect_uris"][0], scope,
                  dict(kwargs))  # fmt: skip


async def signed_in(http: httpx.AsyncClient, flow: SignIn, who: Person) -> tuple[Browser, dict[str, str]]:
    browser = Browser(http)
    return browser, await sign_in(browser, flow, who.id_number, who.password, who.code())
