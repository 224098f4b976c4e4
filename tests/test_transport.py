"""Every gRPC port: TLS only, a client certificate from the platform CA, a per-method caller policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from core.callers import Allow
from core.settings import Settings
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from services.server import ServiceSpec, start, stop
from services.tls import secure_channel
from stack.info import StackInfo
from stack.pki import PlatformCA
from stack.supervisor import Stack
from tests.conftest import channel_as


def address(stack: Stack, service: str) -> str:
    return f"127.0.0.1:{getattr(stack.ports, service)}"


async def test_health_and_reflection_answer_any_platform_peer(stack: Stack) -> None:
    async with channel_as(stack, "identity", "vault") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        named = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="dinhdanh.identity.v1.Identity"), timeout=5
        )
        assert named.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        async for response in stream:
            names = {s.name for s in response.list_services_response.service}
            assert "dinhdanh.identity.v1.Identity" in names
            break


async def test_plaintext_is_refused(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(address(stack, "registry")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rgrpc.PopulationRegistryStub(channel).GetCitizen(rpb.GetCitizenRequest(id_number="x"), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("service", ["registry", "identity", "vault"])
async def test_tls_without_client_certificate_is_refused(stack: Stack, service: str) -> None:
    """Every gRPC port: TLS to the right server (its name checked), but no client certificate."""
    credentials = grpc.ssl_channel_credentials(root_certificates=stack.ca.ca_cert_path.read_bytes())
    options = (("grpc.ssl_target_name_override", service),)
    async with grpc.aio.secure_channel(address(stack, service), credentials, options=options) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_refuses_a_server_with_another_services_certificate(info: StackInfo) -> None:
    """A client dialling "registry" that reaches the vault (a misrouted address, a hijacked port) refuses it
    at the handshake, although the vault's certificate is from the platform CA."""
    misrouted = replace(info, services={**info.services, "registry": info.services["vault"]})
    async with misrouted.channel("registry") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    async with info.channel("vault") as channel:  # the same server, dialled by its own name
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_certificate_from_another_ca_is_refused(stack: Stack, tmp_path: Path) -> None:
    foreign = PlatformCA(tmp_path / "foreign")
    foreign.ensure()
    paths = foreign.issue("identity")  # claims a platform name, signed by the wrong CA
    credentials = grpc.ssl_channel_credentials(
        root_certificates=stack.ca.ca_cert_path.read_bytes(),
        private_key=paths.key.read_bytes(),
        certificate_chain=paths.cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(address(stack, "registry"), credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rgrpc.PopulationRegistryStub(channel).GetCitizen(rpb.GetCitizenRequest(id_number="x"), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_service_not_in_the_policy_is_denied(stack: Stack) -> None:
    async with channel_as(stack, "identity", "vault") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await igrpc.IdentityStub(channel).VerifyPassword(
                ipb.VerifyPasswordRequest(id_number="001099000001", password="x" * 10, source="s"), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "service:vault" in (caught.value.details() or "")


async def test_edge_may_sign_in_but_not_act_as_operator(stack: Stack) -> None:
    async with channel_as(stack, "identity", "edge") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await igrpc.IdentityStub(channel).UnlockAccount(
                ipb.UnlockAccountRequest(id_number="001099000001"), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_identity_calls_the_registry_as_a_service(stack: Stack) -> None:
    async with channel_as(stack, "registry", "identity") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rgrpc.PopulationRegistryStub(channel).CountCitizens(rpb.CountCitizensRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # counting is for operators only


async def test_deadline_is_honoured(operator_identity: grpc.aio.Channel, citizens: list) -> None:
    stub = igrpc.IdentityStub(operator_identity)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.VerifyPassword(
            ipb.VerifyPasswordRequest(id_number=citizens[0].id_number, password="wrong password!", source="deadline"),
            timeout=0.001,
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_oversized_message_is_refused(operator_identity: grpc.aio.Channel) -> None:
    stub = igrpc.IdentityStub(operator_identity)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.VerifyPassword(
            ipb.VerifyPasswordRequest(id_number="001099000001", password="p" * 200_000, source="s"), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _probe_handlers() -> grpc.GenericRpcHandler:
    async def answer(request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> Any:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    handler = grpc.unary_unary_rpc_method_handler(
        answer, health_pb2.HealthCheckRequest.FromString, health_pb2.HealthCheckResponse.SerializeToString
    )
    return grpc.method_handlers_generic_handler(PROBE, {"Listed": handler, "Unlisted": handler})


PROBE = "dinhdanh.test.v1.Probe"


async def test_a_method_missing_from_the_policy_is_refused(stack: Stack) -> None:
    """The real server builder with a policy that lists one of the service's two methods: the other one is
    refused to every caller, operators included, while the listed one answers the same caller."""
    paths = stack.ca.issue("probe")
    spec = ServiceSpec(
        name="probe",
        service_names=(PROBE,),
        register=lambda server: server.add_generic_rpc_handlers((_probe_handlers(),)),
        policy={f"/{PROBE}/Listed": Allow.of(services=("edge",), operators=True)},
    )
    settings = Settings(listen="127.0.0.1:0", tls_ca=paths.ca, tls_cert=paths.cert, tls_key=paths.key)
    running = await start(spec, settings)
    operator = stack.ca.issue("operator", operator=True)
    try:
        async with secure_channel(f"127.0.0.1:{running.port}", operator.ca, operator.cert, operator.key,
                                  server="probe") as channel:  # fmt: skip
            request = health_pb2.HealthCheckRequest()
            listed = channel.unary_unary(f"/{PROBE}/Listed", health_pb2.HealthCheckRequest.SerializeToString,
                                         health_pb2.HealthCheckResponse.FromString)  # fmt: skip
            unlisted = channel.unary_unary(f"/{PROBE}/Unlisted", health_pb2.HealthCheckRequest.SerializeToString,
                                           health_pb2.HealthCheckResponse.FromString)  # fmt: skip
            assert (await listed(request, timeout=5)).status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await unlisted(request, timeout=5)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert caught.value.details() == "this method is not open to any caller"
    finally:
        await stop(running, spec)
