"""Bearer access tokens in the one interceptor: verified locally (JWKS cache, revocation list polled from
PostgreSQL), the subject handed to the servicer, every bad token refused without echoing it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from core.callers import Allow, Principal, current_caller, current_principal
from core.errors import Unauthenticated
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from services import interceptor
from services.bearer import TokenCheckUnavailable, TokenVerifier, parse_authorization
from services.interceptor import CallerInterceptor
from services.tls import secure_channel, server_credentials
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.bearer_helpers import (
    AGENCY,
    AUDIENCE,
    CITIZEN,
    ISSUER,
    PORTAL,
    JwksServer,
    Signer,
    b64,
    citizen_claims,
    client_claims,
    unsigned,
)

REGISTRY = "/dinhdanh.registry.v1.PopulationRegistry"
TEST = "/dinhdanh.test.v1.Bearer"
POLICY = {
    f"{REGISTRY}/GetCitizen": Allow.of(services=("identity",), citizens=True),
    f"{REGISTRY}/CountCitizens": Allow.of(services=("identity",), operators=True),
    f"{TEST}/ClientsToo": Allow.of(citizens=True, clients=True),
    f"{TEST}/Scoped": Allow.of(citizens=True, clients=True, scopes=("vault.read",)),
    f"{TEST}/Level2": Allow.of(citizens=True, min_acr=2),
    f"{TEST}/Stream": Allow.of(citizens=True),
}
Metadata = tuple[tuple[str, str], ...]


def echo() -> rpb.Citizen:
    """What the servicer sees: the peer, and the token's subject when there is one."""
    caller = current_caller()
    try:
        principal = current_principal()
    except Unauthenticated:
        return rpb.Citizen(hometown=caller.label)
    assert caller.principal is principal
    return rpb.Citizen(
        id_number=principal.subject,
        full_name=principal.kind,
        nationality=principal.client_id,
        ethnicity=" ".join(sorted(principal.scopes)),
        religion=principal.acr or "",
        hometown=caller.label,
        phone=principal.jti,
    )


class EchoRegistry(rgrpc.PopulationRegistryServicer):
    async def GetCitizen(self, request: rpb.GetCitizenRequest, context: grpc.aio.ServicerContext) -> rpb.Citizen:
        return echo()

    async def CountCitizens(
        self, request: rpb.CountCitizensRequest, context: grpc.aio.ServicerContext
    ) -> rpb.CountCitizensResponse:
        return rpb.CountCitizensResponse(count=100 + (current_caller().principal is not None))


async def _unary(request: rpb.GetCitizenRequest, context: grpc.aio.ServicerContext) -> rpb.Citizen:
    return echo()


async def _stream(request: rpb.GetCitizenRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[rpb.Citizen]:
    for _ in range(2):
        yield echo()


def _test_handlers() -> grpc.GenericRpcHandler:
    unary = grpc.unary_unary_rpc_method_handler(_unary, rpb.GetCitizenRequest.FromString, rpb.Citizen.SerializeToString)
    stream = grpc.unary_stream_rpc_method_handler(
        _stream, rpb.GetCitizenRequest.FromString, rpb.Citizen.SerializeToString
    )
    return grpc.method_handlers_generic_handler(
        "dinhdanh.test.v1.Bearer", {"ClientsToo": unary, "Scoped": unary, "Level2": unary, "Stream": stream}
    )


async def start_server(stack: Stack, verifier: TokenVerifier | None) -> tuple[grpc.aio.Server, str]:
    paths = stack.ca.issue("bearer-test")
    server = grpc.aio.server(
        interceptors=[CallerInterceptor(POLICY, verifier)],
        # let oversized authorization metadata reach the interceptor (the default transport limit is 8 KiB)
        options=[("grpc.max_metadata_size", 64 * 1024), ("grpc.so_reuseport", 0)],
    )
    rgrpc.add_PopulationRegistryServicer_to_server(EchoRegistry(), server)
    server.add_generic_rpc_handlers((_test_handlers(),))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(paths.ca, paths.cert, paths.key))
    await server.start()
    return server, f"127.0.0.1:{port}"


def peer(stack: Stack, address: str, name: str, operator: bool = False) -> grpc.aio.Channel:
    paths = stack.ca.issue(name, operator=operator)
    return secure_channel(address, paths.ca, paths.cert, paths.key, server="bearer-test")


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("op-key-1")


@pytest.fixture(scope="module")
def rsa_signer() -> Signer:
    return Signer("op-key-rsa", alg="RS256")


@pytest.fixture(scope="module")
async def jwks(signer: Signer, rsa_signer: Signer) -> AsyncIterator[JwksServer]:
    server = JwksServer([signer.jwk, rsa_signer.jwk])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def verifier(jwks: JwksServer, info: StackInfo) -> AsyncIterator[TokenVerifier]:
    checking = TokenVerifier(ISSUER, AUDIENCE, jwks.url, info.postgres_dsn, refetch_interval=0.3, key_states=False)
    await checking.start()
    yield checking
    await checking.stop()


@pytest.fixture(scope="module")
async def address(stack: Stack, verifier: TokenVerifier) -> AsyncIterator[str]:
    server, where = await start_server(stack, verifier)
    yield where
    await server.stop(grace=None)


@pytest.fixture
async def portal(stack: Stack, address: str) -> AsyncIterator[grpc.aio.Channel]:
    """A portal backend: a platform certificate the policy does not admit on its own."""
    async with peer(stack, address, "portal") as channel:
        yield channel


@pytest.fixture
def restore_jwks(jwks: JwksServer) -> Iterator[None]:
    keys = list(jwks.keys)
    yield None
    jwks.keys = keys
    jwks.fail = False


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


async def get(channel: grpc.aio.Channel, metadata: Metadata = ()) -> rpb.Citizen:
    return await rgrpc.PopulationRegistryStub(channel).GetCitizen(
        rpb.GetCitizenRequest(id_number=CITIZEN), metadata=metadata, timeout=5
    )


async def call(channel: grpc.aio.Channel, method: str, metadata: Metadata = ()) -> rpb.Citizen:
    rpc = channel.unary_unary(
        f"{TEST}/{method}",
        request_serializer=rpb.GetCitizenRequest.SerializeToString,
        response_deserializer=rpb.Citizen.FromString,
    )
    return await rpc(rpb.GetCitizenRequest(), metadata=metadata, timeout=5)


async def refused(channel: grpc.aio.Channel, metadata: Metadata, method: str = "GetCitizen") -> grpc.aio.AioRpcError:
    attempt = get(channel, metadata) if method == "GetCitizen" else call(channel, method, metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await attempt
    error = caught.value
    sent = dict(metadata).get("authorization", "")
    token = sent.partition(" ")[2].strip()
    if len(token) > 8:  # never echoed: neither in the details nor in the trailers
        assert token not in (error.details() or "")
        assert all(token not in str(value) for _, value in error.trailing_metadata() or ())
    return error


def unauthenticated(error: grpc.aio.AioRpcError, words: str) -> None:
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
    details = error.details() or ""
    assert words in details, details
    assert details.startswith('Bearer realm="dinhdanh"')
    trailers = dict(error.trailing_metadata() or ())
    assert trailers.get("www-authenticate") == details


# -- a valid token -------------------------------------------------------------------------------------


async def test_valid_citizen_token_reaches_the_handler(portal: grpc.aio.Channel, signer: Signer) -> None:
    claims = citizen_claims()
    seen = await get(portal, bearer(signer.mint(claims)))
    assert seen.id_number == CITIZEN
    assert seen.full_name == "citizen"
    assert seen.nationality == PORTAL
    assert seen.ethnicity == "openid profile registry.read"
    assert seen.religion == "2"
    assert seen.hometown == "service:portal"  # the peer stays the mTLS identity
    assert seen.phone == claims["jti"]


async def test_rs256_and_audience_lists_are_accepted(portal: grpc.aio.Channel, rsa_signer: Signer) -> None:
    token = rsa_signer.mint(citizen_claims(aud=["urn:dinhdanh:service:other", AUDIENCE]))
    assert (await get(portal, bearer(token))).id_number == CITIZEN


async def test_scheme_is_case_insensitive(portal: grpc.aio.Channel, signer: Signer) -> None:
    seen = await get(portal, (("authorization", f"bearer {signer.mint()}"),))
    assert seen.id_number == CITIZEN


async def test_streaming_methods_get_the_principal(portal: grpc.aio.Channel, signer: Signer) -> None:
    rpc = portal.unary_stream(
        f"{TEST}/Stream",
        request_serializer=rpb.GetCitizenRequest.SerializeToString,
        response_deserializer=rpb.Citizen.FromString,
    )
    seen = [item async for item in rpc(rpb.GetCitizenRequest(), metadata=bearer(signer.mint()), timeout=5)]
    assert [item.id_number for item in seen] == [CITIZEN, CITIZEN]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in rpc(rpb.GetCitizenRequest(), timeout=5):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_expiry_allows_thirty_seconds_of_clock_skew(portal: grpc.aio.Channel, signer: Signer) -> None:
    now = int(time.time())
    token = signer.mint(citizen_claims(exp=now - 10, iat=now - 300, nbf=now + 10))
    assert (await get(portal, bearer(token))).id_number == CITIZEN


# -- refused tokens -------------------------------------------------------------------------------------


async def test_no_token_is_unauthenticated(portal: grpc.aio.Channel) -> None:
    error = await refused(portal, ())
    unauthenticated(error, "needs a bearer access token")
    assert "error=" not in (error.details() or "")  # RFC 6750 §3.1: no error code without credentials


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("Bearer", "carries no token"),
        ("Bearer ", "carries no token"),
        ("Bearer    ", "carries no token"),
        ("Basic dXNlcjpwYXNz", "must use the Bearer scheme"),
        ("DPoP ", "carries no token"),  # the DPoP scheme (RFC 9449 §7.1) is parsed: tests/dpop
        ("Token eyJhbGciOiJFUzI1NiJ9.e30.sig", "must use the Bearer scheme"),
        ("Bearer not a token", "malformed"),
        ("Bearer abc.def", "not a signed JWT"),
        ("Bearer a.b.c.d", "not a signed JWT"),
        ("Bearer !!!.e30.sig", "malformed"),
        ("Bearer e30.e30.", "algorithm is not accepted"),
        (f"Bearer {b64(b'not json')}.e30.sig", "malformed"),
    ],
)
async def test_malformed_authorization_is_unauthenticated(portal: grpc.aio.Channel, value: str, words: str) -> None:
    unauthenticated(await refused(portal, (("authorization", value),)), words)


async def test_two_authorization_entries_are_refused(portal: grpc.aio.Channel, signer: Signer) -> None:
    token = signer.mint()
    error = await refused(portal, (("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")))
    unauthenticated(error, "send one authorization")


async def test_oversized_authorization_is_refused_unparsed(portal: grpc.aio.Channel) -> None:
    error = await refused(portal, (("authorization", "Bearer " + "a" * (9 * 1024)),))
    unauthenticated(error, "too large")


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"exp": -120, "iat": -600}, "has expired"),
        ({"exp": -31, "iat": -600}, "has expired"),
        ({"nbf": 120}, "not valid yet"),
        ({"iat": 120}, "issue time is in the future"),
        ({"iss": "http://localhost:8081"}, "not issued by this platform"),
        ({"iss": ISSUER + "/"}, "not issued by this platform"),
        ({"aud": "urn:dinhdanh:service:vault"}, "not meant for this service"),
        ({"aud": ["urn:dinhdanh:service:vault", "urn:dinhdanh:service:consent"]}, "not meant for this service"),
        ({"jti": None}, "lacks a required claim"),
        ({"exp": None}, "lacks a required claim"),
        ({"client_id": None}, "lacks a required claim"),
        ({"exp": "tomorrow"}, "expiry is malformed"),
        ({"scope": ["openid"]}, "scope is malformed"),
        ({"sub": "short"}, "subject is malformed"),
        ({"acr": "3"}, "acr is missing or unknown"),
        ({"acr": None}, "acr is missing or unknown"),
    ],
)
async def test_bad_claims_are_unauthenticated(
    portal: grpc.aio.Channel, signer: Signer, claims: dict[str, Any], words: str
) -> None:
    now = int(time.time())
    relative = {"exp", "iat", "nbf"}
    overrides = {k: now + v if k in relative and isinstance(v, int) else v for k, v in claims.items()}
    token = signer.mint(citizen_claims(**overrides))
    unauthenticated(await refused(portal, bearer(token)), words)


async def test_tampered_signature_and_payload_are_refused(portal: grpc.aio.Channel, signer: Signer) -> None:
    header, payload, signature = signer.mint().split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    unauthenticated(await refused(portal, bearer(f"{header}.{payload}.{flipped}")), "signature does not verify")
    other = b64(citizen_claims(sub="T3BhcXVlLXN1YmplY3QtdHdv"))
    unauthenticated(await refused(portal, bearer(f"{header}.{other}.{signature}")), "signature does not verify")
    unauthenticated(await refused(portal, bearer(f"{header}.{payload}.")), "signature does not verify")


async def test_alg_none_and_hmac_are_refused(portal: grpc.aio.Channel, signer: Signer) -> None:
    claims = citizen_claims()
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "kid": signer.kid, "typ": "at+jwt"}, claims)
        unauthenticated(await refused(portal, bearer(token)), "algorithm is not accepted")
    # HS256 keyed with the OP's public key (the classic algorithm confusion), and with any secret
    header = {"alg": "HS256", "kid": signer.kid, "typ": "at+jwt"}
    signing_input = f"{b64(header)}.{b64(claims)}"
    confused = hmac.new(signer.key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    unauthenticated(await refused(portal, bearer(f"{signing_input}.{b64(confused)}")), "algorithm is not accepted")
    hmac_token = jwt.encode(header, claims, OctKey.import_key(b"s" * 32), ["HS256"])
    unauthenticated(await refused(portal, bearer(hmac_token)), "algorithm is not accepted")


async def test_key_and_algorithm_must_match(portal: grpc.aio.Channel, signer: Signer, rsa_signer: Signer) -> None:
    # an RS256 header naming the EC key's kid: the key is not an RSA key
    token = rsa_signer.mint(kid=signer.kid)
    unauthenticated(await refused(portal, bearer(token)), "signing key does not fit its algorithm")


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT+x", None, "application/jwt"])
async def test_wrong_typ_is_refused(portal: grpc.aio.Channel, signer: Signer, typ: str | None) -> None:
    header, payload, signature = signer.mint(typ=typ).split(".")
    unauthenticated(await refused(portal, bearer(f"{header}.{payload}.{signature}")), "typ at+jwt")


async def test_application_at_jwt_typ_is_accepted(portal: grpc.aio.Channel, signer: Signer) -> None:
    assert (await get(portal, bearer(signer.mint(typ="application/at+jwt")))).id_number == CITIZEN


async def test_unknown_kid_is_refused_until_the_jwks_has_it(
    portal: grpc.aio.Channel, jwks: JwksServer, signer: Signer, restore_jwks: None
) -> None:
    rotated = Signer("op-key-2")
    token = rotated.mint()
    unauthenticated(await refused(portal, bearer(token)), "unknown key")
    jwks.keys = [signer.jwk, rotated.jwk]  # the OP rotates: the new key appears in its JWKS
    deadline = time.monotonic() + 2
    while True:
        try:
            seen = await get(portal, bearer(token))
            break
        except grpc.aio.AioRpcError as error:
            unauthenticated(error, "unknown key")
            assert time.monotonic() < deadline, "the rotated key was never fetched"
            await asyncio.sleep(0.05)
    assert seen.id_number == CITIZEN
    assert (await get(portal, bearer(signer.mint()))).id_number == CITIZEN  # the old key still verifies


async def test_unknown_kids_cannot_hammer_the_jwks(info: StackInfo, jwks: JwksServer, signer: Signer) -> None:
    checking = TokenVerifier(ISSUER, AUDIENCE, jwks.url, info.postgres_dsn, refetch_interval=5, key_states=False)
    await checking.start()
    try:
        before = jwks.requests
        garbage = [Signer(f"garbage-{i}").mint() for i in range(5)] * 20
        results = await asyncio.gather(*(checking.verify(token) for token in garbage), return_exceptions=True)
        assert all(isinstance(result, Unauthenticated) for result in results)
        for token in garbage[:20]:
            with pytest.raises(Unauthenticated):
                await checking.verify(token)
        assert jwks.requests - before == 1  # one fetch for the first unknown kid, then rate-limited
        assert (await checking.verify(signer.mint())).subject == CITIZEN  # the one fetch loaded real keys
    finally:
        await checking.stop()


async def test_a_key_dropped_from_the_jwks_stops_verifying(info: StackInfo, signer: Signer) -> None:
    old, new = Signer("old-key"), Signer("new-key")
    server = JwksServer([old.jwk])
    await server.start()
    checking = TokenVerifier(ISSUER, AUDIENCE, server.url, info.postgres_dsn, refetch_interval=0.1, key_states=False)
    try:
        token = old.mint()
        assert (await checking.verify(token)).subject == CITIZEN
        assert (await checking.verify(token)).subject == CITIZEN  # from the cache of verified tokens
        server.keys = [new.jwk]  # the OP retires the old key
        deadline = time.monotonic() + 2
        while (await _outcome(checking, new.mint())) != "ok":  # the new kid makes the verifier refetch
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        with pytest.raises(Unauthenticated, match="unknown key"):
            await checking.verify(token)
    finally:
        await checking.stop()
        await server.stop()


async def test_a_cached_token_still_expires(info: StackInfo, jwks: JwksServer, signer: Signer) -> None:
    checking = TokenVerifier(ISSUER, AUDIENCE, jwks.url, info.postgres_dsn, leeway=0, key_states=False)
    try:
        await checking.verify(signer.mint(citizen_claims()))  # the JWKS is loaded before the clock matters
        # 2 s of life, whole seconds: at least 1 s left for the first verify whatever the fraction of now.
        token = signer.mint(citizen_claims(exp=int(time.time()) + 2))
        assert (await checking.verify(token)).subject == CITIZEN
        deadline = time.monotonic() + 4
        while (await _outcome(checking, token)) == "ok":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        with pytest.raises(Unauthenticated, match="has expired"):
            await checking.verify(token)
    finally:
        await checking.stop()


async def _outcome(checking: TokenVerifier, token: str) -> str:
    try:
        await checking.verify(token)
    except Unauthenticated as error:
        return error.message
    return "ok"


async def test_cached_keys_survive_an_unreachable_jwks(
    portal: grpc.aio.Channel, jwks: JwksServer, signer: Signer, restore_jwks: None
) -> None:
    jwks.fail = True
    assert (await get(portal, bearer(signer.mint()))).id_number == CITIZEN
    unauthenticated(await refused(portal, bearer(Signer("op-key-3").mint())), "unknown key")


async def test_revoked_token_is_refused_within_a_second(
    portal: grpc.aio.Channel, signer: Signer, info: StackInfo
) -> None:
    claims = citizen_claims()
    token = signer.mint(claims)
    other = signer.mint()
    assert (await get(portal, bearer(token))).id_number == CITIZEN
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        await connection.execute(
            "INSERT INTO oidc.revoked_tokens (jti, expires_at) VALUES ($1, to_timestamp($2))",
            claims["jti"],
            claims["exp"],
        )
    finally:
        await connection.close()
    revoked = time.monotonic()
    while True:
        try:
            await get(portal, bearer(token))
        except grpc.aio.AioRpcError as error:
            unauthenticated(error, "has been revoked")
            break
        assert time.monotonic() - revoked < 2, "the revocation was not honoured"
        await asyncio.sleep(0.02)
    assert (await get(portal, bearer(other))).id_number == CITIZEN  # other tokens are unaffected


async def test_expired_revocations_are_dropped(verifier: TokenVerifier, info: StackInfo) -> None:
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        await connection.execute(
            "INSERT INTO oidc.revoked_tokens (jti, expires_at) VALUES ('long-gone', now() - interval '1 hour'),"
            " ('still-live', now() + interval '1 hour')"
        )
    finally:
        await connection.close()
    deadline = time.monotonic() + 2
    while not verifier.is_revoked("still-live"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert not verifier.is_revoked("long-gone")  # its token could not pass the exp check anyway


# -- the policy -----------------------------------------------------------------------------------------


async def test_client_token_on_a_citizen_only_method_is_denied(portal: grpc.aio.Channel, signer: Signer) -> None:
    token = signer.mint(client_claims())
    error = await refused(portal, bearer(token))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "client tokens may not call this method" in (error.details() or "")
    seen = await call(portal, "ClientsToo", bearer(token))
    assert (seen.id_number, seen.full_name, seen.religion) == (AGENCY, "client", "")


async def test_missing_scope_and_low_assurance_are_denied(portal: grpc.aio.Channel, signer: Signer) -> None:
    error = await refused(portal, bearer(signer.mint()), method="Scoped")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert 'error="insufficient_scope"' in (error.details() or "")
    assert 'scope="vault.read"' in dict(error.trailing_metadata() or ())["www-authenticate"]
    assert (await call(portal, "Scoped", bearer(signer.mint(client_claims())))).full_name == "client"

    error = await refused(portal, bearer(signer.mint(citizen_claims(acr="1"))), method="Level2")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert 'acr_values="2"' in (error.details() or "")
    assert (await call(portal, "Level2", bearer(signer.mint()))).religion == "2"


async def test_listed_service_without_token_is_admitted_as_itself(stack: Stack, address: str, signer: Signer) -> None:
    async with peer(stack, address, "identity") as identity:
        seen = await get(identity)
        assert (seen.id_number, seen.hometown) == ("", "service:identity")
        # a token sent along is judged as the token's subject
        assert (await get(identity, bearer(signer.mint()))).id_number == CITIZEN
        error = await refused(identity, bearer(signer.mint(citizen_claims(exp=int(time.time()) - 120))))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_mtls_only_methods_judge_the_peer_but_refuse_a_bad_token(
    stack: Stack, address: str, portal: grpc.aio.Channel, signer: Signer
) -> None:
    """An operators-only method is decided by the peer; a token sent with it must still verify (issue 9)."""
    garbage = (("authorization", "Bearer garbage"),)
    async with peer(stack, address, "bearer-operator", operator=True) as operator:
        stub = rgrpc.PopulationRegistryStub(operator)
        assert (await stub.CountCitizens(rpb.CountCitizensRequest(), timeout=5)).count == 100
        count = await stub.CountCitizens(rpb.CountCitizensRequest(), metadata=bearer(signer.mint()), timeout=5)
        assert count.count == 100  # a valid token is verified, then the operator is admitted; no principal bound
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CountCitizens(rpb.CountCitizensRequest(), metadata=garbage, timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rgrpc.PopulationRegistryStub(portal).CountCitizens(rpb.CountCitizensRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "service:portal" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # a citizen's token does not open an operators' method
        await rgrpc.PopulationRegistryStub(portal).CountCitizens(
            rpb.CountCitizensRequest(), metadata=bearer(signer.mint()), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    oversized = (("authorization", "Bearer " + "a" * (9 * 1024)),)
    async with peer(stack, address, "identity") as identity:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rgrpc.PopulationRegistryStub(identity).CountCitizens(
                rpb.CountCitizensRequest(), metadata=oversized, timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- failing closed -------------------------------------------------------------------------------------


async def test_unreachable_database_fails_closed(stack: Stack, jwks: JwksServer, signer: Signer) -> None:
    checking = TokenVerifier(
        ISSUER, AUDIENCE, jwks.url, "postgresql://nobody@127.0.0.1:1/none", poll_interval=0.1, key_states=False
    )
    server, where = await start_server(stack, checking)
    try:
        async with peer(stack, where, "portal") as channel:
            error = await refused(channel, bearer(signer.mint()))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "revocation list is out of date" in (error.details() or "")
    finally:
        await server.stop(grace=None)
        await checking.stop()


async def test_losing_the_database_fails_closed_after_a_few_seconds(
    info: StackInfo, jwks: JwksServer, signer: Signer
) -> None:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    checking = TokenVerifier(ISSUER, AUDIENCE, jwks.url, pool, poll_interval=0.1, stale_after=0.5, key_states=False)
    await checking.start()
    try:
        assert (await checking.verify(signer.mint())).subject == CITIZEN
        await pool.close()  # the poller can no longer read revocations
        lost = time.monotonic()
        while True:
            try:
                await checking.verify(signer.mint())
            except TokenCheckUnavailable:
                break
            assert time.monotonic() - lost < 2
            await asyncio.sleep(0.05)
        assert checking.revocations_fresh is False
    finally:
        await checking.stop()


async def test_without_a_verifier_token_calls_are_unavailable(stack: Stack, signer: Signer) -> None:
    server, where = await start_server(stack, None)
    try:
        async with peer(stack, where, "portal") as channel:
            error = await refused(channel, bearer(signer.mint()))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            unauthenticated(await refused(channel, ()), "needs a bearer access token")
    finally:
        await server.stop(grace=None)


# -- the API --------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, metadata: Metadata) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> Metadata:
        return self._metadata


async def test_the_metadata_key_is_matched_case_insensitively(verifier: TokenVerifier, signer: Signer) -> None:
    # gRPC clients send lowercase keys (Python's refuses others); the interceptor does not rely on it
    context: Any = _Context((("Authorization", f"Bearer {signer.mint()}"),))
    principal = await interceptor._principal(context, verifier, True)
    assert principal is not None
    assert principal.subject == CITIZEN
    assert await interceptor._principal(_Context((("x-other", "1"),)), verifier, True) is None  # type: ignore[arg-type]


def test_parse_authorization() -> None:
    assert parse_authorization("Bearer abc.def-_~+/=") == "abc.def-_~+/="
    assert parse_authorization(b"BEARER  abc") == "abc"
    with pytest.raises(Unauthenticated):
        parse_authorization("Bearer " + "a" * 9000)


def test_current_principal_needs_a_token() -> None:
    with pytest.raises(Unauthenticated):
        current_principal()


def test_allow_of_keeps_its_old_form() -> None:
    allow = Allow.of(services=("edge",), operators=True)
    assert allow == Allow(frozenset({"edge"}), True)
    assert not allow.accepts_tokens
    principal = Principal("citizen", CITIZEN, PORTAL, frozenset(), (AUDIENCE,), "1", "j", 0)
    assert principal.label == f"citizen via {PORTAL}"
    assert CITIZEN not in principal.label
