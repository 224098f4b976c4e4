"""gRPC translation for judicial records (protos/issuance/v1/judicial.proto). Skeleton: every RPC is closed until
the service is built (an RPC missing from ``POLICY`` is PERMISSION_DENIED)."""

from __future__ import annotations

from core.callers import Allow
from core.settings import Settings
from protos.issuance.v1 import judicial_pb2 as pb
from protos.issuance.v1 import judicial_pb2_grpc as pb_grpc
from services.server import ServiceSpec

NAME = pb.DESCRIPTOR.services_by_name["JudicialRecords"].full_name
POLICY: dict[str, Allow] = {}


async def build(settings: Settings) -> ServiceSpec:
    servicer = pb_grpc.JudicialRecordsServicer()
    return ServiceSpec(
        name="judicial",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_JudicialRecordsServicer_to_server(servicer, server),
        policy=POLICY,
    )
