"""The edge's public verification page ``/verify`` (services/edge/verify_routes.py), against the whole stack.

The issuer's keys, document chain and status lists come from ``issuance.issuer_keys`` and
``issuance.status_lists`` as the edge reads them with its own role: the tests add a test issuer there (rows with
their own key ids and a list id far from the service's list 0) as the database owner, then show the page a QR
text, a credential, a presentation and a signed PDF — valid, revoked, suspended, tampered — and check the
verdict and the fields under their Vietnamese labels. The form itself: a CSRF token in a cookie and the form,
a cross-site Origin refused, the body's size limited, nothing given a clear 400.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from bench.browserless import Browser, csrf_of
from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential
from issuance.issuer_keys import SigningKey
from issuance.pades import sign_async
from issuance.pdf import render_certificate
from issuance.presentations import present
from issuance.qr import DOC_CRIMINAL_RECORD_1, QrFields, encode_qr, render_qr
from issuance.status_list import Status, StatusList, StatusReference, sign_status_list
from services.edge import verify_routes
from stack.info import StackInfo
from tests.issuance.forgery import FORGED_NAME, forged_credential, forged_qr
from tests.issuance.sd_jwt_helpers import CLAIMS
from tests.issuance.test_pades import make_ca, make_signer
from tests.issuance.test_pdf import view

LIST_ID = 977  # far from the issuance service's own list 0
VALID_INDEX, REVOKED_INDEX, SUSPENDED_INDEX = 5, 6, 7
AUDIENCE = "https://ngan-hang.example/tuyen-dung"
NONCE = "n-edge-verify-0001"


@dataclass(frozen=True)
class Publisher:
    key: SigningKey
    holder: SigningKey
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
    status_uri: str
    issuer: str

    def qr(self, index: int = VALID_INDEX, key: SigningKey | None = None) -> str:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        fields = QrFields(
            document_type=DOC_CRIMINAL_RECORD_1,
            holder_name="Nguyễn Thị Minh Khai",
            id_last_digits="2345",
            convictions=0,
            issued_on=now.date(),
            certificate_id=f"LLTP-EDGE-{index:06d}",
            status_index=index,
            status_uri=self.status_uri,
        )
        return encode_qr(key or self.key, fields, issuer=self.issuer, issued_at=now,
                         expires_at=now + dt.timedelta(days=180))  # fmt: skip

    def credential(self, index: int = VALID_INDEX) -> str:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return issue_credential(
            self.key, issuer=self.issuer, vct=VCT_CRIMINAL_RECORD, claims=CLAIMS, holder_jwk=self.holder.public_jwk,
            status=StatusReference(idx=index, uri=self.status_uri), issued_at=now,
            expires_at=now + dt.timedelta(days=365),
        )  # fmt: skip

    async def pdf(self, index: int = VALID_INDEX) -> bytes:
        text = self.qr(index)
        writer = IncrementalPdfFileWriter(io.BytesIO(render_certificate(view(), render_qr(text))))
        writer.document_meta.subject = text
        out = io.BytesIO()
        writer.write(out)
        return await sign_async(out.getvalue(), make_signer(self.ca))


@pytest.fixture(scope="module")
async def test_issuer(info: StackInfo) -> AsyncIterator[Publisher]:
    """A test issuer published where the edge looks: its key, its CA's chain, its signed status list."""
    issuer = info.oidc_issuer.rstrip("/")
    found = Publisher(SigningKey.generate(), SigningKey.generate(), make_ca("Test Document CA"),
                       f"{issuer}/statuslists/{LIST_ID}", f"{issuer}/issuance/test")  # fmt: skip
    statuses = StatusList.new(1024, 2)
    statuses.set(REVOKED_INDEX, Status.INVALID)
    statuses.set(SUSPENDED_INDEX, Status.SUSPENDED)
    token = sign_status_list(found.key, statuses, uri=found.status_uri, at=dt.datetime.now(dt.UTC),
                             lifetime=dt.timedelta(days=1), issuer=found.issuer)  # fmt: skip
    chain = found.ca[0].public_bytes(serialization.Encoding.PEM).decode()
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        await connection.execute(
            "INSERT INTO issuance.issuer_keys (kid, use, public_jwk) VALUES ($1, 'credential', $2::jsonb)",
            found.key.kid, json.dumps(found.key.public_jwk),
        )  # fmt: skip
        await connection.execute(
            "INSERT INTO issuance.issuer_keys (kid, use, public_jwk, chain_pem) VALUES ($1, 'document', '{}', $2)",
            f"test-document-{found.key.kid[:12]}", chain,
        )  # fmt: skip
        await connection.execute(
            "INSERT INTO issuance.status_lists (list_id, token, size, version, built_at)"
            " VALUES ($1, $2, 1024, 1, now())",
            LIST_ID, token,
        )  # fmt: skip
        yield found
    finally:
        await connection.execute("DELETE FROM issuance.issuer_keys WHERE kid IN ($1, $2)", found.key.kid,
                                 f"test-document-{found.key.kid[:12]}")  # fmt: skip
        await connection.execute("DELETE FROM issuance.status_lists WHERE list_id = $1", LIST_ID)
        await connection.close()


async def form_page(http: httpx.AsyncClient, info: StackInfo) -> tuple[Browser, str]:
    browser = Browser(http)
    page = await browser.request("GET", f"{info.oidc_issuer.rstrip('/')}/verify")
    assert page.status_code == 200, page.text[:300]
    cookie = page.headers.get("set-cookie", "")
    assert cookie.startswith(f"{verify_routes.CSRF_COOKIE}="), cookie  # what a browser keeps of a __Host- cookie:
    assert "Path=/;" in cookie  # Secure, no Domain, Path=/
    assert "Domain" not in cookie
    assert "Secure" in cookie
    return browser, csrf_of(page)


async def post(
    http: httpx.AsyncClient, info: StackInfo, *, text: str = "", pdf: bytes | None = None, **fields: str
) -> httpx.Response:
    browser, csrf = await form_page(http, info)
    files = {"file": ("phieu.pdf", pdf, "application/pdf")} if pdf is not None else None
    data = {"csrf": csrf, "text": text, **fields}
    return await browser.request("POST", f"{info.oidc_issuer.rstrip('/')}/verify", data=data, files=files)


def outcome(page: httpx.Response) -> str:
    found = re.search(r'data-outcome="([a-z]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def fields(page: httpx.Response) -> dict[str, tuple[str, str]]:
    """name → (Vietnamese label, value) of the disclosed fields shown."""
    rows = re.findall(r'<tr data-field="([^"]+)"><th scope="row">([^<]*)</th><td>([^<]*)</td></tr>', page.text)
    return {name: (html.unescape(label), html.unescape(value)) for name, label, value in rows}


# -- pure ---------------------------------------------------------------------------------------------------


def test_the_trust_roots_are_the_self_signed_certificates_of_the_document_chains() -> None:
    root, key = make_ca("Root")
    leaf = make_signer((root, key)).certificate
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root)).decode()
    assert verify_routes._roots([pem, pem, "", "not a pem"]) == (root,)


def test_fields_read_as_a_vietnamese_reader_expects() -> None:
    assert verify_routes._field_text("issued_on", "2026-12-01") == "01/12/2026"
    assert verify_routes._field_text("signed_at", "2026-12-01T14:49:24+00:00") == "01/12/2026 21:49:24 (giờ Việt Nam)"
    assert verify_routes._field_text("document_type", "LLTP1") == "Phiếu lý lịch tư pháp số 1 (LLTP1)"
    assert verify_routes._field_text("convictions", []) == "không có (none)"
    assert verify_routes._field_text("ban", False) == "không (no)"
    assert verify_routes._field_text("x", "2026-13-45") == "2026-13-45"


# -- the form ---------------------------------------------------------------------------------------------


async def test_the_page_is_public_and_its_post_needs_the_form_token(http: httpx.AsyncClient, info: StackInfo) -> None:
    browser, csrf = await form_page(http, info)
    page = await browser.request("GET", f"{info.oidc_issuer.rstrip('/')}/verify")
    assert "BarcodeDetector" not in page.text  # the scanner is the same-origin script, not inline
    assert 'src="/verify/scan.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = await http.get(f"{info.oidc_issuer.rstrip('/')}/verify/scan.js")
    assert script.status_code == 200
    assert "BarcodeDetector" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    url = f"{info.oidc_issuer.rstrip('/')}/verify"
    no_token = await browser.request("POST", url, data={"text": "VN1:ABC"})
    assert no_token.status_code == 403
    no_cookie = await http.post(url, data={"csrf": csrf, "text": "VN1:ABC"})
    assert no_cookie.status_code == 403
    cross_site = await browser.request("POST", url, data={"csrf": csrf, "text": "VN1:ABC"},
                                       headers={"origin": "https://evil.example"})  # fmt: skip
    assert cross_site.status_code == 403
    nothing = await browser.request("POST", url, data={"csrf": csrf})
    assert nothing.status_code == 400
    assert 'id="error"' in nothing.text


async def test_a_body_over_the_limit_is_refused(http: httpx.AsyncClient, info: StackInfo) -> None:
    big = b"%PDF-1.7\n" + b"0" * (verify_routes.MAX_UPLOAD + verify_routes.MAX_TEXT)
    page = await post(http, info, pdf=big)
    assert page.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
        for _ in range(40):
            yield b"0" * 65536

    browser, _ = await form_page(http, info)
    streamed = await browser.request("POST", f"{info.oidc_issuer.rstrip('/')}/verify", content=chunks(),
                                     headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert streamed.status_code == 413


# -- verdicts -----------------------------------------------------------------------------------------------


async def test_a_qr_text_valid_revoked_suspended_tampered(
    http: httpx.AsyncClient, info: StackInfo, test_issuer: Publisher
) -> None:
    junk = await post(http, info, text="hello")
    assert junk.status_code == 400
    assert "cannot be verified" in junk.text
    valid = await post(http, info, text=test_issuer.qr(VALID_INDEX))
    assert valid.status_code == 200
    assert outcome(valid) == "valid"
    assert "HỢP LỆ" in valid.text
    assert "status-not-checked" not in valid.text
    shown = fields(valid)
    assert shown["holder_name"] == ("Họ và tên", "Nguyễn Thị Minh Khai")
    assert shown["convictions"] == ("Tình trạng án tích", "Không có án tích")
    assert shown["id_last_digits"][1] == "2345"
    assert outcome(await post(http, info, text=test_issuer.qr(REVOKED_INDEX))) == "revoked"
    assert outcome(await post(http, info, text=test_issuer.qr(SUSPENDED_INDEX))) == "suspended"
    text = test_issuer.qr(VALID_INDEX)
    tampered = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]
    bad = await post(http, info, text=tampered)
    assert bad.status_code == 200
    assert outcome(bad) == "invalid"
    assert fields(bad) == {}
    other_key = await post(http, info, text=test_issuer.qr(VALID_INDEX, key=SigningKey.generate()))
    assert outcome(other_key) == "invalid"
    # a changed name, or a revoked QR pointed at a valid entry, re-encoded (valid Base45, zlib, COSE_Sign1):
    # only the signature can refuse these (the flipped character above is refused earlier, by zlib)
    for forged in (forged_qr(text), forged_qr(test_issuer.qr(REVOKED_INDEX), {7: VALID_INDEX})):
        page = await post(http, info, text=forged)
        assert page.status_code == 200
        assert outcome(page) == "invalid"
        assert "signature does not verify" in html.unescape(page.text)
        assert fields(page) == {}
        assert FORGED_NAME not in html.unescape(page.text)


async def test_a_credential_and_a_presentation(
    http: httpx.AsyncClient, info: StackInfo, test_issuer: Publisher
) -> None:
    credential = test_issuer.credential()
    page = await post(http, info, text=credential)
    assert outcome(page) == "valid"
    assert fields(page)["criminal_record"] == ("Tình trạng án tích", "Không có án tích")
    assert outcome(await post(http, info, text=test_issuer.credential(REVOKED_INDEX))) == "revoked"
    # a claim re-encoded under the old signature (valid base64url JSON, every Disclosure referenced): a changed
    # name, or a revoked credential pointed at a valid status entry — only the issuer signature refuses them
    repointed = {"status_list": {"idx": VALID_INDEX, "uri": test_issuer.status_uri}}
    for forged in (forged_credential(credential), forged_credential(test_issuer.credential(REVOKED_INDEX),
                                                                     status=repointed)):  # fmt: skip
        page = await post(http, info, text=forged)
        assert page.status_code == 200
        assert outcome(page) == "invalid"
        assert "issuer signature does not verify" in html.unescape(page.text)
        assert fields(page) == {}
        assert FORGED_NAME not in html.unescape(page.text)
    now = dt.datetime.now(dt.UTC)
    shown = present(credential, test_issuer.holder, disclose=["full_name", "criminal_record"], audience=AUDIENCE,
                    nonce=NONCE, at=now)  # fmt: skip
    without = await post(http, info, text=shown)
    assert without.status_code == 400
    assert "audience and nonce" in without.text
    presented = await post(http, info, text=shown, aud=AUDIENCE, nonce=NONCE)
    assert outcome(presented) == "valid"
    disclosed = fields(presented)
    assert disclosed["full_name"] == ("Họ và tên", "Nguyễn Thị Minh Khai")
    assert "place_of_birth" not in disclosed
    assert "father_name" not in disclosed
    assert outcome(await post(http, info, text=shown, aud=AUDIENCE, nonce="another")) == "invalid"


async def test_a_signed_pdf_valid_revoked_and_tampered(
    http: httpx.AsyncClient, info: StackInfo, test_issuer: Publisher
) -> None:
    pdf = await test_issuer.pdf(VALID_INDEX)
    page = await post(http, info, pdf=pdf)
    assert page.status_code == 200
    assert outcome(page) == "valid"
    shown = fields(page)
    assert shown["holder_name"][1] == "Nguyễn Thị Minh Khai"
    assert shown["signer"][0] == "Người ký (chứng thư số)"
    assert outcome(await post(http, info, pdf=await test_issuer.pdf(REVOKED_INDEX))) == "revoked"
    tampered = bytearray(pdf)
    tampered[pdf.index(b"stream", pdf.index(b"/FlateDecode")) + 20] ^= 0x01
    altered = await post(http, info, pdf=bytes(tampered))
    assert outcome(altered) == "invalid"
    assert "altered" in altered.text
    untrusted = Publisher(test_issuer.key, test_issuer.holder, make_ca("Elsewhere"), test_issuer.status_uri,
                           test_issuer.issuer)  # fmt: skip
    assert outcome(await post(http, info, pdf=await untrusted.pdf(VALID_INDEX))) == "invalid"
