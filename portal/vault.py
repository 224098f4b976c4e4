"""The "Kho dữ liệu cá nhân" (personal data store) pages: the signed-in citizen's documents in the vault.

Only translation between HTTP and the vault's gRPC API (protos/vault/v1/vault.proto): the portal calls it
over mutual TLS as a platform peer, with the citizen's access token (audience the vault, asked for at
sign-in) as ``authorization: Bearer`` metadata, and turns status codes into pages with a 4xx status.
Uploads stream from Starlette's spooled file to the client-streaming ``Upload`` in 1 MiB chunks, then the
end message (size and SHA-256: the vault stores nothing from a stream cut short); downloads stream
``Download`` to the browser after its first (metadata) message. Forms that change anything carry a
per-session CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from core import logs
from portal import documents
from portal.errors import PageError
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from services.tls import secure_channel

if TYPE_CHECKING:
    from portal.app import Portal

log = logs.get("portal")

RESOURCE = "urn:dinhdanh:service:vault"  # RFC 8707 resource indicator: the access token's audience
VAULT_SCOPES = "vault.read vault.write"  # list, get, download; upload, delete (services/vault_server.py)
AFTER_LOGIN = "after_login"  # session key: where the callback sends a citizen who was sent to sign in
CHUNK = 1024 * 1024
PAGE_SIZE = 20
HEADING = "Kho dữ liệu cá nhân (personal data store)"
SIGN_IN_AGAIN = "Phiên đăng nhập đã hết hạn, vui lòng đăng nhập lại. (Your session has expired; please sign in again.)"
BAD_FORM = "Biểu mẫu không hợp lệ hoặc đã hết hạn, vui lòng thử lại. (The form is invalid or expired; please retry.)"
TOO_LARGE = "Tệp quá lớn. (The file is too large.)"
NOT_FOUND = "Không tìm thấy giấy tờ. (No such document.)"
BAD_VAULT = "Kho dữ liệu trả lời không hợp lệ, vui lòng thử lại sau. (The data store failed; please try again later.)"
# gRPC status → HTTP status, the page's message, and whether the vault's own message is shown after it.
STATUS: dict[grpc.StatusCode, tuple[int, str, bool]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "Giấy tờ hoặc yêu cầu không hợp lệ. (Invalid document or request.)", True),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (413, TOO_LARGE, True),
    grpc.StatusCode.NOT_FOUND: (404, NOT_FOUND, False),
    grpc.StatusCode.FAILED_PRECONDITION: (
        409,
        "Không thể thực hiện với giấy tờ này; giấy tờ do cơ quan cấp không thể xoá. "
        "(Not possible for this document; documents issued by an agency cannot be deleted.)",
        True,
    ),
    grpc.StatusCode.ALREADY_EXISTS: (409, "Giấy tờ đã tồn tại. (The document already exists.)", False),
    grpc.StatusCode.UNAUTHENTICATED: (401, SIGN_IN_AGAIN, False),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Bạn không có quyền thực hiện thao tác này. (Not allowed.)", False),
    grpc.StatusCode.UNAVAILABLE: (503, "Kho dữ liệu tạm thời không truy cập được. (The store is unavailable.)", False),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "Kho dữ liệu không trả lời kịp. (The store timed out.)", False),
}
NOTICES = {"uploaded": "Đã tải lên giấy tờ. (Document uploaded.)", "deleted": "Đã xoá giấy tờ. (Document deleted.)"}
T = TypeVar("T")


class VaultPages:
    """The routes under ``/vault``; none when the portal has no vault address."""

    def __init__(self, portal: Portal) -> None:
        self.portal, self.settings = portal, portal.settings
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.VaultStub | None = None
        self._tls = tuple(Path(p) for p in (self.settings.tls_ca, self.settings.tls_cert, self.settings.tls_key))
        if self.settings.vault_address and not all(p.name and p.is_file() for p in self._tls):
            raise ValueError("DINHDANH_PORTAL_VAULT_ADDRESS needs DINHDANH_PORTAL_TLS_CA, _TLS_CERT and _TLS_KEY files")

    def routes(self) -> list[Route]:
        if not self.settings.vault_address:
            return []
        return [
            Route("/vault", self.index),
            Route("/vault/upload", self.upload, methods=["POST"]),
            Route("/vault/{document_id}", self.download),
            Route("/vault/{document_id}/delete", self.delete, methods=["POST"]),
        ]

    @property
    def stub(self) -> pb_grpc.VaultStub:
        """The vault's stub, on a channel opened at first use (inside the event loop)."""
        if self._stub is None:
            self._channel = secure_channel(self.settings.vault_address, *self._tls, server="vault")
            self._stub = pb_grpc.VaultStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    # -- pages --------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        data = self._session(request)
        if data is None or _expired(data):
            return _to_login(request)
        key = request.query_params.get("type", "")
        if key and key not in documents.TYPE_BY_KEY:
            raise PageError(400, "Loại giấy tờ không hợp lệ. (Unknown document type.)", "vault: type", HEADING)
        kind = documents.TYPE_BY_KEY.get(key, pb.DOCUMENT_TYPE_UNSPECIFIED)
        ask = pb.ListDocumentsRequest(
            page_size=PAGE_SIZE, page_token=request.query_params.get("page", ""), document_type=kind
        )
        reply = await self._rpc(request, self.stub.ListDocuments(ask, **self._call(data)))
        return self.portal.page(
            request,
            "vault.html",
            heading=HEADING,
            rows=[documents.row(d) for d in reply.documents],
            types=documents.TYPES,
            selected=key,
            first_page=not ask.page_token,
            next_page=reply.next_page_token,
            csrf=_csrf(data),
            notice=NOTICES.get(request.query_params.get("done", "")),
            consents=bool(self.settings.consent_address),
            history=bool(self.settings.log_address),
        )

    async def upload(self, request: Request) -> Response:
        self._check_length(request)  # first: a body too large is refused unread
        data = self._signed_in(request)
        form = await self._form(request, max_files=1)
        try:
            _check_csrf(data, form)
            file = form.get("file")
            if not isinstance(file, UploadFile) or not file.filename:
                raise PageError(400, "Chọn tệp cần tải lên. (Choose a file.)", "vault: no file", HEADING)
            kind = documents.TYPE_BY_KEY.get(_text(form, "document_type"))
            if kind is None:
                raise PageError(400, "Chọn loại giấy tờ. (Choose the document type.)", "vault: no type", HEADING)
            filename = file.filename.replace("\\", "/").rsplit("/", 1)[-1]  # a few browsers send a path
            meta = pb.UploadMetadata(
                document_type=kind,
                title=_text(form, "title").strip(),
                filename=filename,
                issuer_name=_text(form, "issuer_name").strip(),
                issued_on=_text(form, "issued_on"),
                expires_on=_text(form, "expires_on"),
            )
            document = await self._rpc(request, self.stub.Upload(_upload_stream(meta, file), **self._call(data)))
        finally:
            await form.close()
        log.info("vault upload", size=document.size_bytes, content_type=document.content_type)
        return RedirectResponse("/vault?done=uploaded", status_code=303)

    async def download(self, request: Request) -> Response:
        data = self._session(request)
        if data is None or _expired(data):
            return _to_login(request)
        document_id = _document_id(request)
        call = self.stub.Download(pb.DownloadRequest(id=document_id), **self._call(data))
        try:
            first = await self._rpc(request, call.read())
        except BaseException:
            call.cancel()
            raise
        if first is grpc.aio.EOF or first.WhichOneof("item") != "metadata":
            call.cancel()
            raise PageError(502, BAD_VAULT, "vault: download without metadata", HEADING)
        meta = first.metadata
        headers = {"content-disposition": documents.attachment(meta.filename), "content-length": str(meta.size_bytes)}
        media_type = meta.content_type or "application/octet-stream"
        return StreamingResponse(_content(call), media_type=media_type, headers=headers)

    async def delete(self, request: Request) -> Response:
        data = self._signed_in(request)
        form = await self._form(request, max_files=0)
        _check_csrf(data, form)
        document_id = _document_id(request)
        await self._rpc(request, self.stub.DeleteDocument(pb.DeleteDocumentRequest(id=document_id), **self._call(data)))
        return RedirectResponse("/vault?done=deleted", status_code=303)

    # -- helpers ------------------------------------------------------------------------------------

    def _session(self, request: Request) -> dict[str, Any] | None:
        data = self.portal.sessions.get(request.session.get("sid"))
        return data if data is not None and data.get("access_token") else None

    def _signed_in(self, request: Request) -> dict[str, Any]:
        """The session of a form post; without one (or with an expired token) a page asking to sign in."""
        data = self._session(request)
        if data is None or _expired(data):
            request.session[AFTER_LOGIN] = "/vault"
            raise PageError(401, SIGN_IN_AGAIN, "vault: not signed in", HEADING, relogin=True)
        return data

    def _call(self, data: dict[str, Any]) -> dict[str, Any]:
        bearer = (("authorization", f"Bearer {data['access_token']}"),)
        return {"metadata": bearer, "timeout": self.settings.vault_timeout}

    async def _rpc(self, request: Request, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise self._refusal(request, error) from None

    def _refusal(self, request: Request, error: grpc.aio.AioRpcError) -> PageError:
        code = error.code()
        status, message, detailed = STATUS.get(code, (502, BAD_VAULT, False))
        if detailed and error.details():
            message = f"{message} — {error.details()}"
        if code == grpc.StatusCode.UNAUTHENTICATED:  # the token expired or was revoked: sign in again
            self.portal.sessions.pop(request.session.pop("sid", None))
            request.session[AFTER_LOGIN] = "/vault"
        return PageError(status, message, f"vault: {code.name}", HEADING, relogin=status == 401)

    def _check_length(self, request: Request) -> None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.settings.upload_limit:
            raise PageError(413, TOO_LARGE, "vault: body over the upload limit", HEADING)

    async def _form(self, request: Request, max_files: int) -> FormData:
        """The posted form, its body limited to ``upload_limit`` bytes (413 above)."""
        self._check_length(request)
        limit, received = self.settings.upload_limit, 0

        async def receive() -> Message:
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > limit:  # Starlette's parser closes its spooled files on any error
                raise PageError(413, TOO_LARGE, "vault: body over the upload limit", HEADING)
            return message

        try:
            return await Request(request.scope, receive).form(max_files=max_files, max_fields=8, max_part_size=65536)
        except (HTTPException, MultiPartException) as exc:
            raise PageError(400, BAD_FORM, f"vault: form: {exc}", HEADING) from None


async def _upload_stream(meta: pb.UploadMetadata, file: UploadFile) -> AsyncIterator[pb.UploadRequest]:
    """The metadata, the spooled file in chunks of at most 1 MiB, then the end message (size and SHA-256)."""
    yield pb.UploadRequest(metadata=meta)
    size, digest = 0, hashlib.sha256()
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        digest.update(chunk)
        yield pb.UploadRequest(chunk=chunk)
    yield pb.UploadRequest(end=pb.UploadEnd(size_bytes=size, sha256=digest.digest()))


async def _content(call: grpc.aio.UnaryStreamCall) -> AsyncIterator[bytes]:
    """The chunks after the metadata. ``call.read()`` only: mixing it with ``async for`` breaks grpc.aio."""
    try:
        while (reply := await call.read()) is not grpc.aio.EOF:
            yield reply.chunk
    except grpc.aio.AioRpcError as error:  # headers are sent: the connection is cut short, never completed
        log.warning("vault download broke off", code=error.code().name)
        raise
    finally:
        call.cancel()  # a no-op once the call has ended


def _to_login(request: Request) -> Response:
    request.session[AFTER_LOGIN] = "/vault"
    return RedirectResponse("/login", status_code=303)


def _expired(data: dict[str, Any]) -> bool:
    expires_at = data.get("expires_at")
    return isinstance(expires_at, int | float) and expires_at < time.time() + 5


def _csrf(data: dict[str, Any]) -> str:
    return str(data.setdefault("csrf", secrets.token_urlsafe(32)))


def _check_csrf(data: dict[str, Any], form: FormData) -> None:
    if not hmac.compare_digest(_text(form, "csrf").encode(), _csrf(data).encode()):
        raise PageError(403, BAD_FORM, "vault: CSRF token missing or wrong", HEADING)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _document_id(request: Request) -> str:
    value = str(request.path_params["document_id"])
    try:
        uuid.UUID(value)
    except ValueError:
        raise PageError(404, NOT_FOUND, "vault: not a document id", HEADING) from None
    return value
