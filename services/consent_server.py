"""gRPC translation for consent (protos/consent/v1/consent.proto). Skeleton: every RPC is closed until the
consent service is built (an RPC missing from ``POLICY`` is PERMISSION_DENIED)."""

from __future__ import annotations

from core.callers import Allow
from core.settings import Settings
from protos.consent.v1 import consent_pb2 as pb
from protos.consent.v1 import consent_pb2_grpc as pb_grpc
from services.server import ServiceSpec

NAME = pb.DESCRIPTOR.services_by_name["Consent"].full_name
POLICY: dict[str, Allow] = {}


async def build(settings: Settings) -> ServiceSpec:
    servicer = pb_grpc.ConsentServicer()
    return ServiceSpec(
        name="consent",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_ConsentServicer_to_server(servicer, server),
        policy=POLICY,
    )
