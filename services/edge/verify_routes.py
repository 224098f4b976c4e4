"""The public verification page at the edge: ``/verify`` (issue 11 item 2).

Anyone, without signing in, shows what a citizen presented: uploads the PDF of a criminal-record certificate
("Phiếu lý lịch tư pháp"), pastes the text of its QR (``VN1:…``) or an SD-JWT (a credential, or a presentation
with key binding: then the audience and nonce the verifier expects), or scans the QR with the camera (the
browser's ``BarcodeDetector``, Shape Detection API, where it exists: a small same-origin script,
``/verify/scan.js``, fills the paste field; nothing is loaded from elsewhere). The page answers VALID, INVALID,
REVOKED or SUSPENDED with the reason and the disclosed fields under their Vietnamese labels, exactly as
``issuance.verify.verify_presented_async`` decides (the same code as ``dinhdanh verify``).

Trust is read in-process, never fetched over HTTP from the edge itself: the issuer's public keys (JWK Set) and
the document-signing chain from ``issuance.issuer_keys`` (rows ``credential`` and ``document``; the trust roots
of PDF signatures are the chain's self-signed CA certificates) and every signed Token Status List
(draft-ietf-oauth-status-list §5) from ``issuance.status_lists``, with the edge's own database role (SELECT on
both, migration 0018). A status list that no longer verifies (expired) is not a verdict on the item: the page
says the status could not be checked.

The POST is CSRF-safe without a session: a double-submit token (a random value in a ``SameSite=Strict``,
``__Host-`` cookie and in the form, compared in constant time; OWASP CSRF Prevention Cheat Sheet, "Signed
Double-Submit Cookie" without a session to sign against) and, when the browser sends one, an ``Origin`` that
must be the edge's own. The body is limited (``MAX_UPLOAD``, 413 above it, counted while it is read, whatever
Content-Length says); a form that cannot be read is 400, never a 500.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import Message

from core import logs
from core.errors import InvalidArgument
from core.settings import Settings
from db.pool import open_pool
from issuance.qr import DOC_CRIMINAL_RECORD_1, DOC_CRIMINAL_RECORD_2, DOC_HEALTH_BOOK_EXTRACT
from issuance.verify import LABELS, Outcome, Verdict, verify_presented_async

log = logs.get("edge")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
SCRIPT = Path(__file__).parent / "templates" / "verify_scan.js"
CSRF_COOKIE = "__Host-dd-verify"
MAX_UPLOAD = 2 * 1024 * 1024  # an issued certificate's PDF is some 100 KB
VIETNAM = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh, no daylight saving time
MAX_TEXT = 64 * 1024  # a QR text is some 400 characters, an SD-JWT a few KB
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the form's POST (Fetch
    # §3.2.5 "serializing a request origin"), and the Origin check below needs the real one; nothing leaks elsewhere
    "Referrer-Policy": "same-origin",
    # the one script is this origin's; the camera's frames never leave the page
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; "
    "media-src 'self' blob: mediastream:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Permissions-Policy": "camera=(self)",
}
OUTCOMES: dict[Outcome, tuple[str, str]] = {
    Outcome.VALID: ("HỢP LỆ", "VALID"),
    Outcome.INVALID: ("KHÔNG HỢP LỆ", "INVALID"),
    Outcome.REVOKED: ("ĐÃ BỊ THU HỒI", "REVOKED"),
    Outcome.SUSPENDED: ("ĐANG BỊ TẠM ĐÌNH CHỈ", "SUSPENDED"),
}
KINDS = {
    "qr": "Mã QR (QR text)",
    "sd-jwt-vc": "SD-JWT VC (credential)",
    "sd-jwt-presentation": "Trình bày SD-JWT có ràng buộc khóa (presentation with key binding)",
    "pdf": "Tệp PDF có chữ ký số (signed PDF)",
}
BAD_FORM = "Biểu mẫu không hợp lệ hoặc đã hết hạn; vui lòng tải lại trang. (The form is invalid or expired; reload.)"
TOO_LARGE = f"Tệp quá lớn (tối đa {MAX_UPLOAD // (1024 * 1024)} MiB). (The file is too large.)"
NOTHING = "Hãy tải lên tệp PDF, dán nội dung mã QR hoặc SD-JWT, hoặc quét mã QR. (Give a PDF, a QR text or an SD-JWT.)"
UNUSABLE = "Không đọc được nội dung cần xác minh (the item cannot be verified)"
NO_TRUST = (
    "Chưa có khóa công khai của cơ quan cấp để xác minh; vui lòng thử lại sau. "
    "(The issuer's keys are not published yet; please try again later.)"
)
UNAVAILABLE = "Hệ thống tạm thời không xác minh được; vui lòng thử lại sau. (Verification is unavailable; retry later.)"


@dataclass(frozen=True, slots=True)
class Trust:
    """What the edge verifies against: the issuer's JWK Set, the PDF trust roots, the signed status lists."""

    jwks: dict[str, Any]
    roots: tuple[x509.Certificate, ...]
    status_lists: tuple[str, ...]


class TrustSource(Protocol):
    async def trust(self) -> Trust: ...


def _roots(chains: list[str]) -> tuple[x509.Certificate, ...]:
    """The self-signed (CA) certificates of the document chains: the roots a PDF signer must chain to."""
    roots: dict[bytes, x509.Certificate] = {}
    for pem in chains:
        try:
            certificates = x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []
        except ValueError:
            log.warning("verify: unreadable document chain in issuance.issuer_keys")
            continue
        for certificate in certificates:
            if certificate.subject == certificate.issuer:
                roots[certificate.fingerprint(hashes.SHA256())] = certificate
    return tuple(roots.values())


def _jwk(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


class PostgresTrust:
    """``issuance.issuer_keys`` and ``issuance.status_lists``, read with the edge's role on every verification
    (two small SELECTs: a revocation shows at once). The pool is the edge's own, or opened on first use from the
    process's settings (``DINHDANH_POSTGRES_DSN``)."""

    def __init__(self, pool: asyncpg.Pool | None = None) -> None:
        self._pool = pool

    async def _opened(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await open_pool(Settings().postgres_dsn, 2)
        return self._pool

    async def trust(self) -> Trust:
        pool = await self._opened()
        async with pool.acquire() as connection:
            keys = await connection.fetch("SELECT use, public_jwk, chain_pem FROM issuance.issuer_keys ORDER BY kid")
            lists = await connection.fetch("SELECT token FROM issuance.status_lists ORDER BY list_id")
        jwks = [jwk for row in keys if row["use"] == "credential" and (jwk := _jwk(row["public_jwk"])) is not None]
        chains = [row["chain_pem"] for row in keys if row["use"] == "document"]
        return Trust({"keys": jwks}, _roots(chains), tuple(row["token"] for row in lists))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@dataclass(frozen=True, slots=True)
class Shown:
    """A verdict as the page shows it."""

    outcome: str  # valid, invalid, revoked, suspended
    label_vi: str
    label_en: str
    kind: str
    reason: str
    fields: tuple[tuple[str, str, str], ...]  # (name, Vietnamese label, value as text)
    issuer: str
    issued_at: str
    status_checked: bool
    note: str


DOCUMENT_TYPES = {
    DOC_CRIMINAL_RECORD_1: "Phiếu lý lịch tư pháp số 1",
    DOC_CRIMINAL_RECORD_2: "Phiếu lý lịch tư pháp số 2",
    DOC_HEALTH_BOOK_EXTRACT: "Trích lục Sổ sức khỏe điện tử",
}
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def _field_text(name: str, value: Any) -> str:
    """A disclosed field as the page shows it: document codes in words, dates as dd/mm/yyyy, instants in
    Vietnam time; anything else as :func:`_text`."""
    if name == "document_type" and isinstance(value, str) and value in DOCUMENT_TYPES:
        return f"{DOCUMENT_TYPES[value]} ({value})"
    if isinstance(value, str) and ISO_DAY.fullmatch(value):
        try:
            return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    if isinstance(value, str) and ISO_INSTANT.fullmatch(value):
        try:
            instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return f"{instant.astimezone(VIETNAM).strftime('%d/%m/%Y %H:%M:%S')} (giờ Việt Nam)"
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "có (yes)" if value else "không (no)"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and not value:
        return "không có (none)"
    return json.dumps(value, ensure_ascii=False)


def shown(verdict: Verdict, note: str = "") -> Shown:
    vi, en = OUTCOMES[verdict.outcome]
    fields = tuple((name, LABELS.get(name, name), _field_text(name, value)) for name, value in verdict.fields.items())
    issued = verdict.issued_at.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M") if verdict.issued_at else ""
    return Shown(str(verdict.outcome), vi, en, KINDS.get(verdict.kind, verdict.kind), verdict.reason, fields,
                 verdict.issuer or "", issued, verdict.status_checked, note)  # fmt: skip


class VerifyPages:
    """``GET /verify`` (the form), ``POST /verify`` (the verdict), ``GET /verify/scan.js``."""

    def __init__(self, trust: TrustSource | None = None, issuer: str | None = None) -> None:
        self.source: TrustSource = trust or PostgresTrust()
        self._issuer = issuer

    @property
    def origin(self) -> str:
        issuer = self._issuer if self._issuer is not None else Settings().issuer
        parts = urlsplit(issuer)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""

    def page(self, request: Request, status: int = 200, **values: Any) -> Response:
        token = request.cookies.get(CSRF_COOKIE, "")
        fresh = not (token.isascii() and 32 <= len(token) <= 64)
        if fresh:
            token = secrets.token_urlsafe(32)
        context = {"csrf": token, "max_mib": MAX_UPLOAD // (1024 * 1024), **values}
        response = TEMPLATES.TemplateResponse(request, "verify.html", context, status_code=status)
        response.headers.update(PAGE_HEADERS)
        if fresh:
            # a __Host- cookie must be Secure, host-only and Path=/ (RFC 6265bis §4.1.3.2), or browsers drop it
            response.set_cookie(CSRF_COOKIE, token, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def form(self, request: Request) -> Response:
        return self.page(request)

    async def script(self, request: Request) -> Response:
        headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
        return Response(SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8", headers=headers)

    def error(self, request: Request, status: int, message: str, **values: Any) -> Response:
        return self.page(request, status, error=message, **values)

    async def submit(self, request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD + MAX_TEXT:
            return self.error(request, 413, TOO_LARGE)
        origin = request.headers.get("origin")
        if origin is not None and origin != self.origin:  # a cross-site form post
            log.warning("verify: refused", reason="the Origin is not the edge's")
            return self.error(request, 403, BAD_FORM)
        try:
            form = await self._form(request)
        except _TooLarge:
            return self.error(request, 413, TOO_LARGE)
        except (HTTPException, MultiPartException, ValueError, KeyError):
            return self.error(request, 400, BAD_FORM)
        try:
            return await self._verify(request, form)
        finally:
            await form.close()

    async def _verify(self, request: Request, form: FormData) -> Response:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(_field(form, "csrf").encode(), cookie.encode()):
            log.warning("verify: refused", reason="the form token is missing or not the cookie's")
            return self.error(request, 403, BAD_FORM)
        text = _field(form, "text").strip()
        audience, nonce = _field(form, "aud").strip() or None, _field(form, "nonce").strip() or None
        kept = {"text": text, "aud": audience or "", "nonce": nonce or ""}
        upload = form.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) and upload.filename else b""
        if len(data) > MAX_UPLOAD:
            return self.error(request, 413, TOO_LARGE, **kept)
        if not data and not text:
            return self.error(request, 400, NOTHING, **kept)
        # A PDF with a QR text beside it: the QR is checked too (issuance.verify: "alongside").
        item: bytes | str = data or text
        qr = text if data and text else None
        try:
            trust = await self.source.trust()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning("verify: trust unavailable", error=type(error).__name__)
            return self.error(request, 503, UNAVAILABLE, **kept)
        if not trust.jwks["keys"]:
            return self.error(request, 503, NO_TRUST, **kept)
        verdict, note = await self._decide(item, trust, audience, nonce, qr)
        if isinstance(verdict, str):
            return self.error(request, 400, f"{UNUSABLE}: {verdict}", **kept)
        log.info("verify", kind=verdict.kind, outcome=str(verdict.outcome), status_checked=verdict.status_checked)
        return self.page(request, result=shown(verdict, note), **kept)

    async def _decide(
        self, item: bytes | str, trust: Trust, audience: str | None, nonce: str | None, qr: str | None
    ) -> tuple[Verdict | str, str]:
        """The verdict (or the reason the item is unusable) and a note for the page."""

        def run(lists: tuple[str, ...]) -> Awaitable[Verdict]:
            now = dt.datetime.now(dt.UTC)
            return verify_presented_async(
                item, issuer_jwks=trust.jwks, trust_roots=trust.roots, status_lists=lists, at=now,
                audience=audience, nonce=nonce, qr=qr,
            )  # fmt: skip

        try:
            return await run(trust.status_lists), ""
        except InvalidArgument as error:
            if not error.message.startswith("the status list for "):
                return error.message, ""
            log.warning("verify: a published status list does not verify", reason=error.message)
        try:  # the edge's own list is stale: say the status was not checked rather than refuse the item
            note = "Không kiểm tra được danh sách trạng thái (the status list could not be checked)."
            return await run(()), note
        except InvalidArgument as error:
            return error.message, ""

    async def _form(self, request: Request) -> FormData:
        """The posted form, its body counted while read (``_TooLarge`` above the limit)."""
        received, limit = 0, MAX_UPLOAD + MAX_TEXT

        async def receive() -> Message:
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge
            return message

        return await Request(request.scope, receive).form(max_files=1, max_fields=8, max_part_size=MAX_TEXT)


class _TooLarge(Exception):
    pass


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def routes(pages: VerifyPages | None = None) -> list[Route]:
    """``/verify`` (GET the form, POST a verification) and ``/verify/scan.js``."""
    pages = pages or VerifyPages()
    return [
        Route("/verify", pages.form, methods=["GET"]),
        Route("/verify", pages.submit, methods=["POST"]),
        Route("/verify/scan.js", pages.script, methods=["GET"]),
    ]
