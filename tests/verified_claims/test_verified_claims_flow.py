"""Verified claims end to end on the session stack: the claims parameter (OpenID Connect Core §5.5) in userinfo and
the ID token, ``verified_claims`` (OpenID Connect for Identity Assurance 1.0) returned only as requested and only
what is true — level 1 from self-activation, level 2 with the evidence `dinhdanh accounts verify-in-person`
recorded, seen by a token issued before the verification — and signed / encrypted userinfo (Core §5.3.2)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwe, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from bench.browserless import Browser, SignIn, callback_params, pkce_pair, sign_in
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import Person, person, portal_flow
from tests.test_cli import dinhdanh

PLACE = "Công an phường Ba Đình, Hà Nội"
ASK = {"verification": {"trust_framework": None, "assurance_level": None, "time": None, "evidence": None,
                        "verification_process": None},
       "claims": {"given_name": None, "family_name": None, "birthdate": None}}  # fmt: skip


async def tokens(http: httpx.AsyncClient, flow: SignIn, who: Person) -> dict[str, Any]:
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    assert "code" in params, params
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return reply.json()


async def userinfo(http: httpx.AsyncClient, info: StackInfo, access: str) -> httpx.Response:
    return await http.get(f"{info.oidc_issuer}/userinfo", headers={"Authorization": f"Bearer {access}"})


async def keyset(http: httpx.AsyncClient, info: StackInfo) -> KeySet:
    return KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())


async def test_discovery_advertises_verified_claims_and_userinfo_jwts(http: httpx.AsyncClient, info: StackInfo) -> None:
    meta = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    assert meta["claims_parameter_supported"] is True
    assert meta["verified_claims_supported"] is True
    assert meta["trust_frameworks_supported"] == ["vn_eid"]
    assert set(meta["evidence_supported"]) == {"document", "electronic_record"}
    assert "given_name" in meta["claims_in_verified_claims_supported"]
    assert set(meta["userinfo_signing_alg_values_supported"]) >= {"ES256", "RS256"}
    assert "ECDH-ES" in meta["userinfo_encryption_alg_values_supported"]
    assert "A256GCM" in meta["userinfo_encryption_enc_values_supported"]


async def test_invalid_claims_parameters_are_invalid_request(http: httpx.AsyncClient, info: StackInfo) -> None:
    _, challenge = pkce_pair()
    bad = ("{not json", '{"userinfo": {"given_name": {"values": "An"}}}',
           '{"userinfo": {"verified_claims": {"verification": {"trust_framework": null}, "claims": {}}}}')  # fmt: skip
    for claims in bad:
        reply = await http.get(portal_flow(info, claims=claims).authorize_url("bad", "n", challenge))
        assert reply.status_code in (302, 303), reply.text[:300]
        params = callback_params(reply)
        assert params["error"] == "invalid_request", claims
        assert params["state"] == "bad"
        assert "code" not in params


async def test_the_claims_parameter_puts_granted_claims_where_asked_with_the_values_asked(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    claims = {
        "id_token": {"birthdate": {"essential": True}, "given_name": None, "phone_number": {"essential": True}},
        "userinfo": {"family_name": {"value": "not the citizen's"}, "given_name": {"essential": True}},
    }
    got = await tokens(http, portal_flow(info, scope="openid profile", claims=json.dumps(claims)), who)
    id_token = jwt.decode(got["id_token"], await keyset(http, info)).claims
    assert id_token["birthdate"] == fresh_citizen.date_of_birth.isoformat()
    assert id_token["given_name"] == fresh_citizen.full_name.split()[-1]
    assert "phone_number" not in id_token  # essential, but the phone scope was not granted: never released
    assert "family_name" not in id_token  # not asked for in the ID token
    body = (await userinfo(http, info, got["access_token"])).json()
    assert body["given_name"] == fresh_citizen.full_name.split()[-1]
    assert "family_name" not in body  # asked for with another value
    assert body["birthdate"] == fresh_citizen.date_of_birth.isoformat()  # the profile scope's, as before
    assert "verified_claims" not in body  # not asked for
    assert "verified_claims" not in id_token


async def test_verified_claims_only_as_requested_and_level_2_after_verify_in_person(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    claims = {
        "userinfo": {"verified_claims": [
            ASK,
            {"verification": {"trust_framework": {"value": "eidas"}}, "claims": {"given_name": None}},
        ]},
        "id_token": {"verified_claims": {"verification": {"trust_framework": None},
                                         "claims": {"given_name": None, "phone_number": None}}},
    }  # fmt: skip
    got = await tokens(http, portal_flow(info, scope="openid profile", claims=json.dumps(claims)), who)
    # The ID token: only the claim asked for that may be released (phone: no scope), no verification detail.
    id_token = jwt.decode(got["id_token"], await keyset(http, info)).claims
    assert id_token["verified_claims"] == {"verification": {"trust_framework": "vn_eid"},
                                           "claims": {"given_name": fresh_citizen.full_name.split()[-1]}}  # fmt: skip
    # Userinfo, level 1: the eidas request is omitted, the vn_eid one answered with self-activation's evidence.
    [level_1] = (await userinfo(http, info, got["access_token"])).json()["verified_claims"]
    verification = level_1["verification"]
    assert verification["trust_framework"] == "vn_eid"
    assert verification["assurance_level"] == "1"
    [evidence] = verification["evidence"]
    assert evidence["type"] == "electronic_record"
    assert evidence["check_details"] == [{"check_method": "data", "time": verification["time"]}]
    assert "personal_number" not in evidence["record"]  # no national_id scope
    assert level_1["claims"] == {"given_name": fresh_citizen.full_name.split()[-1],
                                 "family_name": fresh_citizen.full_name.split()[0],
                                 "birthdate": fresh_citizen.date_of_birth.isoformat()}  # fmt: skip
    # An operator verifies the citizen in person after the sign-in: the same access token now shows level 2,
    # with the evidence recorded.
    code, account = dinhdanh(stack, "accounts", "verify-in-person", who.id_number, "--note", PLACE)
    assert code == 0, account
    recorded = account["in_person"]
    assert recorded["place"] == PLACE
    assert recorded["document_number"] == who.id_number
    assert recorded["verifier"]  # the operator's certificate name
    async with info.channel("identity") as channel:
        view = await igrpc.IdentityStub(channel).GetAccount(ipb.GetAccountRequest(id_number=who.id_number), timeout=10)
    assert view.in_person.txn == recorded["txn"]
    [level_2] = (await userinfo(http, info, got["access_token"])).json()["verified_claims"]
    verification = level_2["verification"]
    assert verification["assurance_level"] == "2"
    at = dt.datetime.fromisoformat(recorded["verified_at"]).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert verification["time"] == at
    assert verification["verification_process"] == recorded["txn"]
    [evidence] = verification["evidence"]
    assert evidence["type"] == "document"
    assert evidence["time"] == at
    assert [(c["check_method"], c["organization"], c["txn"]) for c in evidence["check_details"]] == [
        ("vpip", PLACE, recorded["txn"]), ("pvp", PLACE, recorded["txn"])]  # fmt: skip
    assert evidence["document_details"]["type"] == "idcard"
    assert "document_number" not in evidence["document_details"]  # no national_id scope
    assert evidence["document_details"]["issuer"]["name"] == fresh_citizen.id_card_issue_place
    assert evidence["document_details"]["date_of_issuance"] == fresh_citizen.id_card_issue_date.isoformat()


async def test_level_2_evidence_with_the_card_number_and_a_level_filter(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizens
) -> None:
    verified = await person(info, next(fresh_citizens))
    code, account = dinhdanh(stack, "accounts", "verify-in-person", verified.id_number, "--note", PLACE)
    assert code == 0, account
    ask = {"verification": {"trust_framework": None, "assurance_level": {"value": "2"},
                            "evidence": [{"type": {"value": "document"}, "document_details": None}]},
           "claims": {"given_name": None}}  # fmt: skip
    flow = portal_flow(info, claims=json.dumps({"userinfo": {"verified_claims": ask}}))  # with national_id
    got = await tokens(http, flow, verified)
    found = (await userinfo(http, info, got["access_token"])).json()["verified_claims"]
    assert found["verification"]["assurance_level"] == "2"
    assert found["verification"]["evidence"][0]["document_details"]["document_number"] == verified.id_number
    assert set(found["verification"]) == {"trust_framework", "assurance_level", "evidence"}  # only what was asked
    # The same request for a level-1 account: the constraint is not met, verified_claims are omitted.
    low = await person(info, next(fresh_citizens))
    got = await tokens(http, flow, low)
    body = (await userinfo(http, info, got["access_token"])).json()
    assert "verified_claims" not in body
    assert body["national_id"] == low.id_number  # the rest of userinfo as the scopes say


def _portal(stack: Stack, *options: str) -> tuple[SignIn, dict[str, Any]]:
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng thử userinfo ký", "--redirect-uri",
                          "https://uinfo.example/cb", "--subject-type", "public", *options)  # fmt: skip
    assert code == 0, made
    return SignIn("", made["client_id"], made["client_secret"], "https://uinfo.example/cb", "openid profile"), made


async def test_signed_userinfo_verifies_with_the_published_jwks(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    flow, made = _portal(stack, "--userinfo-signed-alg", "ES256")
    assert made["userinfo_signed_response_alg"] == "ES256"
    flow.issuer = info.oidc_issuer
    who = await person(info, fresh_citizen)
    got = await tokens(http, flow, who)
    reply = await userinfo(http, info, got["access_token"])
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/jwt")
    token = jwt.decode(reply.text, await keyset(http, info), algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    assert token.claims["iss"] == info.oidc_issuer
    assert token.claims["aud"] == made["client_id"]
    assert token.claims["sub"] == jwt.decode(got["id_token"], await keyset(http, info)).claims["sub"]
    assert token.claims["given_name"] == fresh_citizen.full_name.split()[-1]


async def test_encrypted_userinfo_decrypts_with_the_clients_key(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen, tmp_path: Path
) -> None:
    private = ECKey.generate_key("P-256", parameters={"kid": "portal-enc-1", "use": "enc"})
    jwks = tmp_path / "enc.jwks.json"
    jwks.write_text(json.dumps({"keys": [private.as_dict(private=False)]}))
    flow, made = _portal(stack, "--userinfo-signed-alg", "RS256", "--userinfo-encrypted-alg", "ECDH-ES",
                         "--userinfo-encrypted-enc", "A256GCM", "--encryption-jwks", str(jwks))  # fmt: skip
    assert made["userinfo_encrypted_response_alg"] == "ECDH-ES"
    assert made["token_endpoint_auth_method"] == "client_secret_basic"  # an encryption key: no key-auth client
    flow.issuer = info.oidc_issuer
    who = await person(info, fresh_citizen)
    got = await tokens(http, flow, who)
    reply = await userinfo(http, info, got["access_token"])
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/jwt")
    decrypted = jwe.decrypt_compact(reply.text, private, algorithms=["ECDH-ES", "A256GCM"])
    assert decrypted.protected["enc"] == "A256GCM"
    assert decrypted.protected["cty"] == "JWT"  # a Nested JWT
    inner = jwt.decode(decrypted.plaintext, await keyset(http, info), algorithms=["RS256"])
    assert inner.claims["aud"] == made["client_id"]
    assert inner.claims["family_name"] == fresh_citizen.full_name.split()[0]
    with pytest.raises(JoseError):  # another key cannot open it
        jwe.decrypt_compact(reply.text, ECKey.generate_key("P-256"), algorithms=["ECDH-ES", "A256GCM"])


async def test_a_refreshed_access_token_asks_userinfo_for_what_the_first_did(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    flow, _ = _portal(stack, "--refresh")
    flow.issuer = info.oidc_issuer
    flow.extra = {"claims": json.dumps({"userinfo": {"verified_claims": ASK, "family_name": {"value": "x"}}})}
    who = await person(info, fresh_citizen)
    got = await tokens(http, flow, who)
    assert "refresh_token" in got

    async def refresh(token: str) -> dict[str, Any]:
        form = {"grant_type": "refresh_token", "refresh_token": token}
        reply = await http.post(f"{info.oidc_issuer}/token", data=form, auth=(flow.client_id, flow.client_secret))
        assert reply.status_code == 200, reply.text
        return reply.json()

    once = await refresh(got["refresh_token"])
    twice = await refresh(once["refresh_token"])  # the rotated token keeps it too
    for access in (got["access_token"], once["access_token"], twice["access_token"]):
        body = (await userinfo(http, info, access)).json()
        assert body["verified_claims"]["verification"]["assurance_level"] == "1"
        assert "family_name" not in body
        assert body["given_name"] == fresh_citizen.full_name.split()[-1]
