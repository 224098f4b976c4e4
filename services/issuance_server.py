"""gRPC translation for certificate issuance (protos/issuance/v1/issuance.proto). Skeleton: every RPC is closed
until the service is built (an RPC missing from ``POLICY`` is PERMISSION_DENIED)."""

from __future__ import annotations

from core.callers import Allow
from core.settings import Settings
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from services.server import ServiceSpec

SERVICES = ("Certificates", "Officers", "AgencyRequests", "IssuerKeys")
NAMES = tuple(pb.DESCRIPTOR.services_by_name[name].full_name for name in SERVICES)
POLICY: dict[str, Allow] = {}


async def build(settings: Settings) -> ServiceSpec:
    def register(server: object) -> None:
        pb_grpc.add_CertificatesServicer_to_server(pb_grpc.CertificatesServicer(), server)
        pb_grpc.add_OfficersServicer_to_server(pb_grpc.OfficersServicer(), server)
        pb_grpc.add_AgencyRequestsServicer_to_server(pb_grpc.AgencyRequestsServicer(), server)
        pb_grpc.add_IssuerKeysServicer_to_server(pb_grpc.IssuerKeysServicer(), server)

    return ServiceSpec(name="issuance", service_names=NAMES, register=register, policy=POLICY)  # type: ignore[arg-type]
