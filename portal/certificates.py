"""The citizen's criminal-record certificate pages ("Phiếu lý lịch tư pháp"): apply, follow, fetch.

Only translation between HTTP and the issuance service's citizen RPCs (``Certificates`` in
protos/issuance/v1/issuance.proto): the portal calls it over mutual TLS as the platform peer ``portal``, with the
citizen's access token (audience ``urn:dinhdanh:service:issuance``, scope ``issuance.apply``, asked for at sign-in,
RFC 8707 §2) as ``authorization: Bearer`` metadata.

- ``/certificates``: the citizen's dossiers (tracking number, form, status in Vietnamese, the statutory deadline,
  "quá hạn" when it has passed: Law on Judicial Records 2009 Art. 48, 10 working days or 15).
- ``/certificates/new``: the request form (Mẫu số 03/2013/TT-LLTP) as the VNeID pilot shows it: the six answers
  the citizen gives (form No. 1 or No. 2, a purpose from the list ``PrefillApplication`` returns for that form,
  copies, delivery electronic or by post with an address, the ban certification of Art. 41 for No. 1, a contact
  e-mail) and, read-only beside them, the 17 fields filled from the National Population Database with their
  source, the fee (Circular 244/2016/TT-BTC) and the statutory time. Applying needs assurance level 2 (an
  officer verified the account in person): a level-1 citizen — the ID token's ``acr``, or the service's
  ``PERMISSION_DENIED`` ``insufficient_user_authentication`` — sees how to reach it instead of the form.
- ``POST /certificates/new``: ``Apply``, with a request id chosen when the form was shown (a hidden field), so a
  double submit opens one dossier (the service is idempotent by ``request_id``), and the portal-held holder key's
  public JWK (portal/holder.py) for the credential's ``cnf`` (RFC 7800).
- ``/certificates/{id}``: the dossier: status history with times and actors, the rejection reason, the deadline,
  and once ISSUED the certificate in the citizen's vault (``/vault/{document}``) and its selective sharing page
  (``/certificates/{id}/share``, portal/disclosure.py).

Every form carries the session's CSRF token; refusals become readable 4xx pages, never a 500.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import logs
from core.keys.provider import KeyUnavailable
from portal import documents
from portal.consent import CitizenPages, _field
from portal.errors import PageError
from portal.vault import BAD_FORM, _check_csrf, _csrf
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.vault import VaultPages

log = logs.get("portal")

RESOURCE = "urn:dinhdanh:service:issuance"  # RFC 8707 resource indicator of the issuance service
SCOPES = "issuance.apply"
PAGE = "/certificates"
HEADING = "Phiếu lý lịch tư pháp (criminal-record certificates)"
LIST_PAGES = 5  # at most 5 pages of 100 dossiers for one page view
VIETNAM = documents.VIETNAM
REGISTRY_SOURCE = "Cơ sở dữ liệu quốc gia về dân cư"
INSUFFICIENT = "insufficient_user_authentication"
NOT_FOUND = "Không tìm thấy hồ sơ này. (No such dossier.)"
NOT_READY = "Dịch vụ cấp phiếu lý lịch tư pháp chưa sẵn sàng. (The issuance service is not available yet.)"

STATUS_LABELS: dict[int, tuple[str, str]] = {
    pb.DOSSIER_STATUS_SUBMITTED: ("Đã tiếp nhận", "submitted"),
    pb.DOSSIER_STATUS_VERIFYING: ("Đang xác minh", "verifying"),
    pb.DOSSIER_STATUS_APPROVED: ("Đã duyệt, đang cấp phiếu", "approved"),
    pb.DOSSIER_STATUS_REJECTED: ("Bị từ chối", "rejected"),
    pb.DOSSIER_STATUS_ISSUED: ("Đã cấp phiếu", "issued"),
}
CREDENTIAL_LABELS: dict[int, tuple[str, str]] = {
    pb.CREDENTIAL_STATUS_VALID: ("Còn hiệu lực", "valid"),
    pb.CREDENTIAL_STATUS_REVOKED: ("Đã bị thu hồi", "revoked"),
    pb.CREDENTIAL_STATUS_SUSPENDED: ("Đang bị tạm đình chỉ", "suspended"),
}
ACTORS = {"OFFICER": "Cán bộ Trung tâm Lý lịch tư pháp", "SYSTEM": "Hệ thống (tự động)"}
FORMS = {1: "Phiếu lý lịch tư pháp số 1", 2: "Phiếu lý lịch tư pháp số 2"}
FORM_HELP = {
    1: "Chỉ ghi án tích chưa được xoá; cá nhân, người được uỷ quyền hoặc cơ quan theo luật định được yêu cầu "
    "(shows only convictions not expunged; Art. 42–43).",
    2: "Ghi đầy đủ mọi án tích, kể cả án tích đã được xoá; chỉ chính người đó trực tiếp yêu cầu, không uỷ quyền "
    "(every conviction, expunged ones included; only the person themself, Art. 44–46).",
}
DELIVERIES = {
    pb.DELIVERY_ELECTRONIC: ("electronic", "Bản điện tử vào Kho dữ liệu cá nhân (electronic, into your data store)"),
    pb.DELIVERY_POST: ("post", "Bản điện tử và bản giấy gửi qua bưu điện (also on paper, by post)"),
}
DELIVERY_BY_KEY = {key: value for value, (key, _) in DELIVERIES.items()}
NOTICES = {"applied": "Đã nộp hồ sơ. Bạn có thể theo dõi tiến độ tại đây. (Application submitted.)"}
FINAL = (pb.DOSSIER_STATUS_REJECTED, pb.DOSSIER_STATUS_ISSUED)


def when(stamp: Timestamp) -> str:
    """A timestamp as ``01/12/2026 09:30`` in Vietnam time; unset is empty."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    return stamp.ToDatetime(tzinfo=dt.UTC).astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")


def day(text: str) -> str:
    """``2026-12-15`` as ``15/12/2026``; anything else as given."""
    try:
        return dt.date.fromisoformat(text).strftime("%d/%m/%Y")
    except ValueError:
        return text


def money(amount: int) -> str:
    """``200000`` as ``200.000 đồng`` (Vietnamese thousands separator); 0 is ``miễn phí``."""
    return f"{amount:,} đồng".replace(",", ".") if amount else "0 đồng (miễn phí, waived)"


@dataclass(frozen=True, slots=True)
class FeeView:
    amount: str
    base: str
    basis: str
    groups: tuple[str, ...]


def fee_view(fee: pb.Fee) -> FeeView:
    return FeeView(money(fee.amount_vnd), money(fee.base_vnd), fee.basis, tuple(fee.groups))


@dataclass(frozen=True, slots=True)
class FieldView:
    name: str
    label: str
    value: str
    source: str
    recorded: bool


def field_view(field: pb.FormField) -> FieldView:
    value = field.value if field.recorded else "—"
    return FieldView(field.name, field.label_vi, value, field.source, field.recorded)


@dataclass(frozen=True, slots=True)
class EventView:
    status: str
    label: str
    at: str
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class DossierView:
    """One dossier as the pages show it."""

    id: str
    tracking_number: str
    form: str
    purpose: str
    status: str
    status_label: str
    deadline: str
    overdue: bool
    received: str
    working_days: int
    rejection_reason: str
    history: tuple[EventView, ...]
    fee: FeeView
    fields: tuple[FieldView, ...]
    vault_document_id: str
    credential: str  # valid, revoked, suspended, or "" before issue
    credential_label: str
    final: bool


def dossier_view(dossier: pb.Dossier, purposes: dict[str, str] | None = None) -> DossierView:
    label, key = STATUS_LABELS.get(dossier.status, ("Không rõ (unknown)", "unknown"))
    credential_label, credential = CREDENTIAL_LABELS.get(dossier.credential_status, ("", ""))
    history = tuple(
        EventView(
            STATUS_LABELS.get(event.status, ("", "unknown"))[1],
            STATUS_LABELS.get(event.status, ("Không rõ (unknown)", ""))[0],
            when(event.at),
            ACTORS.get(event.actor, event.actor),
            event.reason,
        )
        for event in dossier.history
    )
    purpose = (purposes or {}).get(dossier.purpose) or _field_value(dossier, "purpose") or dossier.purpose
    return DossierView(
        id=dossier.id,
        tracking_number=dossier.tracking_number,
        form=FORMS.get(dossier.form, str(dossier.form)),
        purpose=purpose,
        status=key,
        status_label=label,
        deadline=day(dossier.deadline),
        overdue=dossier.overdue and dossier.status not in FINAL,
        received=when(dossier.received_at),
        working_days=dossier.working_days,
        rejection_reason=dossier.rejection_reason,
        history=history,
        fee=fee_view(dossier.fee),
        fields=tuple(field_view(f) for f in dossier.fields),
        vault_document_id=dossier.vault_document_id,
        credential=credential,
        credential_label=credential_label,
        final=dossier.status in FINAL,
    )


def _field_value(dossier: pb.Dossier, name: str) -> str:
    return next((f.value for f in dossier.fields if f.name == name and f.recorded), "")


def insufficient(error: grpc.aio.AioRpcError) -> bool:
    """The service's refusal of a level-1 token (RFC 9470 ``insufficient_user_authentication``)."""
    if error.code() != grpc.StatusCode.PERMISSION_DENIED:
        return False
    trailers = " ".join(str(value) for _, value in (error.trailing_metadata() or ()))
    return INSUFFICIENT in trailers or INSUFFICIENT in (error.details() or "")


def level_of(claims: dict[str, Any]) -> int:
    acr = claims.get("acr")
    return int(acr) if isinstance(acr, str) and acr.isdigit() else 0


class CertificatePages(CitizenPages):
    """The routes under ``/certificates``; none when the portal has no issuance service address."""

    heading = HEADING
    path = PAGE

    def __init__(self, portal: Portal, vault: VaultPages) -> None:
        super().__init__(portal, vault)
        self._channel_: grpc.aio.Channel | None = None
        self._stub: pb_grpc.CertificatesStub | None = None
        if self.settings.issuance_address:
            self._check_tls("DINHDANH_PORTAL_ISSUANCE_ADDRESS")

    def routes(self) -> list[Route]:
        if not self.settings.issuance_address:
            return []
        return [
            Route(PAGE, self.index),
            Route(PAGE + "/new", self.new),
            Route(PAGE + "/new", self.apply, methods=["POST"]),
            Route(PAGE + "/{dossier_id}", self.dossier),
        ]

    @property
    def stub(self) -> pb_grpc.CertificatesStub:
        """The issuance service's stub, on a channel opened at first use (inside the event loop)."""
        if self._stub is None:
            self._channel_ = self._channel(self.settings.issuance_address, "issuance")
            self._stub = pb_grpc.CertificatesStub(self._channel_)
        return self._stub

    async def close(self) -> None:
        if self._channel_ is not None:
            await self._channel_.close()
            self._channel_ = self._stub = None

    # -- refusals ---------------------------------------------------------------------------------

    def _refusal(self, request: Request, error: grpc.aio.AioRpcError, what: str) -> PageError:
        code = error.code()
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return self._error(503, NOT_READY, f"{what}: UNIMPLEMENTED")
        if code == grpc.StatusCode.NOT_FOUND:
            return self._error(404, NOT_FOUND, f"{what}: NOT_FOUND")
        refusal = super()._refusal(request, error, what)
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.FAILED_PRECONDITION) and error.details():  # fmt: skip
            refusal.message = f"{refusal.message} — {error.details()}"  # the domain's reason, e.g. the article
        return refusal

    def level_page(self, request: Request, data: dict[str, Any]) -> Response:
        """Why applying is not possible yet, and how to reach level 2 (verification in person)."""
        return self.portal.page(
            request, "certificates_level.html", 403, heading=HEADING, level=level_of(data.get("claims", {})) or 1
        )

    def _level_one(self, data: dict[str, Any]) -> bool:
        return level_of(data.get("claims", {})) == 1

    # -- pages --------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        dossiers: list[pb.Dossier] = []
        token, complete = "", False
        for _ in range(LIST_PAGES):
            ask = pb.ListMyDossiersRequest(page_size=100, page_token=token)
            try:
                reply = await self.stub.ListMyDossiers(ask, **self._call(data))
            except grpc.aio.AioRpcError as error:
                if insufficient(error):
                    return self.level_page(request, data)
                raise self._refusal(request, error, "issuance: list") from None
            dossiers += reply.dossiers
            token = reply.next_page_token
            if not token:
                complete = True
                break
        return self.portal.page(
            request,
            "certificates.html",
            heading=HEADING,
            rows=[dossier_view(d) for d in dossiers],
            complete=complete,
            level=level_of(data.get("claims", {})),
            vault=bool(self.settings.vault_address),
        )

    async def new(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        if self._level_one(data):
            return self.level_page(request, data)
        chosen = request.query_params.get("form", "1")
        if chosen not in ("1", "2"):
            raise self._error(400, "Loại phiếu không hợp lệ. (Form No. 1 or No. 2.)", "issuance: form")
        return await self._form_page(request, data, int(chosen))

    async def _form_page(
        self, request: Request, data: dict[str, Any], form: int, status: int = 200, **values: Any
    ) -> Response:
        try:
            prefill = await self.stub.PrefillApplication(pb.PrefillApplicationRequest(form=form), **self._call(data))
        except grpc.aio.AioRpcError as error:
            if insufficient(error):
                return self.level_page(request, data)
            raise self._refusal(request, error, "issuance: prefill") from None
        fields = [field_view(f) for f in prefill.fields]
        values.setdefault("answers", {})
        return self.portal.page(
            request,
            "certificates_new.html",
            status,
            heading=HEADING,
            form=form,
            forms=FORMS,
            form_help=FORM_HELP,
            purposes=[(p.code, p.text_vi) for p in prefill.purposes if not p.forms or form in p.forms],
            filled=[f for f in fields if f.name not in ASKED_NAMES],
            fee=fee_view(prefill.fee),
            working_days=prefill.working_days,
            deliveries=[(key, text) for key, text in DELIVERIES.values()],
            request_id=values.pop("request_id", None) or str(uuid.uuid4()),
            csrf=_csrf(data),
            email=_claim(data, "email"),
            **values,
        )

    async def apply(self, request: Request) -> Response:
        data = self._signed_in(request)
        form = await self._posted(request, data)
        if self._level_one(data):
            return self.level_page(request, data)
        request_id = _field(form, "request_id")
        try:
            uuid.UUID(request_id)
        except ValueError:
            raise self._error(400, BAD_FORM, "issuance: apply: request_id") from None
        answers, problem = _answers(form)
        if problem is not None:
            chosen = answers.form if answers.form in (1, 2) else 1
            kept = {"answers": _kept(form), "request_id": request_id}
            return await self._form_page(request, data, chosen, 400, error=problem, **kept)
        ask = pb.ApplyRequest(request_id=request_id, answers=answers, holder_jwk=self._holder_jwk(data))
        try:
            dossier = await self.stub.Apply(ask, **self._call(data))
        except grpc.aio.AioRpcError as error:
            if insufficient(error):
                return self.level_page(request, data)
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                message = f"Thông tin khai chưa hợp lệ (the answers are not valid): {error.details()}"
                kept = {"answers": _kept(form), "request_id": request_id}
                return await self._form_page(request, data, answers.form, 400, error=message, **kept)
            raise self._refusal(request, error, "issuance: apply") from None
        log.info("certificate applied", form=dossier.form, status=pb.DossierStatus.Name(dossier.status))
        return RedirectResponse(f"{PAGE}/{dossier.id}?done=applied", status_code=303)

    def _holder_jwk(self, data: dict[str, Any]) -> str:
        """The citizen's portal-held holder key (portal/holder.py), JSON; "" when this portal holds none."""
        sub = data.get("claims", {}).get("sub")
        try:
            from portal.holder import holder_public_jwk

            return json.dumps(holder_public_jwk(self.settings, sub), separators=(",", ":"))
        except (ImportError, KeyUnavailable) as error:
            log.warning("no holder key: the credential will not be bound to one", reason=type(error).__name__)
            return ""

    async def dossier(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        dossier_id = str(request.path_params["dossier_id"])
        try:
            uuid.UUID(dossier_id)
        except ValueError:
            raise self._error(404, NOT_FOUND, "issuance: not a dossier id") from None
        try:
            found = await self.stub.GetMyDossier(pb.DossierRequest(id=dossier_id), **self._call(data))
        except grpc.aio.AioRpcError as error:
            if insufficient(error):
                return self.level_page(request, data)
            raise self._refusal(request, error, "issuance: get") from None
        return self.portal.page(
            request,
            "certificates_dossier.html",
            heading=HEADING,
            d=dossier_view(found),
            notice=NOTICES.get(request.query_params.get("done", "")),
            vault=bool(self.settings.vault_address),
        )

    async def _posted(self, request: Request, data: dict[str, Any]) -> FormData:
        """The posted form (small, URL-encoded), its CSRF token checked."""
        try:
            form = await request.form(max_files=0, max_fields=16, max_part_size=4096)
        except Exception as exc:  # a malformed body is the client's mistake: 400, never a 500
            raise self._error(400, BAD_FORM, f"issuance: form: {type(exc).__name__}") from None
        try:
            _check_csrf(data, form)
        except PageError as exc:
            raise self._error(exc.status, exc.message, "issuance: CSRF token missing or wrong") from None
        return form


ASKED_NAMES = frozenset({"form", "purpose", "copies", "delivery", "ban_certification", "email"})
COPIES = range(1, 11)  # issuance/application.py MAX_COPIES


def _claim(data: dict[str, Any], name: str) -> str:
    value = data.get("claims", {}).get(name)
    return value if isinstance(value, str) else ""


def _kept(form: FormData) -> dict[str, str]:
    """The answers as posted, to show the form again with them."""
    names = ("form", "purpose", "copies", "delivery", "postal_address", "ban_certification", "email")
    return {name: _field(form, name)[:400] for name in names}


def _answers(form: FormData) -> tuple[pb.Answers, str | None]:
    """The six answers from the posted form, and what is missing or malformed (the service checks the rest)."""
    chosen = _field(form, "form")
    number = int(chosen) if chosen in ("1", "2") else 0
    copies_text = _field(form, "copies").strip()
    copies = int(copies_text) if copies_text.isdigit() else 0
    delivery = DELIVERY_BY_KEY.get(_field(form, "delivery"), pb.DELIVERY_UNSPECIFIED)
    answers = pb.Answers(
        form=number,
        purpose=_field(form, "purpose").strip(),
        copies=copies,
        delivery=delivery,
        postal_address=_field(form, "postal_address").strip() if delivery == pb.DELIVERY_POST else "",
        ban_certification=number == 1 and _field(form, "ban_certification") == "yes",
        email=_field(form, "email").strip(),
    )
    if not number:
        return answers, "Chọn loại phiếu. (Choose Form No. 1 or No. 2.)"
    if not answers.purpose:
        return answers, "Chọn mục đích yêu cầu cấp phiếu. (Choose the purpose.)"
    if copies not in COPIES:
        return answers, "Số lượng phiếu từ 1 đến 10. (1 to 10 copies.)"
    if delivery == pb.DELIVERY_UNSPECIFIED:
        return answers, "Chọn hình thức nhận phiếu. (Choose how to receive it.)"
    if delivery == pb.DELIVERY_POST and not answers.postal_address:
        return answers, "Nhập địa chỉ nhận phiếu qua bưu điện. (Enter the postal address.)"
    if not answers.email:
        return answers, "Nhập thư điện tử liên hệ. (Enter a contact e-mail.)"
    return answers, None
