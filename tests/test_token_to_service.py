"""End to end: a token from the OpenID Provider opens a gRPC service through the shared interceptor."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx

from bench.browserless import SignIn
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.identity_calls import refused
from tests.oidc_helpers import person, signed_in
from tests.test_cli import dinhdanh

REGISTRY = "urn:dinhdanh:service:registry"
REDIRECT = "https://ho-so.example/callback"


async def access_token(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, citizen: Citizen, scope: str
) -> tuple[str, tuple[str, str]]:
    """A citizen's token for the registry, through a portal registered for it (and for the scopes asked); and
    that portal's credentials."""
    extra = [arg for s in scope.split() if s not in ("openid", "profile") for arg in ("--scope", s)]
    code, client = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng hồ sơ", "--redirect-uri", REDIRECT,
                            "--resource", REGISTRY, *extra)  # fmt: skip
    assert code == 0, client
    who = await person(info, citizen)
    flow = SignIn(info.oidc_issuer, client["client_id"], client["client_secret"], REDIRECT, scope,
                  {"resource": REGISTRY})  # fmt: skip
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"]), (client["client_id"], client["client_secret"])


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def test_citizen_reads_own_record_until_the_token_is_revoked(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    token, client = await access_token(http, info, stack, fresh_citizen, "openid profile national_id")
    async with channel_as(stack, "registry", "edge") as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        record = await stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token), timeout=10)
        assert record.id_number == fresh_citizen.id_number  # national_id
        await refused(stub.GetMyRecord(pb.GetMyRecordRequest(), timeout=10), grpc.StatusCode.UNAUTHENTICATED)
        await refused(
            stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token[:-4] + "AAAA"), timeout=10),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        revoked = await http.post(f"{info.oidc_issuer}/revoke", data={"token": token}, auth=client)
        assert revoked.status_code == 200
        started = time.monotonic()
        while True:
            try:
                await stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token), timeout=10)
            except grpc.aio.AioRpcError as error:
                refusal = error
                break
            assert time.monotonic() - started < 2.0, "revocation must reach the service within a second"
            await asyncio.sleep(0.05)
        assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_token_without_the_scope_is_denied(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    token, _ = await access_token(http, info, stack, fresh_citizen, "openid")
    async with channel_as(stack, "registry", "edge") as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        call = stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token), timeout=10)
        await refused(call, grpc.StatusCode.PERMISSION_DENIED)


async def test_my_record_holds_only_what_the_scopes_release(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    """``profile`` releases the name, birth date, sex and nationality (the userinfo claims of that scope), never
    the 12-digit number (``national_id``), the address, the phone, ethnicity or religion."""
    token, _ = await access_token(http, info, stack, fresh_citizen, "openid profile")
    async with channel_as(stack, "registry", "edge") as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        record = await stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token), timeout=10)
    assert record.full_name == fresh_citizen.full_name
    assert record.date_of_birth == fresh_citizen.date_of_birth.isoformat()
    assert record.id_number == ""
    assert fresh_citizen.id_number not in str(record)
    assert not record.HasField("permanent_address")
    assert not record.HasField("current_address")
    assert (record.phone, record.ethnicity, record.religion, record.id_card_issue_place) == ("", "", "", "")


async def test_a_method_that_needs_no_token_refuses_one_that_does_not_verify(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, citizens: list[Citizen], fresh_citizen: Citizen
) -> None:
    """GetCitizen is for platform services only; a token sent with it anyway must verify, or the call is refused
    (a caller that sends a forged or revoked token is not treated as if it had sent none)."""
    token, _ = await access_token(http, info, stack, fresh_citizen, "openid profile")
    request = pb.GetCitizenRequest(id_number=citizens[3].id_number)
    async with channel_as(stack, "registry", "edge") as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        assert (await stub.GetCitizen(request, timeout=10)).id_number == citizens[3].id_number
        assert (await stub.GetCitizen(request, metadata=bearer(token), timeout=10)).id_number
        for bad in (token[:-4] + "AAAA", "not-a-jwt", token.replace(".", ".x", 1)):
            error = await refused(stub.GetCitizen(request, metadata=bearer(bad), timeout=10),
                                  grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
            assert token not in (error.details() or "")
    async with channel_as(stack, "identity", "edge") as channel:  # identity takes no bearer tokens at all
        stub_i = igrpc.IdentityStub(channel)
        account = ipb.GetAccountRequest(id_number=info.demo_citizen["id_number"])
        assert (await stub_i.GetAccount(account, timeout=10)).totp_enrolled
        await refused(stub_i.GetAccount(account, metadata=bearer(token), timeout=10), grpc.StatusCode.UNAUTHENTICATED)
