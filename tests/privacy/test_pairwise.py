"""Privacy across portals (issue 13 §2): pairwise ``sub`` per sector (OpenID Connect Core §8.1), the switch of a
public portal, the ID number under its own scope and on the consent page, the lifetime and withdrawal of remembered
consent (/account/portals).

One citizen signs in once (password + TOTP) and reaches every portal by SSO: two portals of one sector (``bo-a``),
one of another (its redirect URIs' host), and one registered ``public`` as every portal existing before migration
0020 is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from bench.browserless import Browser, SignIn, csrf_of, pkce_pair, sign_in
from core.keys.purposes import OIDC_SUBJECT
from identity.oidc import registration
from identity.oidc.store import ClientStore
from identity.oidc.subjects import Subjects
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.oidc_helpers import Person, person
from tests.test_cli import dinhdanh

SECTOR_A = "bo-a.gov.vn"
REGISTRY = "urn:dinhdanh:service:registry"
SCOPE = "openid profile national_id offline_access"


@dataclass
class Portal:
    client_id: str
    secret: str
    redirect: str

    def flow(self, info: StackInfo, scope: str = SCOPE, **extra: str) -> SignIn:
        return SignIn(info.oidc_issuer, self.client_id, self.secret, self.redirect, scope,
                      {"resource": REGISTRY, **extra})  # fmt: skip


@dataclass
class Tokens:
    id_token: dict[str, Any]
    access_token: str
    access: dict[str, Any]
    refresh_token: str | None


@pytest.fixture(scope="module")
async def pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    opened = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
async def portals(pool: asyncpg.Pool) -> dict[str, Portal]:
    """a1, a2: sector bo-a.gov.vn (different hosts); b: its redirect URIs' host; public: as before 0020."""
    made: dict[str, Portal] = {}
    specs = {
        "a1": ("https://a1.example/cb", {"sector": SECTOR_A}),
        "a2": ("https://a2.example/cb", {"sector": SECTOR_A}),
        "b": ("https://b.example/cb", {}),
        "public": ("https://cong-cu.example/cb", {"subject_type": "public"}),
    }
    for name, (redirect, options) in specs.items():
        client, secret = registration.portal(f"Cổng {name}", [redirect], scopes=["national_id", "offline_access"],
                                             resources=[REGISTRY], **options)  # type: ignore[arg-type]  # fmt: skip
        await ClientStore(pool).add(client)
        made[name] = Portal(client.client_id, secret, redirect)
    return made


@pytest.fixture(scope="module")
def subjects(stack: Stack) -> Subjects:
    return Subjects(stack.secrets.keys("edge").key(OIDC_SUBJECT))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
async def keyset(http: httpx.AsyncClient, info: StackInfo) -> KeySet:
    return KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())


@pytest.fixture(scope="module")
def citizen(fresh_citizens: Any) -> Citizen:
    return next(fresh_citizens)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def browser(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen, portals: dict[str, Portal]) -> Browser:
    """The citizen's browser, signed in once (at a1): every other portal is reached by SSO."""
    who: Person = await person(info, citizen)
    signed = Browser(http)
    await sign_in(signed, portals["a1"].flow(info), who.id_number, who.password, who.code())
    return signed


async def tokens(http: httpx.AsyncClient, info: StackInfo, browser: Browser, portal: Portal, keyset: KeySet,
                 scope: str = SCOPE) -> Tokens:  # fmt: skip
    flow = portal.flow(info, scope)
    params = await sign_in(browser, flow, "", "", "")  # SSO: no credentials asked; consent allowed if asked
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return Tokens(jwt.decode(body["id_token"], keyset).claims, body["access_token"],
                  jwt.decode(body["access_token"], keyset).claims, body.get("refresh_token"))  # fmt: skip


async def userinfo(http: httpx.AsyncClient, info: StackInfo, access_token: str) -> dict[str, Any]:
    reply = await http.get(f"{info.oidc_issuer}/userinfo", headers={"authorization": f"Bearer {access_token}"})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def consent_page(browser: Browser, flow: SignIn, lang: str = "vi") -> httpx.Response:
    _, challenge = pkce_pair()
    url = flow.authorize_url("s", "n", challenge) + f"&lang={lang}"
    return await browser.follow("GET", url, stop_at=flow.redirect_uri)


async def test_discovery_advertises_both_subject_types(http: httpx.AsyncClient, info: StackInfo) -> None:
    meta = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    assert meta["subject_types_supported"] == ["public", "pairwise"]


async def test_sub_is_pairwise_per_sector_and_stable_within_one(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, browser: Browser, portals: dict[str, Portal],
    keyset: KeySet, subjects: Subjects, citizen: Citizen,
) -> None:  # fmt: skip
    seen = {name: await tokens(http, info, browser, portals[name], keyset) for name in ("a1", "a2", "b", "public")}
    again = await tokens(http, info, browser, portals["a1"], keyset)  # a second sign-in there
    released = {}
    for name, got in seen.items():
        info_sub = (await userinfo(http, info, got.access_token))["sub"]
        assert got.id_token["sub"] == got.access["sub"] == info_sub, name  # ID token, access token, userinfo alike
        released[name] = info_sub
    assert released["a1"] == released["a2"] == again.id_token["sub"] == again.access["sub"]
    assert len({released["a1"], released["b"], released["public"]}) == 3
    assert released["a1"] == subjects.subject(citizen.id_number, SECTOR_A)
    assert released["b"] == subjects.subject(citizen.id_number, "b.example")  # the redirect URIs' host
    assert released["public"] == subjects.subject(citizen.id_number)  # a public portal keeps its users' sub
    assert (seen["a1"].access["sector"], seen["b"].access["sector"]) == (SECTOR_A, "b.example")
    assert "sector" not in seen["public"].access
    assert subjects.id_number(released["a1"], "b.example") is None  # a sub of one sector opens under no other
    assert subjects.id_number(released["a1"]) is None
    # introspection releases the same sub, for the access token and the refresh token (never the internal one)
    a1 = portals["a1"]
    for token in (seen["a1"].access_token, seen["a1"].refresh_token):
        body = (await http.post(f"{info.oidc_issuer}/introspect", data={"token": token},
                                auth=(a1.client_id, a1.secret))).json()  # fmt: skip
        assert (body["active"], body["sub"]) == (True, released["a1"])
    # a service still finds the right citizen from a pairwise token (the sector travels in the token)
    for name in ("a1", "b", "public"):
        async with channel_as(stack, "registry", "edge") as channel:
            record = await rgrpc.PopulationRegistryStub(channel).GetMyRecord(
                rpb.GetMyRecordRequest(), metadata=(("authorization", f"Bearer {seen[name].access_token}"),), timeout=10
            )
        assert record.id_number == citizen.id_number, name


async def test_national_id_only_under_its_scope_and_said_on_the_consent_page(
    http: httpx.AsyncClient, info: StackInfo, browser: Browser, portals: dict[str, Portal], keyset: KeySet,
    pool: asyncpg.Pool, citizen: Citizen,
) -> None:  # fmt: skip
    b = portals["b"]
    await pool.execute("DELETE FROM oidc.consents WHERE client_id = $1", b.client_id)  # asked afresh
    for lang, words in (("vi", "số định danh cá nhân 12 số"), ("en", "12-digit personal ID number")):
        page = await consent_page(browser, b.flow(info), lang)
        assert 'name="decision"' in page.text
        assert 'id="national-id-notice"' in page.text
        assert words in page.text
    page = await consent_page(browser, b.flow(info, "openid profile"))
    assert 'name="decision"' in page.text
    assert 'id="national-id-notice"' not in page.text
    without = await tokens(http, info, browser, b, keyset, "openid profile")
    assert "national_id" not in await userinfo(http, info, without.access_token)
    assert citizen.id_number not in json.dumps(without.id_token) + json.dumps(without.access)
    with_it = await tokens(http, info, browser, b, keyset)
    assert (await userinfo(http, info, with_it.access_token))["national_id"] == citizen.id_number


async def test_switching_a_public_portal_exports_its_mapping_and_keeps_the_previous_sub_for_a_while(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, browser: Browser, portals: dict[str, Portal],
    keyset: KeySet, subjects: Subjects, citizen: Citizen, tmp_path: Path,
) -> None:  # fmt: skip
    public = portals["public"]
    before = await tokens(http, info, browser, public, keyset)  # consented: in the portal's consents
    old = subjects.subject(citizen.id_number)
    assert before.id_token["sub"] == old
    assert "previous_sub" not in before.id_token
    out = tmp_path / "mapping.json"
    code, switched = dinhdanh(stack, "clients", "subjects", public.client_id, "--pairwise", "--sector",
                              "cong-cu.gov.vn", "--out", str(out))  # fmt: skip
    assert code == 0, switched
    mapping = json.loads(out.read_text())
    new = subjects.subject(citizen.id_number, "cong-cu.gov.vn")
    assert {"previous_sub": old, "sub": new} in mapping["subjects"]
    assert (mapping["sector_identifier"], switched["subject_type"]) == ("cong-cu.gov.vn", "pairwise")
    assert out.stat().st_mode & 0o077 == 0  # it links each citizen's two subs: the operator's eyes only
    started = time.monotonic()
    while True:  # the edge caches a client's registration for a few seconds
        after = await tokens(http, info, browser, public, keyset)
        if after.id_token["sub"] != old or time.monotonic() - started > 10:
            break
        await asyncio.sleep(1)
    assert (after.id_token["sub"], after.access["sub"], after.id_token.get("previous_sub")) == (new, new, old)
    code, again = dinhdanh(stack, "clients", "subjects", public.client_id, "--pairwise", "--out", str(out))
    assert code == 1
    assert "pairwise subjects already" in again["error"]


async def test_an_expired_remembered_consent_asks_again(
    info: StackInfo, browser: Browser, portals: dict[str, Portal], pool: asyncpg.Pool, subjects: Subjects,
    citizen: Citizen,
) -> None:  # fmt: skip
    a2 = portals["a2"]
    page = await consent_page(browser, a2.flow(info))
    assert page.status_code == 303  # the edge answers 303 See Other for the 302 of RFC 6749 §4.1.2
    assert "code=" in page.headers["location"]
    moved = await pool.execute(
        "UPDATE oidc.consents SET granted_at = now() - interval '181 days' WHERE subject = $1 AND client_id = $2",
        subjects.subject(citizen.id_number), a2.client_id,
    )  # fmt: skip
    assert moved == "UPDATE 1"
    page = await consent_page(browser, a2.flow(info))
    assert 'name="decision"' in page.text  # 180 days (the default consent_ttl) are over
    await sign_in(browser, a2.flow(info, "openid profile"), "", "", "")  # given again, for fewer scopes
    scopes = await pool.fetchval("SELECT scopes FROM oidc.consents WHERE subject = $1 AND client_id = $2",
                                 subjects.subject(citizen.id_number), a2.client_id)  # fmt: skip
    assert scopes == ["openid", "profile"]  # the expired consent's national_id was not carried over


async def test_withdrawal_asks_again_and_revokes_the_portals_refresh_tokens(
    http: httpx.AsyncClient, info: StackInfo, browser: Browser, portals: dict[str, Portal], keyset: KeySet,
) -> None:  # fmt: skip
    a1, b = portals["a1"], portals["b"]
    held = await tokens(http, info, browser, a1, keyset)
    kept = await tokens(http, info, browser, b, keyset)
    assert held.refresh_token
    assert kept.refresh_token
    page = await browser.follow("GET", f"{info.oidc_issuer}/account/portals?lang=en")
    assert page.status_code == 200
    assert f'data-client-id="{a1.client_id}"' in page.text
    assert "Expires" in page.text
    assert (await Browser(http).follow("GET", f"{info.oidc_issuer}/account/portals")).status_code == 401
    withdraw = f"{info.oidc_issuer}/account/portals/withdraw"
    forged = await browser.request("POST", withdraw, data={"client_id": a1.client_id, "csrf": "x"})
    assert forged.status_code == 400  # no CSRF token of this session: nothing withdrawn
    done = await browser.request("POST", withdraw, data={"client_id": a1.client_id, "csrf": csrf_of(page)})
    assert done.status_code == 303
    listed = await browser.follow("GET", info.oidc_issuer + done.headers["location"])
    assert f'data-client-id="{a1.client_id}"' not in listed.text
    assert f'data-client-id="{b.client_id}"' in listed.text
    assert "Cổng a1" in listed.text  # the notice names the portal withdrawn
    refreshed = await http.post(f"{info.oidc_issuer}/token", data={"grant_type": "refresh_token",
                                "refresh_token": held.refresh_token}, auth=(a1.client_id, a1.secret))  # fmt: skip
    assert (refreshed.status_code, refreshed.json()["error"]) == (400, "invalid_grant")
    other = await http.post(f"{info.oidc_issuer}/token", data={"grant_type": "refresh_token",
                            "refresh_token": kept.refresh_token}, auth=(b.client_id, b.secret))  # fmt: skip
    assert other.status_code == 200, other.text  # another portal's consent and tokens are untouched
    page = await consent_page(browser, a1.flow(info))
    assert 'name="decision"' in page.text  # the next sign-in asks again


async def test_registration_needs_one_host_or_a_sector(stack: Stack) -> None:
    code, bad = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng hai miền", "--redirect-uri",
                         "https://x.example/cb", "--redirect-uri", "https://y.example/cb")  # fmt: skip
    assert code == 1
    assert "sector identifier" in bad["error"]
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng hai miền", "--redirect-uri",
                          "https://x.example/cb", "--redirect-uri", "https://y.example/cb", "--sector", "bo-x.gov.vn",
                          "--consent-days", "30")  # fmt: skip
    assert code == 0, made
    assert (made["subject_type"], made["sector_identifier"], made["consent_ttl"]) == ("pairwise", "bo-x.gov.vn",
                                                                                       30 * 86400)  # fmt: skip


async def test_a_pairwise_client_with_no_sector_to_be_told_gets_an_oauth_error(
    http: httpx.AsyncClient, info: StackInfo, browser: Browser, pool: asyncpg.Pool
) -> None:
    """Registered around ``registration.portal`` (which refuses it): redirect URIs on two hosts, no sector. The token
    endpoint answers ``invalid_client``, never a 500, and no sub of any sector is released."""
    client, secret = registration.portal("Cổng hai miền", ["https://m.example/cb"], scopes=["national_id"])
    client = dataclasses.replace(client, redirect_uris=("https://m.example/cb", "https://n.example/cb"),
                                 sector_identifier=None)  # fmt: skip
    await ClientStore(pool).add(client)
    flow = SignIn(info.oidc_issuer, client.client_id, secret, "https://n.example/cb", "openid profile")
    params = await sign_in(browser, flow, "", "", "")
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code in (400, 401)
    assert reply.json()["error"] == "invalid_client"
