"""The demo portal's "Kho dữ liệu cá nhân" pages over HTTP (httpx), against the whole stack: the portal calls
the real vault over mutual TLS with the citizen's access token. Refusals are 4xx pages, never a 500."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bench.browserless import Browser, csrf_of
from portal.app import create_app
from portal.settings import PortalSettings
from portal.vault import PAGE_SIZE
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person
from tests.portal_vault_helpers import issue, vault_session
from tests.vault_helpers import ISSUED_TITLE, PDF, Issuer, register_issuer

HEADING = "Kho dữ liệu cá nhân"
MiB = 1024 * 1024


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """One client per test: httpx keeps the cookies it receives, another test's sign-in must not leak in."""
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def agency(stack: Stack) -> Issuer:
    return register_issuer(stack, "Công an Thành phố Hà Nội")


@pytest.fixture
async def signed_in(http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen) -> tuple[Browser, str]:
    """A fresh citizen signed in on the demo portal: the browser and the CSRF token of the /vault page."""
    browser, page = await vault_session(http, info, await person(info, fresh_citizen))
    return browser, csrf_of(page)


def portal(info: StackInfo, path: str) -> str:
    return info.demo_portal.rstrip("/") + path


async def post_file(browser: Browser, info: StackInfo, csrf: str | None, name: str, content: bytes) -> httpx.Response:
    data = {"title": "Giấy tờ thử", "document_type": "other"} | ({"csrf": csrf} if csrf is not None else {})
    return await browser.request("POST", portal(info, "/vault/upload"), data=data, files={"file": (name, content)})


def document_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f-]{36})"', page.text)


async def test_signed_out_the_vault_sends_to_sign_in(http: httpx.AsyncClient, info: StackInfo) -> None:
    reply = await http.get(portal(info, "/vault"))
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login"
    home = await http.get(portal(info, "/"))
    assert 'href="/vault"' not in home.text  # the link is for signed-in citizens
    for method, path in (("POST", "/vault/upload"), ("POST", f"/vault/{'0' * 8}-0000-4000-8000-{'0' * 12}/delete")):
        refused = await http.request(method, portal(info, path), data={"csrf": "x"})
        assert refused.status_code == 401
        assert 'id="relogin"' in refused.text


async def test_upload_list_download_delete(signed_in: tuple[Browser, str], info: StackInfo) -> None:
    browser, csrf = signed_in
    home = await browser.request("GET", portal(info, "/"))
    assert 'id="vault" href="/vault"' in home.text
    name = "Giấy khai sinh (bản sao) đã chứng thực.pdf"
    uploaded = await post_file(browser, info, csrf, name, PDF)
    assert uploaded.status_code == 303
    assert uploaded.headers["location"] == "/vault?done=uploaded"
    page = await browser.request("GET", portal(info, "/vault?done=uploaded"))
    assert 'id="notice"' in page.text
    assert "Giấy tờ thử" in page.text
    assert name in page.text
    (document_id,) = document_ids(page)

    download = await browser.request("GET", portal(info, f"/vault/{document_id}"))
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-length"] == str(len(PDF))
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Giay khai sinh (ban sao) da chung thuc.pdf"; ')
    assert disposition.endswith("filename*=UTF-8''Gi%E1%BA%A5y%20khai%20sinh%20%28b%E1%BA%A3n%20sao%29%20%C4%91%C3%"
                                "A3%20ch%E1%BB%A9ng%20th%E1%BB%B1c.pdf")  # fmt: skip

    filtered = await browser.request("GET", portal(info, "/vault?type=diploma"))
    assert document_ids(filtered) == []
    assert 'id="empty"' in filtered.text

    deleted = await browser.request("POST", portal(info, f"/vault/{document_id}/delete"), data={"csrf": csrf})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/vault?done=deleted"
    assert document_ids(await browser.request("GET", portal(info, "/vault"))) == []
    gone = await browser.request("GET", portal(info, f"/vault/{document_id}"))
    assert gone.status_code == 404
    assert HEADING in gone.text


async def test_wrong_type_and_empty_files_are_400_pages(signed_in: tuple[Browser, str], info: StackInfo) -> None:
    browser, csrf = signed_in
    for name, content in (("ghi-chu.txt", b"khong phai giay to\n"), ("rong.pdf", b"")):
        reply = await post_file(browser, info, csrf, name, content)
        assert reply.status_code == 400, reply.text
        assert HEADING in reply.text
        assert "không hợp lệ" in reply.text
    no_type = await browser.request("POST", portal(info, "/vault/upload"), data={"csrf": csrf, "title": "x"},
                                    files={"file": ("a.pdf", PDF)})  # fmt: skip
    assert no_type.status_code == 400
    assert "Chọn loại giấy tờ" in no_type.text
    bad_filter = await browser.request("GET", portal(info, "/vault?type=passport"))
    assert bad_filter.status_code == 400


async def test_a_file_above_the_vaults_limit_is_a_413_page(signed_in: tuple[Browser, str], info: StackInfo) -> None:
    browser, csrf = signed_in
    reply = await post_file(browser, info, csrf, "qua-lon.pdf", PDF + b"\0" * (21 * MiB))
    assert reply.status_code == 413, reply.text[:300]
    assert "Tệp quá lớn" in reply.text


async def test_forms_without_the_csrf_token_are_refused(signed_in: tuple[Browser, str], info: StackInfo) -> None:
    browser, csrf = signed_in
    assert (await post_file(browser, info, csrf, "a.pdf", PDF)).status_code == 303
    (document_id,) = document_ids(await browser.request("GET", portal(info, "/vault")))
    for data in ({}, {"csrf": "not-the-token"}):
        delete = await browser.request("POST", portal(info, f"/vault/{document_id}/delete"), data=data)
        assert delete.status_code == 403
        assert HEADING in delete.text
        assert (await post_file(browser, info, data.get("csrf"), "b.pdf", PDF)).status_code == 403
    assert document_ids(await browser.request("GET", portal(info, "/vault"))) == [document_id]


async def test_an_issued_document_is_marked_and_cannot_be_deleted(
    signed_in: tuple[Browser, str], info: StackInfo, stack: Stack, agency: Issuer, fresh_citizen: Citizen
) -> None:
    browser, csrf = signed_in  # as fresh_citizen
    document = await issue(stack, info, agency, fresh_citizen.id_number, f"LLTP-{fresh_citizen.id_number}")
    listed = await browser.request("GET", portal(info, "/vault"))
    row = listed.text[listed.text.index(f'<tr data-id="{document.id}"') :].split("</tr>", 1)[0]
    assert ISSUED_TITLE in row
    assert "Do cơ quan cấp" in row
    assert "Công an Thành phố Hà Nội" in row  # the agency's registered name
    assert "Phiếu lý lịch tư pháp" in row
    assert "delete" not in row
    refused = await browser.request("POST", portal(info, f"/vault/{document.id}/delete"), data={"csrf": csrf})
    assert refused.status_code == 409
    assert "do cơ quan cấp" in refused.text
    assert document_ids(await browser.request("GET", portal(info, "/vault"))) == [document.id]


async def test_unknown_and_malformed_document_ids_are_404(signed_in: tuple[Browser, str], info: StackInfo) -> None:
    browser, _ = signed_in
    for document_id in ("0b9f3c0e-8d3e-4c55-9a51-3f2e0c9d1a77", "not-a-document"):
        reply = await browser.request("GET", portal(info, f"/vault/{document_id}"))
        assert reply.status_code == 404
        assert HEADING in reply.text


async def test_the_portal_refuses_bodies_above_its_upload_limit_unread(stack: Stack) -> None:
    paths = stack.ca.issue("portal")
    settings = PortalSettings(
        client_id="c", client_secret="s", base_url="http://portal.test", vault_address="127.0.0.1:9",
        tls_ca=str(paths.ca), tls_cert=str(paths.cert), tls_key=str(paths.key), upload_limit=4096,
    )  # fmt: skip
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as client:
        reply = await client.post("/vault/upload", files={"file": ("a.pdf", PDF + b"\0" * 8192)})
    assert reply.status_code == 413
    assert "Tệp quá lớn" in reply.text
    with pytest.raises(ValueError, match="TLS"):
        create_app(settings.model_copy(update={"tls_key": ""}))
    without_vault = create_app(settings.model_copy(update={"vault_address": ""}))
    assert "/vault" not in {getattr(route, "path", "") for route in without_vault.routes}


async def test_the_list_comes_in_pages(signed_in: tuple[Browser, str], info: StackInfo) -> None:
    browser, csrf = signed_in
    for number in range(PAGE_SIZE + 1):
        assert (await post_file(browser, info, csrf, f"trang-{number}.pdf", PDF)).status_code == 303
    first = await browser.request("GET", portal(info, "/vault"))
    assert len(document_ids(first)) == PAGE_SIZE
    assert 'id="first-page"' not in first.text
    link = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert link, "a link to the next page"
    second = await browser.request("GET", portal(info, html.unescape(link.group(1))))
    assert len(document_ids(second)) == 1
    assert 'id="first-page"' in second.text
    assert 'id="next-page"' not in second.text
    assert set(document_ids(second)).isdisjoint(document_ids(first))
