"""gRPC translation for judicial records (protos/issuance/v1/judicial.proto); the records live in
``issuance.judicial_store`` (``judicial.convictions``), the codec in ``services.judicial_codec``.

Who calls (``POLICY``): the issuance service (it builds criminal-record certificates from what this returns,
Law on Judicial Records 2009 Art. 41–46) and operators, by their certificates; no token is read, and no agency
or citizen reaches the records directly. ``GetRecord`` answers a malformed ID number INVALID_ARGUMENT, an unknown
one (or one without convictions) an empty record, and states each conviction as of today in Vietnam.
"""

from __future__ import annotations

import grpc

from core.callers import Allow
from core.settings import Settings
from db.pool import open_pool
from issuance.judicial_store import JudicialRecords, PostgresJudicialRecordStore, today_in_vietnam
from protos.issuance.v1 import judicial_pb2 as pb
from protos.issuance.v1 import judicial_pb2_grpc as pb_grpc
from services.judicial_codec import record_to_pb
from services.server import ServiceSpec

NAME = pb.DESCRIPTOR.services_by_name["JudicialRecords"].full_name
POLICY: dict[str, Allow] = {f"/{NAME}/GetRecord": Allow.of(services=("issuance",), operators=True)}


class JudicialRecordsServicer(pb_grpc.JudicialRecordsServicer):
    def __init__(self, records: JudicialRecords) -> None:
        self._records = records

    async def GetRecord(self, request: pb.GetRecordRequest, context: grpc.aio.ServicerContext) -> pb.JudicialRecord:
        return record_to_pb(await self._records.record(request.id_number), today_in_vietnam())


async def build(settings: Settings) -> ServiceSpec:
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    servicer = JudicialRecordsServicer(JudicialRecords(PostgresJudicialRecordStore(pool)))
    return ServiceSpec(
        name="judicial",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_JudicialRecordsServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[pool.close],
    )
