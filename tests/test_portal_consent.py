"""The demo portal's consent pages ("Quản lý sự đồng ý") and access history ("Lịch sử truy cập").

The first tests are pure: the terms in plain words, and the history's marks, which the portal computes itself
from the log's signed checkpoint and inclusion proofs (a tampered leaf, proof or checkpoint, or an unknown key
is never marked verified). The others go through the portal's HTTP (httpx, like tests/test_portal_vault.py)
against the whole stack: an agency asks over mutual TLS with its certificate, the citizen decides in the
portal, and the agency's next fetch after a revocation in the portal is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp

from audit import checkpoint as notes
from audit import merkle
from bench.browserless import Browser, csrf_of
from consent.artefact import canonical_json
from portal import consent as pages
from portal import history
from portal.app import Portal
from portal.consent import ConsentPages
from portal.settings import PortalSettings
from portal.vault import VaultPages
from protos.audit.v1 import log_pb2 as lpb
from protos.consent.v1 import consent_pb2 as cpb
from protos.vault.v1 import vault_pb2 as vpb
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.consent_agency_helpers import DemoAgency, terms
from tests.oidc_helpers import person
from tests.portal_vault_helpers import vault_session
from tests.vault_helpers import PDF
from tests.waiting import until

ORIGIN = "dinhdanh.gov.vn/log"

# -- the terms in plain words (pure) ---------------------------------------------------------------------


def stamp(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def test_the_terms_in_plain_words() -> None:
    record = cpb.ConsentRecord(
        id="3f1d2c3b-0000-4000-8000-000000000001",
        agency_name="Sở Lao động",
        purpose_text="Kiểm tra lý lịch, văn bằng khi tuyển dụng lao động",
        status=cpb.CONSENT_STATUS_PENDING,
        terms=cpb.ConsentTerms(
            purpose="EMPLOYMENT_BACKGROUND_CHECK",
            document_ids=["d1", "gone"],
            document_types=[vpb.DOCUMENT_TYPE_DIPLOMA],
            start=stamp(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)),
            expiry=stamp(dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)),
            data_life_seconds=30 * 86400,
            max_fetches=10,
            frequency=cpb.Frequency(count=3, unit=cpb.FREQUENCY_UNIT_DAY),
        ),
    )
    catalog = {"EMPLOYMENT_BACKGROUND_CHECK": pages.PurposeText("vi", "Employment check", ("Bộ luật Lao động 2019",))}
    shown = pages.view(record, {"d1": "Bằng tốt nghiệp"}, catalog)
    assert shown.limits == "tối đa 3 lần mỗi ngày, tổng cộng 10 lần (at most 3 a day, 10 in all)"
    assert shown.data_life == "cơ quan được giữ dữ liệu trong 30 ngày (the agency may keep the data for 30 days)"
    assert shown.window.startswith("từ 01/12/2026 09:00 đến 01/01/2027 00:00 (giờ Việt Nam)")
    assert shown.documents[0] == "Bằng tốt nghiệp"
    assert "no longer in your store" in shown.documents[1]
    assert shown.documents[2].startswith("Mọi giấy tờ loại Văn bằng")
    assert shown.purpose.vi == record.purpose_text
    assert shown.purpose.en == "Employment check"
    assert shown.purpose.legal_basis == ("Bộ luật Lao động 2019",)
    assert [path for path, _ in shown.actions] == ["approve", "reject"]
    assert (
        pages.data_life_text(7200) == "cơ quan được giữ dữ liệu trong 2 giờ (the agency may keep the data for 2 hours)"
    )
    assert pages.limits_text(cpb.ConsentTerms(max_fetches=1)) == "tổng cộng 1 lần (1 in all)"
    revoked = pages.view(cpb.ConsentRecord(status=cpb.CONSENT_STATUS_REVOKED), {}, {})
    assert revoked.actions == ()
    paused = pages.view(cpb.ConsentRecord(status=cpb.CONSENT_STATUS_PAUSED), {}, {})
    assert [path for path, _ in paused.actions] == ["resume", "revoke"]


# -- the history's marks (pure) --------------------------------------------------------------------------


def leaf(number: int, **fields: str) -> bytes:
    return canonical_json({"v": 1, "action": "consent.fetch", "outcome": "success", "time": f"t{number}", **fields})


class Log:
    """A small log: leaves, a key, and ListMyEntries answers as the service gives them."""

    def __init__(self, count: int) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.vkey = notes.vkey(ORIGIN, self.key.public_key())
        self.leaves = [leaf(n) for n in range(count)]
        self.hashes = [merkle.leaf_hash(data) for data in self.leaves]

    def reply(self, size: int, indexes: list[int]) -> lpb.ListMyEntriesResponse:
        nodes = merkle.nodes_from_leaves(self.hashes[:size])
        root = merkle.root(self.hashes[:size])
        note = notes.sign(notes.format_checkpoint(notes.Checkpoint(ORIGIN, size, root)), ORIGIN, self.key)
        entries = []
        for index in indexes:
            entry = lpb.Entry(index=index, action="consent.fetch", outcome="success", leaf=self.leaves[index])
            if index < size:
                proof = merkle.inclusion_proof(index, size, nodes)
                entry.proof.CopyFrom(lpb.InclusionProof(index=index, tree_size=size, hashes=proof,
                                                        leaf_hash=self.hashes[index]))  # fmt: skip
            entries.append(entry)
        return lpb.ListMyEntriesResponse(
            entries=entries, checkpoint=lpb.Checkpoint(note=note, size=size, root_hash=root)
        )


def marks(reply: lpb.ListMyEntriesResponse, vkey: str | None, origin: str = ORIGIN) -> list[str]:
    verdict = history.check_checkpoint(reply, notes.parse_vkey(vkey) if vkey else None, origin)
    return [history.mark_of(entry, verdict) for entry in reply.entries]


def test_only_proven_entries_are_marked_verified() -> None:
    log = Log(13)
    reply = log.reply(11, [12, 10, 7, 0])
    assert marks(reply, log.vkey) == ["pending", "verified", "verified", "verified"]
    assert marks(reply, None) == ["failed"] * 4  # no published key: nothing is proven
    other = notes.vkey(ORIGIN, Ed25519PrivateKey.generate().public_key())
    assert marks(reply, other) == ["failed"] * 4
    assert marks(reply, log.vkey, origin="another.example/log") == ["failed"] * 4

    tampered = lpb.ListMyEntriesResponse()
    tampered.CopyFrom(reply)
    tampered.entries[1].leaf = leaf(10, outcome="refused")  # the leaf said something else
    tampered.entries[1].outcome = "refused"
    tampered.entries[2].proof.hashes[0] = bytes(32)  # a wrong sibling
    tampered.entries[3].outcome = "refused"  # the shown field differs from the proven leaf
    tampered.entries[0].purpose = "BANK_KYC"  # pending stays pending, whatever it says
    assert marks(tampered, log.vkey) == ["pending", "failed", "failed", "failed"]

    forged = lpb.ListMyEntriesResponse()
    forged.CopyFrom(reply)
    body, _, signature = forged.checkpoint.note.partition("\n\n")
    forged.checkpoint.note = body.replace("\n11\n", "\n12\n") + "\n\n" + signature  # signature no longer matches
    assert marks(forged, log.vkey) == ["failed"] * 4
    stated = lpb.ListMyEntriesResponse()
    stated.CopyFrom(reply)
    stated.checkpoint.size = 12  # the unsigned fields disagree with the signed note
    assert marks(stated, log.vkey) == ["failed"] * 4
    for name, value in (("purpose", "BANK_KYC"), ("document_id", "0f6c"), ("reason", "EXPIRED")):
        added = lpb.ListMyEntriesResponse()
        added.CopyFrom(reply)
        setattr(added.entries[1], name, value)  # a field the leaf does not hold
        assert marks(added, log.vkey)[1] == "failed", name
    timed = lpb.ListMyEntriesResponse()
    timed.CopyFrom(reply)
    timed.entries[2].time.FromSeconds(1_790_000_000)  # the leaf's time is "t7"
    assert marks(timed, log.vkey)[2] == "failed"
    missing = lpb.ListMyEntriesResponse()
    missing.CopyFrom(reply)
    missing.entries[1].ClearField("proof")
    assert marks(missing, log.vkey)[1] == "pending"


class LogService:
    """The log's consistency proofs, as the service computes them, over ``log``'s leaves."""

    def __init__(self, log: Log) -> None:
        self.log = log

    async def GetConsistencyProof(
        self, request: lpb.GetConsistencyProofRequest, timeout: float
    ) -> lpb.ConsistencyProof:
        nodes = merkle.nodes_from_leaves(self.log.hashes[: request.new_size])
        hashes = merkle.consistency_proof(request.old_size, request.new_size, nodes)
        return lpb.ConsistencyProof(old_size=request.old_size, new_size=request.new_size, hashes=hashes)


def tree(log: Log, size: int) -> notes.Checkpoint:
    return notes.Checkpoint(ORIGIN, size, merkle.root(log.hashes[:size]))


async def test_a_checkpoint_inconsistent_with_an_earlier_one_fails_the_page() -> None:
    settings = PortalSettings(client_id="c", client_secret="s")
    portal = Portal(settings)
    vault = VaultPages(portal)
    pages_ = history.HistoryPages(portal, vault, ConsentPages(portal, vault))
    log = Log(12)
    pages_._stub = LogService(log)  # type: ignore[assignment]
    assert await pages_.consistent(tree(log, 5))
    assert await pages_.consistent(tree(log, 8))  # extends the one before
    assert await pages_.consistent(tree(log, 6))  # an older one, a prefix of the largest
    assert await pages_.consistent(tree(log, 8))
    fork = Log(12)  # the same first 6 entries, then others
    fork.leaves[6:] = [leaf(n, outcome="refused") for n in range(6, 12)]
    fork.hashes = [merkle.leaf_hash(data) for data in fork.leaves]
    assert not await pages_.consistent(tree(fork, 8))  # two roots for one size
    pages_._stub = LogService(fork)  # type: ignore[assignment]
    assert not await pages_.consistent(tree(fork, 10))  # a history that rewrote entries 6 and 7
    assert not await pages_.consistent(tree(fork, 7))
    pages_._stub = LogService(log)  # type: ignore[assignment]
    assert await pages_.consistent(tree(log, 12))  # the honest log goes on


# -- through the portal, against the stack ----------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def agency(info: StackInfo) -> DemoAgency:
    return DemoAgency.of(info)


def url(info: StackInfo, path: str) -> str:
    return info.demo_portal.rstrip("/") + path


class Signed:
    """A fresh citizen signed in on the demo portal, with one uploaded document."""

    def __init__(self, browser: Browser, id_number: str, document_id: str) -> None:
        self.browser, self.id_number, self.document_id = browser, id_number, document_id

    async def page(self, info: StackInfo, path: str = "/consents") -> httpx.Response:
        return await self.browser.request("GET", url(info, path))

    async def click(self, info: StackInfo, consent_id: str, action: str, csrf: str | None = None) -> httpx.Response:
        if csrf is None:
            csrf = csrf_of(await self.page(info, "/vault"))  # the store always has forms
        data = {"csrf": csrf} if csrf else {}
        return await self.browser.request("POST", url(info, f"/consents/{consent_id}/{action}"), data=data)


TITLE = "Bằng tốt nghiệp đại học"


async def signed_in(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen) -> Signed:
    browser, page = await vault_session(http, info, await person(info, citizen))
    data = {"csrf": csrf_of(page), "title": TITLE, "document_type": "diploma"}
    uploaded = await browser.request("POST", url(info, "/vault/upload"), data=data,
                                     files={"file": ("bang.pdf", PDF)})  # fmt: skip
    assert uploaded.status_code == 303, uploaded.text[:300]
    listed = await browser.request("GET", url(info, "/vault"))
    (document_id,) = re.findall(r'<tr data-id="([0-9a-f-]{36})"', listed.text)
    return Signed(browser, citizen.id_number, document_id)


def article(page: httpx.Response, consent_id: str) -> str:
    """The consent's block of the page (unescaped), or "" when it is not shown."""
    start = page.text.find(f'id="c-{consent_id}"')
    if start < 0:
        return ""
    return html.unescape(page.text[start:].split("</article>", 1)[0])


def section(page: httpx.Response, name: str) -> str:
    start = page.text.index(f'<div id="{name}">')
    return page.text[start:].split("</div>\n\n", 1)[0]


async def test_signed_out_the_consent_pages_send_to_sign_in(http: httpx.AsyncClient, info: StackInfo) -> None:
    for path in ("/consents", "/history"):
        reply = await http.get(url(info, path))
        assert reply.status_code == 303
        assert reply.headers["location"] == "/login"
    zero = "00000000-0000-4000-8000-000000000000"
    refused = await http.post(url(info, f"/consents/{zero}/revoke"), data={"csrf": "x"})
    assert refused.status_code == 401
    assert 'id="relogin"' in refused.text


async def test_request_approve_pause_resume_revoke(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen
) -> None:
    me = await signed_in(http, info, fresh_citizen)
    home = await me.page(info, "/")
    assert 'id="consents" href="/consents"' in home.text
    assert 'id="history" href="/history"' in home.text
    asked = await agency.request_consent(info, me.id_number, terms([me.document_id]))
    assert asked.status == cpb.CONSENT_STATUS_PENDING

    page = await me.page(info)
    assert page.status_code == 200
    shown = article(page, asked.id)
    assert asked.id in section(page, "pending")
    assert agency.name in shown
    assert "Kiểm tra lý lịch, văn bằng khi tuyển dụng lao động" in shown  # the purpose's Vietnamese text
    assert "Bộ luật Lao động 2019" in shown  # its legal basis
    assert TITLE in shown  # the document by its title in the citizen's own store
    assert "tối đa 3 lần mỗi ngày, tổng cộng 10 lần" in shown
    assert "cơ quan được giữ dữ liệu trong 30 ngày" in shown
    assert re.search(r"từ \d\d/\d\d/\d{4} \d\d:\d\d đến \d\d/\d\d/\d{4} \d\d:\d\d \(giờ Việt Nam\)", shown)
    assert "/approve" in shown
    assert "/reject" in shown

    approved = await me.click(info, asked.id, "approve")
    assert approved.status_code == 303
    assert approved.headers["location"].startswith("/consents?done=approve")
    page = await me.page(info, "/consents?done=approve")
    assert 'id="notice"' in page.text
    assert asked.id in section(page, "current")
    shown = article(page, asked.id)
    assert 'data-status="active"' in shown
    assert "Đang có hiệu lực" in shown
    assert '<strong class="fetches">0</strong>' in shown
    assert "/pause" in shown
    assert "/revoke" in shown
    assert "/approve" not in shown

    assert (await me.click(info, asked.id, "pause")).status_code == 303
    shown = article(await me.page(info), asked.id)
    assert 'data-status="paused"' in shown
    assert "/resume" in shown
    assert (await me.click(info, asked.id, "resume")).status_code == 303
    assert 'data-status="active"' in article(await me.page(info), asked.id)
    assert (await me.click(info, asked.id, "revoke")).status_code == 303
    page = await me.page(info)
    assert asked.id in section(page, "ended")
    shown = article(page, asked.id)
    assert 'data-status="revoked"' in shown
    assert "<form" not in shown

    again = await me.click(info, asked.id, "revoke")  # a second click: a readable 409, never a 500
    assert again.status_code == 409
    assert "đã thu hồi rồi" in again.text
    assert 'href="/consents"' in again.text
    for action in ("resume", "approve"):
        assert (await me.click(info, asked.id, action)).status_code == 409


async def test_reject(http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen) -> None:
    me = await signed_in(http, info, fresh_citizen)
    asked = await agency.request_consent(info, me.id_number, terms([me.document_id]))
    assert (await me.click(info, asked.id, "reject")).status_code == 303
    page = await me.page(info)
    assert asked.id in section(page, "ended")
    assert "Đã từ chối" in article(page, asked.id)
    again = await me.click(info, asked.id, "approve")
    assert again.status_code == 409
    assert "đã bị từ chối rồi" in again.text


async def test_forms_without_the_csrf_token_are_refused(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen
) -> None:
    me = await signed_in(http, info, fresh_citizen)
    asked = await agency.request_consent(info, me.id_number, terms([me.document_id]))
    for csrf in ("", "not-the-token"):
        refused = await me.click(info, asked.id, "approve", csrf=csrf)
        assert refused.status_code == 403
        assert "Quản lý sự đồng ý" in refused.text
    assert 'data-status="pending"' in article(await me.page(info), asked.id)
    unknown = await me.click(info, asked.id, "delete")
    assert unknown.status_code == 404
    malformed = await me.click(info, "not-a-consent", "approve")
    assert malformed.status_code == 404


async def test_another_citizen_never_sees_it(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizens: Iterator[Citizen]
) -> None:
    first = await signed_in(http, info, next(fresh_citizens))
    asked = await agency.request_consent(info, first.id_number, terms([first.document_id]))
    async with httpx.AsyncClient(timeout=60) as other_http:
        other = await signed_in(other_http, info, next(fresh_citizens))
        page = await other.page(info)
        assert page.status_code == 200
        assert asked.id not in page.text
        for action in ("approve", "reject", "revoke"):
            refused = await other.click(info, asked.id, action)
            assert refused.status_code == 404, (action, refused.status_code)
            assert "Không tìm thấy sự đồng ý" in refused.text
    assert 'data-status="pending"' in article(await first.page(info), asked.id)


async def test_revocation_in_the_portal_refuses_the_very_next_fetch(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen
) -> None:
    """Issue 10 item 4, end to end: the portal's click (POST revoke) → the agency's next DownloadShared refused."""
    me = await signed_in(http, info, fresh_citizen)
    asked = await agency.request_consent(info, me.id_number, terms([me.document_id]))
    assert (await me.click(info, asked.id, "approve")).status_code == 303
    token = await agency.token(info, asked.id, asked.terms.purpose)
    async with agency.vault(info) as vault:
        assert await agency.download(vault, token, me.document_id) == PDF
        shown = article(await me.page(info), asked.id)
        assert '<strong class="fetches">1</strong>' in shown
        assert "chưa lần nào" not in shown  # the last fetch's time
        csrf = csrf_of(await me.page(info))
        clicked = await me.click(info, asked.id, "revoke", csrf=csrf)
        answered = time.perf_counter()
        assert clicked.status_code == 303
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await agency.download(vault, token, me.document_id)
        elapsed = time.perf_counter() - answered
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
    print(f"\nrevocation: portal click answered → next fetch refused in {elapsed * 1000:.1f} ms "
          f"({refused.value.details()})")  # fmt: skip


async def test_the_history_shows_the_fetch_with_its_verified_mark(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen
) -> None:
    me = await signed_in(http, info, fresh_citizen)
    asked = await agency.request_consent(info, me.id_number, terms([me.document_id]))
    assert (await me.click(info, asked.id, "approve")).status_code == 303
    token = await agency.token(info, asked.id, asked.terms.purpose)
    async with agency.vault(info) as vault:
        assert await agency.download(vault, token, me.document_id) == PDF

    def fetch_row(page: httpx.Response) -> str:
        rows = [html.unescape(r) for r in re.findall(r'<tr class="entry[^"]*".*?</tr>', page.text, re.S)]
        return next((r for r in rows if agency.name in r and TITLE in r), "")

    async def verified() -> str:
        row = fetch_row(await me.page(info, "/history"))
        return row if 'data-mark="verified"' in row else ""

    row = await until(verified, "the fetch in the history, its inclusion proof verified", timeout=30, every=0.5)
    assert "✓ đã kiểm chứng" in row
    assert "Kiểm tra lý lịch, văn bằng khi tuyển dụng lao động" in row
    page = await me.page(info, "/history")
    assert "Lịch sử truy cập" in page.text
    assert 'data-mark="failed"' not in page.text


async def test_the_history_marks_the_citizens_own_entries_verified(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    """The citizen's own sign-in and upload are in the log too; each row is verified in the portal once a
    checkpoint covers it, and pending (never verified) before."""
    me = await signed_in(http, info, fresh_citizen)

    async def all_verified() -> httpx.Response | None:
        page = await me.page(info, "/history")
        assert page.status_code == 200, page.text[:300]
        found = re.findall(r'data-mark="(\w+)"', page.text)
        assert "failed" not in found, page.text
        return page if found and set(found) == {"verified"} and 'id="pending"' not in page.text else None

    page = await until(all_verified, "every entry of the history verified", timeout=30, every=0.5)
    assert "Tải lên giấy tờ" in page.text  # the upload
    assert TITLE in html.unescape(page.text)  # by its title in the citizen's store
    assert "✓ đã kiểm chứng" in page.text
    assert 'id="checkpoint"' in page.text
    assert 'id="unverified"' not in page.text


async def test_the_history_is_newest_first_in_pages(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    me = await signed_in(http, info, fresh_citizen)
    for _ in range(history.PAGE_SIZE):
        assert (await me.page(info, f"/vault/{me.document_id}")).status_code == 200
    first = await until(lambda: _page_with(me, info, "/history", history.PAGE_SIZE), "a full first page")
    indexes = [int(i) for i in re.findall(r'data-index="(\d+)"', first.text)]
    assert indexes == sorted(indexes, reverse=True)
    assert "Tải về giấy tờ" in first.text
    link = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert link, "a link to the next page"
    second = await me.page(info, html.unescape(link.group(1)))
    older = [int(i) for i in re.findall(r'data-index="(\d+)"', second.text)]
    assert older
    assert max(older) < min(indexes)
    assert 'id="first-page"' in second.text
    assert (await me.page(info, "/history?page=not-a-token")).status_code == 400


async def _page_with(me: Signed, info: StackInfo, path: str, rows: int) -> httpx.Response | None:
    page = await me.page(info, path)
    return page if len(re.findall(r'<tr class="entry', page.text)) >= rows else None


async def test_the_citizen_grants_on_their_own_initiative(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen
) -> None:
    me = await signed_in(http, info, fresh_citizen)
    form = await me.page(info, "/consents/new")
    assert form.status_code == 200
    assert f'value="{me.document_id}"' in form.text
    assert TITLE in html.unescape(form.text)
    assert 'value="EMPLOYMENT_BACKGROUND_CHECK"' in form.text
    fields = {"csrf": csrf_of(form), "client_id": agency.client_id, "purpose": "EMPLOYMENT_BACKGROUND_CHECK",
              "document_id": me.document_id}  # fmt: skip
    fields |= {"days": "7", "max_fetches": "5", "per_day": "2", "data_life_days": "14"}

    async def post(**changes: str) -> httpx.Response:
        data = {k: v for k, v in (fields | changes).items() if v}
        return await me.browser.request("POST", url(info, "/consents/grant"), data=data)

    assert (await post(csrf="")).status_code == 403
    assert (await post(document_id="")).status_code == 400
    assert (await post(per_day="0")).status_code == 400
    assert (await post(days="400")).status_code == 400
    unknown = await post(client_id="agency-does-not-exist")
    assert unknown.status_code == 404, unknown.status_code
    assert "Quản lý sự đồng ý" in unknown.text
    assert "Không tìm thấy cơ quan có mã này" in unknown.text
    assert 'data-id="' not in (await me.page(info)).text  # nothing was granted by the refused forms

    granted = await post()
    assert granted.status_code == 303
    assert granted.headers["location"].startswith("/consents?done=grant#c-")
    consent_id = granted.headers["location"].rsplit("#c-", 1)[1]
    page = await me.page(info, "/consents?done=grant")
    assert consent_id in section(page, "current")
    shown = article(page, consent_id)
    assert 'data-status="active"' in shown
    assert agency.name in shown
    assert "tối đa 2 lần mỗi ngày, tổng cộng 5 lần" in shown
    assert "cơ quan được giữ dữ liệu trong 14 ngày" in shown
    token = await agency.token(info, consent_id)
    async with agency.vault(info) as vault:
        assert await agency.download(vault, token, me.document_id) == PDF


async def test_concurrent_clicks_change_a_consent_once(
    http: httpx.AsyncClient, info: StackInfo, agency: DemoAgency, fresh_citizen: Citizen
) -> None:
    me = await signed_in(http, info, fresh_citizen)
    asked = await agency.request_consent(info, me.id_number, terms([me.document_id]))
    assert (await me.click(info, asked.id, "approve")).status_code == 303
    csrf = csrf_of(await me.page(info))
    replies = await asyncio.gather(*(me.click(info, asked.id, "revoke", csrf=csrf) for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [303, 409, 409, 409, 409]
