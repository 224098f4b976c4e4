"""gRPC translation for the transparency log (protos/audit/v1/log.proto), and the log's sequencer.

- ``GetCheckpoint``, ``GetInclusionProof``, ``GetConsistencyProof``: any platform peer (services, operators,
  agencies by certificate) and citizens with a ``log.read`` token; proofs are RFC 9162 §2.1.3/§2.1.4 against
  the latest checkpoint (tree size 0) or an earlier size.
- ``ListMyEntries``: a citizen's access token (audience ``urn:dinhdanh:service:log``, scope ``log.read``): the
  token's ``sub`` → ID number (identity.oidc.subjects) → the audit pseudonym → that citizen's entries, newest
  first, each with its inclusion proof against the latest checkpoint; ``pending`` counts their events not
  yet in it.

The sequencer (audit/sequencer.py) runs in every replica; one leads (PostgreSQL advisory lock).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from audit.events import Pseudonymizer
from audit.leaves import LeafBuilder
from audit.log_store import LogReader, StoredCheckpoint, StoredEntry
from audit.s3_tiles import S3Tiles
from audit.sequencer import Sequencer, Signer, backlog
from core import metrics
from core.callers import Allow, current_principal
from core.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from core.keys import purposes
from core.settings import Settings, key_provider
from db.pool import open_pool
from identity.oidc.subjects import Subjects
from protos.audit.v1 import log_pb2 as pb
from protos.audit.v1 import log_pb2_grpc as pb_grpc
from services.log_settings import LogSettings
from services.server import ServiceSpec, token_verifier
from vault.objects import reachable, s3_client

NAME = pb.DESCRIPTOR.services_by_name["Log"].full_name
PLATFORM = ("edge", "portal", "identity", "vault", "consent", "registry", "log")
READERS = Allow.of(services=PLATFORM, operators=True, agencies=True, citizens=True, scopes=("log.read",))
CITIZENS = Allow.of(citizens=True, scopes=("log.read",))
POLICY: dict[str, Allow] = {
    f"/{NAME}/GetCheckpoint": READERS,
    f"/{NAME}/GetInclusionProof": READERS,
    f"/{NAME}/GetConsistencyProof": READERS,
    f"/{NAME}/ListMyEntries": CITIZENS,
}
PAGE_DEFAULT, PAGE_MAX = 20, 100


def checkpoint_pb(cp: StoredCheckpoint) -> pb.Checkpoint:
    return pb.Checkpoint(note=cp.note, size=cp.size, root_hash=cp.root_hash)


def _timestamp(text: object) -> Timestamp | None:
    if not isinstance(text, str):
        return None
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def _text(fields: dict[str, object], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


class LogServicer(pb_grpc.LogServicer):
    def __init__(self, reader: LogReader, subjects: Subjects, refs: Pseudonymizer) -> None:
        self._reader = reader
        self._subjects = subjects
        self._refs = refs

    async def _latest(self, fresh: bool = False) -> StoredCheckpoint:
        latest = await self._reader.latest(fresh)
        if latest is None:
            raise FailedPrecondition("the log has published no checkpoint yet")
        return latest

    async def _covering(self, size: int) -> StoredCheckpoint:
        """The latest checkpoint for a request naming ``size`` (0: the latest): a recent read when it covers it."""
        latest = await self._latest()
        return latest if 0 < size <= latest.size else await self._latest(fresh=True)

    async def GetCheckpoint(self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext) -> pb.Checkpoint:
        return checkpoint_pb(await self._latest(fresh=True))

    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.InclusionProof:
        latest = await self._covering(request.tree_size)
        size = request.tree_size or latest.size
        if size > latest.size:
            raise InvalidArgument(f"tree_size {size} is beyond the latest checkpoint ({latest.size})")
        if request.index >= size:
            raise InvalidArgument(f"index {request.index} is not in a tree of size {size}")
        leaf_hash, hashes = await self._reader.inclusion(request.index, size)
        return pb.InclusionProof(index=request.index, tree_size=size, hashes=hashes, leaf_hash=leaf_hash)

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConsistencyProof:
        latest = await self._covering(request.new_size)
        new = request.new_size or latest.size
        if new > latest.size:
            raise InvalidArgument(f"new_size {new} is beyond the latest checkpoint ({latest.size})")
        if request.old_size > new:
            raise InvalidArgument(f"old_size {request.old_size} is above new_size {new}")
        hashes = await self._reader.consistency(request.old_size, new)
        return pb.ConsistencyProof(old_size=request.old_size, new_size=new, hashes=hashes)

    async def ListMyEntries(
        self, request: pb.ListMyEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMyEntriesResponse:
        principal = current_principal()
        id_number = self._subjects.id_number(principal.subject, principal.sector)  # pairwise: with its sector
        if id_number is None:
            raise Unauthenticated("the token's subject is not a citizen of this platform")
        subject = self._refs.ref(id_number)
        page = min(request.page_size or PAGE_DEFAULT, PAGE_MAX)
        latest = await self._latest(fresh=True)
        below = latest.size
        if request.page_token:
            if not request.page_token.isdigit() or int(request.page_token) > latest.size:
                raise InvalidArgument("page_token is not one this service gave")
            below = int(request.page_token)
        found = await self._reader.entries_of(subject, below, page + 1)
        more, found = len(found) > page, found[:page]
        proofs = await self._reader.inclusions([e.index for e in found], latest.size) if found else {}
        names = await self._reader.client_names(
            _text(e.fields, "client_id") for e in found if e.fields.get("client_id")
        )
        entries = [self._entry(e, latest.size, proofs[e.index], names) for e in found]
        return pb.ListMyEntriesResponse(
            entries=entries,
            next_page_token=str(found[-1].index) if more else "",
            checkpoint=checkpoint_pb(latest),
            pending=await self._reader.pending(subject, latest.size),
        )

    @staticmethod
    def _entry(entry: StoredEntry, size: int, hashes: list[bytes], names: dict[str, str]) -> pb.Entry:
        fields = entry.fields
        actor, client_id = _text(fields, "actor"), _text(fields, "client_id")
        if not client_id and actor.startswith("agency:"):
            client_id = actor.removeprefix("agency:")
        return pb.Entry(
            index=entry.index,
            time=_timestamp(fields.get("time")),
            action=_text(fields, "action"),
            outcome=_text(fields, "outcome"),
            actor=actor,
            agency_name=names.get(client_id, ""),
            purpose=_text(fields, "purpose"),
            document_id=_text(fields, "document_id"),
            reason=_text(fields, "reason"),
            leaf=entry.leaf,
            proof=pb.InclusionProof(index=entry.index, tree_size=size, hashes=hashes, leaf_hash=entry.leaf_hash),
        )


async def build(settings: Settings) -> ServiceSpec:
    if not settings.s3_endpoint:
        raise SystemExit("log: DINHDANH_S3_ENDPOINT is not set (the bucket of tiles and checkpoints)")
    config = LogSettings()
    keys = key_provider(settings)
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    s3 = (settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_secure)
    store = S3Tiles(s3_client(*s3), config.bucket)
    probe = s3_client(*s3, probe=True)
    refs = Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM))
    signer = Signer.from_signer(config.origin, keys.signer(purposes.LOG_SIGNING))  # the seed's key, or the HSM's
    sequencer = Sequencer(settings.postgres_dsn, store, LeafBuilder(refs), signer, config.batch_size,
                          config.checkpoint_interval)  # fmt: skip
    stopping = asyncio.Event()
    running = asyncio.create_task(sequencer.run_forever(stopping))
    metrics.log_backlog(lambda: backlog(pool))  # the lag and unsequenced gauges, asked on scrape (core.metrics)
    servicer = LogServicer(LogReader(pool), Subjects(keys.key(purposes.OIDC_SUBJECT)), refs)

    async def stop() -> None:
        stopping.set()
        await asyncio.gather(running, return_exceptions=True)
        await pool.close()

    return ServiceSpec(
        name="log",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_LogServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[stop],
        verifier=token_verifier(settings, "log", pool),
        probes={"s3": lambda: reachable(probe, config.bucket)},
    )
