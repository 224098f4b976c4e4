"""Certificate-bound access tokens (RFC 8705 §3) in the one interceptor: a token with ``cnf.x5t#S256`` passes
only over the connection whose peer certificate has that thumbprint, on every method of every service; a
malformed ``cnf`` or ``authorization_details`` (RFC 9396 §9.1) is refused; ``Allow.bound_agency`` admits only a
bound client token presented by its own agency."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from core.callers import Allow, AuthorizationDetail, current_principal
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from services.bearer import TokenVerifier
from services.interceptor import CallerInterceptor
from services.tls import secure_channel, server_credentials
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_helpers import AgencyCert, issue_agency, resigned, thumbprint_of
from tests.bearer_helpers import AGENCY, AUDIENCE, ISSUER, JwksServer, Signer, citizen_claims, client_claims
from tests.conftest import channel_as
from tests.vault_helpers import citizen_token

REGISTRY = "/dinhdanh.registry.v1.PopulationRegistry"
TEST = "/dinhdanh.test.v1.Bound"
POLICY = {
    f"{REGISTRY}/GetCitizen": Allow.of(citizens=True, clients=True),
    f"{REGISTRY}/CountCitizens": Allow.of(services=("identity",), operators=True, agencies=True),
    f"{TEST}/Shared": Allow.of(clients=True, bound_agency=True),
}
CONSENT = {"type": "consent", "consent_id": str(uuid.uuid4()), "purpose": "EMPLOYMENT_VERIFICATION"}
Metadata = tuple[tuple[str, str], ...]


def _seen() -> rpb.Citizen:
    principal = current_principal()
    details = " ".join(f"{d.type}/{d.consent_id}/{d.purpose}" for d in principal.authorization_details)
    return rpb.Citizen(id_number=principal.subject, full_name=principal.cnf_x5t, hometown=details)


class Echo(rgrpc.PopulationRegistryServicer):
    async def GetCitizen(self, request: rpb.GetCitizenRequest, context: grpc.aio.ServicerContext) -> rpb.Citizen:
        return _seen()

    async def CountCitizens(
        self, request: rpb.CountCitizensRequest, context: grpc.aio.ServicerContext
    ) -> rpb.CountCitizensResponse:
        return rpb.CountCitizensResponse(count=7)


async def _shared(request: rpb.GetCitizenRequest, context: grpc.aio.ServicerContext) -> rpb.Citizen:
    return _seen()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("bound-key-1")


@pytest.fixture(scope="module")
async def address(stack: Stack, info: StackInfo, signer: Signer) -> AsyncIterator[str]:
    jwks = JwksServer([signer.jwk])
    await jwks.start()
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, info.postgres_dsn, key_states=False)
    await verifier.start()
    paths = stack.ca.issue("bearer-test")
    server = grpc.aio.server(interceptors=[CallerInterceptor(POLICY, verifier)], options=[("grpc.so_reuseport", 0)])
    rgrpc.add_PopulationRegistryServicer_to_server(Echo(), server)
    handler = grpc.unary_unary_rpc_method_handler(
        _shared, rpb.GetCitizenRequest.FromString, rpb.Citizen.SerializeToString
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("dinhdanh.test.v1.Bound", {"Shared": handler}),)
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials(paths.ca, paths.cert, paths.key))
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)
    await verifier.stop()
    await jwks.stop()


@pytest.fixture(scope="module")
def agencies(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, AgencyCert]:
    folder: Path = tmp_path_factory.mktemp("agencies")
    return {
        "mine": issue_agency(stack.ca, folder, AGENCY),
        "again": issue_agency(stack.ca, folder, AGENCY),  # the same agency, another key and certificate
        "other": issue_agency(stack.ca, folder, "agency-other-0001"),
    }


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def bound(thumbprint: str, **overrides: Any) -> dict[str, Any]:
    return client_claims(cnf={"x5t#S256": thumbprint}, authorization_details=[CONSENT], **overrides)


async def get(channel: grpc.aio.Channel, token: str) -> rpb.Citizen:
    stub = rgrpc.PopulationRegistryStub(channel)
    return await stub.GetCitizen(rpb.GetCitizenRequest(), metadata=bearer(token), timeout=5)


async def shared(channel: grpc.aio.Channel, token: str) -> rpb.Citizen:
    rpc = channel.unary_unary(
        f"{TEST}/Shared", request_serializer=rpb.GetCitizenRequest.SerializeToString,
        response_deserializer=rpb.Citizen.FromString,
    )  # fmt: skip
    return await rpc(rpb.GetCitizenRequest(), metadata=bearer(token) if token else (), timeout=5)


async def refused(
    call: Any, code: grpc.StatusCode, words: str = "", challenge_error: str | None = "invalid_token"
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == code, (error.code(), error.details())
    assert words in (error.details() or ""), error.details()
    if code == grpc.StatusCode.UNAUTHENTICATED and challenge_error:
        challenge = dict(error.trailing_metadata() or ()).get("www-authenticate", "")
        assert f'error="{challenge_error}"' in challenge, challenge
    return error


async def test_a_bound_token_passes_over_its_own_certificate(
    address: str, agencies: dict[str, AgencyCert], signer: Signer
) -> None:
    mine = agencies["mine"]
    async with mine.channel(address, "bearer-test") as channel:
        seen = await get(channel, signer.mint(bound(mine.thumbprint)))
        assert seen.full_name == mine.thumbprint
        assert seen.hometown == f"consent/{CONSENT['consent_id']}/{CONSENT['purpose']}"
        assert (await shared(channel, signer.mint(bound(mine.thumbprint)))).id_number == AGENCY


async def test_a_bound_token_over_another_certificate_is_unauthenticated(
    stack: Stack, address: str, agencies: dict[str, AgencyCert], signer: Signer
) -> None:
    token = signer.mint(bound(agencies["mine"].thumbprint))
    for other in ("again", "other"):  # another certificate of the same agency, another agency's
        async with agencies[other].channel(address, "bearer-test") as channel:
            await refused(get(channel, token), grpc.StatusCode.UNAUTHENTICATED, "bound to another certificate")
            await refused(shared(channel, token), grpc.StatusCode.UNAUTHENTICATED, "bound to another certificate")
    paths = stack.ca.issue("portal")
    async with secure_channel(address, paths.ca, paths.cert, paths.key, server="bearer-test") as portal:
        await refused(get(portal, token), grpc.StatusCode.UNAUTHENTICATED, "bound to another certificate")


async def test_even_a_method_decided_by_the_peer_refuses_a_misbound_token(
    address: str, agencies: dict[str, AgencyCert], signer: Signer
) -> None:
    """CountCitizens admits agencies by their certificate alone; a token sent along must still be theirs."""
    async with agencies["other"].channel(address, "bearer-test") as channel:
        stub = rgrpc.PopulationRegistryStub(channel)
        assert (await stub.CountCitizens(rpb.CountCitizensRequest(), timeout=5)).count == 7
        token = signer.mint(bound(agencies["mine"].thumbprint))
        call = stub.CountCitizens(rpb.CountCitizensRequest(), metadata=bearer(token), timeout=5)
        await refused(call, grpc.StatusCode.UNAUTHENTICATED, "bound to another certificate")


MALFORMED_CNF: list[Any] = [
    "x5t", [], {}, {"x5t#S256": 5}, {"x5t#S256": "short"}, {"x5t#S256": "A" * 43 + "="}, {"jkt": "short"},
    {"x5t#S256": "A" * 43, "jwk": {}}, {"x5t#S256": "+" * 43}, {"jkt": 5},
]  # fmt: skip


@pytest.mark.parametrize("cnf", MALFORMED_CNF, ids=range(len(MALFORMED_CNF)))
async def test_a_malformed_cnf_is_refused(
    address: str, agencies: dict[str, AgencyCert], signer: Signer, cnf: Any
) -> None:
    async with agencies["mine"].channel(address, "bearer-test") as channel:
        await refused(get(channel, signer.mint(client_claims(cnf=cnf))), grpc.StatusCode.UNAUTHENTICATED, "cnf")


MALFORMED_DETAILS: list[Any] = [
    "consent", {}, [], [1], [{}], [{"type": 5}], [{"type": ""}], [{"type": "consent"}],
    [{"type": "consent", "consent_id": "not-a-uuid", "purpose": "EMPLOYMENT_VERIFICATION"}],
    [{"type": "consent", "consent_id": str(uuid.uuid4()).upper(), "purpose": "EMPLOYMENT_VERIFICATION"}],
    [{"type": "consent", "consent_id": str(uuid.uuid4()), "purpose": "employment verification"}],
    [{"type": "consent", "consent_id": str(uuid.uuid4())}], [{"type": "consent"}] * 9,
]  # fmt: skip


@pytest.mark.parametrize("details", MALFORMED_DETAILS, ids=range(len(MALFORMED_DETAILS)))
async def test_malformed_authorization_details_are_refused(
    address: str, agencies: dict[str, AgencyCert], signer: Signer, details: Any
) -> None:
    mine = agencies["mine"]
    token = signer.mint(client_claims(cnf={"x5t#S256": mine.thumbprint}, authorization_details=details))
    async with mine.channel(address, "bearer-test") as channel:
        await refused(get(channel, token), grpc.StatusCode.UNAUTHENTICATED, "authorization_details")


def test_details_of_other_types_are_kept_by_type() -> None:
    from services.bearer import _details

    assert _details([{"type": "payment", "amount": 5}, CONSENT]) == (
        AuthorizationDetail("payment"),
        AuthorizationDetail("consent", CONSENT["consent_id"], CONSENT["purpose"]),
    )
    assert _details(None) == ()


async def test_bound_agency_methods_need_the_agencys_own_bound_token(
    stack: Stack, address: str, agencies: dict[str, AgencyCert], signer: Signer
) -> None:
    mine = agencies["mine"]
    async with mine.channel(address, "bearer-test") as channel:
        unbound = signer.mint(client_claims(authorization_details=[CONSENT]))
        await refused(shared(channel, unbound), grpc.StatusCode.UNAUTHENTICATED, "certificate-bound")
        assert (await get(channel, unbound)).full_name == "", "a plain method takes an unbound token"
        await refused(shared(channel, signer.mint(citizen_claims())), grpc.StatusCode.PERMISSION_DENIED, "citizen")
        other_agency = signer.mint(bound(mine.thumbprint, sub="agency-other-0001", client_id="agency-other-0001"))
        await refused(shared(channel, other_agency), grpc.StatusCode.PERMISSION_DENIED, "another agency")
        await refused(shared(channel, ""), grpc.StatusCode.UNAUTHENTICATED, "needs a bearer", None)  # no token
    paths = stack.ca.issue("portal")
    portal_print = thumbprint_of(paths.cert)
    async with secure_channel(address, paths.ca, paths.cert, paths.key, server="bearer-test") as portal:
        token = signer.mint(bound(portal_print))  # bound to the portal's own certificate: not an agency
        assert (await get(portal, token)).full_name == portal_print
        await refused(shared(portal, token), grpc.StatusCode.PERMISSION_DENIED, "agency")


# -- the real services: the same interceptor everywhere ------------------------------------------------


async def test_real_services_refuse_a_token_bound_to_another_certificate(
    stack: Stack, info: StackInfo, fresh_citizen: Any, agencies: dict[str, AgencyCert]
) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        token = await citizen_token(http, info, fresh_citizen, "openid profile vault.read")
    audiences = [info.oidc_issuer, "urn:dinhdanh:service:vault", "urn:dinhdanh:service:registry"]
    elsewhere = await resigned(stack, info, token, aud=audiences, cnf={"x5t#S256": agencies["mine"].thumbprint})
    edge_print = thumbprint_of(stack.ca.issue("edge").cert)
    here = await resigned(stack, info, token, cnf={"x5t#S256": edge_print})
    async with channel_as(stack, "vault", "edge") as channel:
        vault = vgrpc.VaultStub(channel)
        await vault.ListDocuments(vpb.ListDocumentsRequest(), metadata=bearer(here), timeout=10)
        call = vault.ListDocuments(vpb.ListDocumentsRequest(), metadata=bearer(elsewhere), timeout=10)
        await refused(call, grpc.StatusCode.UNAUTHENTICATED, "bound to another certificate")
    async with channel_as(stack, "registry", "edge") as channel:
        registry = rgrpc.PopulationRegistryStub(channel)
        call = registry.GetMyRecord(rpb.GetMyRecordRequest(), metadata=bearer(elsewhere), timeout=10)
        await refused(call, grpc.StatusCode.UNAUTHENTICATED, "bound to another certificate")
