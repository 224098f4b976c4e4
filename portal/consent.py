"""The citizen's consent pages ("Quản lý sự đồng ý"): pending requests, active and paused grants, ended ones.

Only translation between HTTP and the consent service's citizen RPCs (protos/consent/v1/consent.proto): the
portal calls it over mutual TLS as the platform peer ``portal``, with the citizen's access token (audience
``urn:dinhdanh:service:consent``, scope ``consent.manage``, asked for at sign-in, RFC 8707 §2) as
``authorization: Bearer`` metadata. The terms are shown in plain words, the way India's Account Aggregator
consent screens do (ReBIT consent artefact: purpose, data life, frequency, window): the agency's registered
name, the purpose's Vietnamese text and legal basis (``ListPurposes``), the documents by their titles in the
citizen's own vault listing (or document types in words), the window in Vietnam time, the limits and the data
life. Every form that changes a consent carries the session's CSRF token; the transitions (``Approve``,
``Reject``, ``Pause``, ``Resume``, ``Revoke``) are the service's to guard, and its refusals become readable
4xx pages (a second click on "Thu hồi" is ``FAILED_PRECONDITION``: "đã thu hồi rồi"), never a 500.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import logs
from portal import documents
from portal.errors import PageError
from portal.vault import AFTER_LOGIN, BAD_FORM, SIGN_IN_AGAIN, _check_csrf, _csrf, _expired
from protos.consent.v1 import consent_pb2 as pb
from protos.consent.v1 import consent_pb2_grpc as pb_grpc
from protos.vault.v1 import vault_pb2 as vault_pb
from services.tls import secure_channel

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.vault import VaultPages

log = logs.get("portal")

RESOURCE = "urn:dinhdanh:service:consent"  # RFC 8707 resource indicator of the consent service
SCOPES = "consent.manage"
HEADING = "Quản lý sự đồng ý chia sẻ dữ liệu (your consents)"
PAGE = "/consents"
LIST_PAGES = 10  # at most 10 pages of 100 consents are read for one page view
VAULT_PAGES = 10  # at most 10 pages of 100 documents for the titles
VIETNAM = documents.VIETNAM
BAD_SERVICE = "Dịch vụ trả lời không hợp lệ, vui lòng thử lại sau. (The service failed; please try again later.)"
NOT_FOUND = "Không tìm thấy sự đồng ý này. (No such consent.)"
NO_AGENCY = "Không tìm thấy cơ quan có mã này. (No agency with this id.)"
BAD_TERMS = "Điều kiện chia sẻ không hợp lệ. (The terms are not valid.)"

STATUS_LABELS: dict[int, tuple[str, str]] = {
    pb.CONSENT_STATUS_PENDING: ("Chờ bạn quyết định", "pending"),
    pb.CONSENT_STATUS_ACTIVE: ("Đang có hiệu lực", "active"),
    pb.CONSENT_STATUS_PAUSED: ("Tạm dừng", "paused"),
    pb.CONSENT_STATUS_REJECTED: ("Đã từ chối", "rejected"),
    pb.CONSENT_STATUS_REVOKED: ("Đã thu hồi", "revoked"),
    pb.CONSENT_STATUS_EXPIRED: ("Đã hết hạn", "expired"),
}
# Action (the form's path) → the RPC's name, the notice after it, the states it is offered in.
ACTIONS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "approve": ("Approve", "Bạn đã đồng ý; cơ quan có thể lấy giấy tờ theo các điều kiện trên. (Approved.)",
                (pb.CONSENT_STATUS_PENDING,)),
    "reject": ("Reject", "Bạn đã từ chối yêu cầu. (Rejected.)", (pb.CONSENT_STATUS_PENDING,)),
    "pause": ("Pause", "Đã tạm dừng: cơ quan không lấy được giấy tờ cho tới khi bạn tiếp tục. (Paused.)",
              (pb.CONSENT_STATUS_ACTIVE,)),
    "resume": ("Resume", "Đã tiếp tục sự đồng ý. (Resumed.)", (pb.CONSENT_STATUS_PAUSED,)),
    "revoke": ("Revoke", "Đã thu hồi: cơ quan không còn lấy được giấy tờ. (Revoked.)",
               (pb.CONSENT_STATUS_ACTIVE, pb.CONSENT_STATUS_PAUSED)),
}  # fmt: skip
NOTICES = {path: notice for path, (_, notice, _) in ACTIONS.items()} | {
    "grant": "Bạn đã cho phép cơ quan lấy giấy tờ theo các điều kiện dưới đây. (Consent granted.)"
}
BUTTONS = {
    "approve": "Đồng ý (approve)",
    "reject": "Từ chối (reject)",
    "pause": "Tạm dừng (pause)",
    "resume": "Tiếp tục (resume)",
    "revoke": "Thu hồi (revoke)",
}
# What a refused transition means, by the consent's status now (FAILED_PRECONDITION, consent/states.py).
ALREADY: dict[int, str] = {
    pb.CONSENT_STATUS_REVOKED: "Sự đồng ý này đã thu hồi rồi. (This consent was already revoked.)",
    pb.CONSENT_STATUS_REJECTED: "Yêu cầu này đã bị từ chối rồi. (This request was already rejected.)",
    pb.CONSENT_STATUS_EXPIRED: "Sự đồng ý này đã hết hạn. (This consent has expired.)",
    pb.CONSENT_STATUS_ACTIVE: "Sự đồng ý này đang có hiệu lực rồi. (This consent is already active.)",
    pb.CONSENT_STATUS_PAUSED: "Sự đồng ý này đang tạm dừng rồi. (This consent is already paused.)",
    pb.CONSENT_STATUS_PENDING: "Yêu cầu này chưa được bạn đồng ý. (This request has not been approved yet.)",
}
NOT_NOW = "Không thể thực hiện với trạng thái hiện tại của sự đồng ý. (Not possible in the consent's current state.)"
UNITS = {
    pb.FREQUENCY_UNIT_HOUR: ("mỗi giờ", "an hour"),
    pb.FREQUENCY_UNIT_DAY: ("mỗi ngày", "a day"),
    pb.FREQUENCY_UNIT_MONTH: ("mỗi tháng", "a month"),
}
STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "Yêu cầu không hợp lệ. (Invalid request.)"),
    grpc.StatusCode.NOT_FOUND: (404, NOT_FOUND),
    grpc.StatusCode.FAILED_PRECONDITION: (409, NOT_NOW),
    grpc.StatusCode.UNAUTHENTICATED: (401, SIGN_IN_AGAIN),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Bạn không có quyền thực hiện thao tác này. (Not allowed.)"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "Quá nhiều yêu cầu, vui lòng thử lại sau. (Too many requests.)"),
    grpc.StatusCode.UNAVAILABLE: (503, "Dịch vụ tạm thời không truy cập được. (The service is unavailable.)"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "Dịch vụ không trả lời kịp. (The service timed out.)"),
    grpc.StatusCode.UNIMPLEMENTED: (503, "Dịch vụ chưa sẵn sàng. (The service is not available yet.)"),
}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PurposeText:
    """A catalog purpose as shown: its Vietnamese and English texts and its legal basis, one line each."""

    vi: str
    en: str
    legal_basis: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsentView:
    """One consent as the page shows it."""

    id: str
    status: str  # pending, active, paused, rejected, revoked, expired
    status_label: str
    agency: str
    purpose: PurposeText
    documents: tuple[str, ...]
    window: str
    limits: str
    data_life: str
    created: str
    changed: str
    fetches: str
    last_fetch: str
    actions: tuple[tuple[str, str], ...]  # (path, button text)


def when(stamp: Timestamp) -> str:
    """A timestamp as ``01/12/2026 09:30`` in Vietnam time; unset is empty."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    return stamp.ToDatetime(tzinfo=dt.UTC).astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")


def window_text(terms: pb.ConsentTerms, created: Timestamp) -> str:
    start = when(terms.start) or when(created)
    end = when(terms.expiry)
    if not start and not end:
        return "không ghi thời hạn (no window stated)"
    vi = f"từ {start}" if start else "từ bây giờ"
    en = f"from {start}" if start else "from now"
    if end:
        vi, en = f"{vi} đến {end}", f"{en} to {end}"
    return f"{vi} (giờ Việt Nam) ({en}, Vietnam time)"


def limits_text(terms: pb.ConsentTerms) -> str:
    """``tối đa 3 lần mỗi ngày, tổng cộng 10 lần (at most 3 a day, 10 in all)``."""
    vi: list[str] = []
    en: list[str] = []
    unit = UNITS.get(terms.frequency.unit)
    if terms.frequency.count and unit:
        vi.append(f"tối đa {terms.frequency.count} lần {unit[0]}")
        en.append(f"at most {terms.frequency.count} {unit[1]}")
    if terms.max_fetches:
        vi.append(f"tổng cộng {terms.max_fetches} lần")
        en.append(f"{terms.max_fetches} in all")
    if not vi:
        return "không giới hạn số lần (no limit on the number of fetches)"
    return f"{', '.join(vi)} ({', '.join(en)})"


def data_life_text(seconds: int) -> str:
    """``cơ quan được giữ dữ liệu trong 30 ngày (the agency may keep the data for 30 days)``."""
    if seconds <= 0:
        return "cơ quan không được lưu giữ dữ liệu sau khi dùng (the agency may not keep the data)"
    count, vi, en = seconds, "giây", "second"
    for size, unit_vi, unit_en in ((86400, "ngày", "day"), (3600, "giờ", "hour"), (60, "phút", "minute")):
        if seconds % size == 0:
            count, vi, en = seconds // size, unit_vi, unit_en
            break
    plural = "s" if count != 1 else ""
    return f"cơ quan được giữ dữ liệu trong {count} {vi} (the agency may keep the data for {count} {en}{plural})"


def documents_text(terms: pb.ConsentTerms, titles: dict[str, str]) -> tuple[str, ...]:
    """The documents granted: titles from the citizen's own listing, types in words."""
    shown = [titles.get(d, f"Giấy tờ không còn trong kho của bạn (no longer in your store: {d[:8]}…)")
             for d in terms.document_ids]  # fmt: skip
    shown += [
        f"Mọi giấy tờ loại {documents.LABELS.get(t, 'Khác')} (every document of this type)"
        for t in terms.document_types
    ]
    return tuple(shown) or ("Không có giấy tờ nào (no documents)",)


def purpose_of(record: pb.ConsentRecord, catalog: dict[str, PurposeText]) -> PurposeText:
    known = catalog.get(record.terms.purpose)
    vi = record.purpose_text or (known.vi if known else record.terms.purpose)
    en = record.purpose_text_en or (known.en if known else "")
    return PurposeText(vi, en, known.legal_basis if known else ())


def view(record: pb.ConsentRecord, titles: dict[str, str], catalog: dict[str, PurposeText]) -> ConsentView:
    label, key = STATUS_LABELS.get(record.status, ("Không rõ (unknown)", "unknown"))
    actions = tuple((path, BUTTONS[path]) for path, (_, _, states) in ACTIONS.items() if record.status in states)
    return ConsentView(
        id=record.id,
        status=key,
        status_label=label,
        agency=record.agency_name or record.client_id,
        purpose=purpose_of(record, catalog),
        documents=documents_text(record.terms, titles),
        window=window_text(record.terms, record.created_at),
        limits=limits_text(record.terms),
        data_life=data_life_text(record.terms.data_life_seconds),
        created=when(record.created_at),
        changed=when(record.status_changed_at),
        fetches=str(record.fetches),
        last_fetch=when(record.last_fetch) or "chưa lần nào (never)",
        actions=actions,
    )


# The citizen's own grant: field → (lowest, highest, label); consent.proto caps the window at 366 days.
GRANT_LIMITS: dict[str, tuple[int, int, str]] = {
    "days": (1, 366, "Hiệu lực trong (valid for), ngày (days)"),
    "max_fetches": (1, 100, "Tổng số lần được lấy (fetches in all)"),
    "per_day": (1, 100, "Tối đa mỗi ngày (at most a day)"),
    "data_life_days": (0, 3650, "Cơ quan được giữ dữ liệu, ngày (data life, days)"),
}


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _number(form: FormData, name: str, low: int, high: int) -> int | None:
    text = _field(form, name).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        return None
    return int(text)


class CitizenPages:
    """What the consent and history pages share: the signed-in session, the token, refusals as pages."""

    heading = HEADING
    path = PAGE

    def __init__(self, portal: Portal, vault: VaultPages) -> None:
        self.portal, self.settings, self.vault = portal, portal.settings, vault
        self._tls = tuple(Path(p) for p in (self.settings.tls_ca, self.settings.tls_cert, self.settings.tls_key))

    def _check_tls(self, what: str) -> None:
        if not all(p.name and p.is_file() for p in self._tls):
            raise ValueError(f"{what} needs DINHDANH_PORTAL_TLS_CA, _TLS_CERT and _TLS_KEY files")

    def _channel(self, address: str, server: str) -> grpc.aio.Channel:
        return secure_channel(address, *self._tls, server=server)

    def _session(self, request: Request) -> dict[str, Any] | None:
        data = self.portal.sessions.get(request.session.get("sid"))
        return data if data is not None and data.get("access_token") else None

    def _page_session(self, request: Request) -> dict[str, Any] | None:
        """The session of a page view; None (and the page to return after sign-in remembered) without one."""
        data = self._session(request)
        if data is None or _expired(data):
            request.session[AFTER_LOGIN] = self.path
            return None
        return data

    def _signed_in(self, request: Request) -> dict[str, Any]:
        """The session of a form post; without one (or with an expired token) a page asking to sign in."""
        data = self._session(request)
        if data is None or _expired(data):
            request.session[AFTER_LOGIN] = self.path
            raise PageError(401, SIGN_IN_AGAIN, f"{self.path}: not signed in", self.heading, relogin=True)
        return data

    def _call(self, data: dict[str, Any]) -> dict[str, Any]:
        bearer = (("authorization", f"Bearer {data['access_token']}"),)
        return {"metadata": bearer, "timeout": self.settings.vault_timeout}

    def _error(self, status: int, message: str, reason: str, relogin: bool = False) -> PageError:
        return PageError(status, message, reason, self.heading, relogin=relogin, back=(self.path, self.heading))

    async def _rpc(self, request: Request, call: Awaitable[T], what: str) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise self._refusal(request, error, what) from None

    def _refusal(self, request: Request, error: grpc.aio.AioRpcError, what: str) -> PageError:
        code = error.code()
        status, message = STATUS.get(code, (502, BAD_SERVICE))
        if code == grpc.StatusCode.UNAUTHENTICATED:  # the token expired or was revoked: sign in again
            self.portal.sessions.pop(request.session.pop("sid", None))
            request.session[AFTER_LOGIN] = self.path
        return self._error(status, message, f"{what}: {code.name}", relogin=status == 401)

    async def titles(self, data: dict[str, Any]) -> dict[str, str]:
        """Document id → title, from the citizen's own vault listing; empty when the vault cannot say."""
        if not self.settings.vault_address:
            return {}
        found: dict[str, str] = {}
        token = ""
        try:
            for _ in range(VAULT_PAGES):
                ask = vault_pb.ListDocumentsRequest(page_size=100, page_token=token)
                reply = await self.vault.stub.ListDocuments(ask, **self._call(data))
                found |= {d.id: d.title or d.filename for d in reply.documents}
                token = reply.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as error:  # titles are a courtesy: the ids' placeholders are shown instead
            log.warning("titles unavailable", code=error.code().name)
        return found


class ConsentPages(CitizenPages):
    """The routes under ``/consents``; none when the portal has no consent service address."""

    def __init__(self, portal: Portal, vault: VaultPages) -> None:
        super().__init__(portal, vault)
        self._channel_: grpc.aio.Channel | None = None
        self._stub: pb_grpc.ConsentStub | None = None
        self._catalog: dict[str, PurposeText] = {}
        self._catalog_at = 0.0
        if self.settings.consent_address:
            self._check_tls("DINHDANH_PORTAL_CONSENT_ADDRESS")

    def routes(self) -> list[Route]:
        if not self.settings.consent_address:
            return []
        return [
            Route(PAGE, self.index),
            Route(PAGE + "/new", self.new),
            Route(PAGE + "/grant", self.grant, methods=["POST"]),
            Route(PAGE + "/{consent_id}/{action}", self.act, methods=["POST"]),
        ]

    @property
    def stub(self) -> pb_grpc.ConsentStub:
        """The consent service's stub, on a channel opened at first use (inside the event loop)."""
        if self._stub is None:
            self._channel_ = self._channel(self.settings.consent_address, "consent")
            self._stub = pb_grpc.ConsentStub(self._channel_)
        return self._stub

    async def close(self) -> None:
        if self._channel_ is not None:
            await self._channel_.close()
            self._channel_ = self._stub = None

    async def catalog(self) -> dict[str, PurposeText]:
        """The purpose catalog (``ListPurposes``), kept for 5 minutes; empty when the service cannot say."""
        if self._catalog and time.monotonic() - self._catalog_at < 300:
            return self._catalog
        try:
            reply = await self.stub.ListPurposes(pb.ListPurposesRequest(), timeout=self.settings.vault_timeout)
        except grpc.aio.AioRpcError as error:
            log.warning("purposes unavailable", code=error.code().name)
            return self._catalog
        self._catalog = {
            p.code: PurposeText(p.text_vi, p.text_en, tuple(line for line in p.legal_basis.splitlines() if line))
            for p in reply.purposes
        }
        self._catalog_at = time.monotonic()
        return self._catalog

    # -- pages --------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        records: list[pb.ConsentRecord] = []
        token, complete = "", False
        for _ in range(LIST_PAGES):
            ask = pb.ListMyConsentsRequest(page_size=100, page_token=token)
            reply = await self._rpc(request, self.stub.ListMyConsents(ask, **self._call(data)), "consent: list")
            records += reply.consents
            token = reply.next_page_token
            if not token:
                complete = True
                break
        titles, catalog = await self.titles(data), await self.catalog()
        views = [view(r, titles, catalog) for r in records]
        done = request.query_params.get("done", "")
        return self.portal.page(
            request,
            "consents.html",
            heading=HEADING,
            pending=[v for v in views if v.status == "pending"],
            current=[v for v in views if v.status in ("active", "paused")],
            ended=[v for v in views if v.status not in ("pending", "active", "paused")],
            complete=complete,
            csrf=_csrf(data),
            notice=NOTICES.get(done),
            history=bool(self.settings.log_address),
        )

    async def new(self, request: Request) -> Response:
        """The form of a consent the citizen gives on their own initiative (``GrantConsent``)."""
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        titles, catalog = await self.titles(data), await self.catalog()
        return self.portal.page(
            request, "consent_new.html", heading=HEADING, titles=sorted(titles.items(), key=lambda kv: kv[1]),
            purposes=sorted(catalog.items()), csrf=_csrf(data), limits=GRANT_LIMITS,
        )  # fmt: skip

    async def grant(self, request: Request) -> Response:
        data = self._signed_in(request)
        form = await self._form(request, data, max_fields=120)
        client_id = _field(form, "client_id").strip()
        document_ids = [d for d in form.getlist("document_id") if isinstance(d, str) and d]
        if not client_id or not document_ids:
            message = "Nhập mã cơ quan và chọn ít nhất một giấy tờ. (Enter the agency's id and choose a document.)"
            raise self._error(400, message, "consent: grant: missing fields")
        numbers = {name: _number(form, name, low, high) for name, (low, high, _) in GRANT_LIMITS.items()}
        if None in numbers.values():
            raise self._error(400, "Các giới hạn phải là số trong khoảng cho phép. (Limits out of range.)",
                              "consent: grant: limits")  # fmt: skip
        now = dt.datetime.now(dt.UTC)
        expiry = Timestamp()
        expiry.FromDatetime(now + dt.timedelta(days=numbers["days"] or 0))
        asked = pb.ConsentTerms(
            purpose=_field(form, "purpose"),
            document_ids=document_ids,
            expiry=expiry,
            data_life_seconds=(numbers["data_life_days"] or 0) * 86400,
            max_fetches=numbers["max_fetches"] or 0,
            frequency=pb.Frequency(count=numbers["per_day"] or 0, unit=pb.FREQUENCY_UNIT_DAY),
        )
        ask = pb.GrantConsentRequest(client_id=client_id, terms=asked)
        try:
            record = await self.stub.GrantConsent(ask, **self._call(data))
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise self._error(404, NO_AGENCY, "consent: grant: NOT_FOUND") from None
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                message = f"{BAD_TERMS} — {error.details()}" if error.details() else BAD_TERMS
                raise self._error(400, message, f"consent: grant: {code.name}") from None
            raise self._refusal(request, error, "consent: grant") from None
        log.info("consent granted", status=pb.ConsentStatus.Name(record.status))
        return RedirectResponse(f"{PAGE}?done=grant#c-{record.id}", status_code=303)

    async def _form(self, request: Request, data: dict[str, Any], max_fields: int = 4) -> FormData:
        """The posted form (small, URL-encoded), its CSRF token checked."""
        try:
            form = await request.form(max_files=0, max_fields=max_fields, max_part_size=4096)
        except Exception as exc:  # a malformed body is the client's mistake: 400, never a 500
            raise self._error(400, BAD_FORM, f"consent: form: {type(exc).__name__}") from None
        try:
            _check_csrf(data, form)
        except PageError as exc:
            raise self._error(exc.status, exc.message, "consent: CSRF token missing or wrong") from None
        return form

    async def act(self, request: Request) -> Response:
        data = self._signed_in(request)
        await self._form(request, data)
        action, consent_id = str(request.path_params["action"]), str(request.path_params["consent_id"])
        if action not in ACTIONS:
            raise self._error(404, "Không có thao tác này. (No such action.)", "consent: unknown action")
        try:
            uuid.UUID(consent_id)
        except ValueError:
            raise self._error(404, NOT_FOUND, "consent: not a consent id") from None
        method = getattr(self.stub, ACTIONS[action][0])
        try:
            record = await method(pb.ConsentIdRequest(id=consent_id), **self._call(data))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise await self._not_now(data, consent_id, action) from None
            raise self._refusal(request, error, f"consent: {action}") from None
        log.info("consent changed", action=action, status=pb.ConsentStatus.Name(record.status))
        return RedirectResponse(f"{PAGE}?done={action}#c-{consent_id}", status_code=303)

    async def _not_now(self, data: dict[str, Any], consent_id: str, action: str) -> PageError:
        """A refused transition in words: what the consent's status is now (a second click: "đã thu hồi rồi")."""
        try:
            record = await self.stub.GetMyConsent(pb.ConsentIdRequest(id=consent_id), **self._call(data))
            message = ALREADY.get(record.status, NOT_NOW)
        except grpc.aio.AioRpcError:
            message = NOT_NOW
        return self._error(409, message, f"consent: {action}: FAILED_PRECONDITION")
