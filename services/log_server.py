"""gRPC translation for the transparency log (protos/audit/v1/log.proto). Skeleton: every RPC is closed until
the log service is built (an RPC missing from ``POLICY`` is PERMISSION_DENIED)."""

from __future__ import annotations

from core.callers import Allow
from core.settings import Settings
from protos.audit.v1 import log_pb2 as pb
from protos.audit.v1 import log_pb2_grpc as pb_grpc
from services.server import ServiceSpec

NAME = pb.DESCRIPTOR.services_by_name["Log"].full_name
POLICY: dict[str, Allow] = {}


async def build(settings: Settings) -> ServiceSpec:
    servicer = pb_grpc.LogServicer()
    return ServiceSpec(
        name="log",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_LogServicer_to_server(servicer, server),
        policy=POLICY,
    )
