"""A criminal-record certificate in Chromium, end to end: a level-2 citizen signs in to the demo portal, answers
the six questions of the request (the other 17 fields filled from the population database, shown with their
source), follows the dossier until it is issued (a bounded poll: auto-approval of a clean record, then the issuing
worker), and finds the certificate in the personal data store as a document issued by the Judicial Records
Centre, which the edge's public /verify page then reports valid.

The citizen is the demo citizen (stack.json: level 2 with one clean judicial record, issue 11 item 5); the test
makes sure of the level itself (an operator's in-person verification is idempotent).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from stack.info import StackInfo
from tests.browser.signin import Platform, back_on, expect_login_page, follow, second_factor, sign_in_with_password

if TYPE_CHECKING:
    from playwright.async_api import Page

ISSUE_WITHIN = 120.0  # seconds: apply → auto-approve → SD-JWT + PDF + PAdES + QR → vault, on a loaded machine


async def test_a_level_2_citizen_applies_and_finds_the_certificate_in_the_vault(
    page: Page, platform: Platform, info: StackInfo
) -> None:
    from playwright.async_api import expect

    citizen = platform.citizen
    async with info.channel("identity") as channel:
        ask = ipb.SetAssuranceLevelRequest(id_number=citizen["id_number"], level=2, note="Công an phường (demo)")
        assert (await igrpc.IdentityStub(channel).SetAssuranceLevel(ask, timeout=10)).assurance_level == 2

    # Signed out, the certificates page sends the citizen to sign in, and back there afterwards.
    await page.goto(f"{platform.portal}/certificates")
    await expect_login_page(page, platform.issuer)
    await sign_in_with_password(page, citizen)
    await second_factor(page, citizen["totp_secret"])
    await back_on(page, platform.portal)
    await expect(page).to_have_url(re.compile("^" + re.escape(f"{platform.portal}/certificates") + "$"))
    await expect(page.locator("#certificates-heading")).to_have_text("Phiếu lý lịch tư pháp")

    # The request: 17 fields filled from the registry, read-only, each with its source; six answers.
    await follow(page, page.locator("#apply"))
    await expect(page.locator("#apply-heading")).to_have_text("Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp")
    filled = page.locator("#filled tbody tr")
    await expect(filled).to_have_count(17)
    await expect(page.locator('#filled tr[data-field="id_number"] .value')).to_have_text(citizen["id_number"])
    await expect(page.locator('#filled tr[data-field="full_name"] .source')).to_contain_text(
        "Cơ sở dữ liệu quốc gia về dân cư"
    )
    await expect(page.locator("#filled input, #filled select, #filled textarea")).to_have_count(0)
    form = page.locator("#application")
    await expect(form.locator("#form-1")).to_have_attribute("aria-current", "true")  # 1. Form No. 1
    await form.locator("#purpose").select_option("EMPLOYMENT")  # 2. purpose
    await form.locator("#copies").fill("1")  # 3. copies
    await form.locator("#delivery-electronic").check()  # 4. delivery
    await form.locator("#ban-no").check()  # 5. the ban certification
    await form.locator("#email").fill("cong.dan.demo@example.vn")  # 6. contact e-mail
    await expect(page.locator("#fee")).to_contain_text("đồng")
    await follow(page, form.locator("#submit"))

    # The dossier: tracking number, history; polled (bounded) until ISSUED.
    await expect(page.locator("#notice")).to_contain_text("Đã nộp hồ sơ")
    await expect(page.locator("#tracking-number")).to_have_text(re.compile(r"^[0-9A-Z.]+-\d{6}-\d{7}$"))
    dossier_url = page.url.split("?", 1)[0]
    deadline = time.monotonic() + ISSUE_WITHIN
    while await page.locator("#dossier").get_attribute("data-status") != "issued":
        status = await page.locator("#dossier").get_attribute("data-status")
        assert status not in ("rejected",), await page.locator("#dossier").inner_text()
        assert time.monotonic() < deadline, f"not issued within {ISSUE_WITHIN:.0f} s (status {status})"
        await asyncio.sleep(1.0)
        await page.goto(dossier_url)
    await expect(page.locator("#status")).to_have_text("Đã cấp phiếu")
    await expect(page.locator('#history tr[data-status="issued"]')).to_have_count(1)
    await expect(page.locator('#history tr[data-status="approved"] .actor')).to_have_text("Hệ thống (tự động)")
    await expect(page.locator("#share")).to_be_visible()
    href = await page.locator("#vault-document").get_attribute("href")
    assert href is not None
    assert re.fullmatch(r"/vault/[0-9a-f-]{36}", href)
    document_id = href.rsplit("/", 1)[1]

    # In the personal data store: an issued, read-only criminal-record certificate.
    await follow(page, page.locator("#vault"))
    row = page.locator(f'#documents tbody tr[data-id="{document_id}"]')
    await expect(row).to_have_count(1)
    await expect(row.locator(".badge.issued")).to_have_text("Do cơ quan cấp")
    await expect(row.locator(".type")).to_have_text("Phiếu lý lịch tư pháp")
    await expect(row.locator("button.delete")).to_have_count(0)
    async with page.expect_download() as download_info:
        await row.locator("a.download").click()
    download = await download_info.value
    pdf = await download.path()
    assert pdf is not None

    # The edge's public verification page: the downloaded PDF is valid.
    await page.goto(f"{platform.issuer}/verify")
    # the scanner's script ran under the page's CSP (same origin): the camera button where the browser has a
    # BarcodeDetector, the "paste instead" note where it has not (headless Chromium on Linux)
    detector = await page.evaluate("'BarcodeDetector' in window")
    await expect(page.locator("#verify")).to_have_attribute("data-scanner", "ready" if detector else "unsupported")
    await expect(page.locator("#scan" if detector else "#scan-unsupported")).to_be_visible()
    await page.locator("#file").set_input_files(str(pdf))
    await follow(page, page.locator("#submit"))
    await expect(page.locator("#result")).to_have_attribute("data-outcome", "valid")
    await expect(page.locator('#fields tr[data-field="certificate_id"]')).to_have_count(1)
