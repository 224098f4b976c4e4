"""The demo portal's "Kho dữ liệu cá nhân" (personal data store) in Chromium: sign in, upload, download, delete.

The portal reaches the real vault over mutual TLS with the citizen's access token. The citizen is a fresh one
(activated with TOTP by the test, so the vault starts empty), into whose vault an agency first delivers a
document: it must show as issued, without a delete button.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.browser.signin import Platform, back_on, expect_login_page, follow, second_factor, sign_in_with_password
from tests.oidc_helpers import person
from tests.portal_vault_helpers import issue
from tests.vault_helpers import ISSUED_TITLE, PDF, register_issuer

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

FILENAME = "Giấy khai sinh (bản sao).pdf"
TITLE = "Giấy khai sinh của tôi"


def store(platform: Platform) -> re.Pattern[str]:
    """The store's page, with or without a query string."""
    return re.compile("^" + re.escape(f"{platform.portal}/vault") + r"(\?.*)?$")


def row(page: Page, text: str) -> Locator:
    return page.locator("#documents tbody tr", has_text=text)


async def upload(page: Page, name: str, content: bytes, title: str, kind: str, **optional: str) -> None:
    """Fill and send the upload form; ``optional``: ``issuer_name``, ``issued_on``, ``expires_on`` (YYYY-MM-DD)."""
    form = page.locator("#upload")
    await form.locator('input[type="file"]').set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": content}]
    )
    await form.locator('input[name="title"]').fill(title)
    await form.locator('select[name="document_type"]').select_option(kind)
    for field, value in optional.items():
        await form.locator(f'input[name="{field}"]').fill(value)
    await follow(page, form.locator('button[type="submit"]'))


async def test_personal_data_store(
    page: Page, platform: Platform, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    who = await person(info, fresh_citizen)
    agency = register_issuer(stack, "Sở Tư pháp Thành phố Hồ Chí Minh")
    await issue(stack, info, agency, who.id_number, f"LLTP-HCM-{who.id_number}")
    citizen = {"id_number": who.id_number, "password": who.password, "totp_secret": who.totp_secret}

    # Signed out, the store sends the citizen to sign in, and back to the store afterwards.
    await page.goto(f"{platform.portal}/vault")
    await expect_login_page(page, platform.issuer)
    await sign_in_with_password(page, citizen)
    await second_factor(page, citizen["totp_secret"])
    await back_on(page, platform.portal)
    await expect(page).to_have_url(store(platform))
    await expect(page.locator("h2")).to_have_text("Kho dữ liệu cá nhân")

    # The issued document: marked, with its issuer, downloadable, not deletable.
    issued = row(page, ISSUED_TITLE)
    await expect(issued).to_have_count(1)
    await expect(issued.locator(".badge.issued")).to_have_text("Do cơ quan cấp")
    await expect(issued.locator(".issuer")).to_have_text("Sở Tư pháp Thành phố Hồ Chí Minh")
    await expect(issued.locator(".issued-on")).to_have_text("Cấp ngày 20/11/2026")
    await expect(issued.locator(".type")).to_have_text("Phiếu lý lịch tư pháp")
    await expect(issued.locator("a.download")).to_be_visible()
    await expect(issued.locator("button.delete")).to_have_count(0)

    # A text file is not a document: a clear error page, then back to the store.
    await upload(page, "ghi-chu.txt", b"Day khong phai la giay to.\n", "Ghi chú", "other")
    alert = page.locator("#error")
    await expect(alert).to_contain_text("Kho dữ liệu cá nhân")
    await expect(alert).to_contain_text("không hợp lệ")
    await follow(page, page.locator("#back"))
    await expect(row(page, "Ghi chú")).to_have_count(0)

    # A PDF: uploaded, listed with its type, file name, size and version.
    await upload(page, FILENAME, PDF, TITLE, "birth_certificate", issuer_name="UBND phường Bến Thành",
                 issued_on="1990-05-02")  # fmt: skip
    await expect(page).to_have_url(store(platform))
    await expect(page.locator("#notice")).to_be_visible()
    mine = row(page, TITLE)
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".type")).to_have_text("Giấy khai sinh")
    await expect(mine.locator(".filename")).to_have_text(FILENAME)
    await expect(mine.locator(".size")).to_have_text(f"{len(PDF)} B")
    await expect(mine.locator(".version")).to_have_text("1")
    await expect(mine.locator(".badge")).to_have_count(0)
    await expect(mine.locator(".issuer")).to_have_text("UBND phường Bến Thành")
    await expect(mine.locator(".issued-on")).to_have_text("Cấp ngày 02/05/1990")

    # Downloaded under its own (Vietnamese) name, byte for byte.
    async with page.expect_download() as started:
        await mine.locator("a.download").click()
    download = await started.value
    assert download.suggested_filename == FILENAME
    assert (await download.path()).read_bytes() == PDF

    # The type filter.
    await page.locator("#filter-type").select_option("criminal_record_certificate")
    await follow(page, page.locator('#filter button[type="submit"]'))
    await expect(row(page, ISSUED_TITLE)).to_have_count(1)
    await expect(row(page, TITLE)).to_have_count(0)
    await page.locator("#filter-type").select_option("")
    await follow(page, page.locator('#filter button[type="submit"]'))

    # Deleted: gone from the list; the issued document stays.
    await follow(page, row(page, TITLE).locator("button.delete"))
    await expect(page).to_have_url(store(platform))
    await expect(row(page, TITLE)).to_have_count(0)
    await expect(row(page, ISSUED_TITLE)).to_have_count(1)

    # The home page links to the store.
    await page.goto(platform.portal)
    await follow(page, page.locator("#vault"))
    await expect(page).to_have_url(store(platform))
