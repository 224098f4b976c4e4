"""Consent end to end in Chromium (issue 10 item 5): an agency asks, the citizen approves in the demo portal, the
agency fetches, the fetch shows in "Lịch sử truy cập" with its verified mark, the citizen revokes, and the
agency's next fetch is refused.

The agency is the stack's demo agency (``clients["agency_demo"]``): it asks over gRPC with its own client
certificate, gets a certificate-bound consent token at the edge's mTLS token endpoint and fetches with
``DownloadShared`` over the same certificate (tests/consent_agency_helpers.py). The citizen is a fresh one,
signed in through the platform's SSO; an issuing office first delivers the document the agency asks for.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import grpc
import pytest

from protos.consent.v1 import consent_pb2 as cpb
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.browser.signin import Platform, back_on, expect_login_page, follow, second_factor, sign_in_with_password
from tests.consent_agency_helpers import DemoAgency, terms
from tests.oidc_helpers import person
from tests.portal_vault_helpers import issue
from tests.vault_helpers import ISSUED_TITLE, PDF, register_issuer
from tests.waiting import until

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

PURPOSE_TEXT = "Kiểm tra lý lịch, văn bằng khi tuyển dụng lao động"


def consents(platform: Platform) -> re.Pattern[str]:
    return re.compile("^" + re.escape(f"{platform.portal}/consents") + r"([?#].*)?$")


def consent(page: Page, consent_id: str) -> Locator:
    return page.locator(f'article[data-id="{consent_id}"]')


async def history_row(page: Page, platform: Platform, agency: str, outcome: str, mark: str) -> bool:
    """Reloads "Lịch sử truy cập": is there a row of ``agency`` fetching a document, with that outcome and mark?"""
    await page.goto(f"{platform.portal}/history")
    rows = page.locator("#entries tr.entry", has_text=agency).filter(has_text="lấy giấy tờ").filter(has_text=outcome)
    return await rows.locator(f".mark.{mark}").count() > 0


async def test_request_approve_fetch_history_revoke(
    page: Page, platform: Platform, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    who = await person(info, fresh_citizen)
    office = register_issuer(stack, "Sở Tư pháp Thành phố Đà Nẵng")
    document = await issue(stack, info, office, who.id_number, f"LLTP-DN-{who.id_number}")
    agency = DemoAgency.of(info)
    asked = await agency.request_consent(info, who.id_number, terms([document.id]))
    assert asked.status == cpb.CONSENT_STATUS_PENDING
    citizen = {"id_number": who.id_number, "password": who.password, "totp_secret": who.totp_secret}

    # Signed out, the consent page sends the citizen through SSO and back to it.
    await page.goto(f"{platform.portal}/consents")
    await expect_login_page(page, platform.issuer)
    await sign_in_with_password(page, citizen)
    await second_factor(page, citizen["totp_secret"])
    await back_on(page, platform.portal)
    await expect(page).to_have_url(consents(platform))
    await expect(page.locator("h2")).to_have_text("Quản lý sự đồng ý chia sẻ dữ liệu")

    # The request, in plain words, among the pending ones.
    request = page.locator("#pending").locator(f'article[data-id="{asked.id}"]')
    await expect(request).to_have_count(1)
    await expect(request.locator(".agency")).to_have_text(agency.name)
    await expect(request.locator(".purpose-vi")).to_have_text(PURPOSE_TEXT)
    await expect(request.locator(".legal-basis")).to_contain_text("Bộ luật Lao động 2019")
    await expect(request.locator(".documents")).to_have_text(ISSUED_TITLE)
    await expect(request.locator(".window")).to_contain_text("(giờ Việt Nam)")
    await expect(request.locator(".limits")).to_contain_text("tối đa 3 lần mỗi ngày, tổng cộng 10 lần")
    await expect(request.locator(".data-life")).to_contain_text("cơ quan được giữ dữ liệu trong 30 ngày")

    # Approved: active, nothing fetched yet.
    await follow(page, request.locator("button.approve"))
    await expect(page).to_have_url(consents(platform))
    await expect(page.locator("#notice")).to_be_visible()
    granted = page.locator("#current").locator(f'article[data-id="{asked.id}"]')
    await expect(granted).to_have_attribute("data-status", "active")
    await expect(granted.locator(".fetches")).to_have_text("0")

    # The agency fetches with its bound token, over its certificate.
    token = await agency.token(info, asked.id, asked.terms.purpose)
    async with agency.vault(info) as vault:
        assert await agency.download(vault, token, document.id) == PDF
        await page.reload()
        await expect(consent(page, asked.id).locator(".fetches")).to_have_text("1")
        await expect(consent(page, asked.id).locator(".last-fetch")).not_to_have_text("chưa lần nào (never)")

        # The fetch shows in the access history, its inclusion proof verified in the portal (the log publishes a
        # checkpoint about every second).
        await until(lambda: history_row(page, platform, agency.name, "Thành công", "verified"),
                    "the agency's fetch in the history with its verified mark", timeout=30, every=0.5)  # fmt: skip
        fetched = page.locator("#entries tr.entry", has_text=agency.name).filter(has_text="Thành công").first
        await expect(fetched.locator(".document")).to_have_text(ISSUED_TITLE)
        await expect(fetched.locator(".mark")).to_have_text("✓ đã kiểm chứng")
        await expect(fetched.locator(".purpose")).to_contain_text(PURPOSE_TEXT)
        await expect(page.locator("#entries .mark.failed")).to_have_count(0)

        # Revoked in the portal: ended, no buttons left, and the agency's next fetch is refused.
        await page.goto(f"{platform.portal}/consents")
        await follow(page, consent(page, asked.id).locator("button.revoke"))
        ended = page.locator("#ended").locator(f'article[data-id="{asked.id}"]')
        await expect(ended).to_have_attribute("data-status", "revoked")
        await expect(ended.locator("button")).to_have_count(0)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await agency.download(vault, token, document.id)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()

    # The refusal is in the history too, in words.
    await until(lambda: history_row(page, platform, agency.name, "Bị từ chối", "verified"),
                "the refused fetch in the history with its verified mark", timeout=30, every=0.5)  # fmt: skip

    # The home page links to both pages.
    await page.goto(platform.portal)
    await follow(page, page.locator("#history"))
    await expect(page.locator("h2")).to_have_text("Lịch sử truy cập")
    await page.goto(platform.portal)
    await follow(page, page.locator("#consents"))
    await expect(page).to_have_url(consents(platform))
