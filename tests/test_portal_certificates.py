"""The demo portal's criminal-record certificate pages (portal/certificates.py).

The first tests are pure: a dossier as the pages show it (statuses in Vietnamese, the deadline, "quá hạn" only
while the dossier is open, actors), the fee in đồng, the six answers read from a posted form. The others go through
the portal's HTTP (httpx, as tests/test_portal_vault.py does) against the whole stack: a level-1 citizen is told how
to reach level 2 instead of getting the form; a level-2 citizen sees the 17 fields filled from the population
database with their source, applies — a double submit (the same request id, in parallel) opens one dossier —
follows the dossier, and another citizen cannot see it.
"""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData

from bench.browserless import Browser, csrf_of
from portal import certificates as pages
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from services.tls import secure_channel
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import register_agency
from tests.oidc_helpers import Person, person
from tests.test_oidc_assurance import level_2

# -- pure ---------------------------------------------------------------------------------------------------


def stamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def test_a_dossier_as_the_pages_show_it() -> None:
    dossier = pb.Dossier(
        id="7d4f3e2a-0000-4000-8000-000000000001",
        tracking_number="TTLLTP-261201-0000427",
        form=1,
        purpose="EMPLOYMENT",
        status=pb.DOSSIER_STATUS_REJECTED,
        deadline="2026-12-15",
        overdue=True,
        working_days=10,
        received_at=stamp(1_796_112_000),  # 2026-12-01 08:00 UTC
        rejection_reason="Thiếu văn bản uỷ quyền",
        fee=pb.Fee(amount_vnd=200_000, base_vnd=200_000, basis="Thông tư 244/2016/TT-BTC"),
        fields=[pb.FormField(name="purpose", label_vi="Mục đích", value="Bổ sung hồ sơ xin việc", recorded=True)],
        history=[
            pb.StatusChange(status=pb.DOSSIER_STATUS_SUBMITTED, at=stamp(1_796_112_000), actor="SYSTEM"),
            pb.StatusChange(
                status=pb.DOSSIER_STATUS_REJECTED,
                at=stamp(1_796_115_600),
                actor="OFFICER",
                reason="Thiếu văn bản uỷ quyền",
            ),
        ],
    )
    shown = pages.dossier_view(dossier)
    assert (shown.status, shown.status_label) == ("rejected", "Bị từ chối")
    assert shown.deadline == "15/12/2026"
    assert shown.overdue is False  # a decided dossier is never overdue
    assert shown.received == "01/12/2026 15:00"  # Vietnam time
    assert shown.purpose == "Bổ sung hồ sơ xin việc"
    assert [e.actor for e in shown.history] == ["Hệ thống (tự động)", "Cán bộ Trung tâm Lý lịch tư pháp"]
    assert shown.history[1].reason == "Thiếu văn bản uỷ quyền"
    assert shown.fee.amount == "200.000 đồng"
    assert shown.form == "Phiếu lý lịch tư pháp số 1"
    open_one = pages.dossier_view(pb.Dossier(status=pb.DOSSIER_STATUS_VERIFYING, overdue=True))
    assert open_one.overdue is True
    assert open_one.status_label == "Đang xác minh"
    issued = pages.dossier_view(pb.Dossier(status=pb.DOSSIER_STATUS_ISSUED,
                                           credential_status=pb.CREDENTIAL_STATUS_SUSPENDED))  # fmt: skip
    assert (issued.credential, issued.credential_label) == ("suspended", "Đang bị tạm đình chỉ")
    assert pages.money(0).startswith("0 đồng (miễn phí")
    assert pages.money(1_005_000) == "1.005.000 đồng"


def test_the_six_answers_from_the_posted_form() -> None:
    complete = {"form": "1", "purpose": "EMPLOYMENT", "copies": "2", "delivery": "post", "ban_certification": "yes",
                "postal_address": "12 Tràng Tiền, Hà Nội", "email": "a@example.vn"}  # fmt: skip
    answers, problem = pages._answers(FormData(complete))
    assert problem is None
    assert (answers.form, answers.purpose, answers.copies, answers.delivery) == (1, "EMPLOYMENT", 2, pb.DELIVERY_POST)
    assert answers.ban_certification is True
    assert answers.postal_address == "12 Tràng Tiền, Hà Nội"
    form_2 = pages._answers(FormData({**complete, "form": "2", "delivery": "electronic"}))[0]
    assert form_2.ban_certification is False  # no ban choice on Form No. 2
    assert form_2.postal_address == ""
    for missing, words in (("purpose", "mục đích"), ("email", "thư điện tử"), ("postal_address", "địa chỉ")):
        assert words in (pages._answers(FormData({**complete, missing: ""}))[1] or "").lower()
    assert pages._answers(FormData({**complete, "copies": "11"}))[1] is not None
    assert pages._answers(FormData({**complete, "form": "3"}))[1] is not None


# -- through the portal ----------------------------------------------------------------------------------------


async def portal_session(http: httpx.AsyncClient, info: StackInfo, who: Person) -> tuple[Browser, httpx.Response]:
    """``who`` opens /certificates signed out, signs in at the OP and is sent back there. ``http`` must be this
    person's own client: httpx keeps the portal's (not Secure) session cookie in its jar."""
    portal, issuer = info.demo_portal.rstrip("/"), info.oidc_issuer.rstrip("/")
    http.cookies.clear()
    browser = Browser(http)
    page = await browser.follow("GET", f"{portal}/certificates")
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
    assert str(page.url).startswith(f"{portal}/certificates"), (page.url, page.status_code, page.text[:300])
    return browser, page


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page.text)
    assert found, page.text[:1000]
    return html.unescape(found.group(1))


def filled(page: httpx.Response) -> dict[str, tuple[str, str, str]]:
    """name → (label, value, source) of the read-only fields."""
    rows = re.findall(
        r'<tr data-field="([^"]+)" data-recorded="[a-z]+">\s*<th scope="row">([^<]*)</th>\s*'
        r'<td><span class="value">([^<]*)</span><span class="source">Nguồn \(source\): ([^<]*)</span>',
        page.text,
    )
    return {n: (html.unescape(label), html.unescape(v), html.unescape(s)) for n, label, v, s in rows}


async def test_a_level_1_citizen_is_told_how_to_reach_level_2(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    browser, listing = await portal_session(http, info, who)
    assert listing.status_code == 403  # the service's PERMISSION_DENIED insufficient_user_authentication
    assert 'id="level"' in listing.text
    page = await browser.request("GET", f"{info.demo_portal.rstrip('/')}/certificates/new")
    assert page.status_code == 403
    assert "mức 2" in page.text
    assert "thẻ Căn cước gắn chip" in page.text  # an officer verifies the account in person, card in hand
    assert 'name="request_id"' not in page.text
    request_id = "00000000-0000-4000-8000-000000000000"
    posted = await browser.request("POST", f"{info.demo_portal.rstrip('/')}/certificates/new",
                                   data={"csrf": "x", "request_id": request_id})  # fmt: skip
    assert posted.status_code == 403


@pytest.fixture(scope="module")
async def applicant(info: StackInfo, fresh_citizens: Iterator[Citizen]) -> tuple[Citizen, Person]:
    citizen = next(fresh_citizens)
    return citizen, await level_2(info, await person(info, citizen))


async def test_a_level_2_citizen_applies_once_and_follows_the_dossier(
    http: httpx.AsyncClient, info: StackInfo, applicant: tuple[Citizen, Person], fresh_citizen: Citizen
) -> None:
    citizen, who = applicant
    portal = info.demo_portal.rstrip("/")
    browser, _ = await portal_session(http, info, who)
    form = await browser.request("GET", f"{portal}/certificates/new")
    assert form.status_code == 200, form.text[form.text.find("<main>") :][:1500]
    shown = filled(form)
    assert len(shown) == 17
    assert shown["full_name"][1] == citizen.full_name
    assert shown["id_number"][1] == citizen.id_number
    assert shown["full_name"][2] == "Cơ sở dữ liệu quốc gia về dân cư"
    assert set(shown).isdisjoint(pages.ASKED_NAMES)
    assert 'id="fee"' in form.text
    assert "ngày làm việc" in form.text
    assert 'value="EMPLOYMENT"' in form.text
    assert 'value="PERSONAL"' not in form.text  # a Form No. 2 purpose
    form_2 = await browser.request("GET", f"{portal}/certificates/new?form=2")
    assert 'value="PERSONAL"' in form_2.text
    assert 'name="ban_certification"' not in form_2.text

    csrf, request_id = hidden(form, "csrf"), hidden(form, "request_id")
    answers = {"csrf": csrf, "request_id": request_id, "form": "1", "purpose": "EMPLOYMENT", "copies": "1",
               "delivery": "electronic", "ban_certification": "no", "email": "cong.dan@example.vn"}  # fmt: skip
    missing = await browser.request("POST", f"{portal}/certificates/new", data={**answers, "email": ""})
    assert missing.status_code == 400
    assert "thư điện tử" in missing.text.lower()
    assert hidden(missing, "request_id") == request_id  # shown again with the same request id
    no_csrf = await browser.request("POST", f"{portal}/certificates/new", data={**answers, "csrf": "wrong"})
    assert no_csrf.status_code == 403

    twice = await asyncio.gather(
        *(browser.request("POST", f"{portal}/certificates/new", data=answers) for _ in range(3))
    )  # a double (triple) submit
    assert [r.status_code for r in twice] == [303] * 3, [r.text[:300] for r in twice]
    locations = {r.headers["location"] for r in twice}
    assert len(locations) == 1
    location = locations.pop()
    dossier_id = location.split("/certificates/", 1)[1].split("?", 1)[0]
    page = await browser.request("GET", f"{portal}{location}")
    assert page.status_code == 200
    assert "Đã nộp hồ sơ" in page.text
    assert re.search(r'id="tracking-number">[A-Z0-9.]+-\d{6}-\d{7}<', page.text), page.text[:800]
    assert 'data-status="submitted"' in page.text  # the history's first row
    assert "Hệ thống (tự động)" in page.text
    listing = await browser.request("GET", f"{portal}/certificates")
    assert listing.text.count(f'data-id="{dossier_id}"') == 1
    assert len(re.findall(r'<tr data-id="', listing.text)) == 1

    stranger = await level_2(info, await person(info, fresh_citizen))
    async with httpx.AsyncClient(timeout=20) as own:
        other, _ = await portal_session(own, info, stranger)
        refused = await other.request("GET", f"{portal}/certificates/{dossier_id}")
        assert refused.status_code == 404
        assert dossier_id not in (await other.request("GET", f"{portal}/certificates")).text
        junk = await other.request("GET", f"{portal}/certificates/not-a-uuid")
        assert junk.status_code == 404


async def test_a_dossier_waiting_for_an_officer_shows_overdue_then_the_rejection_and_its_reason(
    info: StackInfo, stack: Stack, convicted_citizens: Iterator[Citizen], tmp_path_factory: pytest.TempPathFactory
) -> None:
    citizen = next(convicted_citizens)
    who = await level_2(info, await person(info, citizen))
    portal = info.demo_portal.rstrip("/")
    async with httpx.AsyncClient(timeout=30) as own:
        browser, _ = await portal_session(own, info, who)
        form = await browser.request("GET", f"{portal}/certificates/new?form=2")
        answers = {"csrf": hidden(form, "csrf"), "request_id": hidden(form, "request_id"), "form": "2",
                   "purpose": "PERSONAL", "copies": "1", "delivery": "post", "email": "a@example.vn",
                   "postal_address": "Số 1 Tràng Tiền, phường Hoàn Kiếm, Hà Nội"}  # fmt: skip
        applied = await browser.request("POST", f"{portal}/certificates/new", data=answers)
        assert applied.status_code == 303, applied.text[:600]
        dossier_id = applied.headers["location"].split("/certificates/", 1)[1].split("?", 1)[0]
        waiting = await browser.request("GET", f"{portal}/certificates/{dossier_id}")
        assert 'data-status="verifying"' in waiting.text
        assert "(15 ngày làm việc)" in waiting.text  # a record to verify: Art. 48's longer time
        assert 'id="pending"' in waiting.text

        connection = await asyncpg.connect(info.postgres_dsn)
        try:  # as if received long ago
            await connection.execute("UPDATE issuance.dossiers SET deadline = '2026-01-05' WHERE id = $1",
                                     uuid.UUID(dossier_id))  # fmt: skip
        finally:
            await connection.close()
        listing = await browser.request("GET", f"{portal}/certificates")
        row = re.search(rf'<tr data-id="{dossier_id}".*?</tr>', listing.text, re.S)
        assert row, listing.text[:1000]
        assert "05/01/2026" in row.group(0)
        assert "quá hạn" in row.group(0)

        officer = register_agency(stack, "Trung tâm LLTP (kiểm thử)", tmp_path_factory.mktemp("officer"),
                                  roles=("officer",))  # fmt: skip
        reason = "Cần xác minh thêm thông tin án tích với Tòa án nơi xét xử"
        address = f"127.0.0.1:{stack.ports.issuance}"
        async with secure_channel(address, officer.ca, officer.cert, officer.key, server="issuance") as channel:
            decided = await pb_grpc.OfficersStub(channel).Reject(pb.DecisionRequest(id=dossier_id, reason=reason),
                                                                 timeout=20)  # fmt: skip
        assert decided.status == pb.DOSSIER_STATUS_REJECTED
        page = await browser.request("GET", f"{portal}/certificates/{dossier_id}")
        assert 'data-status="rejected"' in page.text
        assert f'id="rejection-reason">{reason}<' in page.text
        assert 'id="overdue"' not in page.text  # decided: no longer overdue
        last = re.findall(r'<tr data-status="rejected">(.*?)</tr>', page.text, re.S)
        assert len(last) == 1
        assert "Cán bộ Trung tâm Lý lịch tư pháp" in last[0]
        assert reason in last[0]
        assert 'id="share"' not in page.text
