"""The health book service on the real stack: facilities push visits (validated, idempotent, also in parallel),
citizens read their book, a visit and its PDF, and have a signed extract issued into their vault; a facility never
reads a book nor another facility's visit; pushes and reads are audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import uuid

import asyncpg
import grpc
import httpx
import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from pypdf import PdfReader

from audit.events import Pseudonymizer
from core.keys.purposes import AUDIT_PSEUDONYM, HEALTH_SIGNING
from issuance.health.demo import DEMO_MINISTRY_CODE, push_demo_visits
from issuance.issuer_keys import SigningKey
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from registry.generator import generate
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import SEEDED, channel_as
from tests.consent_agency_helpers import DemoAgency
from tests.health_service.conftest import HEALTH, VAULT, Reader, health_channel, reader_of, record, today
from tests.oidc_helpers import Person
from tests.vault_helpers import download

TITLE_J069 = "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def push(stub: pb_grpc.HealthRecordsStub, visit: pb.VisitRecord) -> pb.Visit:
    return await stub.PushVisit(pb.PushVisitRequest(visit=visit), timeout=30)


async def test_a_pushed_visit_shows_in_the_book_with_its_vietnamese_title(
    pushing: pb_grpc.HealthRecordsStub, portal_health: pb_grpc.HealthRecordsStub, reader: Reader, patient: Citizen
) -> None:
    pushed = await push(pushing, record(patient, "KCB-BOOK-1"))
    assert pushed.record.diagnoses[0].title == TITLE_J069
    assert pushed.facility_name == "Bệnh viện Chợ Rẫy (test)"
    older = today() - dt.timedelta(days=30)
    await push(pushing, record(patient, "KCB-BOOK-0", admitted_on=older.isoformat(), discharged_on=older.isoformat(),
                               diagnoses=[pb.Diagnosis(icd10="K297")], vaccinations=[], follow_up_on=""))  # fmt: skip
    book = await portal_health.GetMyBook(pb.GetMyBookRequest(), metadata=reader.metadata, timeout=30)
    assert book.administrative.full_name == patient.full_name
    assert book.administrative.id_number == patient.id_number
    assert book.administrative.date_of_birth == patient.date_of_birth.isoformat()
    ids = [visit.facility_record_id for visit in (v.record for v in book.visits)]
    assert ids[:2] == ["KCB-BOOK-1", "KCB-BOOK-0"]  # newest first
    first = book.visits[0].record
    assert next((d.icd10, d.title) for d in first.diagnoses) == ("J06.9", TITLE_J069)
    assert first.diagnoses[1].icd10 == "I10"
    assert first.diagnoses[1].text == "Tăng huyết áp đã biết"
    assert first.prescriptions[0].frequency == "3 lần/ngày"
    assert first.prescriptions[0].quantity == "15"
    assert [h.icd10 for h in book.history][:2] == ["J06.9", "K29.7"]
    assert book.vaccinations[0].vaccine == "Cúm mùa (Vaxigrip Tetra)"
    assert book.vaccinations[0].dose == "1"
    one = await portal_health.GetMyVisit(pb.VisitRequest(id=pushed.id), metadata=reader.metadata, timeout=30)
    assert one.record == pushed.record


async def test_a_duplicate_push_returns_the_stored_visit(pushing: pb_grpc.HealthRecordsStub, patient: Citizen) -> None:
    first = await push(pushing, record(patient, "KCB-DUP-1"))
    same = [pb.Diagnosis(icd10="j069"), pb.Diagnosis(icd10="I10", text="Tăng huyết áp đã biết")]  # as typed elsewhere
    again = await push(pushing, record(patient, "KCB-DUP-1", diagnoses=same))
    assert again.id == first.id
    assert again.received_at == first.received_at
    read = await pushing.GetPushedVisit(pb.PushedVisitRequest(facility_record_id="KCB-DUP-1"), timeout=30)
    assert read.id == first.id


async def test_parallel_duplicate_pushes_make_one_visit(
    pushing: pb_grpc.HealthRecordsStub, patient: Citizen, info: StackInfo, facility: DemoAgency
) -> None:
    results = await asyncio.gather(*(push(pushing, record(patient, "KCB-PAR-1")) for _ in range(10)))
    assert len({visit.id for visit in results}) == 1
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM health.visits WHERE client_id = $1 AND record_id = 'KCB-PAR-1'", facility.client_id
        )
        outcomes = await connection.fetch(
            "SELECT outcome, count(*) AS n FROM audit.events WHERE action = 'health.visit.push'"
            " AND detail->>'visit_id' = $1 GROUP BY outcome", results[0].id,
        )  # fmt: skip
    finally:
        await connection.close()
    assert count == 1
    assert {row["outcome"]: row["n"] for row in outcomes} == {"success": 1, "replay": 9}


async def test_other_content_under_the_same_id_is_already_exists(
    pushing: pb_grpc.HealthRecordsStub, patient: Citizen
) -> None:
    await push(pushing, record(patient, "KCB-CONFLICT-1"))
    error = await refused(push(pushing, record(patient, "KCB-CONFLICT-1", reason="Đau bụng")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error.details()
    assert "facility_record_id" in (error.details() or "")


async def test_parallel_conflicting_pushes_keep_one_visit(pushing: pb_grpc.HealthRecordsStub, patient: Citizen) -> None:
    reasons = [f"Lý do {n}" for n in range(6)]
    outcomes = await asyncio.gather(*(push(pushing, record(patient, "KCB-RACE-1", reason=r)) for r in reasons),
                                    return_exceptions=True)  # fmt: skip
    stored = [o for o in outcomes if isinstance(o, pb.Visit)]
    assert len(stored) == 1, outcomes
    others = [o for o in outcomes if not isinstance(o, pb.Visit)]
    assert all(isinstance(o, grpc.aio.AioRpcError) and o.code() == grpc.StatusCode.ALREADY_EXISTS for o in others)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"diagnoses": [pb.Diagnosis(icd10="J06.9"), pb.Diagnosis(icd10="X99.9")]}, "visit.diagnoses[1].icd10"),
        ({"diagnoses": [pb.Diagnosis(icd10="A90")]}, "visit.diagnoses[0].icd10"),
        ({"diagnoses": []}, "visit.diagnoses"),
        ({"discharged_on": (today() + dt.timedelta(days=2)).isoformat()}, "visit.discharged_on"),
        ({"admitted_on": "2026-02-30"}, "visit.admitted_on"),
        ({"admitted_on": (today() - dt.timedelta(days=1)).isoformat(),
          "discharged_on": (today() - dt.timedelta(days=5)).isoformat()}, "visit.discharged_on"),
        ({"admitted_on": "1850-01-01"}, "visit.admitted_on"),
        ({"ministry_code": ""}, "visit.ministry_code"),
        ({"vaccinations": [pb.Vaccination(vaccine="BCG", dose="booster", date="2020-01-01", lot="L1")]},
         "visit.vaccinations[0].dose"),
        ({"prescriptions": [pb.Prescription(drug="Amoxicillin", dose="1 viên", days=5)]},
         "visit.prescriptions[0].quantity"),
        ({"follow_up_on": "2000-01-01"}, "visit.follow_up_on"),
        ({"reason": "Sốt 中"}, "visit.reason"),
    ],
    ids=["unknown-icd10", "retired-icd10", "no-diagnosis", "future", "impossible-day", "discharge-before-admission",
         "before-1900", "no-ministry-code", "dose", "quantity", "follow-up-before", "unprintable"],
)  # fmt: skip
async def test_invalid_records_are_refused_naming_the_field(
    pushing: pb_grpc.HealthRecordsStub, patient: Citizen, changes: dict[str, object], field: str
) -> None:
    error = await refused(push(pushing, record(patient, "KCB-BAD-1", **changes)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert (error.details() or "").startswith(f"{field}:"), error.details()


async def test_a_citizen_not_in_the_registry_is_refused(pushing: pb_grpc.HealthRecordsStub) -> None:
    nobody = list(generate(SEEDED + 1))[-1]  # a well-formed number the stack did not seed
    error = await refused(push(pushing, record(nobody, "KCB-NOBODY-1")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("visit.citizen_id_number:"), error.details()
    malformed = await refused(push(pushing, record(nobody, "KCB-NOBODY-2", citizen_id_number="12345")))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (malformed.details() or "").startswith("visit.citizen_id_number:"), malformed.details()


async def test_a_visit_before_the_citizens_birth_is_refused(
    pushing: pb_grpc.HealthRecordsStub, patient: Citizen
) -> None:
    before = (patient.date_of_birth - dt.timedelta(days=1)).isoformat()
    error = await refused(push(pushing, record(patient, "KCB-UNBORN-1", admitted_on=before, vaccinations=[])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("visit.admitted_on:"), error.details()


async def test_an_agency_without_the_facility_role_is_refused(
    info: StackInfo, not_a_facility: DemoAgency, patient: Citizen
) -> None:
    async with health_channel(info, not_a_facility) as channel:
        stub = pb_grpc.HealthRecordsStub(channel)
        error = await refused(push(stub, record(patient, "KCB-NOTFAC-1")))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
        junk = await refused(push(stub, record(patient, "KCB-NOTFAC-2", admitted_on="junk")))
        assert junk.code() == grpc.StatusCode.PERMISSION_DENIED, junk.details()  # its input is never looked at
        read = await refused(stub.GetPushedVisit(pb.PushedVisitRequest(facility_record_id="KCB-BOOK-1"), timeout=30))
        assert read.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_platform_service_cannot_push(stack: Stack, patient: Citizen) -> None:
    async with channel_as(stack, "health", "portal") as channel:
        error = await refused(push(pb_grpc.HealthRecordsStub(channel), record(patient, "KCB-PORTAL-1")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_facility_cannot_read_another_facilitys_visit(
    pushing: pb_grpc.HealthRecordsStub, other_pushing: pb_grpc.HealthRecordsStub, patient: Citizen
) -> None:
    await push(pushing, record(patient, "KCB-MINE-1"))
    error = await refused(other_pushing.GetPushedVisit(pb.PushedVisitRequest(facility_record_id="KCB-MINE-1"),
                                                       timeout=30))  # fmt: skip
    assert error.code() == grpc.StatusCode.NOT_FOUND
    unknown = await refused(pushing.GetPushedVisit(pb.PushedVisitRequest(facility_record_id="KCB-NONE"), timeout=30))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert unknown.details() == error.details()
    # The other facility's own push under the same record id (its own Ministry code) is its own visit.
    theirs = await push(other_pushing, record(patient, "KCB-MINE-1", reason="Khám định kỳ", ministry_code="79015"))
    mine = await pushing.GetPushedVisit(pb.PushedVisitRequest(facility_record_id="KCB-MINE-1"), timeout=30)
    assert theirs.id != mine.id
    # Stating the first facility's Ministry code does not shadow its record.
    shadow = await refused(push(other_pushing, record(patient, "KCB-MINE-1")))
    assert shadow.code() == grpc.StatusCode.ALREADY_EXISTS, shadow.details()


async def test_a_facility_cannot_read_a_book(
    info: StackInfo, facility: DemoAgency, pushing: pb_grpc.HealthRecordsStub, patient: Citizen, http: httpx.AsyncClient
) -> None:
    await push(pushing, record(patient, "KCB-BOOKREAD-1"))
    for call in (pushing.GetMyBook(pb.GetMyBookRequest(), timeout=30),
                 pushing.GetMyVisitPdf(pb.VisitRequest(id="00000000-0000-0000-0000-000000000000"), timeout=30),
                 pushing.IssueExtract(pb.IssueExtractRequest(), timeout=30)):  # fmt: skip
        error = await refused(call)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
    token_url = await facility.token_endpoint(info)  # FAPI 2.0: tls_client_auth, certificate-bound tokens
    mine = {"client_id": facility.client_id}
    async with httpx.AsyncClient(timeout=30, verify=facility.tls()) as over_mtls:
        health = await over_mtls.post(token_url, data={"grant_type": "client_credentials", "resource": HEALTH,
                                                       "scope": "health.read", **mine})  # fmt: skip
        assert health.status_code == 400, health.text  # never registered for the health service's audience
        forms = [{"grant_type": "client_credentials", "resource": VAULT, "scope": "vault.read", **mine},
                 {"grant_type": "client_credentials", **mine}]  # fmt: skip
        answers = [await over_mtls.post(token_url, data=form) for form in forms]
    for got in answers:
        assert got.status_code == 200, got.text
        bearer = (("authorization", f"Bearer {got.json()['access_token']}"),)
        error = await refused(pushing.GetMyBook(pb.GetMyBookRequest(), metadata=bearer, timeout=30))
        assert error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), error.details()


async def test_a_citizen_sees_only_their_own_visits(
    pushing: pb_grpc.HealthRecordsStub, portal_health: pb_grpc.HealthRecordsStub, reader: Reader,
    fresh_citizens: object, http: httpx.AsyncClient, info: StackInfo,
) -> None:  # fmt: skip
    someone = next(fresh_citizens)  # type: ignore[call-overload]
    theirs = await push(pushing, record(someone, "KCB-OTHER-1"))
    error = await refused(portal_health.GetMyVisit(pb.VisitRequest(id=theirs.id), metadata=reader.metadata, timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    bad = await refused(portal_health.GetMyVisit(pb.VisitRequest(id="nope"), metadata=reader.metadata, timeout=30))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    other = await reader_of(http, info, someone)
    book = await portal_health.GetMyBook(pb.GetMyBookRequest(), metadata=other.metadata, timeout=30)
    assert [v.id for v in book.visits] == [theirs.id]


async def test_a_token_without_health_read_is_refused(
    portal_health: pb_grpc.HealthRecordsStub, http: httpx.AsyncClient, info: StackInfo, fresh_citizens: object
) -> None:
    someone = await reader_of(http, info, next(fresh_citizens), scope="profile")  # type: ignore[call-overload]
    error = await refused(portal_health.GetMyBook(pb.GetMyBookRequest(), metadata=someone.metadata, timeout=30))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_visit_pdf_opens_with_its_diagnoses(
    pushing: pb_grpc.HealthRecordsStub, portal_health: pb_grpc.HealthRecordsStub, reader: Reader, patient: Citizen,
    stack: Stack,
) -> None:  # fmt: skip
    pushed = await push(pushing, record(patient, "KCB-PDF-1"))
    got = await portal_health.GetMyVisitPdf(pb.VisitRequest(id=pushed.id), metadata=reader.metadata, timeout=60)
    assert got.filename.endswith("-79014-KCB-PDF-1.pdf")
    text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(got.pdf)).pages)
    flat = " ".join(text.split())
    for expected in ("J06.9", TITLE_J069, "I10", "Tăng huyết áp vô căn", patient.full_name, "Paracetamol 500mg",
                     "Bệnh viện Chợ Rẫy (test)", "KCB-PDF-1"):  # fmt: skip
        assert expected in flat, (expected, flat[:2000])


async def test_the_extract_lands_in_the_vault_as_an_issued_document(
    pushing: pb_grpc.HealthRecordsStub, portal_health: pb_grpc.HealthRecordsStub, reader: Reader, patient: Citizen,
    stack: Stack,
) -> None:  # fmt: skip
    pushed = await push(pushing, record(patient, "KCB-EXTRACT-1"))
    ask = pb.IssueExtractRequest(visit_ids=[pushed.id], request_id=str(uuid.uuid4()))
    issued = await portal_health.IssueExtract(ask, metadata=reader.metadata, timeout=60)
    async with channel_as(stack, "vault", "portal") as channel:
        vault = vgrpc.VaultStub(channel)
        meta, content = await download(vault, reader.token, issued.vault_document_id)
    assert meta.source == vpb.DOCUMENT_SOURCE_ISSUED
    assert meta.document_type == vpb.DOCUMENT_TYPE_HEALTH_BOOK
    assert meta.issuer_name == "Bộ Y tế — Sổ sức khỏe điện tử"
    document = json.loads(content)
    key = SigningKey.from_seed(stack.secrets.keys("health").key(HEALTH_SIGNING))
    verified = jws.deserialize_compact(document["jws"], KeySet.import_key_set(key.jwks()), algorithms=["ES256"])
    assert verified.protected["typ"] == "health-book-extract+jwt"
    payload = json.loads(verified.payload)
    assert payload == document["extract"]
    assert payload["subject"]["id_number"] == patient.id_number
    assert [v["ref"] for v in payload["visits"]] == ["79014/KCB-EXTRACT-1"]
    assert payload["visits"][0]["main_diagnosis"] == {"code": "J06.9", "title": TITLE_J069}
    assert payload["vaccinations"][0]["vaccine"] == "Cúm mùa (Vaxigrip Tetra)"
    unknown = await refused(portal_health.IssueExtract(pb.IssueExtractRequest(visit_ids=[
        "00000000-0000-0000-0000-000000000000"], request_id=str(uuid.uuid4())), metadata=reader.metadata,
        timeout=60))  # fmt: skip
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


async def test_reads_are_audited_by_pseudonym(
    pushing: pb_grpc.HealthRecordsStub, portal_health: pb_grpc.HealthRecordsStub, reader: Reader, patient: Citizen,
    stack: Stack, info: StackInfo,
) -> None:  # fmt: skip
    pushed = await push(pushing, record(patient, "KCB-AUDIT-1"))
    await portal_health.GetMyVisit(pb.VisitRequest(id=pushed.id), metadata=reader.metadata, timeout=30)
    subject = Pseudonymizer(stack.secrets.keys("health").key(AUDIT_PSEUDONYM)).ref(patient.id_number)
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        rows = await connection.fetch(
            "SELECT actor, action, outcome, subject, detail FROM audit.events WHERE detail->>'visit_id' = $1"
            " ORDER BY id", pushed.id,
        )  # fmt: skip
    finally:
        await connection.close()
    actions = [(row["actor"], row["action"], row["outcome"]) for row in rows]
    assert actions[0][1:] == ("health.visit.push", "success")
    assert actions[0][0].startswith("agency:")
    assert ("citizen", "health.visit.read", "success") in actions
    assert all(row["subject"] == subject for row in rows)
    assert all(patient.id_number not in json.dumps(json.loads(row["detail"])) for row in rows)


async def test_the_demo_citizen_has_the_demo_hospitals_visits(
    http: httpx.AsyncClient, info: StackInfo, portal_health: pb_grpc.HealthRecordsStub, citizens: list[Citizen]
) -> None:
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    demo = info.demo_citizen
    citizen = next(c for c in citizens if c.id_number == demo["id_number"])
    who = Person(demo["id_number"], demo["password"], demo["totp_secret"])
    assert await push_demo_visits(info) == 2  # again, as at every start: replays, nothing added
    reader = await reader_of(http, info, citizen, who=who)
    book = await portal_health.GetMyBook(pb.GetMyBookRequest(), metadata=reader.metadata, timeout=30)
    mine = [v for v in book.visits if v.record.ministry_code == DEMO_MINISTRY_CODE]
    assert [v.record.facility_record_id for v in mine] == ["DEMO-KCB-2026-001208", "DEMO-KCB-2025-000417"]
    assert mine[0].facility_name == "Bệnh viện Đa khoa (demo)"
    assert mine[0].record.diagnoses[0].title == TITLE_J069
    assert all(v.received_at.ToDatetime(tzinfo=dt.UTC) < started for v in mine)  # pushed by `dinhdanh up` itself
