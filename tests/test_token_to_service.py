"""End to end: a token from the OpenID Provider opens a gRPC service through the shared interceptor."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx

from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.identity_calls import refused
from tests.oidc_helpers import person, portal_flow, signed_in

REGISTRY = "urn:dinhdanh:service:registry"


async def access_token(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen, scope: str) -> str:
    who = await person(info, citizen)
    flow = portal_flow(info, scope=scope, resource=REGISTRY)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def test_citizen_reads_own_record_until_the_token_is_revoked(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    token = await access_token(http, info, fresh_citizen, "openid profile")
    async with channel_as(stack, "registry", "edge") as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        record = await stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token), timeout=10)
        assert record.id_number == fresh_citizen.id_number
        await refused(stub.GetMyRecord(pb.GetMyRecordRequest(), timeout=10), grpc.StatusCode.UNAUTHENTICATED)
        await refused(
            stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token[:-4] + "AAAA"), timeout=10),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        client = info.clients["portal"]
        revoked = await http.post(f"{info.oidc_issuer}/revoke", data={"token": token},
                                  auth=(client["client_id"], client["client_secret"]))  # fmt: skip
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
    token = await access_token(http, info, fresh_citizen, "openid")
    async with channel_as(stack, "registry", "edge") as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        call = stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=bearer(token), timeout=10)
        await refused(call, grpc.StatusCode.PERMISSION_DENIED)
