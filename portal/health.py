"""The citizen's electronic health book pages ("Sổ sức khỏe điện tử", Decision 1332/QĐ-BYT of 2024).

Only translation between HTTP and the health service's citizen RPCs (``HealthRecords`` in
protos/issuance/v1/health.proto): the portal calls it over mutual TLS as the platform peer ``portal``, with the
citizen's access token (audience ``urn:dinhdanh:service:health``, scope ``health.read``, asked for at sign-in,
RFC 8707 §2) as ``authorization: Bearer`` metadata.

- ``/health``: the book: administrative data from the National Population Database, the medical history (main
  diagnoses, ICD-10 with their Vietnamese titles), the vaccination history and the visits, newest first; and the
  form that issues a signed extract into the citizen's vault.
- ``/health/visits/{id}``: one visit (facility, dates, reason, diagnoses, procedures, prescriptions, lab results,
  vaccinations, follow-up, referral) with "Tải PDF".
- ``/health/visits/{id}.pdf``: the visit's PDF summary (``GetMyVisitPdf``), as an attachment.
- ``POST /health/extract``: ``IssueExtract``: the signed extract lands in the vault as an issued, read-only document
  (type HEALTH_BOOK); the citizen may then share it with a doctor or an agency through a consent artefact, like
  any vault document (``/consents/new``). The form carries a ``request_id`` (a UUID made with the page), the
  service's idempotency key: a double submit of one form is one extract; a form without one is 400.

The form carries the session's CSRF token; refusals become readable 4xx pages, never a 500.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.consent import CitizenPages
from portal.errors import PageError
from portal.vault import BAD_FORM, _check_csrf, _csrf
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.vault import VaultPages

RESOURCE = "urn:dinhdanh:service:health"  # RFC 8707 resource indicator of the health service
SCOPES = "health.read"
PAGE = "/health"
HEADING = "Sổ sức khỏe điện tử (electronic health book)"
NOT_FOUND = "Không tìm thấy lần khám này. (No such visit.)"
NOT_READY = "Dịch vụ sổ sức khỏe chưa sẵn sàng. (The health book service is not available yet.)"
EXTRACTED = (
    "Đã cấp bản trích lục sổ sức khỏe có chữ ký số vào kho dữ liệu của bạn. Bạn có thể chia sẻ bản trích lục với bác "
    "sĩ hoặc cơ quan qua một sự đồng ý, như mọi giấy tờ trong kho. (A signed extract was issued into your data store; "
    "share it with a doctor or an agency through a consent, like any document.)"
)
SEX = {"male": "Nam", "female": "Nữ"}
UUID = re.compile(r"[0-9a-fA-F-]{36}")


def day(text: str) -> str:
    """``2026-11-30`` as ``30/11/2026``; anything else as it is."""
    try:
        return dt.date.fromisoformat(text).strftime("%d/%m/%Y")
    except ValueError:
        return text


@dataclass(frozen=True, slots=True)
class VisitView:
    """One visit as the pages show it."""

    id: str
    facility: str
    facility_code: str
    record_id: str
    admitted: str
    discharged: str
    reason: str
    doctor: str
    main: str
    secondary: tuple[str, ...]
    notes: tuple[str, ...]
    procedures: tuple[str, ...]
    prescriptions: tuple[str, ...]
    lab_results: tuple[tuple[str, str], ...]
    vaccinations: tuple[str, ...]
    follow_up: str
    referral: str


def _diagnosis(d: pb.Diagnosis) -> str:
    return f"{d.icd10} – {d.title}" if d.title else d.icd10


def _dose(v: pb.Vaccination) -> str:
    return f"{v.vaccine}, mũi {v.dose}, ngày {day(v.date)}, lô {v.lot}"


def _prescription(p: pb.Prescription) -> str:
    how = ", ".join(part for part in (p.dose, p.frequency) if part)
    amount = " ".join(part for part in (p.quantity, p.unit) if part)
    return f"{p.drug}: {how}; số lượng {amount}; {p.days} ngày"


def _lab(lab: pb.LabResult) -> str:
    value = " ".join(part for part in (lab.value, lab.unit) if part)
    return f"{value} (tham chiếu {lab.reference_range})" if lab.reference_range else value


def visit_view(visit: pb.Visit) -> VisitView:
    r = visit.record
    main, *secondary = list(r.diagnoses) or [pb.Diagnosis()]
    return VisitView(
        id=visit.id,
        facility=visit.facility_name or visit.facility_code,
        facility_code=r.ministry_code,
        record_id=r.facility_record_id,
        admitted=day(r.admitted_on),
        discharged=day(r.discharged_on),
        reason=r.reason,
        doctor=r.doctor,
        main=_diagnosis(main),
        secondary=tuple(_diagnosis(d) for d in secondary),
        notes=tuple(f"{d.icd10}: {d.text}" for d in r.diagnoses if d.text),
        procedures=tuple(f"{p.name} (mã {p.code})" if p.code else p.name for p in r.procedures),
        prescriptions=tuple(_prescription(p) for p in r.prescriptions),
        lab_results=tuple((lab.test, _lab(lab)) for lab in r.lab_results),
        vaccinations=tuple(_dose(v) for v in r.vaccinations),
        follow_up=day(r.follow_up_on) if r.follow_up_on else "",
        referral=f"{r.referral.facility_code}: {r.referral.reason}" if r.HasField("referral") else "",
    )


class HealthPages(CitizenPages):
    """The routes under ``/health``; none when the portal has no health service address."""

    heading = HEADING
    path = PAGE

    def __init__(self, portal: Portal, vault: VaultPages) -> None:
        super().__init__(portal, vault)
        self._channel_: grpc.aio.Channel | None = None
        self._stub: pb_grpc.HealthRecordsStub | None = None
        if self.settings.health_address:
            self._check_tls("DINHDANH_PORTAL_HEALTH_ADDRESS")

    def routes(self) -> list[Route]:
        if not self.settings.health_address:
            return []
        return [
            Route(PAGE, self.index),
            Route(PAGE + "/visits/{visit_id}.pdf", self.pdf),  # before the page: {visit_id} would take ".pdf"
            Route(PAGE + "/visits/{visit_id}", self.visit),
            Route(PAGE + "/extract", self.extract, methods=["POST"]),
        ]

    @property
    def stub(self) -> pb_grpc.HealthRecordsStub:
        """The health service's stub, on a channel opened at first use (inside the event loop)."""
        if self._stub is None:
            self._channel_ = self._channel(self.settings.health_address, "health")
            self._stub = pb_grpc.HealthRecordsStub(self._channel_)
        return self._stub

    async def close(self) -> None:
        if self._channel_ is not None:
            await self._channel_.close()
            self._channel_ = self._stub = None

    def _refusal(self, request: Request, error: grpc.aio.AioRpcError, what: str) -> PageError:
        code = error.code()
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return self._error(503, NOT_READY, f"{what}: UNIMPLEMENTED")
        if code == grpc.StatusCode.NOT_FOUND:
            return self._error(404, NOT_FOUND, f"{what}: NOT_FOUND")
        refusal = super()._refusal(request, error, what)
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION) and error.details():
            refusal.message = f"{refusal.message} — {error.details()}"
        return refusal

    def _visit_id(self, request: Request) -> str:
        visit_id = str(request.path_params["visit_id"])
        if not UUID.fullmatch(visit_id):
            raise self._error(404, NOT_FOUND, "health: not a visit id")
        return visit_id

    # -- pages --------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        book = await self._rpc(request, self.stub.GetMyBook(pb.GetMyBookRequest(), **self._call(data)), "health: book")
        admin = book.administrative
        return self.portal.page(
            request,
            "health.html",
            heading=HEADING,
            admin=[
                ("Họ và tên (full name)", admin.full_name),
                ("Ngày sinh (date of birth)", day(admin.date_of_birth)),
                ("Giới tính (sex)", SEX.get(admin.sex, admin.sex)),
                ("Số định danh cá nhân (ID number)", admin.id_number),
                ("Nơi thường trú (permanent residence)", admin.permanent_address),
                ("Số điện thoại (phone)", admin.phone),
            ],
            history=[_diagnosis(d) for d in book.history],
            vaccinations=[_dose(v) for v in book.vaccinations],
            visits=[visit_view(v) for v in book.visits],
            csrf=_csrf(data),
            request_id=str(uuid.uuid4()),
            notice=EXTRACTED if request.query_params.get("done") == "extract" else None,
            vault=bool(self.settings.vault_address),
            consents=bool(self.settings.consent_address),
        )

    async def visit(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        ask = pb.VisitRequest(id=self._visit_id(request))
        found = await self._rpc(request, self.stub.GetMyVisit(ask, **self._call(data)), "health: visit")
        return self.portal.page(request, "health_visit.html", heading=HEADING, v=visit_view(found), csrf=_csrf(data))

    async def pdf(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        ask = pb.VisitRequest(id=self._visit_id(request))
        got = await self._rpc(request, self.stub.GetMyVisitPdf(ask, **self._call(data)), "health: pdf")
        name = got.filename if got.filename.isascii() and '"' not in got.filename else "visit.pdf"
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        return Response(got.pdf, media_type="application/pdf", headers=headers)

    async def extract(self, request: Request) -> Response:
        data = self._signed_in(request)
        form = await self._posted(request, data)
        posted = form.get("request_id")
        request_id = posted if isinstance(posted, str) else ""
        try:
            uuid.UUID(request_id)
        except ValueError:
            raise self._error(400, BAD_FORM, "health: extract: request_id") from None
        chosen = [v for v in form.getlist("visit_id") if isinstance(v, str) and UUID.fullmatch(v)]
        ask = pb.IssueExtractRequest(visit_ids=chosen, request_id=request_id)
        await self._rpc(request, self.stub.IssueExtract(ask, **self._call(data)), "health: extract")
        return RedirectResponse(PAGE + "?done=extract", status_code=303)

    async def _posted(self, request: Request, data: dict[str, object]) -> FormData:
        """The posted form (small, URL-encoded), its CSRF token checked."""
        try:
            form = await request.form(max_files=0, max_fields=600, max_part_size=4096)
        except Exception as exc:  # a malformed body is the client's mistake: 400, never a 500
            raise self._error(400, BAD_FORM, f"health: form: {type(exc).__name__}") from None
        try:
            _check_csrf(data, form)  # type: ignore[arg-type]
        except PageError as exc:
            raise self._error(exc.status, exc.message, "health: CSRF token missing or wrong") from None
        return form
