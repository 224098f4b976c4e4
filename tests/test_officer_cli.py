"""``dinhdanh officer …`` and ``dinhdanh facility …`` (the README walk-through's operator side) on the real stack,
the CLI run as a subprocess the way a newcomer types it, as the demo officer (``clients["officer_demo"]``) and the
demo hospital (``clients["facility_demo"]``) of stack.json over mutual TLS: a level-2 citizen with a conviction waits
in VERIFYING (Law on Judicial Records Art. 48) → listed → rejected with its reason, which the citizen reads; another
dossier approved → ISSUED by the worker → suspended, reinstated, revoked; refusals are one line with the gRPC status
and a non-zero exit; the example visit record piped into ``facility push`` twice is one visit (idempotent)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc.jwk import ECKey

from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.issuance_service.conftest import Applicant, applicant, apply_request
from tests.test_agency_cli import one_line_error
from tests.waiting import until

REASON = "Cần xác minh thêm thông tin án tích với Tòa án nơi xét xử"


def cli(stack: Stack, *args: str, as_json: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--json"] if as_json else []
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args, "--var", str(stack.var), *extra],
                          capture_output=True, text=True, timeout=120, env=env, input=stdin)  # fmt: skip


def run(stack: Stack, *args: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
    """One ``--json`` run: its exit code and its one JSON object."""
    result = cli(stack, *args, stdin=stdin)
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


async def arun(stack: Stack, *args: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(run, stack, *args, stdin=stdin)


async def aline(stack: Stack, *args: str) -> str:
    """A person's refusal: the one ``error:`` line on stderr (non-zero exit, no traceback)."""
    return one_line_error(await asyncio.to_thread(cli, stack, *args, as_json=False))


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def convicted(http: httpx.AsyncClient, info: StackInfo, convicted_citizens: Iterator[Citizen]) -> Applicant:
    """A fresh citizen whose seeded judicial record holds a conviction, at level 2, signed in for issuance."""
    citizen = next(convicted_citizens)
    return await applicant(http, info, citizen)


@pytest.fixture(scope="module")
async def certificates(stack: Stack) -> AsyncIterator[pb_grpc.CertificatesStub]:
    async with channel_as(stack, "issuance", "portal") as channel:
        yield pb_grpc.CertificatesStub(channel)


async def waiting_dossier(certificates: pb_grpc.CertificatesStub, who: Applicant) -> pb.Dossier:
    holder = ECKey.generate_key("P-256").as_dict(private=False)
    request = apply_request(2, holder_jwk=json.dumps(holder))
    dossier = await certificates.Apply(request, metadata=who.metadata, timeout=30)
    assert dossier.status == pb.DOSSIER_STATUS_VERIFYING  # a conviction: an officer decides
    return dossier


async def test_a_waiting_dossier_is_listed_then_rejected_with_its_reason(
    stack: Stack, info: StackInfo, certificates: pb_grpc.CertificatesStub, convicted: Applicant
) -> None:
    dossier = await waiting_dossier(certificates, convicted)

    code, listed = await arun(stack, "officer", "list")
    assert code == 0, listed
    assert listed["status"] == "VERIFYING"
    row = next(d for d in listed["dossiers"] if d["id"] == dossier.id)
    assert (row["tracking_number"], row["form"], row["status"]) == (dossier.tracking_number, 2, "VERIFYING")
    assert (row["deadline"], row["overdue"]) == (dossier.deadline, False)
    shown = await asyncio.to_thread(cli, stack, "officer", "list", as_json=False)
    assert shown.returncode == 0, shown.stderr
    table_row = next(line for line in shown.stdout.splitlines() if dossier.id in line)
    assert dossier.tracking_number in table_row
    assert "VERIFYING" in table_row
    assert "overdue" not in table_row

    connection = await asyncpg.connect(info.postgres_dsn)
    try:  # as if received long ago
        await connection.execute("UPDATE issuance.dossiers SET deadline = '2026-01-05' WHERE id = $1",
                                 uuid.UUID(dossier.id))  # fmt: skip
    finally:
        await connection.close()
    code, late = await arun(stack, "officer", "list", "--overdue")
    assert code == 0, late
    assert late["overdue_only"] is True
    assert dossier.id in [d["id"] for d in late["dossiers"]]
    assert all(d["overdue"] for d in late["dossiers"])
    shown = await asyncio.to_thread(cli, stack, "officer", "list", "--overdue", as_json=False)
    table_row = next(line for line in shown.stdout.splitlines() if dossier.id in line)
    assert "05/01/2026" in table_row
    assert "overdue" in table_row

    code, one = await arun(stack, "officer", "show", dossier.id)
    assert code == 0, one
    assert (one["status"], one["clean_record"], one["working_days"]) == ("VERIFYING", False, 15)
    assert {f["name"]: f["value"] for f in one["fields"]}["id_number"] == convicted.citizen.id_number
    person = await asyncio.to_thread(cli, stack, "officer", "show", dossier.id, as_json=False)
    assert person.returncode == 0, person.stderr
    assert dossier.tracking_number in person.stdout
    assert "History" in person.stdout

    for missing in ((), ("--reason", "   ")):
        refused = await asyncio.to_thread(cli, stack, "officer", "reject", dossier.id, *missing, as_json=False)
        line = one_line_error(refused)
        assert "--reason" in line, line
        code, data = await arun(stack, "officer", "reject", dossier.id, *missing)
        assert code != 0
        assert "--reason" in data["error"]
    code, still = await arun(stack, "officer", "show", dossier.id)
    assert still["status"] == "VERIFYING"

    code, rejected = await arun(stack, "officer", "reject", dossier.id, "--reason", REASON)
    assert code == 0, rejected
    assert (rejected["status"], rejected["rejection_reason"], rejected["overdue"]) == ("REJECTED", REASON, False)
    assert (rejected["history"][-1]["actor"], rejected["history"][-1]["reason"]) == ("OFFICER", REASON)
    theirs = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=convicted.metadata)
    assert (theirs.status, theirs.rejection_reason) == (pb.DOSSIER_STATUS_REJECTED, REASON)
    code, decided = await arun(stack, "officer", "list", "--status", "rejected")
    assert dossier.id in [d["id"] for d in decided["dossiers"]]
    code, waiting = await arun(stack, "officer", "list")
    assert dossier.id not in [d["id"] for d in waiting["dossiers"]]

    line = await aline(stack, "officer", "reject", dossier.id, "--reason", "lần nữa")
    assert line.startswith("error: FAILED_PRECONDITION: "), line
    line = await aline(stack, "officer", "approve", dossier.id)
    assert line.startswith("error: FAILED_PRECONDITION: "), line


async def test_an_approved_dossier_is_issued_then_suspended_reinstated_and_revoked(
    stack: Stack, certificates: pb_grpc.CertificatesStub, convicted: Applicant
) -> None:
    dossier = await waiting_dossier(certificates, convicted)
    line = await aline(stack, "officer", "revoke", dossier.id, "--reason", "Cấp nhầm")  # nothing issued yet
    assert line.startswith("error: FAILED_PRECONDITION: "), line

    code, approved = await arun(stack, "officer", "approve", dossier.id)
    assert code == 0, approved
    assert approved["status"] in ("APPROVED", "ISSUED")
    assert approved["history"][2]["status"] == "APPROVED"
    assert approved["history"][2]["actor"] == "OFFICER"

    async def issued() -> pb.Dossier | None:
        now = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=convicted.metadata)
        return now if now.status == pb.DOSSIER_STATUS_ISSUED else None

    await until(issued, "the approved dossier is issued", timeout=240, every=1.0)
    code, one = await arun(stack, "officer", "show", dossier.id)
    assert code == 0, one
    assert (one["status"], one["credential_status"]) == ("ISSUED", "VALID")
    assert one["certificate_id"]

    for command in ("revoke", "suspend", "reinstate"):
        refused = await asyncio.to_thread(cli, stack, "officer", command, dossier.id, as_json=False)
        assert "--reason" in one_line_error(refused)

    code, changed = await arun(stack, "officer", "suspend", dossier.id, "--reason", "Đang xác minh lại")
    assert (code, changed["credential_status"]) == (0, "SUSPENDED"), changed
    code, changed = await arun(stack, "officer", "reinstate", dossier.id, "--reason", "Đã xác minh")
    assert (code, changed["credential_status"]) == (0, "VALID"), changed
    shown = await asyncio.to_thread(cli, stack, "officer", "revoke", dossier.id, "--reason", "Cấp nhầm", as_json=False)
    assert shown.returncode == 0, shown.stderr
    assert "ISSUED (REVOKED)" in shown.stdout
    theirs = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=convicted.metadata)
    assert theirs.credential_status == pb.CREDENTIAL_STATUS_REVOKED
    code, listed = await arun(stack, "officer", "list", "--status", "ISSUED")
    row = next(d for d in listed["dossiers"] if d["id"] == dossier.id)
    assert row["credential_status"] == "REVOKED"
    line = await aline(stack, "officer", "reinstate", dossier.id, "--reason", "x")  # revoked for good
    assert line.startswith("error: FAILED_PRECONDITION: "), line


async def test_officer_refusals_are_one_line(stack: Stack, info: StackInfo) -> None:
    line = await aline(stack, "officer", "show", "not-a-uuid")
    assert "UUID" in line, line
    line = await aline(stack, "officer", "show", str(uuid.uuid4()))
    assert line.startswith("error: NOT_FOUND: "), line
    code, data = await arun(stack, "officer", "show", str(uuid.uuid4()))
    assert (code, data["code"]) == (1, "NOT_FOUND"), data
    line = await aline(stack, "officer", "list", "--status", "DONE")
    assert "VERIFYING" in line, line
    employer = info.clients["agency_demo"]  # registered without the role officer
    as_employer = ("--client-id", employer["client_id"], "--cert", employer["cert"], "--key", employer["key"])
    line = await aline(stack, "officer", "list", *as_employer)
    assert line.startswith("error: PERMISSION_DENIED: "), line


async def test_the_example_visit_pushed_twice_is_one_visit(stack: Stack, info: StackInfo) -> None:
    example = await asyncio.to_thread(cli, stack, "facility", "push", "--example", as_json=False)
    assert example.returncode == 0, example.stderr
    record = json.loads(example.stdout)
    assert record["citizen_id_number"] == info.demo_citizen["id_number"]

    code, first = await arun(stack, "facility", "push", stdin=example.stdout)
    assert code == 0, first
    code, second = await arun(stack, "facility", "push", "-", stdin=example.stdout)
    assert code == 0, second
    assert first["id"] == second["id"]
    assert first["facility_code"] == info.clients["facility_demo"]["client_id"]
    assert first["record"]["facility_record_id"] == record["facility_record_id"]
    assert first["record"]["diagnoses"][0]["title"]  # titled by the service from ICD-10

    code, shown = await arun(stack, "facility", "show", record["facility_record_id"])
    assert (code, shown["id"]) == (0, first["id"]), shown
    person = await asyncio.to_thread(cli, stack, "facility", "show", record["facility_record_id"], as_json=False)
    assert person.returncode == 0, person.stderr
    assert first["id"] in person.stdout

    changed = {**record, "reason": "Nội dung khác"}  # the same record id with other content
    refused = await asyncio.to_thread(cli, stack, "facility", "push", as_json=False, stdin=json.dumps(changed))
    assert one_line_error(refused).startswith("error: ALREADY_EXISTS: ")
    wrong = {**record, "facility_record_id": f"VD-{uuid.uuid4().hex}", "diagnoses": [{"icd10": "Q99.99"}]}
    refused = await asyncio.to_thread(cli, stack, "facility", "push", as_json=False, stdin=json.dumps(wrong))
    assert one_line_error(refused).startswith("error: INVALID_ARGUMENT: visit.diagnoses")
    refused = await asyncio.to_thread(cli, stack, "facility", "push", as_json=False, stdin="{not json")
    assert "not JSON" in one_line_error(refused)
    line = await aline(stack, "facility", "show", "KHONG-CO-000")
    assert line.startswith("error: NOT_FOUND: "), line
    officer = info.clients["officer_demo"]  # an agency without the role facility
    as_officer = ("--client-id", officer["client_id"], "--cert", officer["cert"], "--key", officer["key"])
    refused = await asyncio.to_thread(cli, stack, "facility", "push", *as_officer, as_json=False, stdin=example.stdout)
    assert one_line_error(refused).startswith("error: PERMISSION_DENIED: ")
