"""The demo portal's health book pages (portal/health.py) over HTTP against the whole stack: the book with the
registry's data and the Vietnamese ICD-10 titles, a visit with "Tải PDF", the PDF itself, and the signed extract
issued into the vault from the page."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from pypdf import PdfReader

from bench.browserless import Browser, csrf_of
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.health_service.conftest import record
from tests.oidc_helpers import Person, person

TITLE_J069 = "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"


async def health_session(http: httpx.AsyncClient, info: StackInfo, who: Person) -> tuple[Browser, httpx.Response]:
    """``who`` opens the demo portal's /health signed out, signs in at the OP and is sent back there."""
    portal, issuer = info.demo_portal.rstrip("/"), info.oidc_issuer.rstrip("/")
    browser = Browser(http)
    page = await browser.follow("GET", f"{portal}/health")
    for _ in range(4):
        if str(page.url).startswith(portal):
            break
        if 'name="password"' in page.text:
            fields, path = {"id_number": who.id_number, "password": who.password}, "/login"
        elif 'name="code"' in page.text:
            fields, path = {"code": who.code()}, "/login/totp"
        elif 'name="decision"' in page.text:
            fields, path = {"decision": "allow"}, "/consent"
        else:
            raise AssertionError(f"unexpected page at {page.url}: {page.status_code} {page.text[:300]}")
        page = await browser.follow("POST", f"{issuer}{path}", data={"csrf": csrf_of(page), **fields})
    assert str(page.url) == f"{portal}/health", (page.url, page.status_code, page.text[:300])
    return browser, page


@pytest.fixture(scope="module")
def portal_patient(fresh_citizens: object) -> Citizen:
    return next(fresh_citizens)  # type: ignore[call-overload,no-any-return]


async def test_the_book_a_visit_its_pdf_and_the_extract(
    http: httpx.AsyncClient, info: StackInfo, pushing: pb_grpc.HealthRecordsStub, portal_patient: Citizen
) -> None:
    pushed = await pushing.PushVisit(pb.PushVisitRequest(visit=record(portal_patient, "KCB-PORTAL-BOOK-1")), timeout=30)
    who = await person(info, portal_patient)
    browser, page = await health_session(http, info, who)
    assert page.status_code == 200, page.text[:500]
    assert "Sổ sức khỏe điện tử" in page.text
    assert portal_patient.full_name in page.text
    assert f"J06.9 – {TITLE_J069}" in page.text
    assert f"/health/visits/{pushed.id}.pdf" in page.text
    assert "consent" in page.text  # the extract is shared through a consent artefact, as the page says
    portal = info.demo_portal.rstrip("/")

    visit = await browser.follow("GET", f"{portal}/health/visits/{pushed.id}")
    assert visit.status_code == 200
    assert "Tải PDF" in visit.text
    assert "Paracetamol 500mg" in visit.text
    assert "Tăng huyết áp vô căn" in visit.text

    got = await browser.follow("GET", f"{portal}/health/visits/{pushed.id}.pdf")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert "attachment" in got.headers["content-disposition"]
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(got.content)).pages).split())
    assert "J06.9" in text
    assert TITLE_J069 in text

    missing = await browser.follow("GET", f"{portal}/health/visits/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    junk = await browser.follow("GET", f"{portal}/health/visits/not-a-visit")
    assert junk.status_code == 404

    forged = await browser.follow("POST", f"{portal}/health/extract", data={"csrf": "wrong"})
    assert forged.status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id is not None
    done = await browser.follow("POST", f"{portal}/health/extract", data={"csrf": csrf.group(1),
                                                                          "request_id": request_id.group(1),
                                                                          "visit_id": pushed.id})  # fmt: skip
    assert done.status_code == 200, done.text[:500]
    assert str(done.url).endswith("/health?done=extract")
    assert 'id="notice"' in done.text
    store = await browser.follow("GET", f"{portal}/vault")
    assert "Trích lục sổ sức khỏe điện tử" in store.text
