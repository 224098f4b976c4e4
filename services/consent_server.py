"""gRPC translation for consent (protos/consent/v1/consent.proto); the rules live in ``consent.service``.

Who calls what (``POLICY``):

- agencies, by their client certificate alone (``spiffe://dinhdanh.gov.vn/agency/<client_id>``, RFC 8705 §2.1's
  PKI method: the certificate names the client): ``RequestConsent``, ``GetConsentStatus``, ``RevokeAsAgency``,
  ``SetNotificationUrl``; the agency is ``current_caller().name`` and must be a registered, enabled agency, and
  the certificate the one registered for it (``current_caller().cert_sha256`` equal to ``oidc.clients.cert_sha256``,
  checked by ``ConsentService.agency`` on every call; another is UNAUTHENTICATED, a reissued certificate's
  predecessor included);
- citizens, by an access token with the audience ``urn:dinhdanh:service:consent`` and the scope
  ``consent.manage`` through any platform peer: ``GrantConsent``, ``ListMyConsents``, ``GetMyConsent``,
  ``Approve``, ``Reject``, ``Pause``, ``Resume``, ``Revoke``; the four decisions also admit an agency's
  certificate, only for ``consent.states`` to refuse it (an agency never decides for the citizen);
- any platform peer (services, operators, agencies): ``ListPurposes``, ``GetSigningKeys``.

Besides the RPCs the process runs the expiry sweeper (``consent_expiry_interval``) and the notification
sender (``consent_notify_interval``, ``consent.notifications``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from audit.events import PostgresAuditLog, Pseudonymizer
from consent.artefact import MAX_DATA_LIFE, Frequency, FrequencyUnit
from consent.notifications import Backoff, PostgresOutbox, Sender, check_url
from consent.pg_store import PostgresAgencies, PostgresConsentStore
from consent.purposes import CATALOG
from consent.service import Citizen, ConsentService, Record, Terms
from consent.signing import ConsentKey
from consent.states import Event, Status
from core.callers import Allow, current_caller, current_principal
from core.errors import InvalidArgument
from core.keys import purposes
from core.settings import Settings, key_provider
from db.pool import open_pool
from identity.oidc.subjects import Subjects
from protos.consent.v1 import consent_pb2 as pb
from protos.consent.v1 import consent_pb2_grpc as pb_grpc
from protos.vault.v1 import vault_pb2
from services.server import ServiceSpec, token_verifier
from vault.documents import DocumentType

NAME = pb.DESCRIPTOR.services_by_name["Consent"].full_name
AGENCIES = Allow.of(agencies=True)
CITIZENS = Allow.of(citizens=True, scopes=("consent.manage",))
PLATFORM = Allow.of(
    services=("edge", "portal", "registry", "identity", "vault", "consent", "log", "issuance"),
    operators=True,
    agencies=True,
)
POLICY = {
    f"/{NAME}/{method}": AGENCIES
    for method in ("RequestConsent", "GetConsentStatus", "RevokeAsAgency", "SetNotificationUrl")
}
# The citizen's decisions also admit an agency's certificate, so that an agency trying one is refused by the
# state machine itself (an agency may never cause APPROVE, REJECT, PAUSE, RESUME: PERMISSION_DENIED, audited).
DECISIONS = Allow.of(citizens=True, scopes=("consent.manage",), agencies=True)
POLICY |= {f"/{NAME}/{method}": CITIZENS for method in ("GrantConsent", "ListMyConsents", "GetMyConsent", "Revoke")}
POLICY |= {f"/{NAME}/{method}": DECISIONS for method in ("Approve", "Reject", "Pause", "Resume")}
POLICY |= {f"/{NAME}/{method}": PLATFORM for method in ("ListPurposes", "GetSigningKeys")}

STATUS_PB = {status: pb.ConsentStatus.Value(f"CONSENT_STATUS_{status.value}") for status in Status}
PB_STATUS = {number: status for status, number in STATUS_PB.items()}
UNIT_PB = {unit: pb.FrequencyUnit.Value(f"FREQUENCY_UNIT_{unit.value}") for unit in FrequencyUnit}
PB_UNIT = {number: unit for unit, number in UNIT_PB.items()}
TYPE_PB = {kind: vault_pb2.DocumentType.Value(f"DOCUMENT_TYPE_{kind.name}") for kind in DocumentType}
PB_TYPE = {number: kind for kind, number in TYPE_PB.items()}


def _timestamp(instant: datetime | None) -> Timestamp | None:
    if instant is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(instant.astimezone(UTC))
    return stamp


def _instant(message: pb.ConsentTerms, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    try:
        return getattr(message, name).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{name} is not a representable instant") from None


def _consent_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument("id must be a consent id (a UUID)") from None


def terms_of(message: pb.ConsentTerms) -> Terms:
    """The domain's terms from the protobuf (INVALID_ARGUMENT on ids, types and units it cannot name)."""
    try:
        documents = tuple(uuid.UUID(text) for text in message.document_ids)
    except ValueError:
        raise InvalidArgument("document_ids must be vault document ids (UUIDs)") from None
    kinds = []
    for number in message.document_types:
        if number not in PB_TYPE:
            raise InvalidArgument("unknown document type")
        kinds.append(PB_TYPE[number])
    frequency = None
    if message.HasField("frequency") and (message.frequency.count or message.frequency.unit):
        unit = PB_UNIT.get(message.frequency.unit)
        if unit is None:
            raise InvalidArgument("frequency.unit must be HOUR, DAY or MONTH")
        frequency = Frequency(message.frequency.count, unit)
    if message.data_life_seconds > MAX_DATA_LIFE.total_seconds():
        raise InvalidArgument(f"data_life must be 0..{MAX_DATA_LIFE.days} days")
    return Terms(
        purpose=message.purpose,
        documents=documents,
        document_types=tuple(kinds),
        start=_instant(message, "start"),
        expiry=_instant(message, "expiry"),
        data_life=timedelta(seconds=message.data_life_seconds),
        max_fetches=message.max_fetches,
        frequency=frequency,
    )


def record_pb(record: Record) -> pb.ConsentRecord:
    stored = record.consent
    artefact = stored.artefact
    terms = pb.ConsentTerms(
        purpose=artefact.purpose,
        document_ids=[str(document) for document in artefact.documents],
        document_types=[TYPE_PB[kind] for kind in artefact.document_types],  # type: ignore[misc]
        start=_timestamp(artefact.start),
        expiry=_timestamp(artefact.expiry),
        data_life_seconds=int(artefact.data_life.total_seconds()),
        max_fetches=artefact.max_fetches,
        frequency=pb.Frequency(count=artefact.frequency.count, unit=UNIT_PB[artefact.frequency.unit]),  # type: ignore[arg-type]
    )
    return pb.ConsentRecord(
        id=str(artefact.id),
        client_id=artefact.client_id,
        agency_name=record.agency_name,
        terms=terms,
        purpose_text=artefact.purpose_text,
        purpose_text_en=CATALOG[artefact.purpose].text_en if artefact.purpose in CATALOG else "",
        status=STATUS_PB[stored.status],  # type: ignore[arg-type]
        created_at=_timestamp(artefact.created_at),
        approved_at=_timestamp(artefact.approved_at),
        status_changed_at=_timestamp(stored.status_changed_at),
        fetches=stored.counters.fetches,
        last_fetch=_timestamp(stored.counters.last_fetch),
        artefact_jws=stored.signature,
    )


class ConsentServicer(pb_grpc.ConsentServicer):
    def __init__(self, service: ConsentService, loopback_http: bool = False) -> None:
        self._service = service
        self._loopback_http = loopback_http

    def _citizen(self) -> Citizen:
        principal = current_principal()
        return self._service.citizen(principal.subject, principal.sector)

    @staticmethod
    def _agency() -> str:
        return current_caller().name

    # --- agencies ----------------------------------------------------------------------------------------

    async def RequestConsent(self, request: pb.RequestConsentRequest, context: grpc.aio.ServicerContext
                             ) -> pb.ConsentRecord:  # fmt: skip
        record = await self._service.request(self._agency(), request.citizen_id_number, terms_of(request.terms))
        return record_pb(record)

    async def GetConsentStatus(self, request: pb.GetConsentStatusRequest, context: grpc.aio.ServicerContext
                               ) -> pb.SignedConsentStatus:  # fmt: skip
        signed = await self._service.status(self._agency(), _consent_id(request.id))
        return pb.SignedConsentStatus(status=STATUS_PB[signed.status], fetches=signed.fetches, jws=signed.jws)  # type: ignore[arg-type]

    async def RevokeAsAgency(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext
                             ) -> pb.ConsentRecord:  # fmt: skip
        return record_pb(await self._service.revoke_as_agency(self._agency(), _consent_id(request.id)))

    async def SetNotificationUrl(self, request: pb.SetNotificationUrlRequest, context: grpc.aio.ServicerContext
                                 ) -> pb.SetNotificationUrlResponse:  # fmt: skip
        url = check_url(request.url, self._loopback_http)
        return pb.SetNotificationUrlResponse(url=await self._service.set_notification_url(self._agency(), url))

    # --- citizens ----------------------------------------------------------------------------------------

    async def GrantConsent(self, request: pb.GrantConsentRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ConsentRecord:  # fmt: skip
        citizen = self._citizen()
        return record_pb(await self._service.grant(citizen, request.client_id, terms_of(request.terms)))

    async def ListMyConsents(self, request: pb.ListMyConsentsRequest, context: grpc.aio.ServicerContext
                             ) -> pb.ListMyConsentsResponse:  # fmt: skip
        status = None
        if request.status:
            status = PB_STATUS.get(request.status)
            if status is None:
                raise InvalidArgument("unknown consent status")
        records, token = await self._service.list(self._citizen(), status, request.page_size, request.page_token)
        return pb.ListMyConsentsResponse(consents=[record_pb(r) for r in records], next_page_token=token)

    async def GetMyConsent(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ConsentRecord:  # fmt: skip
        return record_pb(await self._service.mine(self._citizen(), _consent_id(request.id)))

    async def _decide(self, request: pb.ConsentIdRequest, event: Event) -> pb.ConsentRecord:
        consent_id, caller = _consent_id(request.id), current_caller()
        if caller.principal is None and caller.kind == "agency":  # refused by the domain (consent.states)
            return record_pb(await self._service.decide_as_agency(caller.name, consent_id, event))
        return record_pb(await self._service.decide(self._citizen(), consent_id, event))

    async def Approve(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext) -> pb.ConsentRecord:
        return await self._decide(request, Event.APPROVE)

    async def Reject(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext) -> pb.ConsentRecord:
        return await self._decide(request, Event.REJECT)

    async def Pause(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext) -> pb.ConsentRecord:
        return await self._decide(request, Event.PAUSE)

    async def Resume(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext) -> pb.ConsentRecord:
        return await self._decide(request, Event.RESUME)

    async def Revoke(self, request: pb.ConsentIdRequest, context: grpc.aio.ServicerContext) -> pb.ConsentRecord:
        return await self._decide(request, Event.REVOKE)

    # --- anyone on the platform --------------------------------------------------------------------------

    async def ListPurposes(self, request: pb.ListPurposesRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ListPurposesResponse:  # fmt: skip
        return pb.ListPurposesResponse(
            purposes=[
                pb.Purpose(code=p.code, text_vi=p.text_vi, text_en=p.text_en, legal_basis="; ".join(p.legal_basis))
                for p in CATALOG.values()
            ]
        )

    async def GetSigningKeys(self, request: pb.GetSigningKeysRequest, context: grpc.aio.ServicerContext
                             ) -> pb.SigningKeys:  # fmt: skip
        return pb.SigningKeys(jwks_json=json.dumps(await self._service.jwks(), sort_keys=True))


def _loop(interval: float, run: Callable[[float], Awaitable[None]]) -> asyncio.Task[None] | None:
    return asyncio.create_task(run(interval)) if interval else None  # type: ignore[arg-type]


async def build(settings: Settings) -> ServiceSpec:
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    keys = key_provider(settings)
    key = ConsentKey.from_seed(keys.key(purposes.CONSENT_SIGNING))
    store = PostgresConsentStore(pool, {key.kid: key.public})
    await store.publish_key(key)
    service = ConsentService(
        store,
        PostgresAgencies(pool),
        key,
        PostgresAuditLog(pool),
        Subjects(keys.key(purposes.OIDC_SUBJECT)),
        Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM)),
        settings.issuer,
    )
    servicer = ConsentServicer(service, settings.consent_notify_loopback_http)
    http = httpx.AsyncClient(timeout=settings.consent_notify_timeout, follow_redirects=False)
    backoff = Backoff(
        settings.consent_notify_initial_backoff, settings.consent_notify_max_backoff, settings.consent_notify_give_up
    )
    sender = Sender(PostgresOutbox(pool), key, settings.issuer, http, backoff)
    loops = [
        task
        for task in (
            _loop(settings.consent_expiry_interval, service.run_expiry),
            _loop(settings.consent_notify_interval, sender.run_forever),
        )
        if task is not None
    ]

    async def stop_loops() -> None:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await http.aclose()

    return ServiceSpec(
        name="consent",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_ConsentServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[stop_loops, pool.close],
        verifier=token_verifier(settings, "consent", pool),
    )
