"""A browser without a browser: cookies, redirects and the login forms, for tests and ``bench sso``.

httpx's cookie jar, like a careful browser's, will not send ``Secure`` cookies over plain http; real
browsers make an exception for ``localhost`` and so does this small jar.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Browser:
    http: httpx.AsyncClient
    cookies: dict[str, str] = field(default_factory=dict)

    def _remember(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers = {**kwargs.pop("headers", {}), **({"cookie": cookie} if cookie else {})}
        response = await self.http.request(method, url, headers=headers, follow_redirects=False, **kwargs)
        self._remember(response)
        return response

    async def follow(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Follow redirects until a page, or a redirect to ``stop_at`` (the client's redirect URI)."""
        stop_at = kwargs.pop("stop_at", None)
        response = await self.request(method, url, **kwargs)
        while response.status_code in (301, 302, 303, 307) and "location" in response.headers:
            target = urljoin(url, response.headers["location"])
            if stop_at and target.startswith(stop_at):
                return response
            url = target
            response = await self.request("GET", url)
        return response


@dataclass
class SignIn:
    """One authorization code + PKCE sign-in of a confidential client, as a relying party makes it."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid profile national_id"
    extra: dict[str, str] = field(default_factory=dict)

    def authorize_url(self, state: str, nonce: str, challenge: str) -> str:
        params = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256", **self.extra,
        }  # fmt: skip
        return f"{self.issuer}/authorize?{urlencode(params)}"

    async def start(self, http: httpx.AsyncClient, state: str, nonce: str, challenge: str) -> str:
        """Where the browser goes first: the authorization URL (bench/fapi.py pushes the request first, RFC 9126)."""
        return self.authorize_url(state, nonce, challenge)

    async def redeem(self, http: httpx.AsyncClient, code: str, verifier: str) -> httpx.Response:
        return await http.post(
            f"{self.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
            auth=(self.client_id, self.client_secret),
        )


def callback_params(response: httpx.Response) -> dict[str, str]:
    location = response.headers.get("location", "")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    if not found:
        raise AssertionError(f"no CSRF field on {page.url}: {page.status_code} {page.text[:300]}")
    return found.group(1)


async def sign_in(browser: Browser, flow: SignIn, id_number: str, password: str, code: str) -> dict[str, str]:
    """Authorize → password → TOTP → consent (if asked) → back at the redirect URI; returns its query."""
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    verifier, challenge = pkce_pair()
    start = await flow.start(browser.http, state, nonce, challenge)
    page = await browser.follow("GET", start, stop_at=flow.redirect_uri)
    if page.status_code == 200 and 'name="password"' in page.text:
        page = await browser.follow(
            "POST", f"{flow.issuer}/login",
            data={"csrf": csrf_of(page), "id_number": id_number, "password": password}, stop_at=flow.redirect_uri,
        )  # fmt: skip
    if page.status_code == 200 and 'name="code"' in page.text:
        page = await browser.follow(
            "POST", f"{flow.issuer}/login/totp", data={"csrf": csrf_of(page), "code": code}, stop_at=flow.redirect_uri
        )
    if page.status_code == 200 and 'name="decision"' in page.text:
        page = await browser.follow(
            "POST",
            f"{flow.issuer}/consent",
            data={"csrf": csrf_of(page), "decision": "allow"},
            stop_at=flow.redirect_uri,
        )
    params = callback_params(page)
    params["_verifier"] = verifier
    params["_state"] = state
    params["_nonce"] = nonce
    return params
