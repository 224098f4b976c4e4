"""``dinhdanh facility``: play a health facility — push a visit record into a citizen's electronic health book
(Decision 1332/QĐ-BYT of 2024; the visit's fields after Decision 4750/QĐ-BYT's XML tables) and read back a visit
it pushed (HealthRecords.PushVisit / GetPushedVisit of protos/issuance/v1/health.proto).

Acts as the demo hospital of ``var/stack.json`` (``clients["facility_demo"]``, an agency registered with the role
``facility``) over mutual TLS with its certificate, unless ``--client-id/--cert/--key`` name another agency. The
record is a ``VisitRecord`` as JSON with the proto's field names (``facility push --example`` prints one for the demo
citizen). A push is idempotent per (Ministry code, ``facility_record_id``): the same record again answers the visit
stored, the same id with other content is ALREADY_EXISTS. A refusal is one line with the gRPC status and exit 1."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import typer
from google.protobuf import json_format
from rich.markup import escape
from rich.table import Table

from agency.client import AgencyClient
from cli.agency_cmd import CertOption, KeyOption, _act, _card, _local
from cli.output import JsonOption, VarOption, console, emit, fail, stack_info
from issuance.health.demo import DEMO_MINISTRY_CODE
from protos.issuance.v1 import health_pb2 as pb

app = typer.Typer(help="Play a health facility: push visit records into citizens' health books.",
                  no_args_is_help=True)  # fmt: skip

FACILITY = "facility_demo"  # stack.json clients[...]
USAGE_EXIT = 2
ClientIdOption = typer.Option(
    None,
    "--client-id",
    help="Act as an agency with the role facility (default: the demo hospital, stack.json clients.facility_demo).",
)
MAX_BYTES = 1024 * 1024


def example_record(id_number: str) -> pb.VisitRecord:
    """A valid visit for ``id_number``: a short stay for gastroenteritis with dehydration, fixed (past) dates and a
    record id fixed per citizen, so pushing it again answers the same visit."""
    return pb.VisitRecord(
        facility_record_id=f"VD-KCB-2026-{id_number}",
        citizen_id_number=id_number,
        admitted_on="2026-05-18",
        discharged_on="2026-05-20",
        reason="Đau bụng, tiêu chảy, nôn 2 ngày",
        diagnoses=[pb.Diagnosis(icd10="A09.0"), pb.Diagnosis(icd10="E86", text="Mất nước mức độ vừa")],
        procedures=[pb.Procedure(code="02.1899", name="Khám Nội"), pb.Procedure(code="22.0001", name="Truyền dịch")],
        prescriptions=[
            pb.Prescription(
                drug="Oresol 245",
                dose="1 gói pha 200 ml",
                frequency="sau mỗi lần đi ngoài",
                days=3,
                quantity="10",
                unit="gói",
            ),
        ],
        lab_results=[pb.LabResult(test="Natri máu", value="133", unit="mmol/L", reference_range="135 - 145")],
        follow_up_on="2026-05-27",
        doctor="BS. Lê Minh Tâm",
        ministry_code=DEMO_MINISTRY_CODE,
    )


def as_json_record(record: pb.VisitRecord) -> dict[str, Any]:
    return json_format.MessageToDict(record, preserving_proto_field_name=True)


def describe_visit(visit: pb.Visit) -> dict[str, Any]:
    received = visit.received_at.ToDatetime(dt.UTC).isoformat() if visit.received_at.seconds else ""
    return {"id": visit.id, "facility_code": visit.facility_code, "facility_name": visit.facility_name,
            "received_at": received, "record": as_json_record(visit.record)}  # fmt: skip


def read_record(source: str, as_json: bool) -> pb.VisitRecord:
    """The ``VisitRecord`` in the file ``source`` (``-``: standard input); ``{"visit": {…}}`` is accepted too."""
    try:
        text = sys.stdin.read(MAX_BYTES + 1) if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {source}: {type(error).__name__}", as_json, USAGE_EXIT)
    if len(text) > MAX_BYTES:
        fail(f"{source} is larger than {MAX_BYTES} bytes: one visit record is expected", as_json, USAGE_EXIT)
    try:
        value = json.loads(text)
    except ValueError as error:
        fail(f"{source} is not JSON ({error})", as_json, USAGE_EXIT)
    if isinstance(value, dict) and set(value) == {"visit"}:
        value = value["visit"]
    if not isinstance(value, dict):
        fail(f"{source} must hold one JSON object, a VisitRecord (`dinhdanh facility push --example`)", as_json,
             USAGE_EXIT)  # fmt: skip
    record = pb.VisitRecord()
    try:
        json_format.ParseDict(value, record)
    except json_format.ParseError as error:
        fail(f"{source} is not a VisitRecord: {error}", as_json, USAGE_EXIT)
    return record


def _visit_card(data: dict[str, Any]) -> Table:
    record = data["record"]
    diagnoses = [f"{d.get('icd10', '')} {d.get('title', '')}".strip() for d in record.get("diagnoses", [])]
    return _card(f"Visit {data['id']}", [
        ("facility", escape(f"{data['facility_name']} ({data['facility_code']}, Ministry code "
                            f"{record.get('ministry_code', '')})")),
        ("record id", escape(record.get("facility_record_id", ""))),
        ("citizen", escape(record.get("citizen_id_number", ""))),
        ("stay", f"{record.get('admitted_on', '')} → {record.get('discharged_on', '')}"),
        ("reason", escape(record.get("reason", ""))),
        ("diagnoses", escape("\n".join(diagnoses))),
        ("received", f"{_local(data['received_at'])} (Vietnam time)"),
    ])  # fmt: skip


def _show(visit: pb.Visit, as_json: bool) -> None:
    data = describe_visit(visit)
    emit(data, as_json, lambda: console.print(_visit_card(data)))


Who = tuple[str | None, Path | None, Path | None]


@app.command("push")
def push(
    file: str = typer.Argument("-", metavar="FILE.json", help="A VisitRecord as JSON (proto field names); -: stdin."),
    example: bool = typer.Option(
        False, "--example", help="Print a valid VisitRecord for the demo citizen; push nothing."
    ),
    citizen: str = typer.Option("", "--citizen", help="With --example: this citizen's ID number instead."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """Push one visit record (PushVisit): the visit stored, its diagnoses titled from ICD-10."""
    if example:
        id_number = citizen or str(stack_info(var, as_json).demo_citizen.get("id_number", ""))
        if not id_number:
            fail("this stack has no demo citizen: give --citizen ID_NUMBER", as_json, USAGE_EXIT)
        print(json.dumps(as_json_record(example_record(id_number)), ensure_ascii=False, indent=None if as_json else 2))
        return
    request = pb.PushVisitRequest(visit=read_record(file, as_json))
    who: Who = (client_id, cert, key)

    def send(agency: AgencyClient) -> Any:
        return agency.call(agency.health_records.PushVisit(request, timeout=30))

    _show(_act(var, as_json, who, send, demo_key=FACILITY), as_json)


@app.command("show")
def show(
    record_id: str = typer.Argument(..., metavar="RECORD_ID", help="The facility's own record id (MA_LK)."),
    client_id: str | None = ClientIdOption,
    cert: Path | None = CertOption,
    key: Path | None = KeyOption,
    var: Path = VarOption,
    as_json: bool = JsonOption,
) -> None:
    """A visit this facility pushed (GetPushedVisit); another facility's is NOT_FOUND."""
    request = pb.PushedVisitRequest(facility_record_id=record_id)
    who: Who = (client_id, cert, key)

    def read(agency: AgencyClient) -> Any:
        return agency.call(agency.health_records.GetPushedVisit(request, timeout=20))

    _show(_act(var, as_json, who, read, demo_key=FACILITY), as_json)
