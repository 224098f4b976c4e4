"""The demo citizen's health book at ``dinhdanh up``: two visits pushed by the demo hospital.

The demo facility (``stack.json`` ``clients["facility_demo"]``, an agency registered with the role ``facility``,
``stack/web.py DEMO_AGENCIES``) pushes two visit records for the demo citizen through the real ``PushVisit`` over
mutual TLS with its own certificate, exactly as a hospital's system would: a respiratory infection with a
prescription and a lab result, and a vaccination visit. The records are fixed (fixed record ids, fixed past dates),
so a restart replays them (the service answers with the visits stored) and never adds a visit twice. Like the demo
issuer it is a convenience: a failure is reported through ``say``, never the reason the stack fails to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc
from services.tls import secure_channel
from stack.info import StackInfo

__all__ = ["DEMO_MINISTRY_CODE", "demo_records", "push_demo_visits"]

DEMO_MINISTRY_CODE = "01001"  # the demo hospital's MA_CSKCB (a demo value, not a real facility's)


def demo_records(id_number: str) -> list[pb.VisitRecord]:
    """The two demo visits of ``id_number`` (oldest first)."""
    return [
        pb.VisitRecord(
            facility_record_id="DEMO-KCB-2025-000417",
            citizen_id_number=id_number,
            admitted_on="2025-10-02",
            discharged_on="2025-10-02",
            reason="Tiêm vắc xin cúm mùa",
            diagnoses=[pb.Diagnosis(icd10="Z25.1")],
            vaccinations=[
                pb.Vaccination(vaccine="Cúm mùa (Vaxigrip Tetra)", dose="1", date="2025-10-02", lot="VXT2509")
            ],
            doctor="BS. Trần Thị Hoa",
            ministry_code=DEMO_MINISTRY_CODE,
        ),
        pb.VisitRecord(
            facility_record_id="DEMO-KCB-2026-001208",
            citizen_id_number=id_number,
            admitted_on="2026-03-12",
            discharged_on="2026-03-12",
            reason="Sốt, ho, đau họng 3 ngày",
            diagnoses=[pb.Diagnosis(icd10="J06.9"), pb.Diagnosis(icd10="I10", text="Tăng huyết áp đang điều trị")],
            procedures=[pb.Procedure(code="02.1899", name="Khám Nội")],
            prescriptions=[
                pb.Prescription(
                    drug="Paracetamol 500mg", dose="1 viên", frequency="3 lần/ngày", days=5, quantity="15", unit="viên"
                ),
                pb.Prescription(
                    drug="Amlodipin 5mg", dose="1 viên", frequency="1 lần/ngày", days=30, quantity="30", unit="viên"
                ),
            ],
            lab_results=[pb.LabResult(test="CRP", value="12", unit="mg/L", reference_range="< 5")],
            follow_up_on="2026-03-19",
            doctor="BS. Nguyễn Văn An",
            ministry_code=DEMO_MINISTRY_CODE,
        ),
    ]


async def push_demo_visits(info: StackInfo, say: Any = print) -> int:
    """Push the demo visits as the demo facility; the number of visits now in the demo citizen's book from it."""
    facility = info.clients.get("facility_demo")
    citizen = info.demo_citizen
    if not facility or not citizen or "health" not in info.services:
        return 0
    pushed = 0
    try:
        channel = secure_channel(info.services["health"], Path(facility["ca"]), Path(facility["cert"]),
                                 Path(facility["key"]), server="health")  # fmt: skip
        async with channel:
            stub = pb_grpc.HealthRecordsStub(channel)
            for visit in demo_records(str(citizen["id_number"])):
                await stub.PushVisit(pb.PushVisitRequest(visit=visit), timeout=30)
                pushed += 1
    except grpc.aio.AioRpcError as error:
        say(f"the demo hospital could not push the demo citizen's visits: {error.code().name}: {error.details()}")
    except (OSError, KeyError, ValueError) as error:
        say(f"the demo hospital could not push the demo citizen's visits: {type(error).__name__}")
    return pushed
