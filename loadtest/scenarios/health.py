"""Health facilities pushing visits into citizens' health books (issue 12 item 1), over gRPC.

One iteration of :class:`FacilityUser` is one ``health.PushVisit`` (``HealthRecords.PushVisit``) by the prepared
facility (``accounts.json`` ``facility``: the stack's demo hospital, an agency registered with the role
``facility``) over mutual TLS with its own certificate, as a hospital's system sends a discharged patient's record:
a visit of a prepared patient (a citizen of the registry) with a fresh facility record id, two diagnoses, a
procedure, a prescription and a lab result. The answer must be the stored visit of that record.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from locust import task

from loadtest.accounts import prepared
from loadtest.grpc_calls import WrongResult
from loadtest.scenarios.base import GrpcUser, own_channel
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc

TIMEOUT = 30.0
VIETNAM = dt.timezone(dt.timedelta(hours=7))


def visit(id_number: str, ministry_code: str) -> pb.VisitRecord:
    """An outpatient visit discharged today (Vietnam time)."""
    day = dt.datetime.now(VIETNAM).date().isoformat()
    return pb.VisitRecord(
        facility_record_id=f"LT-{uuid.uuid4()}", citizen_id_number=id_number, admitted_on=day, discharged_on=day,
        reason="Sốt, ho, đau họng 3 ngày",
        diagnoses=[pb.Diagnosis(icd10="J06.9"), pb.Diagnosis(icd10="I10", text="Tăng huyết áp đã biết")],
        procedures=[pb.Procedure(code="02.1899", name="Khám Nội")],
        prescriptions=[pb.Prescription(drug="Paracetamol 500mg", dose="1 viên", frequency="3 lần/ngày", days=5,
                                       quantity="15", unit="viên")],
        lab_results=[pb.LabResult(test="CRP", value="12", unit="mg/L", reference_range="< 5")],
        doctor="BS. Nguyễn Văn An", ministry_code=ministry_code,
    )  # fmt: skip


class FacilityUser(GrpcUser):
    """A hospital's system pushing one visit record per iteration."""

    actor = "facility"

    def on_start(self) -> None:
        ready = prepared()
        self.facility = ready.data["facility"]
        self.patients = ready.share("patients", *self.slot)
        self.stub = pb_grpc.HealthRecordsStub(own_channel("health", self.facility))

    @task
    def push(self) -> None:
        record = visit(random.choice(self.patients), str(self.facility["ministry_code"]))  # noqa: S311

        def call() -> pb.Visit:
            stored = self.stub.PushVisit(pb.PushVisitRequest(visit=record), timeout=TIMEOUT)
            if stored.record.facility_record_id != record.facility_record_id or not stored.id:
                raise WrongResult("PushVisit did not answer with the stored visit of this record")
            return stored

        self.timed("health.PushVisit", call)
