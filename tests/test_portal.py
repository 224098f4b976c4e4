"""The demo portal (relying party) without the platform: in-process, against a small fake OpenID Provider.

The portal runs in-process (httpx's ASGITransport); its own calls to the OP (discovery, token, keys,
userinfo) go over HTTP to a fake OP served by uvicorn on a free port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from portal.app import create_app
from portal.settings import PortalSettings

PORTAL = "http://portal.test"
CLIENT_ID = "portal-test"
CLIENT_SECRET = "s3cret-portal-test"
CITIZEN = {
    "sub": "pairwise-sub-1",
    "name": "Nguyễn Thị Minh Khai",
    "national_id": "001190012345",
    "birthdate": "1990-05-17",
    "gender": "female",
    "address": {"formatted": "12 Hàng Bài, Phường Hoàn Kiếm, Thành phố Hà Nội"},
    "phone_number": "+84912345678",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FakeOP:
    """Just enough of an OpenID Provider: code flow, PKCE S256, client_secret_basic, ES256 ID tokens."""

    issuer: str
    iss_in_response: str | None = None  # the ``iss`` it puts in authorization responses (default: its own)
    advertise_iss: bool = True
    audience: str = CLIENT_ID  # the ID token's aud
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", {"kid": "k1", "alg": "ES256"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
                Route("/userinfo", self.userinfo),
            ]
        )

    async def discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "end_session_endpoint": f"{self.issuer}/logout",
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": self.advertise_iss,
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID
        assert q["response_type"] == "code"
        assert q["redirect_uri"] == f"{PORTAL}/callback"
        assert q["code_challenge_method"] == "S256"
        assert "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]}
        params = {"code": code, "state": q["state"]}
        iss = self.issuer if self.iss_in_response is None else self.iss_in_response
        if iss:
            params["iss"] = iss
        return RedirectResponse(str(httpx.URL(q["redirect_uri"], params=params)), status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        assert scheme == "Basic"
        assert base64.b64decode(credentials).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"
        form = await request.form()
        grant = self.codes.pop(str(form["code"]), None)
        if grant is None or form["redirect_uri"] != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = str(form["code_verifier"]).encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + 300, "nonce": grant["nonce"]}
        claims |= {"sub": CITIZEN["sub"], "name": CITIZEN["name"], "acr": "2"}
        id_token = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, self.key)
        body = {"access_token": "at-" + secrets.token_urlsafe(8), "token_type": "Bearer", "expires_in": 300}
        return JSONResponse(body | {"id_token": id_token}, headers={"cache-control": "no-store"})

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def userinfo(self, request: Request) -> Response:
        assert request.headers["authorization"].startswith("Bearer at-")
        return JSONResponse(CITIZEN)


@asynccontextmanager
async def serving(app: Starlette, port: int) -> AsyncIterator[None]:
    """``app`` served by uvicorn on 127.0.0.1:``port``, in this event loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def fake_op() -> AsyncIterator[FakeOP]:
    port = free_port()
    op = FakeOP(f"http://127.0.0.1:{port}")
    async with serving(op.app(), port):
        yield op


def settings_for(issuer: str) -> PortalSettings:
    return PortalSettings(
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        base_url=PORTAL,
        session_key=SecretStr(secrets.token_urlsafe(32)),
        cookie_name="portal_test_session",
        title="Cổng thử nghiệm",
    )


@pytest.fixture
async def portal(fake_op: FakeOP) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(fake_op.issuer))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL) as client:
        yield client


async def start_sign_in(portal: httpx.AsyncClient) -> str:
    """``/login``, then the OP's answer: the URL the browser is sent back to (``/callback?...``)."""
    login = await portal.get("/login")
    assert login.status_code == 302, login.text
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(login.headers["location"])
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def test_home_page_offers_sign_in() -> None:
    app = create_app(settings_for("http://127.0.0.1:9"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL) as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text
    assert "Đăng nhập bằng tài khoản định danh" in page.text
    assert 'href="/login"' in page.text
    assert "Cổng thử nghiệm" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_login_with_the_op_unreachable_is_a_clear_503() -> None:
    app = create_app(settings_for(f"http://127.0.0.1:{free_port()}"))  # nothing listens there
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL) as client:
        page = await client.get("/login")
    assert page.status_code == 503
    assert "Không kết nối được tới hệ thống định danh" in page.text
    assert "Traceback" not in page.text


async def test_login_with_a_broken_discovery_document_is_a_502() -> None:
    broken = Starlette(routes=[Route("/.well-known/openid-configuration", lambda _r: JSONResponse({"issuer": "x"}))])
    port = free_port()
    app = create_app(settings_for(f"http://127.0.0.1:{port}"))
    async with (
        serving(broken, port),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL) as client,
    ):
        page = await client.get("/login")
    assert page.status_code == 502
    assert "trả lời không hợp lệ" in page.text


async def test_callback_with_access_denied_shows_a_clear_message() -> None:
    app = create_app(settings_for(f"http://127.0.0.1:{free_port()}"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL) as client:
        page = await client.get("/callback", params={"error": "access_denied", "state": "x"})
    assert page.status_code == 400
    assert "huỷ đăng nhập" in page.text
    assert 'role="alert"' in page.text


async def test_callback_never_echoes_an_unknown_error_code() -> None:
    app = create_app(settings_for(f"http://127.0.0.1:{free_port()}"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL) as client:
        page = await client.get("/callback", params={"error": "<script>x</script>", "error_description": "call us"})
    assert page.status_code == 400
    assert "<script>" not in page.text
    assert "call us" not in page.text


async def test_sign_in_shows_claims_and_logout_goes_to_the_op(portal: httpx.AsyncClient, fake_op: FakeOP) -> None:
    with capture_logs() as logged:
        login = await portal.get("/login")
        authorize = parse_qs(urlsplit(login.headers["location"]).query)
        assert authorize["code_challenge_method"] == ["S256"]
        assert authorize["nonce"]
        assert authorize["state"]
        assert authorize["scope"] == ["openid profile address phone national_id"]
        cookie = login.headers["set-cookie"].lower()
        assert cookie.startswith("portal_test_session=")
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        async with httpx.AsyncClient() as browser:
            callback = (await browser.get(login.headers["location"])).headers["location"]
        done = await portal.get(callback)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert all(code not in repr(entry) for entry in logged), "the authorization code was logged"

    home = await portal.get("/")
    assert CITIZEN["name"] in home.text
    assert CITIZEN["national_id"] in home.text
    assert "Phường Hoàn Kiếm" in home.text
    assert "Nữ (female)" in home.text
    assert "Đăng xuất" in home.text
    assert CITIZEN["sub"] not in home.text  # protocol claims are not shown
    assert len(portal.cookies["portal_test_session"]) < 1000  # claims stay server-side

    logout = await portal.post("/logout")
    assert logout.status_code == 303
    target = urlsplit(logout.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{fake_op.issuer}/logout"
    query = parse_qs(target.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == [f"{PORTAL}/"]
    assert jwt.decode(query["id_token_hint"][0], fake_op.key).claims["sub"] == CITIZEN["sub"]
    assert "Đăng nhập bằng tài khoản định danh" in (await portal.get("/")).text


async def test_the_iss_of_another_issuer_is_refused_before_the_code_is_redeemed(
    portal: httpx.AsyncClient, fake_op: FakeOP
) -> None:
    fake_op.iss_in_response = "http://evil.example"
    page = await portal.get(await start_sign_in(portal))
    assert page.status_code == 400
    assert "Đăng nhập không thành công" in page.text
    assert fake_op.token_requests == 0


async def test_a_missing_iss_is_refused_when_the_op_advertises_it(portal: httpx.AsyncClient, fake_op: FakeOP) -> None:
    fake_op.iss_in_response = ""
    page = await portal.get(await start_sign_in(portal))
    assert page.status_code == 400
    assert fake_op.token_requests == 0


async def test_a_missing_iss_is_accepted_when_the_op_does_not_advertise_it(
    portal: httpx.AsyncClient, fake_op: FakeOP
) -> None:
    fake_op.iss_in_response, fake_op.advertise_iss = "", False
    page = await portal.get(await start_sign_in(portal))
    assert page.status_code == 303, page.text


async def test_an_id_token_for_another_client_is_refused(portal: httpx.AsyncClient, fake_op: FakeOP) -> None:
    fake_op.audience = "another-portal"
    page = await portal.get(await start_sign_in(portal))
    assert page.status_code == 502
    assert "Đăng xuất" not in page.text


async def test_a_callback_with_an_unknown_state_is_refused(portal: httpx.AsyncClient, fake_op: FakeOP) -> None:
    callback = httpx.URL(await start_sign_in(portal))
    page = await portal.get(callback.copy_set_param("state", "forged"))
    assert page.status_code == 400
    assert "hết hạn hoặc không hợp lệ" in page.text
    assert fake_op.token_requests == 0


async def test_a_code_is_redeemed_once(portal: httpx.AsyncClient, fake_op: FakeOP) -> None:
    callback = await start_sign_in(portal)
    assert (await portal.get(callback)).status_code == 303
    again = await portal.get(callback)  # the state was used up: refused before the token endpoint
    assert again.status_code == 400
    assert fake_op.token_requests == 1
