"""The issuing worker: APPROVED dossiers become signed certificates, delivered into the citizen's vault.

Each round (every ``DINHDANH_ISSUANCE_ISSUE_INTERVAL`` seconds, or at once after a round that found work) the
worker claims due APPROVED dossiers (``issuance.issuing_store``: ``FOR NO KEY UPDATE SKIP LOCKED``, so several
replicas never hold one dossier at once; a lease keeps a claimed dossier from every other worker while it is
issued) and issues each, at most ``DINHDANH_ISSUANCE_ISSUE_CONCURRENCY`` at a time:

1. its inputs: the stored dossier and the application as filed (``issuance.store.application_of``: the 23 fields
   as submitted, never refilled), the registry's record of the subject (``GetCitizen``) and the judicial record
   (``JudicialRecords.GetRecord``, read on the day of issue: Law on Judicial Records 2009 Art. 42-43 certify the
   record as it stands when the certificate is issued);
2. the status list covers its ``status_index`` (``issuance.revocation.cover``);
3. the certificate (``issuance.certificates.issue_criminal_record_certificate``: SD-JWT VC, QR, PAdES-signed PDF
   with its QR text in ``/Subject``, and the vault delivery's issuer signature) is built in a process pool of
   ``DINHDANH_ISSUANCE_ISSUE_PROCESSES`` processes (CPU-bound, about 0.1 s; 0: a thread of this process), each
   holding the issuer key (ISSUANCE_SIGNING) and the document signer (ISSUANCE_DOCUMENT with its certificate);
4. a citizen's request (SELF, REPRESENTATIVE) is delivered into the subject's vault (``issuance.delivery``:
   ``DeliverIssuedDocument``, type CRIMINAL_RECORD_CERTIFICATE, ``issuer_document_id`` = ``certificate_id``); an
   agency's request (AGENCY, PROCEDURAL_AUTHORITY, Art. 45-46) is kept for the agency (``agency_pdf``), not
   delivered into a vault;
5. in one transaction: ISSUED (``issuance.dossiers`` ISSUE, actor SYSTEM) with the credential, QR text, vault
   document id, ``issued_at`` and ``credential_status`` VALID, its ``dossier_events`` row and an ``audit.events``
   row (action ``issuance.issue``, actor ``system``).

A failure at any step leaves the dossier APPROVED: ``issue_attempts`` + 1, ``issue_error`` (one sentence, never
a secret), and ``next_issue_at`` after a back-off (``ISSUE_BACKOFF`` doubling up to ``ISSUE_MAX_BACKOFF``
seconds, with ±25 % jitter). An issue interrupted after the delivery and before the commit (the process killed)
is settled by doing it again once the lease has run out: the same ``certificate_id`` and ``status_index``, and
the vault returns the document already delivered, so the citizen holds exactly one.

What the credential says about where it comes from: ``iss`` is the edge's URL (``DINHDANH_ISSUER``, where
``/.well-known/jwt-vc-issuer`` publishes the keys), ``status.status_list.uri`` ``{issuer}/statuslists/0``, and
the PDF's verification link ``{issuer}/verify``. A dossier without a holder key (an agency's request) gets a
credential bound to a key made for it and forgotten at once: the agency keeps the PDF and the credential, no one
can present it with key binding.

On start the worker writes the issuer's public keys into ``issuance.issuer_keys`` (the credential key, use
``credential``; the document-signing key with its chain, use ``document``), which the edge publishes.

``start_worker(settings, pool) -> stop`` is what ``services.issuance_server.build`` calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.events import AuditEvent
from core import logs
from core.errors import DomainError, InvalidArgument, NotFound, Unavailable
from core.keys import purposes
from core.settings import Settings, key_provider
from issuance.application import Application
from issuance.certificates import issue_criminal_record_certificate
from issuance.delivery import ClientCredentials, DeliveryError, VaultDeliverer
from issuance.issuer_keys import ALGORITHM, SigningKey
from issuance.issuing_store import Claim, IssuingStore, Outcome, PostgresIssuingStore, PublishedKey
from issuance.judicial import JudicialRecord
from issuance.pades import DocumentSigner
from issuance.store import StoredDossier, application_of
from registry.citizen import Citizen
from vault.documents import DocumentType

log = logs.get("issuance.issuing")

STATUS_LIST = 0
ACTION = "issuance.issue"
SIGNER_NAME = "Trung tâm Lý lịch tư pháp quốc gia"
JUDICIAL_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1  # prctl(2)


class IssuingSettings(BaseSettings):
    """``DINHDANH_ISSUANCE_*`` of the issuing worker. The client id and secret and the document certificate's
    paths are given by the stack (``stack/issuers.py``)."""

    model_config = SettingsConfigDict(env_prefix="DINHDANH_ISSUANCE_", extra="ignore")

    client_id: str = ""  # the agency client the issuance service delivers as (scope vault.issue)
    client_secret: SecretStr = SecretStr("")
    document_cert: Path | None = None  # the document-signing certificate (PEM), issued by the platform CA
    document_chain: Path | None = None  # its chain (the CA certificates, PEM)
    worker: bool = True  # false: this replica serves RPCs and issues nothing
    issue_processes: int = Field(default=2, ge=0)  # the certificate builders' processes; 0: a thread here
    issue_concurrency: int = Field(default=4, ge=1)  # dossiers being issued at once
    issue_batch: int = Field(default=8, ge=1)  # dossiers claimed a round (at most the free places)
    issue_interval: float = Field(default=0.25, gt=0)  # seconds between rounds that found nothing due
    issue_lease: float = Field(default=120, gt=0)  # seconds a claimed dossier is left to its worker
    issue_backoff: float = Field(default=2, gt=0)  # seconds before the first retry of a failed issue
    issue_max_backoff: float = Field(default=900, gt=0)  # the back-off doubles up to this


# ---------------------------------------------------------------------------------------------------------------
# Building, in a process pool.


@dataclass(frozen=True, slots=True)
class Job:
    """Everything one certificate is made of (picklable: it crosses into a builder process)."""

    citizen: Citizen
    record: JudicialRecord
    application: Application
    certificate_id: str
    status_index: int
    status_uri: str
    issuer: str
    holder_jwk: Mapping[str, Any]
    at: datetime
    verify_url: str
    client_id: str


@dataclass(frozen=True, slots=True)
class Built:
    """What a builder returns: the credential, the QR text, the signed PDF and what its delivery needs."""

    credential: str
    qr_text: str
    pdf: bytes
    title: str
    filename: str
    issued_on: Any  # date
    expires_on: Any  # date | None
    issuer_signature: bytes


@dataclass(frozen=True)
class SigningMaterial:
    """The seeds and certificates a builder signs with (handed to each builder process once, at its start)."""

    issuer_seed: bytes
    document_seed: bytes
    certificate_pem: bytes
    chain_pem: bytes
    issuer_token: tuple[Path, str, Path] | None = None  # the issuer key in a PKCS#11 token: module, label, PIN file

    def __repr__(self) -> str:
        return "SigningMaterial(<hidden>)"

    @property
    def issuer_key(self) -> SigningKey:
        """From the seed, or the ``issuance-signing`` key of the token (each builder process opens its own
        session: ``core.keys.pkcs11``)."""
        if self.issuer_token is None:
            return SigningKey.from_seed(self.issuer_seed)
        from core.keys.pkcs11 import Token

        token = Token.open(*self.issuer_token)
        return SigningKey.from_signer(token.signer(purposes.ISSUANCE_SIGNING, ALGORITHM))

    def document_signer(self) -> DocumentSigner:
        key = SigningKey.from_seed(self.document_seed).private.private_key
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
        return DocumentSigner.from_pem(pem, self.certificate_pem, self.chain_pem, name=SIGNER_NAME)


@dataclass(frozen=True)
class _Signers:
    issuer_key: SigningKey
    document_signer: DocumentSigner


_SIGNERS: _Signers | None = None


def _load(material: SigningMaterial) -> _Signers:
    return _Signers(material.issuer_key, material.document_signer())


def _init_builder(material: SigningMaterial, parent: int) -> None:
    """A builder process's start: its signing keys, once; and it ends with the service that started it (a killed
    service must not leave builders holding its keys)."""
    global _SIGNERS
    _exit_with_parent(parent)  # the service's pid, given: a builder may start after its parent died
    _SIGNERS = _load(material)


def _exit_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # Linux: the kernel sends SIGKILL when the parent dies
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(0)

    def watch() -> None:  # elsewhere: the parent's death seen as a change of parent
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _build_with(signers: _Signers, job: Job) -> Built:
    issued = issue_criminal_record_certificate(
        citizen=job.citizen,
        record=job.record,
        application=job.application,
        certificate_id=job.certificate_id,
        status_index=job.status_index,
        status_uri=job.status_uri,
        issuer=job.issuer,
        issuer_key=signers.issuer_key,
        document_signer=signers.document_signer,
        holder_jwk=job.holder_jwk,
        at=job.at,
        verify_url=job.verify_url,
    )
    delivery = issued.delivery
    return Built(
        credential=issued.credential,
        qr_text=issued.qr_text,
        pdf=issued.pdf,
        title=delivery.title,
        filename=delivery.filename,
        issued_on=delivery.issued_on,
        expires_on=delivery.expires_on,
        issuer_signature=delivery.issuer_signature(signers.issuer_key, job.client_id),
    )


def _build_in_process(job: Job) -> Built:
    assert _SIGNERS is not None, "the builder process was not initialised"
    return _build_with(_SIGNERS, job)


class Builder(Protocol):
    async def build(self, job: Job) -> Built: ...

    async def close(self) -> None: ...


class PoolBuilder:
    """Certificates built in ``processes`` spawned processes (each loads the keys once), or in a thread of this
    process when ``processes`` is 0."""

    def __init__(self, material: SigningMaterial, processes: int) -> None:
        self._executor: concurrent.futures.Executor
        if processes > 0:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("spawn"), initializer=_init_builder,
                initargs=(material, os.getpid()),
            )  # fmt: skip
            self._signers: _Signers | None = None
        else:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="issuing")
            self._signers = _load(material)

    async def build(self, job: Job) -> Built:
        loop = asyncio.get_running_loop()
        if self._signers is not None:
            return await loop.run_in_executor(self._executor, _build_with, self._signers, job)
        try:
            return await loop.run_in_executor(self._executor, _build_in_process, job)
        except concurrent.futures.process.BrokenProcessPool:
            raise Unavailable("a certificate builder process died; the issue will be tried again") from None

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------------------
# The inputs' sources.


class Citizens(Protocol):
    async def citizen(self, id_number: str) -> Citizen | None: ...


class Records(Protocol):
    async def record(self, id_number: str) -> JudicialRecord: ...


class Deliverer(Protocol):
    async def deliver(self, **kwargs: Any) -> Any: ...


class GrpcRecords:
    """``JudicialRecords.GetRecord`` as the service issuance."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        from protos.issuance.v1 import judicial_pb2_grpc as jpb_grpc

        self._stub = jpb_grpc.JudicialRecordsStub(channel)

    async def record(self, id_number: str) -> JudicialRecord:
        from protos.issuance.v1 import judicial_pb2 as jpb
        from services.judicial_codec import record_from_pb

        try:
            message = await self._stub.GetRecord(jpb.GetRecordRequest(id_number=id_number), timeout=JUDICIAL_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise Unavailable(f"the judicial records cannot be read now ({error.code().name})") from None
        return record_from_pb(message)


# ---------------------------------------------------------------------------------------------------------------
# The worker.


@dataclass(frozen=True)
class WorkerConfig:
    issuer: str  # the edge's URL: the credentials' iss
    client_id: str  # the agency client delivering into vaults
    concurrency: int = 4
    batch: int = 8
    interval: float = 0.25
    lease: float = 120.0
    backoff: float = 2.0
    max_backoff: float = 900.0

    @property
    def status_uri(self) -> str:
        return f"{self.issuer.rstrip('/')}/statuslists/{STATUS_LIST}"

    @property
    def verify_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/verify"


def retry_delay(attempts: int, config: WorkerConfig) -> float:
    """The back-off after the ``attempts``-th failure (from 1): ``backoff`` doubling, at most ``max_backoff``,
    ±25 % jitter so replicas do not retry in step."""
    base = min(config.max_backoff, config.backoff * 2 ** min(attempts - 1, 30))
    return base * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not a secret


def describe(error: BaseException) -> str:
    """One sentence for ``issue_error``: a domain or delivery error's message, otherwise only its type."""
    if isinstance(error, DeliveryError | DomainError):
        return f"{type(error).__name__}: {error}"
    if isinstance(error, grpc.aio.AioRpcError):
        return f"gRPC {error.code().name}"
    return f"{type(error).__name__} (see the issuance log)"


class IssuingWorker:
    """Claims and issues (see the module docstring). ``run`` until stopped; ``round`` once (tests)."""

    def __init__(
        self,
        store: IssuingStore,
        citizens: Citizens,
        records: Records,
        deliverer: Deliverer,
        builder: Builder,
        config: WorkerConfig,
        cover: Callable[[int], Awaitable[None]] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._citizens = citizens
        self._records = records
        self._deliverer = deliverer
        self._builder = builder
        self._config = config
        self._cover = cover
        self._now = now
        self._slots = asyncio.Semaphore(config.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.issued = 0  # dossiers this worker settled as ISSUED
        self.failures = 0

    def wake(self) -> None:
        """Look for due dossiers now (after an approval in this process)."""
        self._wake.set()

    async def round(self) -> int:
        """Claim what is due (as many as there are free places) and start issuing it; the number claimed."""
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        claims = await self._store.claim(min(free, self._config.batch), self._config.lease)
        for claim in claims:
            task = asyncio.create_task(self._issue(claim))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claims)

    async def drain(self) -> None:
        """Until every issue started has finished."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                claimed = await self.round()
            except Unavailable:
                claimed = 0
                log.warning("issuance.issuing.database_unavailable")
            except Exception as error:  # a bad round must not end the worker
                claimed = 0
                log.error("issuance.issuing.round_failed", error=type(error).__name__)
            if claimed and len(self._in_flight) < self._config.concurrency:
                continue
            waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(self._wake.wait())]
            if self._in_flight:
                waits.append(asyncio.ensure_future(asyncio.wait(set(self._in_flight))))
            _done, pending = await asyncio.wait(waits, timeout=self._config.interval, return_when="FIRST_COMPLETED")
            for waiting in pending:
                waiting.cancel()
            self._wake.clear()

    async def stop(self) -> None:
        """Cancel what is in flight (its dossiers are due again once their lease runs out)."""
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def _issue(self, claim: Claim) -> None:
        try:
            outcome, stored = await self._make(claim)
            settled = await self._store.settle(claim, outcome, self._audit(claim, stored, outcome))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failures += 1
            delay = retry_delay(claim.attempts + 1, self._config)
            log.warning("issuance.issuing.failed", dossier_id=str(claim.dossier_id), attempt=claim.attempts + 1,
                        error=describe(error), retry_in=round(delay, 1))  # fmt: skip
            with contextlib.suppress(Exception):
                await self._store.failed(claim, describe(error), delay)
            return
        if settled:
            self.issued += 1
            log.info("issuance.issuing.issued", dossier_id=str(claim.dossier_id), certificate_id=claim.certificate_id)

    @staticmethod
    def _audit(claim: Claim, stored: StoredDossier, outcome: Outcome) -> AuditEvent:
        """The audit row of the issue, as ``issuance.service`` writes a status change's (the subject's pseudonym)."""
        detail: dict[str, Any] = {"dossier_id": str(claim.dossier_id), "tracking_number": stored.tracking_number,
                                  "form": int(stored.form), "requester": claim.requester.value, "status": "ISSUED",
                                  "certificate_id": claim.certificate_id,
                                  "delivered": outcome.vault_document_id is not None}  # fmt: skip
        return AuditEvent("system", ACTION, "success", stored.subject, None, detail)

    async def _make(self, claim: Claim) -> tuple[Outcome, StoredDossier]:
        stored = await self._store.dossier(claim.dossier_id)
        if stored is None:
            raise NotFound("the dossier is gone")
        application = application_of(stored)
        citizen = await self._citizens.citizen(claim.id_number)
        if citizen is None:
            raise NotFound("the population registry does not know the subject")
        record = await self._records.record(claim.id_number)
        if self._cover is not None:
            await self._cover(claim.status_index)
        at = self._now()
        job = Job(
            citizen=citizen,
            record=record,
            application=application,
            certificate_id=claim.certificate_id,
            status_index=claim.status_index,
            status_uri=self._config.status_uri,
            issuer=self._config.issuer,
            holder_jwk=dict(claim.holder_jwk) if claim.holder_jwk else SigningKey.generate().public_jwk,
            at=at,
            verify_url=self._config.verify_url,
            client_id=self._config.client_id,
        )
        built = await self._builder.build(job)
        if claim.for_agency:
            return Outcome(built.credential, built.qr_text, None, built.pdf, at), stored
        document = await self._deliverer.deliver(
            citizen_id_number=claim.id_number,
            issuer_document_id=claim.certificate_id,
            document_type=DocumentType.CRIMINAL_RECORD_CERTIFICATE,
            title=built.title,
            filename=built.filename,
            content=built.pdf,
            issuer_signature=built.issuer_signature,
            issued_on=built.issued_on,
            expires_on=built.expires_on,
        )
        return Outcome(built.credential, built.qr_text, str(document.id), None, at), stored


# ---------------------------------------------------------------------------------------------------------------
# The service's hook.


def signing_material(settings: Settings, own: IssuingSettings) -> SigningMaterial:
    """The issuer seed, the document-signing seed and its certificate and chain; a missing piece stops the start
    with one line."""
    keys = key_provider(settings)
    if own.document_cert is None or not own.document_cert.is_file():
        raise SystemExit("DINHDANH_ISSUANCE_DOCUMENT_CERT is not a readable file: the document-signing certificate")
    chain = own.document_chain.read_bytes() if own.document_chain and own.document_chain.is_file() else b""
    if settings.key_backend == "pkcs11" and settings.pkcs11_pin_file is not None:  # the issuer key in the token
        token = (settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin_file)  # (the PAdES key: a seed)
        material = SigningMaterial(b"", keys.key(purposes.ISSUANCE_DOCUMENT), own.document_cert.read_bytes(), chain,
                                   issuer_token=token)  # fmt: skip
    else:
        material = SigningMaterial(keys.key(purposes.ISSUANCE_SIGNING), keys.key(purposes.ISSUANCE_DOCUMENT),
                                   own.document_cert.read_bytes(), chain)  # fmt: skip
    try:
        material.document_signer()
    except InvalidArgument as error:
        raise SystemExit(f"the document-signing certificate cannot be used: {error}") from None
    return material


def _credentials(own: IssuingSettings, key: SigningKey) -> ClientCredentials:
    """The vault.issue client's credential: its signing key (``private_key_jwt`` + DPoP, FAPI 2.0; stack/issuers.py
    registers its public key), or the secret of one still on the plain profile (docs/fapi.md, Agencies)."""
    secret = own.client_secret.get_secret_value()
    if secret:
        return ClientCredentials(own.client_id, secret)
    return ClientCredentials(own.client_id, key=key.private, kid=key.kid)


def published_keys(material: SigningMaterial) -> list[PublishedKey]:
    """The issuer's public keys as ``issuance.issuer_keys`` holds them."""
    issuer = material.issuer_key
    document = SigningKey.from_seed(material.document_seed)
    chain = material.certificate_pem.decode().strip() + "\n" + material.chain_pem.decode().strip() + "\n"
    certificate = x509.load_pem_x509_certificate(material.certificate_pem)
    if certificate.public_key() != document.private.private_key.public_key():
        raise SystemExit("the document-signing certificate is not for the ISSUANCE_DOCUMENT key")
    return [
        PublishedKey(issuer.kid, "credential", issuer.public_jwk),
        PublishedKey(document.kid, "document", document.public_jwk, chain.strip() + "\n"),
    ]


async def start_worker(
    settings: Settings, pool: asyncpg.Pool, *, own: IssuingSettings | None = None
) -> Callable[[], Awaitable[None]]:
    """Publish the issuer's keys and start the issuing worker on ``pool`` (the service's, role
    ``dinhdanh_issuance``); returns the coroutine function that stops it (in-flight issues are cancelled and
    retried after their lease). With ``DINHDANH_ISSUANCE_WORKER=false`` only the keys are published."""
    own = own or IssuingSettings()
    material = signing_material(settings, own)
    store = PostgresIssuingStore(pool)
    await store.publish_keys(published_keys(material))
    if not own.worker:
        return _nothing
    if not own.client_id:
        raise SystemExit("DINHDANH_ISSUANCE_CLIENT_ID is not set: the vault.issue client")
    from services.registry_client import RegistryCitizens
    from services.tls import secure_channel

    registry = secure_channel(settings.registry_address, settings.tls_ca, settings.tls_cert, settings.tls_key,
                              server="registry")  # fmt: skip
    judicial = secure_channel(settings.judicial_address, settings.tls_ca, settings.tls_cert, settings.tls_key,
                              server="judicial")  # fmt: skip
    deliverer = VaultDeliverer(
        issuer=settings.issuer,
        credentials=_credentials(own, material.issuer_key),
        vault_address=settings.vault_address,
        tls_ca=settings.tls_ca,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
    )
    cover = await _status_cover(pool, settings)
    builder = PoolBuilder(material, own.issue_processes)
    config = WorkerConfig(settings.issuer, own.client_id, own.issue_concurrency, own.issue_batch,
                          own.issue_interval, own.issue_lease, own.issue_backoff, own.issue_max_backoff)  # fmt: skip
    worker = IssuingWorker(store, RegistryCitizens(registry), GrpcRecords(judicial), deliverer, builder, config,
                           cover)  # fmt: skip
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    log.info("issuance.issuing.started", processes=own.issue_processes, concurrency=own.issue_concurrency)

    async def stop() -> None:
        stopping.set()
        await worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await builder.close()
        await deliverer.close()
        await registry.close()
        await judicial.close()

    return stop


async def _status_cover(pool: asyncpg.Pool, settings: Settings) -> Callable[[int], Awaitable[None]] | None:
    """``issuance.revocation.cover`` on the process's status store, when the module is present."""
    try:
        from issuance import revocation, status_store
    except ImportError:  # pragma: no cover - a tree without revocation
        return None
    store = status_store.status_store(pool, settings)

    async def cover(index: int) -> None:
        await revocation.cover(store, index)

    return cover


async def _nothing() -> None:
    return None


__all__ = ["IssuingSettings", "IssuingWorker", "WorkerConfig", "start_worker"]
