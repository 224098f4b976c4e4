"""The access history ("Lịch sử truy cập"): who touched the citizen's data, when, for what — each entry proven.

The entries come from the transparency log's ``ListMyEntries`` (protos/audit/v1/log.proto) with the citizen's
access token (audience ``urn:dinhdanh:service:log``, scope ``log.read``), newest first, paged. The portal does
not take the log's word for it: each entry is marked verified only when, here,

1. the response's checkpoint is a C2SP signed note whose Ed25519 signature verifies with the log's published
   verifier key (``DINHDANH_PORTAL_LOG_KEY``, or fetched once from the edge's ``/log/key``) and whose body is a
   C2SP tlog-checkpoint (audit/checkpoint.py) of the expected origin (``DINHDANH_PORTAL_LOG_ORIGIN``, by default
   the key's name: the log names its key after its origin, audit/sequencer.py);
2. the entry's leaf hash is ``SHA-256(0x00 || leaf)`` of the leaf bytes it came with (RFC 9162 §2.1.1), and the
   readable fields it shows agree with the leaf's own;
3. its inclusion proof leads from that leaf hash at its index to the checkpoint's root (RFC 9162 §2.1.3.2,
   audit/merkle.py).

An entry not yet covered by a published checkpoint is marked pending; anything else that does not verify is
marked failed — never shown as verified, never silently passed. The checkpoints seen are also kept (the
largest verified one): a newer one must be consistent with it (RFC 9162 §2.1.4, a consistency proof from the
log), else every mark of the page is failed (a log that rewrote its history, or shows this portal a fork).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from audit import checkpoint as notes
from audit import merkle
from core import logs
from portal.consent import CitizenPages, ConsentPages, PurposeText, when
from protos.audit.v1 import log_pb2 as pb
from protos.audit.v1 import log_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.vault import VaultPages

log = logs.get("portal")

RESOURCE = "urn:dinhdanh:service:log"  # RFC 8707 resource indicator of the transparency log
SCOPES = "log.read"
HEADING = "Lịch sử truy cập (access history)"
PAGE = "/history"
PAGE_SIZE = 20
KEY_RETRY = 5.0  # seconds between two fetches of the verifier key after a failed one

VERIFIED, PENDING, FAILED = "verified", "pending", "failed"
MARKS = {
    VERIFIED: ("✓", "đã kiểm chứng", "verified: its inclusion proof checks against the signed checkpoint"),
    PENDING: ("○", "chờ kiểm chứng", "pending: not yet in a published checkpoint"),
    FAILED: ("✗", "không kiểm chứng được", "NOT verified: the proof or the checkpoint did not check"),
}
ACTIONS = {
    "consent.fetch": "Cơ quan lấy giấy tờ (an agency fetched a document)",
    "consent.list": "Cơ quan xem danh sách giấy tờ được chia sẻ (an agency listed the shared documents)",
    "consent.request": "Cơ quan gửi yêu cầu đồng ý (an agency asked for consent)",
    "consent.grant": "Bạn cho phép chia sẻ (you granted consent)",
    "consent.approve": "Bạn đồng ý yêu cầu (you approved a request)",
    "consent.reject": "Bạn từ chối yêu cầu (you rejected a request)",
    "consent.pause": "Bạn tạm dừng sự đồng ý (you paused a consent)",
    "consent.resume": "Bạn tiếp tục sự đồng ý (you resumed a consent)",
    "consent.revoke": "Sự đồng ý bị thu hồi (a consent was revoked)",
    "consent.expire": "Sự đồng ý hết hạn (a consent expired)",
    "consent.token": "Cơ quan nhận mã truy cập theo sự đồng ý (an agency got a consent token)",
    "vault.upload": "Tải lên giấy tờ (a document was uploaded)",
    "vault.download": "Tải về giấy tờ (a document was downloaded)",
    "vault.delete": "Xoá giấy tờ (a document was deleted)",
    "vault.deliver": "Cơ quan cấp giấy tờ vào kho (an agency delivered a document)",
    "vault.issue": "Cơ quan cấp giấy tờ vào kho (an agency delivered a document)",
    "vault.list": "Xem danh sách giấy tờ (the documents were listed)",
    "identity.password": "Đăng nhập: mật khẩu (sign-in: password)",
    "identity.totp": "Đăng nhập: mã xác thực (sign-in: one-time code)",
    "identity.login": "Đăng nhập (sign-in)",
    "identity.activate": "Kích hoạt tài khoản (account activated)",
    "health.visit.push": "Cơ sở y tế gửi lần khám vào sổ sức khỏe (a health facility recorded a visit)",
    "health.book.read": "Xem sổ sức khỏe (your health book was read)",
    "health.visit.read": "Xem một lần khám (a visit was read)",
    "health.visit.pdf": "Tải PDF lần khám (a visit's PDF was made)",
    "health.extract.issue": "Cấp trích lục sổ sức khỏe vào kho (a health book extract was issued)",
}
OUTCOMES = {
    "success": "Thành công (done)",
    "ok": "Thành công (done)",
    "allowed": "Thành công (done)",
    "refused": "Bị từ chối (refused)",
    "denied": "Bị từ chối (refused)",
    "failure": "Không thành công (failed)",
    "failed": "Không thành công (failed)",
    "replay": "Gửi lại, không thay đổi (sent again, nothing changed)",
}
REASONS = {  # consent/fetch_policy.py Reason codes, and the vault's
    "NOT_ACTIVE": "sự đồng ý không còn hiệu lực (đã tạm dừng, thu hồi hoặc chưa được đồng ý) (consent not active)",
    "NOT_STARTED": "sự đồng ý chưa đến thời điểm bắt đầu (consent not started yet)",
    "EXPIRED": "sự đồng ý đã hết hạn (consent expired)",
    "USES_EXHAUSTED": "đã hết số lần được phép (no fetches left)",
    "FREQUENCY_EXCEEDED": "vượt quá số lần cho phép trong kỳ (too many fetches in this period)",
    "DOCUMENT_NOT_IN_GRANT": "giấy tờ không nằm trong phạm vi đồng ý (document not in the grant)",
    "NOT_THE_CITIZENS": "giấy tờ không thuộc về bạn (not your document)",
    "WRONG_AGENCY": "cơ quan không phải là cơ quan được đồng ý (not the agency consented to)",
    "WRONG_PURPOSE": "mục đích khác với mục đích được đồng ý (another purpose than the one consented to)",
    "CERTIFICATE_MISMATCH": "mã truy cập dùng với chứng thư số khác (token used with another certificate)",
    "REVOKED": "sự đồng ý đã bị thu hồi (consent revoked)",
    "PAUSED": "sự đồng ý đang tạm dừng (consent paused)",
}
# The shown fields that must say what the proven leaf says ("" when the leaf has none), and its time.
CHECKED_FIELDS = ("action", "outcome", "reason", "purpose", "document_id")


@dataclass(frozen=True, slots=True)
class EntryView:
    """One history entry as the page shows it."""

    index: int
    time: str
    what: str
    who: str
    document: str
    purpose: str
    outcome: str
    refused: bool
    mark: str  # verified, pending, failed
    symbol: str
    mark_text: str
    mark_title: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the page's checkpoint proved: the tree it names (None: nothing verified) and why not."""

    checkpoint: notes.Checkpoint | None
    problem: str = ""


def check_checkpoint(reply: pb.ListMyEntriesResponse, key: tuple[str, Ed25519PublicKey] | None,
                     origin: str) -> Verdict:  # fmt: skip
    """Step 1: the response's checkpoint, once its signature verifies with the published key."""
    if key is None:
        return Verdict(None, "no verifier key")
    if not reply.HasField("checkpoint") or not reply.checkpoint.note:
        return Verdict(None, "no checkpoint")
    try:
        found = notes.verify(reply.checkpoint.note, key[0], key[1], expected_origin=origin or key[0])
    except notes.NoteError as exc:
        return Verdict(None, f"checkpoint: {type(exc).__name__}")
    stated = reply.checkpoint
    if stated.size != found.size or (stated.root_hash and stated.root_hash != found.root_hash):
        return Verdict(None, "checkpoint fields differ from its signed note")
    return Verdict(found)


def mark_of(entry: pb.Entry, verdict: Verdict) -> str:
    """Steps 2 and 3 for one entry: verified, pending (not yet in a checkpoint) or failed."""
    tree = verdict.checkpoint
    if tree is None:
        return FAILED
    if entry.index >= tree.size or not entry.HasField("proof"):
        return PENDING  # sequenced after the checkpoint, or not sequenced yet: no proof to check
    proof = entry.proof
    if proof.index != entry.index or proof.tree_size != tree.size or not _leaf_agrees(entry):
        return FAILED
    computed = merkle.leaf_hash(entry.leaf)
    if proof.leaf_hash and proof.leaf_hash != computed:
        return FAILED
    try:
        return VERIFIED if merkle.verify_inclusion(computed, entry.index, tree.size, list(proof.hashes),
                                                   tree.root_hash) else FAILED  # fmt: skip
    except merkle.ProofError:
        return FAILED


def _leaf_agrees(entry: pb.Entry) -> bool:
    """The fields the page shows say what the proven leaf says (those the leaf names in clear)."""
    try:
        leaf = json.loads(entry.leaf)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(leaf, dict):
        return False
    if any(str(leaf.get(name, "")) != getattr(entry, name) for name in CHECKED_FIELDS):
        return False
    if entry.HasField("time"):  # the leaf's time is RFC 3339 UTC with microseconds (audit/leaves.py)
        shown = entry.time.ToDatetime(tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return str(leaf.get("time", "")) == shown
    return True


def entry_view(entry: pb.Entry, mark: str, titles: dict[str, str], catalog: dict[str, PurposeText]) -> EntryView:
    symbol, text, title = MARKS[mark]
    who = entry.agency_name
    if not who:
        kind, _, name = entry.actor.partition(":")
        who = {"citizen": "Bạn (you)", "agency": f"Cơ quan {name}", "service": "Hệ thống (the platform)"}.get(
            kind, entry.actor or "—"
        )
    document = ""
    if entry.document_id:
        document = titles.get(entry.document_id, "Giấy tờ không còn trong kho của bạn (no longer in your store)")
    purpose = ""
    if entry.purpose:
        known = catalog.get(entry.purpose)
        purpose = f"{known.vi} ({known.en})" if known else entry.purpose
    refused = entry.outcome not in ("", "success", "ok", "allowed")
    outcome = OUTCOMES.get(entry.outcome, entry.outcome or "—")
    if entry.reason:
        outcome += ": " + REASONS.get(entry.reason, entry.reason)
    return EntryView(
        index=entry.index,
        time=when(entry.time),
        what=ACTIONS.get(entry.action, entry.action),
        who=who,
        document=document,
        purpose=purpose,
        outcome=outcome,
        refused=refused,
        mark=mark,
        symbol=symbol,
        mark_text=text,
        mark_title=title,
    )


class HistoryPages(CitizenPages):
    """The route ``/history``; none when the portal has no log address."""

    heading = HEADING
    path = PAGE

    def __init__(self, portal: Portal, vault: VaultPages, consents: ConsentPages) -> None:
        super().__init__(portal, vault)
        self.consents = consents
        self._channel_: grpc.aio.Channel | None = None
        self._stub: pb_grpc.LogStub | None = None
        self._key: tuple[str, Ed25519PublicKey] | None = None
        self._key_failed_at = -KEY_RETRY
        self._largest: notes.Checkpoint | None = None  # the largest checkpoint verified so far
        if self.settings.log_address:
            self._check_tls("DINHDANH_PORTAL_LOG_ADDRESS")
            if self.settings.log_key:
                self._key = notes.parse_vkey(self.settings.log_key)  # a bad configured key stops the start

    def routes(self) -> list[Route]:
        return [Route(PAGE, self.index)] if self.settings.log_address else []

    @property
    def stub(self) -> pb_grpc.LogStub:
        if self._stub is None:
            self._channel_ = self._channel(self.settings.log_address, "log")
            self._stub = pb_grpc.LogStub(self._channel_)
        return self._stub

    async def close(self) -> None:
        if self._channel_ is not None:
            await self._channel_.close()
            self._channel_ = self._stub = None

    async def key(self) -> tuple[str, Ed25519PublicKey] | None:
        """The log's verifier key: configured, or the one the edge publishes at ``/log/key`` (fetched once)."""
        if self._key is not None or time.monotonic() - self._key_failed_at < KEY_RETRY:
            return self._key
        url = f"{self.settings.issuer.rstrip('/')}/log/key"
        try:
            async with httpx.AsyncClient(timeout=self.settings.http_timeout) as http:
                reply = await http.get(url)
                reply.raise_for_status()
            self._key = notes.parse_vkey(_vkey_text(reply))
            log.info("log verifier key loaded", name=self._key[0])
        except (httpx.HTTPError, ValueError) as exc:
            self._key_failed_at = time.monotonic()
            log.warning("log verifier key unavailable", error=type(exc).__name__)
        return self._key

    async def consistent(self, found: notes.Checkpoint) -> bool:
        """RFC 9162 §2.1.4: the checkpoint extends the largest one verified before (then it becomes that)."""
        known = self._largest
        if known is None or (found.size == known.size and found.root_hash == known.root_hash):
            self._largest = found if known is None else known
            return True
        old, new = (known, found) if known.size <= found.size else (found, known)
        if old.size == new.size:
            return False  # two roots for one size: a fork
        try:
            proof = await self.stub.GetConsistencyProof(
                pb.GetConsistencyProofRequest(old_size=old.size, new_size=new.size), timeout=self.settings.vault_timeout
            )
            ok = merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, list(proof.hashes))
        except (grpc.aio.AioRpcError, merkle.ProofError) as exc:
            log.warning("consistency proof unavailable", error=type(exc).__name__)
            return False
        if ok and new is found:
            self._largest = found
        if not ok:
            log.warning("log checkpoints inconsistent", old_size=old.size, new_size=new.size)
        return ok

    async def index(self, request: Request) -> Response:
        data = self._page_session(request)
        if data is None:
            return RedirectResponse("/login", status_code=303)
        ask = pb.ListMyEntriesRequest(page_size=PAGE_SIZE, page_token=request.query_params.get("page", ""))
        reply = await self._rpc(request, self.stub.ListMyEntries(ask, **self._call(data)), "log: entries")
        verdict = check_checkpoint(reply, await self.key(), self.settings.log_origin)
        if verdict.checkpoint is not None and not await self.consistent(verdict.checkpoint):
            verdict = Verdict(None, "checkpoint inconsistent with an earlier one")
        if verdict.problem:
            log.warning("history not verified", problem=verdict.problem)
        titles = await self.titles(data)
        catalog = await self.consents.catalog() if self.settings.consent_address else {}
        rows = [entry_view(e, mark_of(e, verdict), titles, catalog) for e in reply.entries]
        tree = verdict.checkpoint
        return self.portal.page(
            request,
            "history.html",
            heading=HEADING,
            rows=rows,
            marks=MARKS,
            tree_size=tree.size if tree else None,
            problem=bool(verdict.problem),
            pending=reply.pending,
            first_page=not ask.page_token,
            next_page=reply.next_page_token,
            consents=bool(self.settings.consent_address),
        )


def _vkey_text(reply: httpx.Response) -> str:
    """``/log/key``: the verifier key as text, or a JSON object naming it (``vkey`` or ``key``)."""
    body = reply.text.strip()
    if body.startswith("{"):
        data: dict[str, Any] = json.loads(body)
        body = str(data.get("vkey") or data.get("key") or "")
    return body
