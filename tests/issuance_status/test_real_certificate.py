"""A certificate issued for real (Apply → auto-approval → the issuing worker → ISSUED), then revoked by an
officer: its SD-JWT VC and its QR, checked against the list the edge serves and the keys it publishes, report
revoked — through issuance.verify and `dinhdanh verify`."""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from issuance.judicial import seed_record
from issuance.verify import Outcome, verify_presented
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.issuance_service.conftest import applicant, apply_request
from tests.issuance_status.test_officer_rpcs import officers  # noqa: F401 - the module fixture
from tests.waiting import until


@pytest.fixture(scope="module")
async def certificates(stack: Stack) -> AsyncIterator[pb_grpc.CertificatesStub]:
    async with channel_as(stack, "issuance", "portal") as channel:
        yield pb_grpc.CertificatesStub(channel)


def clean(citizens: Iterator[Citizen]) -> Citizen:
    return next(c for c in citizens if not seed_record(c).convictions)


async def dinhdanh_verify(item: str, folder: Path, jwks: object, token: str) -> tuple[int, str]:
    (folder / "keys.json").write_text(json.dumps(jwks))
    (folder / "list.jwt").write_text(token)
    command = [sys.executable, "-m", "cli.main", "verify", item, "--keys", str(folder / "keys.json"),
               "--status-list", str(folder / "list.jwt")]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_a_really_issued_certificate_once_revoked_verifies_as_revoked(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen],
    certificates: pb_grpc.CertificatesStub, officers: pb_grpc.OfficersStub, issuer: str,  # noqa: F811
    tmp_path: Path,
) -> None:  # fmt: skip
    alice = await applicant(http, info, clean(fresh_citizens))
    applied = await certificates.Apply(apply_request(), metadata=alice.metadata, timeout=30)

    async def issued() -> pb.Dossier | None:
        got = await certificates.GetMyDossier(pb.DossierRequest(id=applied.id), metadata=alice.metadata, timeout=10)
        return got if got.status == pb.DOSSIER_STATUS_ISSUED else None

    dossier = await until(issued, "the dossier ISSUED", timeout=180, every=0.5)
    assert dossier.credential_status == pb.CREDENTIAL_STATUS_VALID
    mine = await certificates.GetMyCredential(pb.DossierRequest(id=applied.id), metadata=alice.metadata, timeout=10)

    jwks = (await http.get(f"{issuer}/.well-known/jwt-vc-issuer")).json()["jwks"]
    token = (await http.get(f"{issuer}/statuslists/0")).text
    for item in (mine.sd_jwt, mine.qr_text):
        verdict = verify_presented(item, issuer_jwks=jwks, status_lists=[token], at=datetime.now(UTC))
        assert (verdict.outcome, verdict.status_checked) == (Outcome.VALID, True), verdict.reason

    revoked = await officers.Revoke(pb.StatusChangeRequest(id=applied.id, reason="cấp nhầm"), timeout=20)
    assert revoked.credential_status == pb.CREDENTIAL_STATUS_REVOKED
    token = (await http.get(f"{issuer}/statuslists/0")).text
    for item in (mine.sd_jwt, mine.qr_text):
        verdict = verify_presented(item, issuer_jwks=jwks, status_lists=[token], at=datetime.now(UTC))
        assert (verdict.outcome, verdict.status_checked) == (Outcome.REVOKED, True), verdict.reason
    code, said = await dinhdanh_verify(mine.qr_text, tmp_path, jwks, token)
    assert code == 1, said
    assert said.startswith("REVOKED"), said
    again = await certificates.GetMyCredential(pb.DossierRequest(id=applied.id), metadata=alice.metadata, timeout=10)
    assert again.status == pb.CREDENTIAL_STATUS_REVOKED
