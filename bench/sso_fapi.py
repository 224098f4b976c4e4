"""``dinhdanh bench sso --profile fapi2``: the FAPI 2.0 profile's price beside the plain profile, in one run.

Three pairs of figures, each phase alone, the load generator on the same machine:
- sign-ins per second: the plain portal (authorize → password → TOTP → code → token with client_secret_basic)
  beside the FAPI 2.0 portal (a pushed authorization request, RFC 9126, with ``private_key_jwt``, RFC 7523; the
  same browser steps; the token request with a new assertion and a DPoP proof, RFC 9449, carrying the server's
  nonce, kept from the previous response per connection as a client does);
- token uses per second at the edge's userinfo: a Bearer token beside a DPoP-bound token with a new proof (``ath``,
  nonce) every request, checked once in the shared replay table;
- token uses per second at a gRPC service (the vault's ListDocuments over mutual TLS): Bearer beside DPoP (proof
  in the ``dpop`` metadata, ``htu`` ``https://vault/dinhdanh.vault.v1.Vault/ListDocuments``).

Each ``ratio`` is FAPI 2.0's throughput over the plain profile's; the target is a cost under 20 % (ratio > 0.8).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import grpc
import httpx
from joserfc.jwk import ECKey

from bench import loadgen
from bench.accounts import AccountPool
from bench.browserless import Browser, SignIn, pkce_pair, sign_in
from bench.dpop_client import grpc_metadata
from bench.fapi import ClientKey, FapiSignIn, register_portal
from bench.lean_sign_in import CSRF, Jar
from bench.stats import Tally
from identity.oidc.dpop import HEADER, SCHEME, Proofer
from identity.oidc.store import ClientStore
from identity.oidc.subjects import Subjects
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from stack.info import StackInfo

FAPI_CLIENT_FILE = "bench-fapi-client.json"
VAULT = "urn:dinhdanh:service:vault"
LIST = "/dinhdanh.vault.v1.Vault/ListDocuments"
TARGET_COST = 0.2


async def ensure_fapi_portal(info: StackInfo, folder: Path, redirect: str) -> tuple[str, ClientKey]:
    """The bench's FAPI 2.0 portal (private_key_jwt, its key kept beside the other bench clients, mode 0600)."""
    path = folder / FAPI_CLIENT_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["client_id"], ClientKey(key=ECKey.import_key(saved["jwk"]), kid=saved["kid"])
    client, key = register_portal("Bench FAPI 2.0 portal", redirect, refresh=True,
                                  scopes=["offline_access", "vault.read"], resources=[VAULT])  # fmt: skip
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        await ClientStore(pool).add(client)
    finally:
        await pool.close()
    path.write_text(json.dumps({"client_id": client.client_id, "kid": key.kid, "jwk": key.key.as_dict(private=True)}))
    path.chmod(0o600)
    return client.client_id, key


async def grant_consents(info: StackInfo, subject_key: bytes, accounts: list[dict[str, Any]], client_id: str) -> None:
    """The steady state for both portals: their citizens consented before, to the vault too."""
    subjects = Subjects(subject_key)
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute(
            "INSERT INTO oidc.consents (subject, client_id, scopes, resources)"
            " SELECT s, $2, $3, $4 FROM unnest($1::text[]) AS s"
            " ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, resources = excluded.resources,"
            " granted_at = now()",
            [subjects.subject(a["id_number"]) for a in accounts],
            client_id,
            ["openid", "offline_access", "vault.read"],
            [VAULT],
        )
    finally:
        await conn.close()


def _raw(conn: loadgen.Connection, method: str, path: str, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, cookie: str = "") -> bytes:  # fmt: skip
    body = urlencode(form).encode() if form is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {conn.host}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if form is not None:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    return next((v.decode() for k, v in headers if k == name), None)


async def fapi_sign_in(conn: loadgen.Connection, flow: FapiSignIn, proofer: Proofer, id_number: str, password: str,
                       code: str) -> dict[str, Any] | None:  # fmt: skip
    """One FAPI 2.0 sign-in on the lean load generator: PAR, the browser's steps, the DPoP-bound token request."""
    jar = Jar()

    async def go(method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, list, bytes]:
        status, headers, body = await conn.exchange(_raw(conn, method, path, form, cookie=jar.header()))
        jar.take(headers)
        return status, headers, body

    verifier, challenge = pkce_pair()
    pushed = {**flow.pushed_params(secrets.token_urlsafe(8), secrets.token_urlsafe(8), challenge),
              **flow.key.auth(flow.client_id, flow.issuer)}  # fmt: skip
    status, _, body = await conn.exchange(_raw(conn, "POST", "/par", pushed))
    if status != 201:
        return None
    query = urlencode({"client_id": flow.client_id, "request_uri": json.loads(body)["request_uri"]})
    status, headers, _ = await go("GET", f"/authorize?{query}")
    if status != 303:
        return None
    status, _, page = await go("GET", _header(headers, b"location") or "/")
    csrf = CSRF.search(page)
    if status != 200 or not csrf:
        return None
    token = csrf.group(1).decode()
    status, headers, _ = await go("POST", "/login", {"csrf": token, "id_number": id_number, "password": password})
    if status != 303:
        return None
    await go("GET", _header(headers, b"location") or "/")
    status, headers, _ = await go("POST", "/login/totp", {"csrf": token, "code": code})
    if status != 303:
        return None
    redirect = parse_qs(urlsplit(_header(headers, b"location") or "").query)
    if "code" not in redirect:
        return None
    url = f"{flow.issuer}/token"
    for _ in range(2):  # RFC 9449 §8: at most once use_dpop_nonce, when the kept nonce has rolled over
        form = {"grant_type": "authorization_code", "code": redirect["code"][0], "redirect_uri": flow.redirect_uri,
                "code_verifier": verifier, **flow.key.auth(flow.client_id, flow.issuer)}  # fmt: skip
        raw = _raw(conn, "POST", "/token", form, {HEADER: proofer.proof("POST", url)})
        status, headers, body = await conn.exchange(raw)
        proofer.nonce = _header(headers, b"dpop-nonce") or proofer.nonce
        if status == 200:
            return dict(json.loads(body))
        if status != 400 or json.loads(body).get("error") != "use_dpop_nonce":
            return None
    return None


async def fapi_sign_ins(flow: FapiSignIn, pool: AccountPool, seconds: float, concurrency: int) -> dict[str, Any]:
    proofers = [Proofer() for _ in range(concurrency)]  # one client key per connection (a client instance)

    async def step(conn: loadgen.Connection, index: int) -> bool:
        account = pool.take()
        if account is None:
            await asyncio.sleep(0.2)
            return False
        tokens = await fapi_sign_in(conn, flow, proofers[index], account["id_number"], account["password"],
                                    AccountPool.code(account))  # fmt: skip
        return tokens is not None and tokens.get("token_type") == "DPoP"

    return await loadgen.run(flow.issuer, concurrency, seconds, step)


async def _token(pool: AccountPool, flow: SignIn) -> str:
    """One access token for ``openid vault.read`` with the vault as its resource, through the browserless client
    (``flow`` redeems it: DPoP-bound for the FAPI 2.0 portal)."""
    account = pool.take()
    while account is None:
        await asyncio.sleep(1.0)
        account = pool.take()
    async with httpx.AsyncClient(timeout=30) as http:
        params = await sign_in(Browser(http), flow, account["id_number"], account["password"],
                               AccountPool.code(account))  # fmt: skip
        if "code" not in params:
            raise RuntimeError(f"bench sign-in did not reach the redirect: {str(params)[:200]}")
        reply = await flow.redeem(http, params["code"], params["_verifier"])
    if reply.status_code != 200:
        raise RuntimeError(f"token request refused: {reply.status_code} {reply.text[:200]}")
    return str(reply.json()["access_token"])


async def userinfo_uses(issuer: str, tokens: list[str], proofers: list[Proofer] | None, seconds: float) -> dict:
    """Requests to userinfo, one connection per token; with ``proofers``, DPoP with a new proof each time."""
    url = f"{issuer}/userinfo"

    async def step(conn: loadgen.Connection, index: int) -> bool:
        token = tokens[index]
        if proofers is None:
            headers = {"Authorization": f"Bearer {token}"}
        else:
            headers = {"Authorization": f"{SCHEME} {token}",
                       HEADER: proofers[index].proof("GET", url, access_token=token)}  # fmt: skip
        status, reply_headers, _ = await conn.exchange(_raw(conn, "GET", "/userinfo", headers=headers))
        if proofers is not None:
            proofers[index].nonce = _header(reply_headers, b"dpop-nonce") or proofers[index].nonce
        return status == 200

    return await loadgen.run(issuer, len(tokens), seconds, step)


async def grpc_uses(info: StackInfo, tokens: list[str], proofers: list[Proofer] | None, seconds: float) -> dict:
    """The vault's ListDocuments, one caller per token, over one mutual-TLS channel (as the edge would call)."""
    tally = Tally()
    deadline = time.perf_counter() + seconds
    async with info.channel("vault") as channel:
        stub = vgrpc.VaultStub(channel)

        async def worker(index: int) -> None:
            token = tokens[index]
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if proofers is None:
                    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
                else:
                    metadata = grpc_metadata(proofers[index], token, "vault", LIST)
                try:
                    await stub.ListDocuments(vpb.ListDocumentsRequest(), metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as error:
                    tally.error(error.code().name)
                    continue
                tally.latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(len(tokens))))
    return tally.summary(time.perf_counter() - started)


def _ratio(fapi: dict[str, Any], plain: dict[str, Any]) -> float:
    base = float(plain.get("per_second") or 0)
    return round(float(fapi.get("per_second") or 0) / base, 3) if base else 0.0


async def run(
    info: StackInfo, folder: Path, redirect: str, accounts: list[dict[str, Any]], subject_key: bytes, plain: SignIn,
    plain_sign_ins: dict[str, Any], seconds: float, concurrency: int,
) -> dict[str, Any]:  # fmt: skip
    """The FAPI 2.0 figures beside the plain ones (``plain_sign_ins``: the plain phase just measured with the
    plain portal ``plain``); ``accounts``: the bench citizens, those that signed in this TOTP step marked."""
    client_id, key = await ensure_fapi_portal(info, folder, redirect)
    await grant_consents(info, subject_key, accounts, client_id)
    await grant_consents(info, subject_key, accounts, plain.client_id)
    pool = AccountPool(accounts)
    flow = FapiSignIn(info.oidc_issuer, client_id, "", redirect, "openid offline_access", key=key)
    signed = await fapi_sign_ins(flow, pool, seconds, concurrency)
    users = max(2, min(8, concurrency))
    plain_vault = SignIn(plain.issuer, plain.client_id, plain.client_secret, redirect, "openid vault.read",
                         {"resource": VAULT})  # fmt: skip
    plain_tokens = [await _token(pool, plain_vault) for _ in range(users)]
    proofers = [Proofer() for _ in range(users)]
    fapi_tokens = []
    for proofer in proofers:
        fapi_flow = FapiSignIn(info.oidc_issuer, client_id, "", redirect, "openid vault.read", {"resource": VAULT},
                               key=key, proofer=proofer)  # fmt: skip
        fapi_tokens.append(await _token(pool, fapi_flow))
    userinfo_plain = await userinfo_uses(info.oidc_issuer, plain_tokens, None, seconds / 2)
    userinfo_dpop = await userinfo_uses(info.oidc_issuer, fapi_tokens, proofers, seconds / 2)
    grpc_plain = await grpc_uses(info, plain_tokens, None, seconds / 2)
    grpc_dpop = await grpc_uses(info, fapi_tokens, proofers, seconds / 2)
    ratios = {
        "sign_ins": _ratio(signed, plain_sign_ins),
        "userinfo": _ratio(userinfo_dpop, userinfo_plain),
        "grpc_vault_list_documents": _ratio(grpc_dpop, grpc_plain),
    }
    return {
        "fapi2_sign_ins": signed,
        "userinfo_bearer": userinfo_plain,
        "userinfo_dpop": userinfo_dpop,
        "grpc_bearer": grpc_plain,
        "grpc_dpop": grpc_dpop,
        "fapi2_over_plain": ratios,
        "fapi2_cost_within_target": all(r >= 1 - TARGET_COST for r in ratios.values()),
    }
