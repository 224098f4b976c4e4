"""``dinhdanh bench sso``: the OpenID Provider under load, beside the Argon2id limit of this machine.

Figures, each phase alone, with the load generator on the same machine:
- complete browserless sign-ins (authorize → login page → password → TOTP → code → token), with
  p50/p99 and the share of server CPU spent in Argon2id, beside the raw Argon2id verification rate
  of all cores measured in the same run;
- ``client_credentials`` grants, ``refresh_token`` grants (every refresh token used once: one
  rotation chain per connection), discovery and JWKS requests per second;
- with ``profile="fapi2"``, the FAPI 2.0 profile's sign-ins (PAR + private_key_jwt + DPoP) and DPoP-bound token
  uses at userinfo and at the vault beside the plain profile's, with their ratios (bench/sso_fapi.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg

from agency.keyed import KeyedAgency, load_key, new_key
from bench import lean_sign_in, loadgen
from bench.accounts import AccountPool, ensure_accounts, save_accounts
from bench.argon2_raw import raw_verify_rate
from bench.browserless import SignIn
from bench.cpu import CpuMeter
from core.keys import purposes
from identity.oidc import registration
from identity.oidc.store import ClientStore
from identity.oidc.subjects import Subjects
from stack.info import StackInfo
from stack.secrets import SecretStore

CLIENTS_FILE = "bench-clients.json"
REDIRECT = "http://localhost:9/bench/callback"  # registered, never contacted: the bench stops at the redirect


async def ensure_clients(info: StackInfo, folder: Path) -> dict[str, dict[str, Any]]:
    """A portal client and an agency client for the bench, registered once like any other."""
    path = folder / CLIENTS_FILE
    if path.exists():
        known: dict[str, Any] = json.loads(path.read_text())
        if "key" in known.get("agency", {}):  # an agency of before the FAPI 2.0 profile had a secret: register anew
            return known
    portal, portal_secret = registration.portal("Bench portal", [REDIRECT], refresh=True,
                                                scopes=["offline_access", "vault.read", "vault.write"],
                                                resources=["urn:dinhdanh:service:vault"])  # fmt: skip
    key = new_key()  # FAPI 2.0: the agency authenticates with private_key_jwt, its tokens DPoP-bound
    agency, _ = registration.agency("Bench agency", ["benchmark"], jwks={"keys": [key.as_dict(private=False)]})
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    try:
        await ClientStore(pool).add(portal)
        await ClientStore(pool).add(agency)
    finally:
        await pool.close()
    clients = {
        "portal": {"client_id": portal.client_id, "client_secret": portal_secret},
        "agency": {"client_id": agency.client_id, "key": key.as_dict(private=True)},
    }
    path.write_text(json.dumps(clients))
    path.chmod(0o600)
    return clients


async def grant_consents(info: StackInfo, subject_key: bytes, accounts: list[dict[str, Any]], client_id: str) -> None:
    """The steady state: these citizens consented to the bench portal before (the first visit asks)."""
    subjects = Subjects(subject_key)
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute(
            "INSERT INTO oidc.consents (subject, client_id, scopes)"
            " SELECT s, $2, $3 FROM unnest($1::text[]) AS s ON CONFLICT DO NOTHING",
            [subjects.subject(a["id_number"]) for a in accounts],
            client_id,
            ["openid", "offline_access"],
        )
    finally:
        await conn.close()


async def sign_ins(flow: SignIn, pool: AccountPool, seconds: float, concurrency: int) -> tuple[dict, list[str]]:
    """Complete sign-ins on ``concurrency`` keep-alive connections; returns figures and refresh tokens."""
    refresh_tokens: list[str] = []

    async def step(conn: loadgen.Connection, _: int) -> bool:
        account = pool.take()
        if account is None:
            await asyncio.sleep(0.2)  # every account signed in this step: the pool is too small
            return False
        token = await lean_sign_in.sign_in(
            conn, flow, account["id_number"], account["password"], AccountPool.code(account)
        )
        if token is None:
            return False
        refresh_tokens.append(token["refresh_token"])
        return True

    return await loadgen.run(flow.issuer, concurrency, seconds, step), refresh_tokens


async def client_credentials(issuer: str, agency: dict[str, Any], seconds: float, connections: int) -> dict:
    """``client_credentials`` as a FAPI 2.0 agency asks: ``private_key_jwt`` and a DPoP proof (the server's nonce
    kept, RFC 9449 §8: one round trip more only when it changes)."""
    keyed = KeyedAgency(agency["client_id"], load_key(agency["key"]))
    url = f"{issuer.rstrip('/')}/token"

    async def step(conn: loadgen.Connection, _: int) -> bool:
        for _attempt in range(2):
            form = {"grant_type": "client_credentials", **keyed.auth_form(issuer)}
            head, body = conn.request_bytes("POST", "/token", form).split(b"\r\n", 1)
            raw = head + f"\r\nDPoP: {keyed.proofer.proof('POST', url)}\r\n".encode() + body
            status, headers, _body = await conn.exchange(raw)
            nonce = next((value.decode() for name, value in headers if name == b"dpop-nonce"), None)
            if nonce:
                keyed.proofer.nonce = nonce
            if status != 400 or not nonce:
                return status == 200
        return False

    return await loadgen.run(issuer, connections, seconds, step)


async def refreshes(issuer: str, portal: dict[str, str], chains: list[str], seconds: float) -> dict:
    basic = (portal["client_id"], portal["client_secret"])

    async def step(conn: loadgen.Connection, index: int) -> bool:
        raw = conn.request_bytes(
            "POST", "/token", {"grant_type": "refresh_token", "refresh_token": chains[index]}, basic
        )
        status, body = await conn.send(raw)
        if status != 200:
            return False
        chains[index] = json.loads(body)["refresh_token"]
        return True

    return await loadgen.run(issuer, len(chains), seconds, step)


async def gets(issuer: str, path: str, seconds: float, connections: int) -> dict:
    async def step(conn: loadgen.Connection, _: int) -> bool:
        status, _body = await conn.send(conn.request_bytes("GET", path))
        return status == 200

    return await loadgen.run(issuer, connections, seconds, step)


async def run(info: StackInfo, var: Path, seconds: float, concurrency: int, raw_seconds: float,
              profile: str = "plain") -> dict[str, Any]:  # fmt: skip
    secrets_folder = var / "secrets"
    raw_rate, cores = await asyncio.to_thread(raw_verify_rate, raw_seconds)
    clients = await ensure_clients(info, secrets_folder)
    phases = 2 if profile == "fapi2" else 1  # each account signs in once per TOTP step: one pool per profile
    accounts = await ensure_accounts(info, secrets_folder, phases * max(200, int(raw_rate * 35)))
    subject_key = SecretStore(secrets_folder).keys("edge").key(purposes.OIDC_SUBJECT)  # the edge's sub ↔ ID key
    await grant_consents(info, subject_key, accounts, clients["portal"]["client_id"])
    flow = SignIn(info.oidc_issuer, clients["portal"]["client_id"], clients["portal"]["client_secret"], REDIRECT,
                  scope="openid offline_access")  # fmt: skip
    meter = CpuMeter()
    logins, chains = await sign_ins(flow, AccountPool(accounts), seconds, concurrency)
    cpu = meter.seconds()
    save_accounts(secrets_folder, accounts)
    hashing = sum(v for k, v in cpu.items() if k.endswith("worker pool"))
    server_cpu = sum(v for k, v in cpu.items() if not k.startswith("load generator"))
    cc = await client_credentials(info.oidc_issuer, clients["agency"], seconds, 32)
    refresh = await refreshes(info.oidc_issuer, clients["portal"], chains[: max(8, min(32, len(chains)))], seconds)
    discovery = await gets(info.oidc_issuer, "/.well-known/openid-configuration", seconds / 2, 32)
    jwks = await gets(info.oidc_issuer, "/jwks", seconds / 2, 32)
    fapi2: dict[str, Any] = {}
    if profile == "fapi2":
        from bench import sso_fapi

        fapi2 = await sso_fapi.run(info, secrets_folder, REDIRECT, accounts, subject_key, flow, logins, seconds,
                                   concurrency)  # fmt: skip
        save_accounts(secrets_folder, accounts)
    return {
        "benchmark": "sso",
        "cores": cores,
        "raw_argon2id_verify_per_s": round(raw_rate, 1),
        "sign_ins": logins,
        "sign_ins_ratio_to_argon2": round(float(logins["per_second"]) / raw_rate, 3) if raw_rate else 0.0,
        "argon2_share_of_server_cpu": round(hashing / server_cpu, 3) if server_cpu else 0.0,
        "cpu_ms_per_sign_in": {k: round(v * 1000 / max(1, int(logins["count"])), 2) for k, v in cpu.items()},
        "client_credentials": cc,
        "refresh_token": refresh,
        "discovery": discovery,
        "jwks": jwks,
        "seconds_per_phase": seconds,
        "targets": {"sign_ins_ratio": 0.9, "client_credentials_per_s": 3400, "refresh_per_s": 2100},
        **fapi2,
    }
