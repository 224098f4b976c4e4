"""The dossier flow of criminal-record certificates on the real stack (issue 11 item 1): apply at level 2 with six
answers (the rest filled from the registry, with sources), fee and deadline, auto-approval of a clean record, an
officer's approval or rejection with a reason, who may ask for which form (Law on Judicial Records Art. 7, 45, 46),
and who sees what."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import asyncpg
import grpc
import httpx
import pytest
from joserfc.jwk import ECKey

from issuance.application import CITIZEN, REGISTRY
from issuance.calendar import add_working_days
from issuance.dossiers import VIETNAM_TIME, parse_tracking_number
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.issuance_service.conftest import (
    ISSUANCE,
    AgencyCalls,
    Applicant,
    answers,
    applicant,
    apply_request,
    pseudonym,
)
from tests.oidc_helpers import person, portal_flow, signed_in
from tests.test_cli import dinhdanh
from tests.waiting import until

APPROVED, VERIFYING, REJECTED = pb.DOSSIER_STATUS_APPROVED, pb.DOSSIER_STATUS_VERIFYING, pb.DOSSIER_STATUS_REJECTED


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def today_vn() -> date:
    return datetime.now(UTC).astimezone(VIETNAM_TIME).date()


@pytest.fixture(scope="module")
async def alice(http: httpx.AsyncClient, info: StackInfo, clean_citizens: Iterator[Citizen]) -> Applicant:
    return await applicant(http, info, next(clean_citizens))


@pytest.fixture(scope="module")
async def bob(http: httpx.AsyncClient, info: StackInfo, clean_citizens: Iterator[Citizen]) -> Applicant:
    return await applicant(http, info, next(clean_citizens))


@pytest.fixture(scope="module")
async def carol(http: httpx.AsyncClient, info: StackInfo, stack: Stack, convicted: list[Citizen]) -> Applicant:
    """A citizen whose record holds a conviction, raised to level 2 by `dinhdanh accounts verify-in-person` (an
    officer verified them in person), then signed in for the issuance service."""
    citizen = convicted[0]
    who = await person(info, citizen)
    code, account = dinhdanh(stack, "accounts", "verify-in-person", citizen.id_number, "--note", "Công an quận 1")
    assert code == 0, account
    assert account["assurance_level"] == 2, account
    flow = portal_flow(info, scope="openid issuance.apply", resource=ISSUANCE)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return Applicant(citizen, str(reply.json()["access_token"]))


async def test_apply_fills_from_the_registry_records_fee_and_deadline_and_a_clean_record_is_approved(
    certificates: pb_grpc.CertificatesStub, alice: Applicant, stack: Stack, owner_db: asyncpg.Connection
) -> None:
    form = await certificates.PrefillApplication(pb.PrefillApplicationRequest(form=1), metadata=alice.metadata)
    assert len(form.fields) == 23
    by_name = {f.name: f for f in form.fields}
    assert by_name["full_name"].value == alice.citizen.full_name
    assert by_name["full_name"].source == REGISTRY
    assert by_name["id_number"].value == alice.citizen.id_number
    assert not by_name["id_number"].asked
    assert {f.name for f in form.fields if f.asked} == {
        "form", "purpose", "copies", "delivery", "ban_certification", "email",
    }  # fmt: skip
    assert all(f.value == "" for f in form.fields if f.asked)
    assert {p.code for p in form.purposes} >= {"EMPLOYMENT", "BUSINESS"}
    assert all(1 in p.forms for p in form.purposes)
    assert form.fee.base_vnd == 200_000
    assert form.working_days in (10, 15)

    request = pb.ApplyRequest(request_id=str(uuid.uuid4()), answers=answers(1, copies=3, ban_certification=True))
    dossier = await certificates.Apply(request, metadata=alice.metadata, timeout=30)

    parse_tracking_number(dossier.tracking_number)
    assert dossier.tracking_number.startswith("000.00.00.LLTP-")
    assert dossier.status == APPROVED
    assert dossier.requester == "SELF"
    assert dossier.form == 1
    assert [(c.status, c.actor) for c in dossier.history] == [
        (pb.DOSSIER_STATUS_SUBMITTED, "SYSTEM"), (VERIFYING, "SYSTEM"), (APPROVED, "SYSTEM"),
    ]  # fmt: skip
    assert "clean record" in dossier.history[-1].reason
    fields = {f.name: f for f in dossier.fields}
    assert len(dossier.fields) == 23
    assert fields["full_name"].value == alice.citizen.full_name
    assert fields["full_name"].source == REGISTRY
    assert fields["permanent_residence"].value == alice.citizen.permanent_address.formatted
    assert fields["phone"].value == alice.citizen.phone
    assert fields["phone"].recorded
    assert fields["father_name"].value == ""
    assert not fields["father_name"].recorded
    assert fields["copies"].value == "3"
    assert fields["copies"].source == CITIZEN
    assert fields["copies"].asked
    assert fields["ban_certification"].value == "Có"
    # 200,000 VND, plus 5,000 for the third copy (Circular 244/2016/TT-BTC), unless the registry shows an age group
    assert dossier.fee.base_vnd == 200_000
    assert dossier.fee.amount_vnd in (205_000, 5_000)
    assert "244/2016" in dossier.fee.basis
    assert dossier.working_days in (10, 15)
    assert date.fromisoformat(dossier.deadline) == add_working_days(today_vn(), dossier.working_days)
    assert not dossier.overdue
    assert not dossier.clean_record

    row = await owner_db.fetchrow(
        "SELECT status, next_issue_at, clean_record, requester_ref, subject, id_number FROM issuance.dossiers"
        " WHERE id = $1",
        uuid.UUID(dossier.id),
    )
    assert row is not None
    assert row["clean_record"] is True
    assert row["id_number"] == alice.citizen.id_number
    assert row["status"] == "ISSUED" or (row["status"] == "APPROVED" and row["next_issue_at"] is not None)
    ref = pseudonym(stack, alice.citizen.id_number)
    assert row["requester_ref"] == row["subject"] == ref
    events = await owner_db.fetch(
        "SELECT seq, status, actor FROM issuance.dossier_events WHERE dossier_id = $1 ORDER BY seq",
        uuid.UUID(dossier.id),
    )
    assert [(e["status"], e["actor"]) for e in events][:3] == [
        ("SUBMITTED", "SYSTEM"), ("VERIFYING", "SYSTEM"), ("APPROVED", "SYSTEM"),
    ]  # fmt: skip
    audit = await owner_db.fetch(
        "SELECT actor, action, outcome FROM audit.events WHERE subject = $1 AND detail->>'dossier_id' = $2"
        " ORDER BY id",
        ref, dossier.id,
    )  # fmt: skip
    assert [(a["actor"], a["action"]) for a in audit][:3] == [
        ("citizen", "issuance.submit"), ("system", "issuance.verify"), ("system", "issuance.approve"),
    ]  # fmt: skip

    mine = await certificates.ListMyDossiers(pb.ListMyDossiersRequest(), metadata=alice.metadata)
    assert dossier.id in [d.id for d in mine.dossiers]
    again = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=alice.metadata)
    assert again.tracking_number == dossier.tracking_number


async def test_invalid_answers_are_refused_clearly(certificates: pb_grpc.CertificatesStub, alice: Applicant) -> None:
    cases = {
        "copies": pb.ApplyRequest(request_id=str(uuid.uuid4()), answers=answers(1, copies=0)),
        "purpose": pb.ApplyRequest(request_id=str(uuid.uuid4()), answers=answers(2, purpose="EMPLOYMENT")),
        "request_id": pb.ApplyRequest(request_id="not-a-uuid", answers=answers(1)),
        "postal address": pb.ApplyRequest(
            request_id=str(uuid.uuid4()),
            answers=pb.Answers(form=1, purpose="EMPLOYMENT", copies=1, delivery=pb.DELIVERY_POST, email="a@b.vn"),
        ),
        "email": pb.ApplyRequest(
            request_id=str(uuid.uuid4()),
            answers=pb.Answers(form=1, purpose="EMPLOYMENT", copies=1, delivery=pb.DELIVERY_ELECTRONIC, email="x"),
        ),
        "holder_jwk": apply_request(1, holder_jwk='{"kty": "RSA"}'),
    }
    for word, request in cases.items():
        error = await refused(certificates.Apply(request, metadata=alice.metadata, timeout=30))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (word, error.details())
        assert word in (error.details() or ""), (word, error.details())


async def test_a_record_with_convictions_waits_for_an_officer_who_approves_or_rejects_with_a_reason(
    certificates: pb_grpc.CertificatesStub, carol: Applicant, officer: AgencyCalls, owner_db: asyncpg.Connection
) -> None:
    first = await certificates.Apply(apply_request(2), metadata=carol.metadata, timeout=30)
    second = await certificates.Apply(apply_request(2), metadata=carol.metadata, timeout=30)
    for dossier in (first, second):
        assert dossier.status == VERIFYING
        assert [c.status for c in dossier.history] == [pb.DOSSIER_STATUS_SUBMITTED, VERIFYING]
        assert dossier.working_days == 15  # a conviction's expungement must be verified (Art. 48)

    waiting = await officer.officers.ListDossiers(pb.ListDossiersRequest(page_size=100), timeout=10)
    ids = [d.id for d in waiting.dossiers]
    assert first.id in ids
    assert second.id in ids
    assert all(d.status == VERIFYING for d in waiting.dossiers)
    deadlines = [d.deadline for d in waiting.dossiers]
    assert deadlines == sorted(deadlines)  # oldest deadline first
    seen = await officer.officers.GetDossier(pb.DossierRequest(id=first.id), timeout=10)
    assert seen.clean_record is False
    assert seen.fields[0].value == carol.citizen.full_name

    approved = await officer.officers.Approve(pb.DecisionRequest(id=first.id), timeout=10)
    assert approved.status == APPROVED
    assert approved.history[-1].actor == "OFFICER"
    row = await owner_db.fetchrow(
        "SELECT status, next_issue_at FROM issuance.dossiers WHERE id = $1", uuid.UUID(first.id)
    )
    assert row is not None
    assert row["status"] == "ISSUED" or (row["status"] == "APPROVED" and row["next_issue_at"] is not None)
    officer_row = await owner_db.fetchval(
        "SELECT officer FROM issuance.dossier_events WHERE dossier_id = $1 AND status = 'APPROVED'",
        uuid.UUID(first.id),
    )
    assert officer_row == officer.agency.client_id
    error = await refused(officer.officers.Approve(pb.DecisionRequest(id=first.id), timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()

    error = await refused(officer.officers.Reject(pb.DecisionRequest(id=second.id, reason="  "), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in (error.details() or "")
    reason = "Thông tin về án tích cần được xác minh thêm với Tòa án nơi xét xử"
    rejected = await officer.officers.Reject(pb.DecisionRequest(id=second.id, reason=reason), timeout=10)
    assert rejected.status == REJECTED
    assert rejected.rejection_reason == reason

    history = await certificates.GetMyDossier(pb.DossierRequest(id=second.id), metadata=carol.metadata)
    assert history.status == REJECTED
    assert history.rejection_reason == reason
    assert [(c.status, c.actor, c.reason) for c in history.history][-1] == (REJECTED, "OFFICER", reason)
    assert not history.clean_record  # officers only
    error = await refused(officer.officers.Approve(pb.DecisionRequest(id=second.id), timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = await refused(
        certificates.GetMyCredential(pb.DossierRequest(id=second.id), metadata=carol.metadata, timeout=10)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_overdue_dossiers_show_and_are_listed_for_officers(
    certificates: pb_grpc.CertificatesStub, carol: Applicant, officer: AgencyCalls, owner_db: asyncpg.Connection
) -> None:
    dossier = await certificates.Apply(apply_request(2), metadata=carol.metadata, timeout=30)
    assert dossier.status == VERIFYING
    assert not dossier.overdue
    await owner_db.execute(
        "UPDATE issuance.dossiers SET deadline = '2026-01-05' WHERE id = $1", uuid.UUID(dossier.id)
    )  # as if received long ago
    late = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=carol.metadata)
    assert late.overdue
    listed = await officer.officers.ListDossiers(pb.ListDossiersRequest(overdue_only=True, page_size=100), timeout=10)
    assert dossier.id in [d.id for d in listed.dossiers]
    assert all(d.overdue for d in listed.dossiers)
    rejected = await officer.officers.ListDossiers(
        pb.ListDossiersRequest(status=REJECTED, overdue_only=True), timeout=10
    )
    assert list(rejected.dossiers) == []  # a final status is never overdue


async def test_a_level_1_applicant_is_told_how_to_reach_level_2(
    http: httpx.AsyncClient, info: StackInfo, certificates: pb_grpc.CertificatesStub, clean_citizens: Iterator[Citizen]
) -> None:
    low = await applicant(http, info, next(clean_citizens), level=1)
    for call in (
        certificates.Apply(apply_request(1), metadata=low.metadata, timeout=10),
        certificates.PrefillApplication(pb.PrefillApplicationRequest(form=1), metadata=low.metadata, timeout=10),
    ):
        error = await refused(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        details = error.details() or ""
        assert "insufficient_user_authentication" in details
        assert "in person" in details
        assert "dinhdanh accounts verify" in details


async def test_a_relative_gets_form_1_with_a_written_authorisation_never_form_2(
    certificates: pb_grpc.CertificatesStub, alice: Applicant, bob: Applicant
) -> None:
    about_bob = pb.Representation(subject_id_number=bob.citizen.id_number, authorisation_reference="GUQ-2026/117")
    error = await refused(
        certificates.Apply(apply_request(2, on_behalf_of=about_bob), metadata=alice.metadata, timeout=30)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Art. 46" in (error.details() or "")
    unwritten = pb.Representation(subject_id_number=bob.citizen.id_number)
    error = await refused(
        certificates.Apply(apply_request(1, on_behalf_of=unwritten), metadata=alice.metadata, timeout=30)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Art. 45" in (error.details() or "")

    dossier = await certificates.Apply(apply_request(1, on_behalf_of=about_bob), metadata=alice.metadata, timeout=30)
    assert dossier.requester == "REPRESENTATIVE"
    assert {f.name: f.value for f in dossier.fields}["full_name"] == bob.citizen.full_name  # about the subject
    bobs = await certificates.ListMyDossiers(pb.ListMyDossiersRequest(), metadata=bob.metadata)
    assert dossier.id in [d.id for d in bobs.dossiers]  # the subject follows it too
    alices = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=alice.metadata)
    assert alices.id == dossier.id


async def test_another_citizens_dossier_is_not_found(
    certificates: pb_grpc.CertificatesStub, alice: Applicant, carol: Applicant
) -> None:
    dossier = await certificates.Apply(apply_request(1), metadata=alice.metadata, timeout=30)
    for call in (
        certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=carol.metadata, timeout=10),
        certificates.GetMyCredential(pb.DossierRequest(id=dossier.id), metadata=carol.metadata, timeout=10),
        certificates.GetMyDossier(pb.DossierRequest(id=str(uuid.uuid4())), metadata=carol.metadata, timeout=10),
    ):
        error = await refused(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    carols = await certificates.ListMyDossiers(pb.ListMyDossiersRequest(page_size=100), metadata=carol.metadata)
    assert dossier.id not in [d.id for d in carols.dossiers]


async def test_parallel_applications_with_one_request_id_open_one_dossier(
    certificates: pb_grpc.CertificatesStub, bob: Applicant, owner_db: asyncpg.Connection
) -> None:
    request = apply_request(1)
    replies = await asyncio.gather(*(certificates.Apply(request, metadata=bob.metadata, timeout=60) for _ in range(8)))
    assert len({r.id for r in replies}) == 1
    assert len({r.tracking_number for r in replies}) == 1
    count = await owner_db.fetchval(
        "SELECT count(*) FROM issuance.dossiers WHERE request_id = $1", uuid.UUID(request.request_id)
    )
    assert count == 1
    events = await owner_db.fetchval(
        "SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1 AND status <> 'ISSUED'",
        uuid.UUID(replies[0].id),
    )
    assert events == 3
    later = await certificates.Apply(request, metadata=bob.metadata, timeout=30)
    assert later.id == replies[0].id


async def test_agencies_get_only_the_form_their_role_allows(
    stack: Stack, bob: Applicant, by_law: AgencyCalls, court: AgencyCalls, plain_agency: AgencyCalls
) -> None:
    subject = bob.citizen.id_number

    def asking(form: int, legal_basis: str = "") -> pb.ApplyAsAgencyRequest:
        return pb.ApplyAsAgencyRequest(request_id=str(uuid.uuid4()), subject_id_number=subject, form=form,
                                       legal_basis=legal_basis, purpose="Bổ nhiệm cán bộ")  # fmt: skip

    error = await refused(by_law.requests.ApplyAsAgency(asking(2, "Luật Cán bộ, công chức"), timeout=30))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Art. 7(2)" in (error.details() or "")
    error = await refused(by_law.requests.ApplyAsAgency(asking(1), timeout=30))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Art. 7(3)" in (error.details() or "")
    error = await refused(plain_agency.requests.ApplyAsAgency(asking(1, "Luật Doanh nghiệp 2020"), timeout=30))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Art. 7" in (error.details() or "")

    by_law_dossier = await by_law.requests.ApplyAsAgency(asking(1, "Luật Cán bộ, công chức 2008, Điều 39"), timeout=30)
    assert by_law_dossier.requester == "AGENCY"
    assert by_law_dossier.fee.amount_vnd == 0
    court_dossier = await court.requests.ApplyAsAgency(asking(2), timeout=30)
    assert court_dossier.requester == "PROCEDURAL_AUTHORITY"
    assert court_dossier.form == 2
    seen = await court.requests.GetAgencyDossier(pb.DossierRequest(id=court_dossier.id), timeout=10)
    assert seen.id == court_dossier.id
    error = await refused(by_law.requests.GetAgencyDossier(pb.DossierRequest(id=court_dossier.id), timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_only_an_officer_agency_decides(
    stack: Stack,
    certificates: pb_grpc.CertificatesStub,
    carol: Applicant,
    plain_agency: AgencyCalls,
    court: AgencyCalls,
) -> None:
    dossier = await certificates.Apply(apply_request(2), metadata=carol.metadata, timeout=30)
    for agency in (plain_agency, court):
        for call in (
            agency.officers.Approve(pb.DecisionRequest(id=dossier.id), timeout=10),
            agency.officers.Reject(pb.DecisionRequest(id=dossier.id, reason="không"), timeout=10),
            agency.officers.ListDossiers(pb.ListDossiersRequest(), timeout=10),
            agency.officers.GetDossier(pb.DossierRequest(id=dossier.id), timeout=10),
        ):
            error = await refused(call)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
            assert "officer" in (error.details() or "")
    # a citizen's token through the portal's peer: the Officers service is open to agencies' certificates only
    async with channel_as(stack, "issuance", "portal") as channel:
        officers = pb_grpc.OfficersStub(channel)
        error = await refused(officers.Approve(pb.DecisionRequest(id=dossier.id), metadata=carol.metadata, timeout=10))
        assert error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    still = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=carol.metadata)
    assert still.status == VERIFYING


async def test_issuer_keys_answer_any_platform_peer(stack: Stack, owner_db: asyncpg.Connection) -> None:
    published = await owner_db.fetchval("SELECT count(*) FROM issuance.issuer_keys WHERE use = 'credential'")
    async with channel_as(stack, "issuance", "edge") as channel:
        call = pb_grpc.IssuerKeysStub(channel).GetIssuerKeys(pb.GetIssuerKeysRequest(), timeout=10)
        if not published:  # the issuing worker publishes them on its start
            assert (await refused(call)).code() == grpc.StatusCode.NOT_FOUND
            return
        keys = await call
    assert keys.issuer
    assert len(json.loads(keys.jwks)["keys"]) == published


async def test_status_changes_need_an_issued_certificate_and_an_officer(
    certificates: pb_grpc.CertificatesStub, carol: Applicant, officer: AgencyCalls, plain_agency: AgencyCalls
) -> None:
    dossier = await certificates.Apply(apply_request(2), metadata=carol.metadata, timeout=30)
    stub = officer.officers
    error = await refused(stub.Revoke(pb.StatusChangeRequest(id=dossier.id, reason="Cấp nhầm"), timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    error = await refused(stub.Suspend(pb.StatusChangeRequest(id=dossier.id, reason=" "), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    error = await refused(stub.Reinstate(pb.StatusChangeRequest(id=str(uuid.uuid4()), reason="x"), timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    error = await refused(plain_agency.officers.Revoke(pb.StatusChangeRequest(id=dossier.id, reason="x"), timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()


async def test_my_dossiers_come_newest_first_in_pages(certificates: pb_grpc.CertificatesStub, bob: Applicant) -> None:
    opened = [(await certificates.Apply(apply_request(1), metadata=bob.metadata, timeout=30)).id for _ in range(3)]
    seen: list[str] = []
    token = ""
    while True:
        page = await certificates.ListMyDossiers(
            pb.ListMyDossiersRequest(page_size=2, page_token=token), metadata=bob.metadata, timeout=10
        )
        assert len(page.dossiers) <= 2
        seen += [d.id for d in page.dossiers]
        token = page.next_page_token
        if not token:
            break
    assert seen[:3] == opened[::-1]
    assert len(seen) == len(set(seen))
    error = await refused(
        certificates.ListMyDossiers(pb.ListMyDossiersRequest(page_token="nonsense"), metadata=bob.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_approved_dossier_is_issued_and_its_credential_can_be_suspended_and_revoked(
    http: httpx.AsyncClient,
    info: StackInfo,
    certificates: pb_grpc.CertificatesStub,
    clean_citizens: Iterator[Citizen],
    officer: AgencyCalls,
) -> None:
    """With the issuing worker (issuance.issuing) running: APPROVED → ISSUED, the holder's credential, and the
    officers' status changes (issuance.revocation) shown on the dossier."""
    dan = await applicant(http, info, next(clean_citizens))
    holder = ECKey.generate_key("P-256").as_dict(private=False)
    request = apply_request(1, holder_jwk=json.dumps(holder))
    dossier = await certificates.Apply(request, metadata=dan.metadata, timeout=30)
    assert dossier.status == APPROVED

    async def issued() -> pb.Dossier | None:
        now = await certificates.GetMyDossier(pb.DossierRequest(id=dossier.id), metadata=dan.metadata, timeout=10)
        return now if now.status == pb.DOSSIER_STATUS_ISSUED else None

    done = await until(issued, "the dossier is issued", timeout=180, every=0.5)
    assert done.certificate_id
    assert done.credential_status == pb.CREDENTIAL_STATUS_VALID
    assert done.history[-1].status == pb.DOSSIER_STATUS_ISSUED
    assert done.history[-1].actor == "SYSTEM"
    credential = await certificates.GetMyCredential(pb.DossierRequest(id=dossier.id), metadata=dan.metadata)
    assert credential.sd_jwt.endswith("~")
    assert credential.qr_text.startswith("VN1:")
    assert credential.status == pb.CREDENTIAL_STATUS_VALID

    stub = officer.officers
    changed = await stub.Suspend(pb.StatusChangeRequest(id=dossier.id, reason="Đang xác minh lại"), timeout=30)
    assert changed.credential_status == pb.CREDENTIAL_STATUS_SUSPENDED
    changed = await stub.Reinstate(pb.StatusChangeRequest(id=dossier.id, reason="Đã xác minh"), timeout=30)
    assert changed.credential_status == pb.CREDENTIAL_STATUS_VALID
    changed = await stub.Revoke(pb.StatusChangeRequest(id=dossier.id, reason="Cấp nhầm"), timeout=30)
    assert changed.credential_status == pb.CREDENTIAL_STATUS_REVOKED
    error = await refused(stub.Reinstate(pb.StatusChangeRequest(id=dossier.id, reason="x"), timeout=30))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    mine = await certificates.GetMyCredential(pb.DossierRequest(id=dossier.id), metadata=dan.metadata)
    assert mine.status == pb.CREDENTIAL_STATUS_REVOKED
