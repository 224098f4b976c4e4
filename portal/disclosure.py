"""Selective sharing of an issued certificate ("Chia sẻ chọn lọc"): only the claims the citizen chooses, to one
agency, through a consent.

The citizen's SD-JWT VC (``Certificates.GetMyCredential``: the holder's copy the issuance service keeps) holds
every claim as a Disclosure (RFC 9901 §4.2); the portal keeps only the chosen ones and signs a Key Binding JWT
with the holder key it holds for the citizen (``portal.holder``; the credential's ``cnf.jwk``, RFC 7800), so the
agency receives the issuer-signed JWT (digests only) and the chosen Disclosures — what was not chosen (the place of
birth, the parents' names …) appears nowhere in what it gets (``issuance.presentations.present``).

The presentation is stored in the citizen's vault as a document of its own (``application/dc+sd-jwt``,
``vault.content_types``) and the agency is granted a consent on that document only (``Consent.GrantConsent``):
the agency fetches it with its certificate-bound consent token (``vault.DownloadShared``) — never the PDF or any
other paper — and the citizen pauses or revokes it on the consent pages like any other.

The KB-JWT binds the presentation to that very consent (RFC 9901 §4.3: ``aud`` the verifier, ``nonce`` its
challenge): ``aud`` is the agency's client id and ``nonce`` the **consent id**, which the agency knows (it fetches
under it) and the platform signed (the consent artefact), so a presentation copied from one consent or agency to
another does not verify there. The consent names the document, which must exist first; the vault keeps versions
(``UploadMetadata.replaces_document_id``, and a fetch serves the latest), so:

1. upload a placeholder (a small JSON object saying the presentation is being prepared, no personal data);
2. grant the consent on that document: its id is now known;
3. upload the presentation, ``nonce`` = the consent id, as the document's next version.

Between 2 and 3 the agency could fetch only the placeholder, which holds nothing and verifies as nothing. If a
step fails, what was made is undone (the consent revoked, the document deleted) before the error is shown. The
agency verifies with ``dinhdanh verify FILE --audience <its client id> --nonce <the consent id>``; the KB-JWT is
as old as the sharing, so the verifier's ``--max-age`` is the consent's validity (``issuance.verify``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import logs
from core.errors import InvalidArgument
from core.keys.provider import KeyUnavailable
from issuance.credentials import VCT_CRIMINAL_RECORD, VCT_HEALTH_BOOK_EXTRACT
from issuance.issuer_keys import SigningKey, b64url, b64url_decode
from issuance.presentations import present
from issuance.verify import LABELS
from portal import holder
from portal.consent import GRANT_LIMITS, STATUS_LABELS, when
from portal.errors import PageError
from portal.vault import BAD_FORM, SIGN_IN_AGAIN, _check_csrf, _csrf, _expired
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cpb_grpc
from protos.issuance.v1 import issuance_pb2 as ipb
from protos.issuance.v1 import issuance_pb2_grpc as ipb_grpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vpb_grpc
from services.tls import secure_channel

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.consent import ConsentPages
    from portal.vault import VaultPages

log = logs.get("portal")

RESOURCE = "urn:dinhdanh:service:issuance"  # RFC 8707: the issuance service as the access token's audience
SCOPES = "issuance.apply"  # the citizen's Certificates calls (GetMyCredential among them)
HEADING = "Chia sẻ chọn lọc phiếu (share chosen fields of a certificate)"
PLACEHOLDER_KIND = "dinhdanh-presentation-pending"
MAX_CLAIMS = 100
DOCUMENT_TYPES: Mapping[str, int] = {
    VCT_CRIMINAL_RECORD: vpb.DOCUMENT_TYPE_CRIMINAL_RECORD_CERTIFICATE,
    VCT_HEALTH_BOOK_EXTRACT: vpb.DOCUMENT_TYPE_HEALTH_BOOK,
}
TITLES: Mapping[str, str] = {VCT_CRIMINAL_RECORD: "Phiếu lý lịch tư pháp", VCT_HEALTH_BOOK_EXTRACT: "Sổ sức khỏe"}
NOT_FOUND = "Không tìm thấy phiếu đã cấp này. (No such issued certificate.)"
NOT_SHAREABLE = "Phiếu này đã bị thu hồi hoặc tạm đình chỉ nên không thể chia sẻ. (It is revoked or suspended.)"
NO_HOLDER_KEY = "Cổng chưa được cấu hình khoá của người giữ phiếu. (This portal holds no holder keys.)"
NOT_BOUND = (
    "Phiếu này không gắn với khoá mà cổng giữ cho bạn, nên cổng không thể chia sẻ thay bạn. "
    "(The certificate is bound to another holder key than the one this portal holds for you.)"
)
LEVEL_2 = (
    "Cần tài khoản định danh mức 2: cán bộ công an xác minh tài khoản của bạn trực tiếp (mang theo thẻ căn cước "
    "gắn chip). (Level 2 is needed: an officer verifies your account in person.)"
)
BAD_SERVICE = "Dịch vụ trả lời không hợp lệ, vui lòng thử lại sau. (The service failed; please try again later.)"
STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "Yêu cầu không hợp lệ. (Invalid request.)"),
    grpc.StatusCode.NOT_FOUND: (404, NOT_FOUND),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "Phiếu chưa được cấp. (The certificate is not issued yet.)"),
    grpc.StatusCode.UNAUTHENTICATED: (401, SIGN_IN_AGAIN),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Bạn không có quyền thực hiện thao tác này. (Not allowed.)"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "Quá nhiều yêu cầu, vui lòng thử lại sau. (Too many requests.)"),
    grpc.StatusCode.UNAVAILABLE: (503, "Dịch vụ tạm thời không truy cập được. (The service is unavailable.)"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "Dịch vụ không trả lời kịp. (The service timed out.)"),
    grpc.StatusCode.UNIMPLEMENTED: (503, "Dịch vụ chưa sẵn sàng. (The service is not available yet.)"),
}


# -- the credential's claims -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A selectively disclosable claim as the citizen chooses it: its name, Vietnamese label and value."""

    name: str
    label: str
    value: str


def shown(value: Any) -> str:
    """A claim's value in words: text as it is, a list of convictions one per line, "—" for nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if not value:
            return "—"
        return "\n".join(
            "; ".join(f"{v}" for v in item.values()) if isinstance(item, dict) else str(item) for item in value
        )
    return json.dumps(value, ensure_ascii=False)


def disclosures(sd_jwt: str) -> list[tuple[str, Any]]:
    """(name, value) of each top-level claim Disclosure of ``sd_jwt`` (issued form or presentation), in order:
    those whose digest the issuer-signed payload's ``_sd`` holds (RFC 9901 §4.2.1, §7.1 step 3)."""
    if not isinstance(sd_jwt, str) or "~" not in sd_jwt:
        raise InvalidArgument("not an SD-JWT (<JWT>~<Disclosure>~…)")
    parts = sd_jwt.split("~")
    jwt, rest = parts[0], parts[1:-1]
    try:
        payload = json.loads(b64url_decode(jwt.split(".")[1]))
    except (IndexError, InvalidArgument, ValueError, UnicodeDecodeError):
        raise InvalidArgument("the SD-JWT's payload is not base64url JSON") from None
    digests = (
        set(payload.get("_sd", [])) if isinstance(payload, dict) and isinstance(payload.get("_sd"), list) else set()
    )
    found: list[tuple[str, Any]] = []
    for disclosure in rest:
        try:
            decoded = json.loads(b64url_decode(disclosure))
        except (InvalidArgument, ValueError, UnicodeDecodeError):
            raise InvalidArgument("a Disclosure is not base64url JSON") from None
        digest = b64url(hashlib.sha256(disclosure.encode("ascii")).digest())
        if isinstance(decoded, list) and len(decoded) == 3 and isinstance(decoded[1], str) and digest in digests:
            found.append((decoded[1], decoded[2]))
    return found


def claims_of(sd_jwt: str) -> list[Claim]:
    """The claims of ``sd_jwt`` the citizen may choose from (or that a presentation reveals), labelled."""
    return [Claim(name, LABELS.get(name, name), shown(value)) for name, value in disclosures(sd_jwt)]


# -- sharing: placeholder, consent, presentation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShareTerms:
    """What the citizen chose on the form: which claims, to whom, why and for how long."""

    claims: tuple[str, ...]
    client_id: str
    purpose: str
    days: int
    max_fetches: int
    per_day: int
    data_life_days: int


@dataclass(frozen=True, slots=True)
class Shared:
    """One selective sharing: the vault document holding the presentation and the consent it is bound to."""

    document_id: str
    consent_id: str
    client_id: str
    claims: tuple[str, ...]
    presentation: str


def placeholder() -> bytes:
    """The first version of the sharing's document: no personal data, only what it is waiting for."""
    note = {
        "type": PLACEHOLDER_KIND,
        "note": "Bản trình bày đang được chuẩn bị (the presentation is being bound to its consent).",
    }
    return json.dumps(note, ensure_ascii=False).encode("utf-8")


def consent_terms(terms: ShareTerms, document_id: str, now: dt.datetime) -> cpb.ConsentTerms:
    expiry = Timestamp()
    expiry.FromDatetime(now + dt.timedelta(days=terms.days))
    return cpb.ConsentTerms(
        purpose=terms.purpose,
        document_ids=[document_id],
        expiry=expiry,
        data_life_seconds=terms.data_life_days * 86400,
        max_fetches=terms.max_fetches,
        frequency=cpb.Frequency(count=terms.per_day, unit=cpb.FREQUENCY_UNIT_DAY),
    )


async def _chunks(meta: vpb.UploadMetadata, content: bytes) -> AsyncIterator[vpb.UploadRequest]:
    yield vpb.UploadRequest(metadata=meta)
    for start in range(0, len(content), 1024 * 1024):
        yield vpb.UploadRequest(chunk=content[start : start + 1024 * 1024])
    yield vpb.UploadRequest(end=vpb.UploadEnd(size_bytes=len(content), sha256=hashlib.sha256(content).digest()))


async def share(
    vault: vpb_grpc.VaultStub,
    consents: cpb_grpc.ConsentStub,
    call: Mapping[str, Any],
    *,
    credential: str,
    vct: str,
    holder_key: SigningKey,
    terms: ShareTerms,
    now: dt.datetime,
    label: str = "",
) -> Shared:
    """Share ``terms.claims`` of ``credential`` with the agency ``terms.client_id`` (see the module docstring);
    ``call`` is the keyword arguments of every RPC (the citizen's token as metadata, the timeout). The claims are
    checked against the credential and the holder key against its ``cnf`` before anything is stored
    (``InvalidArgument``); a refused RPC is raised as it came, after undoing what was made."""
    if not terms.claims:
        raise InvalidArgument("choose at least one field to share")
    # A presentation made now, for a throw-away nonce: every refusal of the claims or the key happens first.
    present(credential, holder_key, disclose=terms.claims, audience=terms.client_id, nonce="check", at=now)
    kind = DOCUMENT_TYPES.get(vct, vpb.DOCUMENT_TYPE_OTHER)
    title = f"Chia sẻ chọn lọc: {label or TITLES.get(vct, 'giấy tờ')} cho {terms.client_id}"[:200]
    first = vpb.UploadMetadata(document_type=kind, title=title, filename="chia-se-chon-loc.json")
    document = await vault.Upload(_chunks(first, placeholder()), **call)
    consent_id = ""
    try:
        record = await consents.GrantConsent(
            cpb.GrantConsentRequest(client_id=terms.client_id, terms=consent_terms(terms, document.id, now)), **call
        )
        consent_id = record.id
        presentation = present(
            credential, holder_key, disclose=terms.claims, audience=terms.client_id, nonce=consent_id, at=now
        )
        filename = f"chia-se-chon-loc-{consent_id[:8]}.sd-jwt"
        final = vpb.UploadMetadata(document_type=kind, title=title, filename=filename, replaces_document_id=document.id)
        await vault.Upload(_chunks(final, presentation.encode("ascii")), **call)
    except BaseException:
        await _undo(vault, consents, call, document.id, consent_id)
        raise
    log.info("shared selectively", claims=len(terms.claims), vct=vct)
    return Shared(document.id, consent_id, terms.client_id, tuple(terms.claims), presentation)


async def _undo(
    vault: vpb_grpc.VaultStub,
    consents: cpb_grpc.ConsentStub,
    call: Mapping[str, Any],
    document_id: str,
    consent_id: str,
) -> None:
    """Best effort: the consent revoked and the document deleted, so a failed sharing leaves nothing usable."""
    try:
        if consent_id:
            await consents.Revoke(cpb.ConsentIdRequest(id=consent_id), **call)
    except grpc.aio.AioRpcError as error:
        log.warning("sharing undo: consent not revoked", code=error.code().name)
    try:
        await vault.DeleteDocument(vpb.DeleteDocumentRequest(id=document_id), **call)
    except grpc.aio.AioRpcError as error:
        log.warning("sharing undo: document not deleted", code=error.code().name)


# -- the pages -------------------------------------------------------------------------------------------------


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _number(form: FormData, name: str, low: int, high: int) -> int | None:
    text = _field(form, name).strip()
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _uuid(value: str, message: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise PageError(404, message, "share: not a uuid", HEADING) from None
    return value


class SharePages:
    """``/certificates/{dossier_id}/share`` (GET the form, POST the sharing) and the sharing's receipt; none
    without the issuance, vault and consent services."""

    def __init__(self, portal: Portal, vault: VaultPages, consents: ConsentPages) -> None:
        self.portal, self.settings, self.vault, self.consents = portal, portal.settings, vault, consents
        self._tls = tuple(Path(p) for p in (self.settings.tls_ca, self.settings.tls_cert, self.settings.tls_key))
        self._channel: grpc.aio.Channel | None = None
        self._stub: ipb_grpc.CertificatesStub | None = None

    @property
    def enabled(self) -> bool:
        s = self.settings
        return bool(s.issuance_address and s.vault_address and s.consent_address)

    def routes(self) -> list[Route]:
        if not self.enabled:
            return []
        return [
            Route("/certificates/{dossier_id}/share", self.form, methods=["GET"]),
            Route("/certificates/{dossier_id}/share", self.submit, methods=["POST"]),
            Route("/certificates/{dossier_id}/shared/{consent_id}", self.receipt),
        ]

    @property
    def stub(self) -> ipb_grpc.CertificatesStub:
        if self._stub is None:
            self._channel = secure_channel(self.settings.issuance_address, *self._tls, server="issuance")
            self._stub = ipb_grpc.CertificatesStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    def _session(self, request: Request) -> dict[str, Any] | None:
        data = self.portal.sessions.get(request.session.get("sid"))
        if data is None or not data.get("access_token") or _expired(data):
            return None
        return data

    def _signed_in(self, request: Request) -> dict[str, Any]:
        data = self._session(request)
        if data is None:
            raise PageError(401, SIGN_IN_AGAIN, "share: not signed in", HEADING, relogin=True)
        return data

    def _call(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": (("authorization", f"Bearer {data['access_token']}"),),
            "timeout": self.settings.vault_timeout,
        }

    def _refusal(self, request: Request, error: grpc.aio.AioRpcError, what: str) -> PageError:
        code = error.code()
        status, message = STATUS.get(code, (502, BAD_SERVICE))
        if code == grpc.StatusCode.PERMISSION_DENIED and "insufficient_user_authentication" in (error.details() or ""):
            message = LEVEL_2
        if code == grpc.StatusCode.INVALID_ARGUMENT and error.details():
            message = f"{message} — {error.details()}"
        if code == grpc.StatusCode.UNAUTHENTICATED:
            self.portal.sessions.pop(request.session.pop("sid", None))
        return PageError(status, message, f"{what}: {code.name}", HEADING, relogin=status == 401)

    async def _credential(self, request: Request, data: dict[str, Any], dossier_id: str) -> ipb.Credential:
        try:
            credential = await self.stub.GetMyCredential(ipb.DossierRequest(id=dossier_id), **self._call(data))
        except grpc.aio.AioRpcError as error:
            raise self._refusal(request, error, "share: credential") from None
        if credential.status in (ipb.CREDENTIAL_STATUS_REVOKED, ipb.CREDENTIAL_STATUS_SUSPENDED):
            raise PageError(409, NOT_SHAREABLE, "share: credential not valid", HEADING)
        return credential

    def _holder(self, data: dict[str, Any]) -> SigningKey:
        sub = data.get("claims", {}).get("sub")
        try:
            return holder.holder_key(self.settings, str(sub or ""))
        except KeyUnavailable:
            raise PageError(503, NO_HOLDER_KEY, "share: no holder key", HEADING) from None
        except InvalidArgument:
            raise PageError(401, SIGN_IN_AGAIN, "share: no sub", HEADING, relogin=True) from None

    async def form(self, request: Request) -> Response:
        data = self._session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        dossier_id = _uuid(str(request.path_params["dossier_id"]), NOT_FOUND)
        credential = await self._credential(request, data, dossier_id)
        try:
            claims = claims_of(credential.sd_jwt)
        except InvalidArgument:
            raise PageError(502, BAD_SERVICE, "share: the credential is not an SD-JWT", HEADING) from None
        return self.portal.page(
            request,
            "share.html",
            heading=HEADING,
            dossier_id=dossier_id,
            document=TITLES.get(credential.vct, "Giấy tờ"),
            claims=claims,
            purposes=sorted((await self.consents.catalog()).items()),
            limits=GRANT_LIMITS,
            csrf=_csrf(data),
            request_id=str(uuid.uuid4()),
        )

    async def submit(self, request: Request) -> Response:
        data = self._signed_in(request)
        dossier_id = _uuid(str(request.path_params["dossier_id"]), NOT_FOUND)
        try:
            form = await request.form(max_files=0, max_fields=MAX_CLAIMS + 20, max_part_size=4096)
        except Exception as exc:  # a malformed body is the client's mistake: 400, never a 500
            raise PageError(400, BAD_FORM, f"share: form: {type(exc).__name__}", HEADING) from None
        _check_csrf(data, form)
        request_id = _field(form, "request_id")
        try:
            uuid.UUID(request_id)
        except ValueError:
            raise PageError(400, BAD_FORM, "share: no request id", HEADING, back=(request.url.path, HEADING)) from None
        # A double submit (or a retry after a lost answer) of one form is one sharing: the same receipt again. The
        # session's sharings take turns (the session lives in this one process: portal/app.py Sessions).
        lock: asyncio.Lock = data.setdefault("share_lock", asyncio.Lock())
        async with lock:
            done: dict[str, str] = data.setdefault("shared", {})
            if request_id not in done:
                done[request_id] = await self._share(request, data, dossier_id, form)
            return RedirectResponse(done[request_id], status_code=303)

    async def _share(self, request: Request, data: dict[str, Any], dossier_id: str, form: FormData) -> str:
        """The sharing the form asks for; the receipt's URL."""
        chosen = tuple(dict.fromkeys(c for c in form.getlist("claim") if isinstance(c, str) and c))
        client_id = _field(form, "client_id").strip()
        purpose = _field(form, "purpose").strip()
        if not chosen or not client_id or not purpose:
            message = "Chọn ít nhất một thông tin, nhập mã cơ quan và chọn mục đích. (Choose fields, agency, purpose.)"
            raise PageError(400, message, "share: missing fields", HEADING, back=(request.url.path, HEADING))
        numbers = {name: _number(form, name, low, high) for name, (low, high, _) in GRANT_LIMITS.items()}
        if any(value is None for value in numbers.values()):
            raise PageError(400, "Các giới hạn phải là số trong khoảng cho phép. (Limits out of range.)",
                            "share: limits", HEADING, back=(request.url.path, HEADING))  # fmt: skip
        credential = await self._credential(request, data, dossier_id)
        key = self._holder(data)
        terms = ShareTerms(chosen, client_id, purpose, numbers["days"] or 1, numbers["max_fetches"] or 1,
                           numbers["per_day"] or 1, numbers["data_life_days"] or 0)  # fmt: skip
        try:
            now = dt.datetime.now(dt.UTC)
            shared = await share(self.vault.stub, self.consents.stub, self._call(data), credential=credential.sd_jwt,
                                 vct=credential.vct, holder_key=key, terms=terms, now=now)  # fmt: skip
        except InvalidArgument as error:
            message = NOT_BOUND if "holder key" in error.message else f"{BAD_FORM} — {error.message}"
            raise PageError(400, message, "share: refused", HEADING, back=(request.url.path, HEADING)) from None
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:  # GrantConsent: no such agency
                message = "Không tìm thấy cơ quan có mã này. (No agency with this id.)"
                raise PageError(404, message, "share: no agency", HEADING, back=(request.url.path, HEADING)) from None
            raise self._refusal(request, error, "share") from None
        return f"/certificates/{dossier_id}/shared/{shared.consent_id}?document={shared.document_id}"

    async def receipt(self, request: Request) -> Response:
        """What was shared: the agency, the consent's terms and status, and the fields the agency receives, read
        back from the document in the vault (the citizen's own Download)."""
        data = self._session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        consent_id = _uuid(str(request.path_params["consent_id"]), "Không tìm thấy. (Not found.)")
        document_id = _uuid(request.query_params.get("document", ""), "Không tìm thấy. (Not found.)")
        try:
            record = await self.consents.stub.GetMyConsent(cpb.ConsentIdRequest(id=consent_id), **self._call(data))
        except grpc.aio.AioRpcError as error:
            raise self._refusal(request, error, "share: consent") from None
        if list(record.terms.document_ids) != [document_id]:
            raise PageError(404, "Không tìm thấy. (Not found.)", "share: another consent's document", HEADING)
        content = await self._download(request, data, document_id)
        try:
            revealed = claims_of(content.decode("ascii"))
        except (InvalidArgument, UnicodeDecodeError):
            revealed = []
        label, _ = STATUS_LABELS.get(record.status, ("Không rõ (unknown)", "unknown"))
        return self.portal.page(
            request,
            "share_done.html",
            heading=HEADING,
            dossier_id=str(request.path_params["dossier_id"]),
            consent_id=consent_id,
            document_id=document_id,
            client_id=record.client_id,
            agency=record.agency_name or record.client_id,
            consent_status=label,
            expiry=when(record.terms.expiry),
            claims=revealed,
        )

    async def _download(self, request: Request, data: dict[str, Any], document_id: str) -> bytes:
        call = self.vault.stub.Download(vpb.DownloadRequest(id=document_id), **self._call(data))
        content = bytearray()
        try:
            while (reply := await call.read()) is not grpc.aio.EOF:
                if reply.WhichOneof("item") == "chunk":
                    content += reply.chunk
        except grpc.aio.AioRpcError as error:
            raise self._refusal(request, error, "share: document") from None
        finally:
            call.cancel()
        return bytes(content)


def presented_claims(presentation: str) -> Sequence[str]:
    """The names of the claims a presentation reveals (its Disclosures), in order."""
    return [name for name, _ in disclosures(presentation)]
