"""The browserless sign-in on the lean load generator: the same requests a browser sends, cheaply.

authorize → login page → password → TOTP page → code (redirect to the client with the code) → token.
"""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.browserless import SignIn, pkce_pair
from bench.loadgen import Connection

CSRF = re.compile(rb'name="csrf" value="([^"]+)"')


class Jar:
    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def take(self, headers: list[tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            if name == b"set-cookie":
                pair = value.split(b";", 1)[0].decode()
                key, _, val = pair.partition("=")
                if val in ('""', "") or b"max-age=0" in value.lower():
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = val

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


def _location(headers: list[tuple[bytes, bytes]]) -> str:
    return next(v.decode() for k, v in headers if k == b"location")


async def sign_in(conn: Connection, flow: SignIn, id_number: str, password: str, code: str) -> dict | None:
    """One complete sign-in; the token response, or None if any step did not go as a browser expects."""
    jar = Jar()

    async def go(method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, list, bytes]:
        status, headers, body = await conn.exchange(conn.request_bytes(method, path, form, cookie=jar.header()))
        jar.take(headers)
        return status, headers, body

    verifier, challenge = pkce_pair()
    url = flow.authorize_url(secrets.token_urlsafe(8), secrets.token_urlsafe(8), challenge)
    status, headers, _ = await go("GET", url.split(flow.issuer, 1)[1])
    if status != 303:
        return None
    status, _, page = await go("GET", _location(headers))
    csrf = CSRF.search(page)
    if status != 200 or not csrf:
        return None
    token = csrf.group(1).decode()
    status, headers, _ = await go("POST", "/login", {"csrf": token, "id_number": id_number, "password": password})
    if status != 303:
        return None
    status, _, page = await go("GET", _location(headers))
    status, headers, _ = await go("POST", "/login/totp", {"csrf": token, "code": code})
    if status != 303:
        return None
    query = parse_qs(urlsplit(_location(headers)).query)
    if "code" not in query:
        return None
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": flow.redirect_uri,
            "code_verifier": verifier}  # fmt: skip
    raw = conn.request_bytes("POST", "/token", form, (flow.client_id, flow.client_secret))
    status, body = await conn.send(raw)
    return json.loads(body) if status == 200 else None


__all__ = ["Jar", "sign_in", "urlencode"]
