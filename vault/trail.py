"""The vault's audit trail: every document stored, delivered, served or deleted, in ``audit.events``.

The citizen is named by the same keyed hash as in the identity service's events (``audit-pseudonym``), so
one citizen's trail reads across sign-ins and document accesses without an ID number in it. Each event
says which peer (the portal's or agency's certificate) and which OAuth client acted, on which document
version. It is durable before the call returns (group commit), for downloads before the first byte.
"""

from __future__ import annotations

import uuid

from audit.events import AuditEvent, AuditLog, Pseudonymizer
from core.callers import current_caller


class Trail:
    def __init__(self, log: AuditLog, refs: Pseudonymizer) -> None:
        self._log = log
        self._refs = refs

    async def record(self, action: str, id_number: str, document_id: uuid.UUID, version: int = 0) -> None:
        """One event; ``version`` 0 when the action concerns every version (a deletion)."""
        caller = current_caller()
        client_id = caller.principal.client_id if caller.principal else None
        await self._log.append(
            AuditEvent(
                actor=caller.label,
                action=action,
                outcome="success",
                subject=self._refs.ref(id_number),
                detail={"document": str(document_id), "version": version, "client_id": client_id},
            )
        )
