"""Every agency is on the FAPI 2.0 Security Profile (issue 13 §1, docs/fapi.md "Agencies"): registration refuses
``--profile plain`` and never issues an agency a client secret; an agency with a key gets DPoP-bound tokens with
``private_key_jwt`` (agency/keyed.py), none without a proof; an agency left plain with a secret (registered before)
is flagged by ``clients list`` and moved with ``clients set-key``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from agency.keyed import KeyedAgency, new_key
from core.errors import InvalidArgument
from identity.oidc import fapi, registration
from identity.oidc.clients import FAPI2, KEY_AUTH, PLAIN, SECRET_AUTH, TLS_AUTH, Client, new_client_id, new_secret
from identity.oidc.provider import CLIENT_CACHE_SECONDS
from identity.oidc.store import ClientStore
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.test_cli import dinhdanh
from tests.waiting import until

VAULT = "urn:dinhdanh:service:vault"


def test_an_agency_is_always_fapi2_and_never_gets_a_secret() -> None:
    with pytest.raises(InvalidArgument, match=r"FAPI 2\.0"):
        registration.agency("Sở A", ["p"], profile=PLAIN)
    bare, secret = registration.agency("Sở B", ["p"])
    assert (bare.profile, bare.auth_method, bare.secret_hash, secret) == (FAPI2, TLS_AUTH, None, "")
    keyed = KeyedAgency("x", new_key())
    with_key, secret = registration.agency("Sở C", ["p"], jwks=keyed.public_jwks())
    assert (with_key.profile, with_key.auth_method, with_key.secret_hash, secret) == (FAPI2, KEY_AUTH, None, "")
    published, _ = registration.agency("Sở D", ["p"], jwks_uri="https://d.example/jwks.json")
    assert (published.profile, published.auth_method) == (FAPI2, KEY_AUTH)


def test_an_agency_with_a_secret_is_refused_on_the_profile() -> None:
    _, digest = new_secret()
    secreted = Client(new_client_id("agency"), "Sở E", "agency", ("client_credentials",), ("vault.read",),
                      SECRET_AUTH, digest, profile=FAPI2)  # fmt: skip
    assert fapi.refusal(secreted) is not None
    legacy = Client(new_client_id("agency"), "Sở F", "agency", ("client_credentials",), ("vault.read",),
                    SECRET_AUTH, digest, profile=PLAIN)  # fmt: skip
    assert registration.legacy_agency(legacy)
    with pytest.raises(InvalidArgument, match="no certificate"):
        registration.move_agency_to_fapi2(legacy)  # no key, no certificate: it could not authenticate


@pytest.fixture(scope="module")
async def store(info: StackInfo) -> AsyncIterator[ClientStore]:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    try:
        yield ClientStore(pool)
    finally:
        await pool.close()


def test_add_agency_refuses_plain(stack: Stack) -> None:
    code, refused = dinhdanh(stack, "clients", "add-agency", "--name", "Sở thường", "--purpose", "p",
                             "--profile", "plain")  # fmt: skip
    assert code != 0, refused
    assert "FAPI 2.0" in json.dumps(refused, ensure_ascii=False), refused


async def test_a_keyed_agency_gets_dpop_bound_tokens_only(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    key_file = tmp_path / "agency.jwk"
    code, made = dinhdanh(stack, "clients", "add-agency", "--name", "Sở có khóa", "--purpose", "p", "--scope",
                          "vault.read", "--key-out", str(key_file))  # fmt: skip
    assert code == 0, made
    assert "client_secret" not in made
    assert (made["profile"], made["token_endpoint_auth_method"]) == (FAPI2, KEY_AUTH)
    assert key_file.stat().st_mode & 0o077 == 0
    agency = KeyedAgency.from_file(made["client_id"], key_file)
    reply = await agency.token_response(http, info.oidc_issuer, "vault.read", VAULT)
    assert reply.status_code == 200, reply.text
    assert reply.json()["token_type"] == "DPoP"
    unbound = await agency.token_response(http, info.oidc_issuer, "vault.read", VAULT, dpop=False)
    assert (unbound.status_code, unbound.json()["error"]) == (400, "invalid_request"), unbound.text
    code, rotated = dinhdanh(stack, "clients", "rotate-secret", made["client_id"])
    assert code != 0, rotated
    assert "no client secret" in json.dumps(rotated), rotated


async def test_a_legacy_agency_is_flagged_and_moved_with_set_key(
    stack: Stack, info: StackInfo, http: httpx.AsyncClient, store: ClientStore, tmp_path: Path
) -> None:
    secret, digest = new_secret()
    legacy = Client(new_client_id("agency"), "Sở cũ (dùng secret)", "agency", ("client_credentials",),
                    ("vault.read",), SECRET_AUTH, digest, resources=(VAULT,), purposes=("p",))  # fmt: skip
    await store.add(legacy)  # as one registered before migration 0020 stays
    form = {"grant_type": "client_credentials", "scope": "vault.read", "resource": VAULT}
    before = await http.post(f"{info.oidc_issuer}/token", auth=(legacy.client_id, secret), data=form)
    assert before.status_code == 200, before.text  # the stated migration path: it works until it is moved
    code, listed = dinhdanh(stack, "clients", "list")
    mine = next(c for c in listed["clients"] if c["client_id"] == legacy.client_id)
    assert "set-key" in mine["migrate"]
    assert all("migrate" not in c for c in listed["clients"] if c["kind"] == "portal")
    agency = KeyedAgency(legacy.client_id, new_key())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(agency.public_jwks()))
    code, moved = dinhdanh(stack, "clients", "set-key", legacy.client_id, "--jwks", str(jwks))
    assert code == 0, moved
    assert (moved["profile"], moved["token_endpoint_auth_method"], "migrate" in moved) == (FAPI2, KEY_AUTH, False)

    async def secret_refused() -> bool:
        after = await http.post(f"{info.oidc_issuer}/token", auth=(legacy.client_id, secret), data=form)
        assert after.status_code in (200, 401), after.text
        return after.status_code == 401 and after.json()["error"] == "invalid_client"

    # every edge process reads a changed client within its cache's life (provider.CLIENT_CACHE_SECONDS)
    await until(secret_refused, "the moved agency's secret refused", timeout=CLIENT_CACHE_SECONDS + 5, every=0.5)
    assert (await agency.token_response(http, info.oidc_issuer, "vault.read", VAULT)).status_code == 200


async def test_the_benchmark_agency_asks_as_a_fapi2_agency(info: StackInfo, tmp_path: Path) -> None:
    """``dinhdanh bench sso``'s ``client_credentials`` figures are of private_key_jwt + DPoP requests."""
    from bench import sso

    clients = await sso.ensure_clients(info, tmp_path)
    assert "client_secret" not in clients["agency"]
    figures = await sso.client_credentials(info.oidc_issuer, clients["agency"], 1.0, 2)
    assert figures["count"], figures
    assert not figures["errors"], figures
