"""Citizens signing in to a portal through SSO (issue 12 item 1): the whole OpenID Connect flow against the edge.

One iteration of :class:`SignInUser` is one sign-in, as the prepared load-test portal client (``accounts.json``
``client``: authorization code + PKCE, ``client_secret_basic``) makes it for a citizen's browser:

=================  ===============================================================================================
``sso.authorize``  ``GET /authorize`` (303 to the login page) and ``GET /login`` (the form and its CSRF token)
``sso.login``      ``POST /login`` with the ID number and password (303 to the TOTP page) and ``GET /login/totp``
``sso.totp``       ``POST /login/totp`` with the code (303 to the portal's redirect URI with ``code`` and ``state``)
``sso.token``      ``POST /token``: the code for the tokens (``access_token``, ``id_token``)
``sso.userinfo``   ``GET /userinfo`` with the access token
=================  ===============================================================================================

each reported as ``HTTP``/<name>, and the whole as ``flow``/``sign-in`` (the SLO's sign-in, p99 < 250 ms).

A citizen's browser keeps the edge's device cookie (the sealed device id, services/edge/sources.py) between its
sign-ins: the pool's account carries it from one sign-in to the next, and every other cookie (SSO session, flow)
starts afresh, so that each iteration is a complete sign-in. Every request carries the user's own
``X-Forwarded-For`` (:func:`forwarded_address`, from 198.18.0.0/15, the benchmarking range of RFC 2544 /
RFC 6890): believed only when the edge was started with ``DINHDANH_TRUSTED_PROXIES=127.0.0.1/32``, when it models
citizens on many addresses (the edge's per-address device-id budget, ``device_mints_per_hour``); ignored otherwise
(the default), when every sign-in comes from 127.0.0.1.

:func:`sign_in` is also how the gRPC users get their citizens' access tokens when they start (the same flow,
reported the same way).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import itertools
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from locust import FastHttpUser, constant_pacing, task
from locust.contrib.fasthttp import FastHttpSession

from loadtest.accounts import Account, account_pool, prepared
from loadtest.model import PACE

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DEVICE_COOKIE = "__Host-dd-device"  # services/edge/http.py DEVICE_COOKIE
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BENCHMARK_NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 §C.2.2, RFC 6890: for benchmarks, never routed
_addresses = itertools.count(1)


class Jar:
    """The cookies of one browser, kept by hand: Python's cookie jar does not hand back the edge's ``__Host-``
    cookies for ``localhost`` through geventhttpclient, so the session's own jar is switched off
    (:func:`own_cookies`) and this one sends a ``Cookie`` header."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def take(self, response: Any) -> None:
        headers = response.headers
        found = headers.getlist("set-cookie") if hasattr(headers, "getlist") else []
        for value in found:
            pair, _, attributes = value.partition(";")
            name, _, content = pair.strip().partition("=")
            gone = "max-age=0" in attributes.lower().replace(" ", "") or "1970" in attributes
            if gone or content in ("", '""'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = content

    def header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}


def own_cookies(session: FastHttpSession) -> FastHttpSession:
    """``session`` without its own cookie jar (a :class:`Jar` keeps the cookies)."""
    session.client.cookiejar = None
    return session


class FlowError(Exception):
    """One step of the sign-in did not answer as a browser expects (the step is reported as failed too)."""


def forwarded_address(worker_index: int) -> str:
    """A different benchmarking-range address for every user of every process."""
    offset = (worker_index * 4096 + next(_addresses)) % (BENCHMARK_NET.num_addresses - 2) + 1
    return str(BENCHMARK_NET.network_address + offset)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def fire(environment: Any, request_type: str, name: str, started_at: float, started: float,
          exception: Exception | None, length: int = 0) -> None:  # fmt: skip
    environment.events.request.fire(
        request_type=request_type, name=name, response_time=(time.perf_counter() - started) * 1000,
        response_length=length, response=None, exception=exception, context={}, start_time=started_at, url=None,
    )  # fmt: skip


class Flow:
    """One citizen's sign-in over ``session`` (a FastHttpSession whose base URL is the edge)."""

    def __init__(self, session: FastHttpSession, client: dict[str, Any], forwarded_for: str, jar: Jar) -> None:
        self.session = session
        self.client = client
        self.headers = {"X-Forwarded-For": forwarded_for}
        self.jar = jar

    def step(self, method: str, path: str, name: str, status: int, *, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None) -> Any:  # fmt: skip
        """One request reported as ``HTTP``/``name``; a status other than ``status`` fails it and the flow."""
        sent = {**self.headers, **self.jar.header(), **(headers or {}), **(FORM if form is not None else {})}
        body = urlencode(form) if form is not None else None
        with self.session.request(method, path, name=name, data=body, headers=sent, auth=auth,
                                  allow_redirects=False, catch_response=True) as response:  # fmt: skip
            response.request_meta["request_type"] = "HTTP"
            self.jar.take(response)
            if response.status_code != status:
                problem = f"{method} {urlsplit(path).path}: {response.status_code}, expected {status}"
                response.failure(problem)
                raise FlowError(problem)
            response.success()
        return response

    @staticmethod
    def location(response: Any) -> str:
        return str(response.headers.get("location") or response.headers.get("Location") or "")

    @staticmethod
    def csrf(response: Any, what: str) -> str:
        found = CSRF.search(response.text or "")
        if not found:
            raise FlowError(f"no CSRF field on the {what} page")
        return found.group(1)

    def run(self, id_number: str, password: str, code: str) -> dict[str, Any]:
        """authorize → login → TOTP → code → token → userinfo; the token response."""
        client = self.client
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        verifier, challenge = pkce_pair()
        query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": client["redirect_uri"],
                 "scope": client["scope"], "state": state, "nonce": nonce, "code_challenge": challenge,
                 "code_challenge_method": "S256", "resource": list(client.get("resources") or [])}  # fmt: skip
        reply = self.step("GET", f"/authorize?{urlencode(query, doseq=True)}", "sso.authorize", 303)
        if not urlsplit(self.location(reply)).path.endswith("/login"):
            raise FlowError(f"authorize did not lead to the login page: {urlsplit(self.location(reply)).path}")
        page = self.step("GET", "/login", "sso.authorize", 200)
        csrf = self.csrf(page, "login")
        form = {"csrf": csrf, "id_number": id_number, "password": password}
        reply = self.step("POST", "/login", "sso.login", 303, form=form)
        if not urlsplit(self.location(reply)).path.endswith("/login/totp"):
            raise FlowError(f"the password did not lead to the TOTP page: {urlsplit(self.location(reply)).path}")
        self.step("GET", "/login/totp", "sso.login", 200)
        reply = self.step("POST", "/login/totp", "sso.totp", 303, form={"csrf": csrf, "code": code})
        back = self.location(reply)
        params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        if not back.startswith(client["redirect_uri"]) or params.get("state") != state or "code" not in params:
            raise FlowError("the TOTP step did not return to the portal with a code and its state")
        form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": client["redirect_uri"],
                "code_verifier": verifier}  # fmt: skip
        reply = self.step("POST", "/token", "sso.token", 200, form=form,
                          auth=(client["client_id"], client["client_secret"]))  # fmt: skip
        tokens = json.loads(reply.text or "{}")
        if not tokens.get("access_token") or not tokens.get("id_token"):
            raise FlowError("the token response has no access token or ID token")
        reply = self.step("GET", "/userinfo", "sso.userinfo", 200,
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})  # fmt: skip
        if not json.loads(reply.text or "{}").get("sub"):
            raise FlowError("userinfo names no subject")
        return dict(tokens)


def sign_in(environment: Any, session: FastHttpSession, forwarded_for: str) -> tuple[Account, dict[str, Any]]:
    """One complete sign-in of the next free account of this process, reported step by step and as
    ``flow``/``sign-in``; returns the account and the token response (FlowError when a step failed)."""
    account, code = account_pool(environment).wait_take()
    jar = Jar()  # a fresh browser session, but the citizen's own device
    if account.device_cookie:
        jar.cookies[DEVICE_COOKIE] = account.device_cookie
    own_cookies(session)
    started_at, started = time.time(), time.perf_counter()
    try:
        tokens = Flow(session, prepared().client, forwarded_for, jar).run(account.id_number, account.password, code)
    except FlowError as error:
        fire(environment, "flow", "sign-in", started_at, started, error)
        raise
    except Exception as error:  # a connection refused or reset: the flow failed as a whole
        fire(environment, "flow", "sign-in", started_at, started, error)
        raise FlowError(f"{type(error).__name__}: {error}") from error
    fire(environment, "flow", "sign-in", started_at, started, None)
    account.device_cookie = jar.cookies.get(DEVICE_COOKIE) or account.device_cookie
    return account, tokens


class CitizenToken:
    """A gRPC user's citizen access token: signed in when the user starts, again before it expires."""

    MARGIN = 30.0  # seconds before expiry a new sign-in is made

    def __init__(self, environment: Any, user: Any, forwarded_for: str) -> None:
        self.environment = environment
        self.session = FastHttpSession(base_url=prepared().info.oidc_issuer, request_event=environment.events.request,
                                       user=user)  # fmt: skip
        self.forwarded_for = forwarded_for
        self.token = ""
        self.id_number = ""
        self.expires_at = 0.0

    def current(self) -> str:
        if not self.token or time.time() > self.expires_at - self.MARGIN:
            account, tokens = sign_in(self.environment, self.session, self.forwarded_for)
            self.token, self.id_number = str(tokens["access_token"]), account.id_number
            self.expires_at = time.time() + float(tokens.get("expires_in") or 300)
        return self.token


class EdgeUser(FastHttpUser):
    """A user of the edge's public HTTP pages, one iteration per ``PACE`` seconds, from an address of its own
    worker's share of the benchmarking range (``X-Forwarded-For``)."""

    abstract = True
    wait_time = constant_pacing(PACE)

    def __init__(self, environment: Any) -> None:
        if self.host is None:
            self.host = prepared().info.oidc_issuer
        super().__init__(environment)
        runner = getattr(environment, "runner", None)
        self.forwarded_for = forwarded_address(max(0, int(getattr(runner, "worker_index", 0) or 0)))


class SignInUser(EdgeUser):
    """A citizen signing in to a portal through SSO, once per iteration (``flow``/``sign-in``)."""

    actor = "sign-in"

    @task
    def sign_in(self) -> None:
        with contextlib.suppress(FlowError):  # reported: the failed step and the flow
            sign_in(self.environment, self.client, self.forwarded_for)
