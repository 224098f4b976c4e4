"""DPoP proofs checked alone (RFC 9449 §4.3), no stack: what a proof must be, server nonces (§8), single use."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from joserfc import jwk, jws

from identity.oidc import dpop
from identity.oidc.dpop import DpopChecker, InvalidDpopProof, MemoryReplayCache, Nonces, Proofer, UseDpopNonce

URL = "https://id.dinhdanh.gov.vn/userinfo"
TOKEN = "eyJ.access.token"


def _forged(header: dict[str, object], claims: dict[str, object], key: jwk.Key, alg: str = "ES256") -> str:
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = 4096
    return jws.serialize_compact(header, json.dumps(claims), key, algorithms=[alg], registry=registry)


def _claims(**overrides: object) -> dict[str, object]:
    return {"jti": "j-1", "htm": "GET", "htu": URL, "iat": int(time.time()), **overrides}


@pytest.mark.parametrize("alg", dpop.ALGORITHMS)
def test_a_proof_by_each_algorithm_verifies_and_names_its_key(alg: str) -> None:
    proofer = Proofer(alg=alg)
    proof, claims = dpop.verify_proof(proofer.proof("GET", URL, access_token=TOKEN), "GET", URL, TOKEN)
    assert proof.jkt == proofer.jkt == proofer.key.thumbprint()  # RFC 7638, as cnf.jkt names it (§6.1)
    assert claims["ath"] == dpop.access_token_hash(TOKEN)


def test_htu_is_compared_without_query_and_fragment() -> None:
    proof = Proofer().proof("GET", "https://ID.dinhdanh.gov.vn:443/userinfo?x=1#f")
    dpop.verify_proof(proof, "GET", URL + "?other=2")  # §4.3 point 9
    with pytest.raises(InvalidDpopProof, match="htu"):
        dpop.verify_proof(proof, "GET", "https://id.dinhdanh.gov.vn/token")
    with pytest.raises(InvalidDpopProof, match="htu"):
        dpop.verify_proof(proof, "GET", "https://id.dinhdanh.gov.vn:8443/userinfo")


def test_htm_must_be_the_requests_method() -> None:
    with pytest.raises(InvalidDpopProof, match="htm"):
        dpop.verify_proof(Proofer().proof("GET", URL), "POST", URL)


def test_a_stale_or_future_iat_is_refused() -> None:
    proofer = Proofer()
    with pytest.raises(InvalidDpopProof, match="iat"):
        dpop.verify_proof(proofer.proof("GET", URL, iat=time.time() - dpop.MAX_AGE - 2), "GET", URL)
    with pytest.raises(InvalidDpopProof, match="iat"):
        dpop.verify_proof(proofer.proof("GET", URL, iat=time.time() + dpop.SKEW + 5), "GET", URL)


def test_ath_is_required_with_a_token_and_must_be_its_hash() -> None:
    proofer = Proofer()
    with pytest.raises(InvalidDpopProof, match="needs an ath"):
        dpop.verify_proof(proofer.proof("GET", URL), "GET", URL, TOKEN)
    with pytest.raises(InvalidDpopProof, match="ath is not the hash"):
        dpop.verify_proof(proofer.proof("GET", URL, access_token="another.token"), "GET", URL, TOKEN)


def test_only_asymmetric_algorithms_and_the_dpop_type() -> None:
    key = jwk.ECKey.generate_key("P-256")
    public = key.as_dict(private=False)
    with pytest.raises(InvalidDpopProof, match="typ"):
        dpop.verify_proof(_forged({"alg": "ES256", "typ": "JWT", "jwk": public}, _claims(), key), "GET", URL)
    secret = jwk.OctKey.generate_key(256)
    hmac_proof = _forged({"alg": "HS256", "typ": "dpop+jwt", "jwk": public}, _claims(), secret, "HS256")
    with pytest.raises(InvalidDpopProof, match="alg"):
        dpop.verify_proof(hmac_proof, "GET", URL)
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "dpop+jwt", "jwk": public}).encode())
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode())
    with pytest.raises(InvalidDpopProof, match="alg"):
        dpop.verify_proof(f"{none.decode().rstrip('=')}.{body.decode().rstrip('=')}.", "GET", URL)


def test_the_jwk_must_be_public_and_must_have_signed() -> None:
    key = jwk.ECKey.generate_key("P-256")
    private = _forged({"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=True)}, _claims(), key)
    with pytest.raises(InvalidDpopProof, match="public key"):
        dpop.verify_proof(private, "GET", URL)
    other = jwk.ECKey.generate_key("P-256").as_dict(private=False)
    with pytest.raises(InvalidDpopProof, match="signature"):
        dpop.verify_proof(_forged({"alg": "ES256", "typ": "dpop+jwt", "jwk": other}, _claims(), key), "GET", URL)
    no_jti = _forged({"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}, _claims(jti=None), key)
    with pytest.raises(InvalidDpopProof, match="jti"):
        dpop.verify_proof(no_jti, "GET", URL)
    for garbage in ("", "a.b", "not.a.jwt", "x" * (dpop.MAX_PROOF + 1)):
        with pytest.raises(InvalidDpopProof):
            dpop.verify_proof(garbage, "GET", URL)


def test_nonces_expire_and_belong_to_their_key() -> None:
    nonces = Nonces(b"k" * 32)
    assert nonces.valid(nonces.current())
    assert nonces.current() == nonces.current()  # re-minted only half way through its life
    assert not nonces.valid(nonces.mint(now=time.time() - dpop.NONCE_TTL - 1))  # stale
    assert not Nonces(b"o" * 32).valid(nonces.current())  # another server's key
    assert not nonces.valid("garbage")
    assert not nonces.valid(None)


async def test_the_checker_wants_the_nonce_the_key_and_a_single_use() -> None:
    nonces = Nonces(b"k" * 32)
    checker = DpopChecker(MemoryReplayCache(), nonces)
    proofer = Proofer()
    with pytest.raises(UseDpopNonce, match="needs this server's nonce"):
        await checker.check([proofer.proof("GET", URL)], "GET", URL)
    stale = nonces.mint(now=time.time() - dpop.NONCE_TTL - 1)
    with pytest.raises(UseDpopNonce, match="stale"):
        await checker.check([proofer.proof("GET", URL, nonce=stale)], "GET", URL)
    proofer.nonce = checker.nonce()
    with pytest.raises(InvalidDpopProof, match="another key"):
        await checker.check([proofer.proof("GET", URL, access_token=TOKEN)], "GET", URL, TOKEN, jkt=Proofer().jkt)
    with pytest.raises(InvalidDpopProof, match="exactly one"):
        await checker.check([proofer.proof("GET", URL), proofer.proof("GET", URL)], "GET", URL)
    with pytest.raises(InvalidDpopProof, match="needs a DPoP proof"):
        await checker.check([], "GET", URL)
    proof = proofer.proof("GET", URL)
    outcomes = await asyncio.gather(*(checker.check([proof], "GET", URL) for _ in range(8)), return_exceptions=True)
    assert sum(isinstance(o, dpop.Proof) for o in outcomes) == 1
    refused = [o for o in outcomes if not isinstance(o, dpop.Proof)]
    assert len(refused) == 7
    assert all(isinstance(o, InvalidDpopProof) and "used before" in str(o) for o in refused)


def test_grpc_htu_rule() -> None:
    assert dpop.grpc_htu("vault", "/dinhdanh.vault.v1.Vault/ListDocuments") == (
        "https://vault/dinhdanh.vault.v1.Vault/ListDocuments"
    )
