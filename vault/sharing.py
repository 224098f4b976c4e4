"""Agency fetches under a consent (issue 10, item 3): list and download what a consent artefact covers.

The caller is an agency over mutual TLS with its own certificate, presenting a consent token bound to that
certificate (RFC 8705 §3, checked by the transport and ``Allow.bound_agency``) with exactly one authorization
detail of type ``consent`` (RFC 9396 §2) naming the artefact and the purpose (``grant_of``).

Every fetch is decided in one place, ``consent.fetch_policy.decide``, run by the consent store's
``charge_fetch`` with the consent's row locked and the counters written in the same transaction: concurrent
fetches cannot overspend a grant. What the vault contributes is the document as it knows it
(``RequestedDocument``): its id, its type, and its owner, which is the artefact's subject exactly when the
document (latest version, not deleted, not shredded) is in the consenting citizen's vault (the artefact's
``citizen_sub`` → ID number → the vault's owner reference). A document of another citizen and an unknown id are
the same to this code: neither is looked up anywhere else, its type is not known here, so the answer is what the
grant alone says (``DOCUMENT_NOT_IN_GRANT``, or ``NOT_THE_CITIZENS`` when the grant names that id or every type),
and nothing of another citizen is read, let alone revealed.

A listing passes ``consent.fetch_policy.gate`` (agency, purpose, status, window) and returns the citizen's
documents the grant covers (by id or type), newest first, paged; it charges no use (it serves no content).

What is cached: only what never changes for a consent id — the artefact's subject and grant (approval only adds
``approved_at``) and the citizen it names — which a download uses to find the document before its charge; the
charge itself decides on the row as stored. Never the status nor the counters: every fetch reads
them in its charge, with the row locked, so a revocation or pause refuses the very next fetch (no cache outlives
it), and a listing reads the status afresh each time.

A download is charged before any byte is served (the charge commits first), then streamed through the same code
path as the citizen's own Download (``VaultService.serve``: decrypted and verified segment by segment). A use is
spent once the charge commits: if the stream then fails (S3, a damaged object, the agency going away), the use
stays spent and is never given back — a partial stream may have delivered most of the document, and a refund
would let an agency read beyond its grant by cancelling; the agency fetches again with its next use. So the
counters never exceed what the artefact allows.

Audit: every listing and fetch, allowed or refused, appends one ``audit.events`` row: actor ``agency:<client_id>``
(the peer), action ``consent.list`` / ``consent.fetch``, outcome ``success`` / ``refused``, subject the
artefact's subject (the citizen's audit pseudonym, the namespace of ``vault.trail``), and the detail
``{consent_id, client_id, purpose, document_id, reason}`` only — no title, file name nor ID number, as these rows
feed the public transparency log. A fetch's row is durable before its first byte leaves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from audit.events import AuditEvent, AuditLog, Pseudonymizer
from consent.artefact import ConsentArtefact
from consent.fetch_policy import Allowed, Decision, Denied, FetchDenied, FetchRequest, RequestedDocument, gate
from consent.storage import StoredConsent
from core import metrics
from core.callers import CONSENT_DETAIL, Principal, TokenForbidden, current_caller
from vault.documents import Document, DocumentType
from vault.service import VaultService
from vault.store import StoredObject

NOBODY = ""  # the owner of a document that is not in the consenting citizen's vault
TERMS_CACHE = 4096  # consents whose immutable part (artefact, citizen) a download may reuse


class Consents(Protocol):
    """What the vault needs of the consent store (consent.storage ConsentReader.get and FetchCharger)."""

    async def get(self, artefact_id: uuid.UUID) -> StoredConsent: ...

    async def charge_fetch(
        self,
        artefact_id: uuid.UUID,
        request: FetchRequest,
        now: datetime,
        audit: Callable[[Decision], AuditEvent | None] | None = None,
    ) -> Decision:
        """``audit`` gives the access-log row of the decision, inserted in the charge's own transaction."""


@dataclass(frozen=True, slots=True)
class Terms:
    """A consent's immutable part as the vault uses it: the signed artefact, and the vault's owner reference of
    the citizen it names (None when that citizen cannot be matched)."""

    artefact: ConsentArtefact
    owner: str | None


@dataclass(frozen=True, slots=True)
class Grant:
    """What an agency's consent token says: which artefact, for which agency, for which purpose."""

    consent_id: uuid.UUID
    client_id: str
    purpose: str


def grant_of(principal: Principal) -> Grant:
    """The consent named by a token with exactly one ``consent`` authorization detail (RFC 9396 §2);
    PERMISSION_DENIED otherwise (the token is valid, it does not carry this authorization)."""
    details = [d for d in principal.authorization_details if d.type == CONSENT_DETAIL]
    if len(details) != 1 or len(principal.authorization_details) != 1:
        raise TokenForbidden("the token must carry exactly one consent authorization detail")
    detail = details[0]
    return Grant(uuid.UUID(detail.consent_id), principal.client_id, detail.purpose)


class SharedDocuments:
    def __init__(
        self,
        consents: Consents,
        vault: VaultService,
        id_number_of: Callable[[str], str | None],
        refs: Pseudonymizer,
        log: AuditLog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``id_number_of`` turns a citizen's opaque ``sub`` back into their ID number (identity.oidc.subjects);
        ``refs`` is the audit pseudonymizer (the artefact's subject is ``refs.ref(ID number)``)."""
        self._consents = consents
        self._vault = vault
        self._id_number_of = id_number_of
        self._refs = refs
        self._log = log
        self._clock = clock
        self._terms: dict[uuid.UUID, Terms] = {}  # consent id → its immutable part (see the module docstring)
        metrics.consent_decisions()  # fetch_allowed / fetch_refused (core.metrics) from the start, at 0

    def _owner(self, stored: StoredConsent) -> str | None:
        """The vault's owner reference of the consenting citizen; None when the artefact's citizen cannot be
        matched (then no document is theirs)."""
        id_number = self._id_number_of(stored.citizen_sub) if stored.citizen_sub else None
        if id_number is None or self._refs.ref(id_number) != stored.artefact.subject:
            return None
        return self._vault.owner_ref(id_number)

    async def _terms_of(self, consent_id: uuid.UUID) -> Terms:
        """The consent's artefact and its citizen's owner reference: both immutable, read once."""
        known = self._terms.get(consent_id)
        if known is None:
            stored = await self._consents.get(consent_id)
            known = Terms(stored.artefact, self._owner(stored))
            if len(self._terms) >= TERMS_CACHE:
                del self._terms[next(iter(self._terms))]
            self._terms[consent_id] = known
        return known

    async def list(self, grant: Grant, page_size: int, page_token: str) -> tuple[list[Document], str]:
        """One page of the citizen's documents the consent covers, newest first. Charges no use."""
        stored = await self._consents.get(grant.consent_id)
        denied = gate(stored.artefact, stored.status, grant.client_id, grant.purpose, self._clock())
        if denied is not None:
            await self._record("consent.list", stored.artefact, grant, None, denied)
            raise denied.error()
        owner = self._owner(stored)
        artefact = stored.artefact
        if owner is None:
            found: tuple[list[Document], str] = ([], "")
        else:
            found = await self._vault.shared_documents(
                owner, artefact.documents, artefact.document_types, page_size, page_token
            )
        await self._record("consent.list", stored.artefact, grant, None, None)
        return found

    async def download(self, grant: Grant, document_id: uuid.UUID) -> tuple[Document, AsyncIterator[bytes]]:
        """Charge one use (decided by ``consent.fetch_policy.decide`` in the consent store's transaction), then
        the document's metadata and its verified plaintext as it is read (the citizen's Download path)."""
        terms = await self._terms_of(grant.consent_id)
        owner = terms.owner
        found: StoredObject | None = None
        if owner is not None:
            found = await self._vault.latest(owner, document_id)
        requested = self._requested(terms.artefact, document_id, found)
        artefact = terms.artefact

        def row(decision: Decision) -> AuditEvent:  # written in the charge's transaction: a use is never unlogged
            denied = decision if isinstance(decision, Denied) else None
            return self._event("consent.fetch", artefact, grant, document_id, denied)

        decision = await self._consents.charge_fetch(
            grant.consent_id, FetchRequest(grant.client_id, grant.purpose, requested), self._clock(), audit=row
        )
        metrics.consent_decided("fetch_refused" if isinstance(decision, Denied) else "fetch_allowed")
        if isinstance(decision, Denied):
            raise decision.error()
        assert isinstance(decision, Allowed)
        assert found is not None  # NOBODY is never an artefact's subject: no other document is allowed
        assert owner is not None
        return await self._vault.serve(owner, found, _recorded())

    def _requested(
        self, artefact: ConsentArtefact, document_id: uuid.UUID, found: StoredObject | None
    ) -> RequestedDocument:
        """The document as the policy sees it. Not the citizen's (another's, unknown, deleted): owner NOBODY and
        a type the grant does not name when there is one, so the answer depends on the grant alone."""
        if found is not None:
            return RequestedDocument(document_id, found.document.document_type, artefact.subject)
        ungranted = [t for t in DocumentType if t not in artefact.document_types]
        return RequestedDocument(document_id, ungranted[0] if ungranted else DocumentType.OTHER, NOBODY)

    async def _record(
        self, action: str, artefact: ConsentArtefact, grant: Grant, document_id: uuid.UUID | None,
        denied: Denied | None,
    ) -> None:  # fmt: skip
        await self._log.append(self._event(action, artefact, grant, document_id, denied))

    @staticmethod
    def _event(
        action: str, artefact: ConsentArtefact, grant: Grant, document_id: uuid.UUID | None, denied: Denied | None
    ) -> AuditEvent:
        """The access-log row: ids, purpose and reason only (it feeds the public transparency log)."""
        return AuditEvent(
            actor=current_caller().label,
            action=action,
            outcome="refused" if denied else "success",
            subject=artefact.subject,
            detail={
                "consent_id": str(grant.consent_id),
                "client_id": grant.client_id,
                "purpose": grant.purpose,
                "document_id": str(document_id) if document_id else "",
                "reason": denied.reason.value if denied else "",
            },
        )


async def _recorded() -> None:
    """The fetch's row was committed with its charge already."""


__all__ = ["Consents", "FetchDenied", "Grant", "SharedDocuments", "grant_of"]
