"""gRPC translation for certificate issuance (protos/issuance/v1/issuance.proto); the rules live in
``issuance.service``.

Who calls what (``POLICY``):

- citizens, by an access token with the audience ``urn:dinhdanh:service:issuance``, the scope ``issuance.apply``
  and assurance level 2 (``min_acr=2``: a level-1 token is PERMISSION_DENIED ``insufficient_user_authentication``,
  the message saying how to reach level 2), through any platform peer: service ``Certificates``;
- agencies, by their client certificate: ``Officers`` (role ``officer``) and ``AgencyRequests`` (roles
  ``procedural_authority`` / ``authorised_by_law``); the registration, the certificate's thumbprint and the role
  are checked on every call (``issuance.agencies.PostgresAgencyDirectory``);
- any platform peer (services, operators, agencies): ``IssuerKeys.GetIssuerKeys``.

Downstream: the registry's ``GetCitizen`` and the judicial-records service's ``GetRecord``, as the service
``issuance`` over mutual TLS, each bounded by the caller's deadline. Besides the RPCs, ``build`` starts the issuing
worker (``issuance.issuing.start_worker``: APPROVED → ISSUED) and the status list's publication and refresher
(``issuance.revocation``) when those modules are present.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from audit.events import Pseudonymizer
from core import deadline, logs
from core.callers import Allow, current_caller, current_principal
from core.errors import InvalidArgument, NotFound, Unavailable
from core.keys import purposes
from core.settings import Settings, key_provider
from db.pool import open_pool
from identity.oidc.subjects import Subjects
from issuance.agencies import PostgresAgencyDirectory
from issuance.application import ASKED, RequestPurpose
from issuance.application import Answers as DomainAnswers
from issuance.dossiers import Event, Status
from issuance.fees import Fee
from issuance.judicial import JudicialRecord
from issuance.pg_store import PostgresDossierStore
from issuance.service import IssuanceService, Me, Page, Representation
from issuance.store import StoredCredential, StoredDossier
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from protos.issuance.v1 import judicial_pb2 as jpb
from protos.issuance.v1 import judicial_pb2_grpc as jpb_grpc
from services.issuance_settings import IssuanceSettings
from services.judicial_codec import record_from_pb
from services.registry_client import RegistryCitizens
from services.server import ServiceSpec, token_verifier
from services.tls import secure_channel

log = logs.get("issuance")

SERVICES = ("Certificates", "Officers", "AgencyRequests", "IssuerKeys")
NAMES = tuple(pb.DESCRIPTOR.services_by_name[name].full_name for name in SERVICES)
CERTIFICATES, OFFICERS, AGENCY_REQUESTS, ISSUER_KEYS = NAMES
SCOPE = "issuance.apply"
CITIZENS = Allow.of(citizens=True, scopes=(SCOPE,), min_acr=2)
AGENCIES = Allow.of(agencies=True)
PLATFORM = Allow.of(
    services=("edge", "portal", "registry", "identity", "vault", "consent", "log", "judicial", "issuance", "health"),
    operators=True,
    agencies=True,
)
POLICY: dict[str, Allow] = {
    f"/{CERTIFICATES}/{method}": CITIZENS
    for method in ("PrefillApplication", "Apply", "ListMyDossiers", "GetMyDossier", "GetMyCredential")
}
POLICY |= {
    f"/{OFFICERS}/{method}": AGENCIES
    for method in ("ListDossiers", "GetDossier", "Approve", "Reject", "Revoke", "Suspend", "Reinstate")
}
POLICY |= {
    f"/{AGENCY_REQUESTS}/{method}": AGENCIES for method in ("ApplyAsAgency", "GetAgencyDossier", "GetIssuedCertificate")
}
POLICY[f"/{ISSUER_KEYS}/GetIssuerKeys"] = PLATFORM

STATUS_PB = {status: pb.DossierStatus.Value(f"DOSSIER_STATUS_{status.value}") for status in Status}
PB_STATUS = {number: status for status, number in STATUS_PB.items()}
CREDENTIAL_PB = {
    None: pb.CREDENTIAL_STATUS_UNSPECIFIED,
    "VALID": pb.CREDENTIAL_STATUS_VALID,
    "REVOKED": pb.CREDENTIAL_STATUS_REVOKED,
    "SUSPENDED": pb.CREDENTIAL_STATUS_SUSPENDED,
}
DELIVERY = {pb.DELIVERY_ELECTRONIC: "ELECTRONIC", pb.DELIVERY_POST: "POST"}
JUDICIAL_TIMEOUT = 5.0


def _timestamp(instant: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(instant.astimezone(UTC))
    return stamp


def fee_pb(fee: Fee, groups: tuple[str, ...]) -> pb.Fee:
    return pb.Fee(amount_vnd=fee.total_vnd, base_vnd=fee.base_vnd, groups=list(groups),
                  basis=f"{fee.basis}: {fee.reason}")  # fmt: skip


def purpose_pb(purpose: RequestPurpose) -> pb.Purpose:
    return pb.Purpose(code=purpose.code, text_vi=purpose.text_vi, forms=sorted(int(f) for f in purpose.forms))


def dossier_pb(stored: StoredDossier, now: datetime, officer: bool = False) -> pb.Dossier:
    """The dossier as its citizen, agency or an officer sees it (``clean_record`` for officers only)."""
    return pb.Dossier(
        id=str(stored.id),
        tracking_number=stored.tracking_number,
        form=int(stored.form),
        purpose=stored.purpose,
        status=STATUS_PB[stored.status],  # type: ignore[arg-type]
        history=[
            pb.StatusChange(status=STATUS_PB[e.status], at=_timestamp(e.at), actor=e.actor.value, reason=e.reason)  # type: ignore[arg-type]
            for e in stored.history
        ],
        fee=fee_pb(stored.fee, stored.fee_groups),
        working_days=stored.working_days,
        deadline=stored.deadline.isoformat(),
        overdue=stored.dossier.overdue(now),
        received_at=_timestamp(stored.received_at),
        rejection_reason=stored.rejection_reason,
        fields=[
            pb.FormField(
                name=f.name,
                label_vi=f.label_vi,
                value=f.value,
                source=f.source,
                recorded=f.recorded,
                asked=f.name in ASKED,
            )
            for f in stored.fields
        ],
        vault_document_id=stored.vault_document_id or "",
        certificate_id=stored.certificate_id or "",
        credential_status=CREDENTIAL_PB.get(stored.credential_status, pb.CREDENTIAL_STATUS_UNSPECIFIED),  # type: ignore[arg-type]
        requester=stored.requester.value,
        clean_record=bool(stored.clean_record) if officer else False,
    )


def credential_pb(stored: StoredCredential) -> pb.Credential:
    return pb.Credential(
        sd_jwt=stored.credential or "",
        vct="urn:dinhdanh:vct:criminal-record-certificate:1",
        qr_text=stored.qr_text or "",
        status=CREDENTIAL_PB.get(stored.credential_status, pb.CREDENTIAL_STATUS_UNSPECIFIED),  # type: ignore[arg-type]
    )


def answers_of(message: pb.Answers) -> DomainAnswers:
    """The six answers as the domain validates them (``issuance.application.validate_answers``). Form No. 2 always
    certifies the ban (Art. 43(3)), so its unset boolean is left to the domain."""
    return DomainAnswers(
        form=message.form,
        purpose=message.purpose,
        copies=message.copies,
        delivery=DELIVERY.get(message.delivery, ""),
        email=message.email,
        ban_certification=message.ban_certification if message.form != 2 else (message.ban_certification or None),
        postal_address=message.postal_address,
    )


def _page(page: Page, now: datetime, officer: bool = False) -> pb.ListDossiersResponse:
    return pb.ListDossiersResponse(
        dossiers=[dossier_pb(d, now, officer) for d in page.dossiers], next_page_token=page.next_token
    )


def _now() -> datetime:
    return datetime.now(UTC)


class JudicialClient:
    """``issuance.service.JudicialRecords`` over gRPC (``JudicialRecords.GetRecord``, as the service issuance)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = jpb_grpc.JudicialRecordsStub(channel)

    async def record(self, id_number: str) -> JudicialRecord:
        try:
            message = await self._stub.GetRecord(
                jpb.GetRecordRequest(id_number=id_number), timeout=deadline.remaining(JUDICIAL_TIMEOUT)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument("the judicial-records service refused this ID number") from None
            log.warning("issuance.judicial_unavailable", code=error.code().name)
            raise Unavailable("the judicial records cannot be read now, so nothing was opened; try again") from None
        return record_from_pb(message)


class CertificatesServicer(pb_grpc.CertificatesServicer):
    def __init__(self, service: IssuanceService) -> None:
        self._service = service

    def _me(self) -> Me:
        principal = current_principal()
        return self._service.me(principal.subject, principal.sector)

    async def PrefillApplication(self, request: pb.PrefillApplicationRequest, context: grpc.aio.ServicerContext
                                 ) -> pb.ApplicationForm:  # fmt: skip
        prefill = await self._service.prefill(self._me(), request.form)
        return pb.ApplicationForm(
            fields=[
                pb.FormField(
                    name=f.name,
                    label_vi=f.label_vi,
                    value=f.value,
                    source=f.source,
                    recorded=f.recorded,
                    asked=f.name in prefill.asked,
                )
                for f in prefill.fields
            ],
            purposes=[purpose_pb(p) for p in prefill.purposes],
            fee=fee_pb(prefill.fee, prefill.fee_groups),
            working_days=prefill.working_days,
        )

    async def Apply(self, request: pb.ApplyRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        behalf = None
        if request.HasField("on_behalf_of") and (
            request.on_behalf_of.subject_id_number or request.on_behalf_of.authorisation_reference
        ):
            behalf = Representation(
                request.on_behalf_of.subject_id_number, request.on_behalf_of.authorisation_reference
            )
        stored = await self._service.apply(
            self._me(), request.request_id, answers_of(request.answers), behalf, request.holder_jwk
        )
        return dossier_pb(stored, _now())

    async def ListMyDossiers(self, request: pb.ListMyDossiersRequest, context: grpc.aio.ServicerContext
                             ) -> pb.ListDossiersResponse:  # fmt: skip
        return _page(await self._service.mine(self._me(), request.page_size, request.page_token), _now())

    async def GetMyDossier(self, request: pb.DossierRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        return dossier_pb(await self._service.my_dossier(self._me(), request.id), _now())

    async def GetMyCredential(self, request: pb.DossierRequest, context: grpc.aio.ServicerContext) -> pb.Credential:
        return credential_pb(await self._service.my_credential(self._me(), request.id))


StatusChange = Callable[[Any, str, str, str], Awaitable[Any]]


class OfficersServicer(pb_grpc.OfficersServicer):
    def __init__(self, service: IssuanceService, status_store: Any | None) -> None:
        self._service = service
        self._status_store = status_store

    async def ListDossiers(self, request: pb.ListDossiersRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ListDossiersResponse:  # fmt: skip
        await self._service.officer(current_caller())
        status = None
        if request.status:
            status = PB_STATUS.get(request.status)
            if status is None:
                raise InvalidArgument("unknown dossier status")
        page = await self._service.officer_list(status, request.overdue_only, request.page_size, request.page_token)
        return _page(page, _now(), officer=True)

    async def GetDossier(self, request: pb.DossierRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        await self._service.officer(current_caller())
        return dossier_pb(await self._service.officer_dossier(request.id), _now(), officer=True)

    async def Approve(self, request: pb.DecisionRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        officer = await self._service.officer(current_caller())
        stored = await self._service.decide(officer, request.id, Event.APPROVE, request.reason)
        return dossier_pb(stored, _now(), officer=True)

    async def Reject(self, request: pb.DecisionRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        officer = await self._service.officer(current_caller())
        stored = await self._service.decide(officer, request.id, Event.REJECT, request.reason)
        return dossier_pb(stored, _now(), officer=True)

    async def _status(self, request: pb.StatusChangeRequest, name: str) -> pb.Dossier:
        officer = await self._service.officer(current_caller())
        key = str(_uuid(request.id))
        await self._service.officer_dossier(key)  # NOT_FOUND before anything else
        if self._status_store is None:  # pragma: no cover - until issuance.status_store is in the tree
            raise Unavailable("revocation is not available in this deployment yet")
        from issuance import revocation

        change: StatusChange = getattr(revocation, name)
        await change(self._status_store, key, request.reason, officer.client_id)
        return dossier_pb(await self._service.officer_dossier(key), _now(), officer=True)

    async def Revoke(self, request: pb.StatusChangeRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        return await self._status(request, "revoke")

    async def Suspend(self, request: pb.StatusChangeRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        return await self._status(request, "suspend")

    async def Reinstate(self, request: pb.StatusChangeRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        return await self._status(request, "reinstate")


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument("id must be a dossier id (a UUID)") from None


class AgencyRequestsServicer(pb_grpc.AgencyRequestsServicer):
    def __init__(self, service: IssuanceService) -> None:
        self._service = service

    async def ApplyAsAgency(self, request: pb.ApplyAsAgencyRequest, context: grpc.aio.ServicerContext
                            ) -> pb.Dossier:  # fmt: skip
        stored = await self._service.apply_as_agency(
            current_caller(), request.request_id, request.subject_id_number, request.form, request.legal_basis,
            request.purpose,
        )  # fmt: skip
        return dossier_pb(stored, _now())

    async def GetAgencyDossier(self, request: pb.DossierRequest, context: grpc.aio.ServicerContext) -> pb.Dossier:
        return dossier_pb(await self._service.agency_dossier(current_caller(), request.id), _now())

    async def GetIssuedCertificate(self, request: pb.DossierRequest, context: grpc.aio.ServicerContext
                                   ) -> pb.IssuedCertificate:  # fmt: skip
        stored = await self._service.agency_certificate(current_caller(), request.id)
        return pb.IssuedCertificate(credential=credential_pb(stored), pdf=stored.agency_pdf or b"")


class IssuerKeysServicer(pb_grpc.IssuerKeysServicer):
    def __init__(self, service: IssuanceService, issuer: str) -> None:
        self._service = service
        self._issuer = issuer

    async def GetIssuerKeys(self, request: pb.GetIssuerKeysRequest, context: grpc.aio.ServicerContext
                            ) -> pb.IssuerKeysResponse:  # fmt: skip
        keys = await self._service.issuer_keys()
        jwks = {"keys": [dict(k.public_jwk) | {"kid": k.kid} for k in keys if k.use == "credential"]}
        chain = "".join(k.chain_pem for k in keys if k.use == "document")
        if not keys:
            raise NotFound("the issuer has published no keys yet")
        return pb.IssuerKeysResponse(
            jwks=json.dumps(jwks, sort_keys=True), document_signing_chain_pem=chain, issuer=self._issuer
        )


async def _optional_status_store(
    pool: Any, settings: Settings
) -> tuple[Any | None, list[Callable[[], Awaitable[None]]]]:
    """The status list's store, published and kept fresh (``issuance.revocation``), when the module is present."""
    try:
        from issuance import revocation, status_store
    except ImportError:  # pragma: no cover - a tree without revocation yet
        log.warning("issuance.revocation_missing")
        return None, []
    store = status_store.status_store(pool, settings)
    await revocation.publish_initial(store)
    return store, [revocation.start_refresher(store)]


async def _optional_worker(settings: Settings, pool: Any) -> list[Callable[[], Awaitable[None]]]:
    """HOOK: the issuing worker (helper issuing, ``issuance.issuing.start_worker``): APPROVED → ISSUED."""
    try:
        from issuance import issuing
    except ImportError:  # pragma: no cover - a tree without the worker yet
        log.warning("issuance.worker_missing")
        return []
    start: Any = issuing.start_worker
    stop = start(settings, pool)
    if inspect.isawaitable(stop):
        stop = await stop
    return [stop]


async def build(settings: Settings) -> ServiceSpec:
    own = IssuanceSettings()
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    keys = key_provider(settings)
    registry = secure_channel(settings.registry_address, settings.tls_ca, settings.tls_cert, settings.tls_key,
                              server="registry")  # fmt: skip
    judicial = secure_channel(settings.judicial_address, settings.tls_ca, settings.tls_cert, settings.tls_key,
                              server="judicial")  # fmt: skip
    service = IssuanceService(
        PostgresDossierStore(pool),
        RegistryCitizens(registry),
        JudicialClient(judicial),
        PostgresAgencyDirectory(pool),
        Subjects(keys.key(purposes.OIDC_SUBJECT)),
        Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM)),
        own.policy,
        own.unit,
    )
    status_store, stops = await _optional_status_store(pool, settings)
    stops += await _optional_worker(settings, pool)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_CertificatesServicer_to_server(CertificatesServicer(service), server)
        pb_grpc.add_OfficersServicer_to_server(OfficersServicer(service, status_store), server)
        pb_grpc.add_AgencyRequestsServicer_to_server(AgencyRequestsServicer(service), server)
        pb_grpc.add_IssuerKeysServicer_to_server(IssuerKeysServicer(service, settings.issuer), server)

    async def stop() -> None:
        for halt in stops:
            await halt()
        await registry.close()
        await judicial.close()
        await pool.close()

    return ServiceSpec(
        name="issuance",
        service_names=NAMES,
        register=register,
        policy=POLICY,
        on_stop=[stop],
        verifier=token_verifier(settings, "issuance", pool),
    )
