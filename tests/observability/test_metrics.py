"""Prometheus metrics of every process (issue 12 item 3; core/metrics.py): each process of the stack answers
``GET /metrics`` on a port of its own with its series, and the counters move by exactly what was done — RPCs
with the status code sent (refusals of the caller interceptor included), HTTP requests by route template
(``unmatched`` otherwise), Argon2 waits, consent decisions — parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import Consents, download_shared, sign_in_citizen, terms
from tests.conftest import channel_as
from tests.consent_agency_helpers import DemoAgency
from tests.vault_helpers import PDF, bearer, citizen_token, upload

SERVICES = ("registry", "identity", "vault", "consent", "log", "judicial", "issuance", "health")
WEB = ("edge", "portal", "portal_2")
POOLED = (*SERVICES, "edge")
VAULT = "dinhdanh.vault.v1.Vault"
CONCURRENT = 20
DECISIONS = ("granted", "denied", "paused", "resumed", "revoked", "expired", "fetch_allowed", "fetch_refused")


@dataclass(frozen=True)
class Scrape:
    """One scrape: ``{family name: {(sample name, sorted labels): value}}``."""

    families: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for family in text_string_to_metric_families(text):
            samples = families.setdefault(family.name, {})
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return cls(families)

    def value(self, sample: str, **labels: str) -> float:
        """The sample's value; 0 when the scrape has no such sample (a labelled counter not yet incremented)."""
        key = (sample, tuple(sorted(labels.items())))
        return next((samples[key] for samples in self.families.values() if key in samples), 0.0)

    def labels(self, family: str) -> Iterator[dict[str, str]]:
        for _name, labels in self.families.get(family, {}):
            yield dict(labels)


async def scrape(http: httpx.AsyncClient, info: StackInfo, process: str) -> Scrape:
    reply = await http.get(info.metrics[process])
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    return Scrape.parse(reply.text)


async def test_every_process_serves_its_series(http: httpx.AsyncClient, info: StackInfo) -> None:
    assert set(info.metrics) == {*SERVICES, *WEB}
    scrapes = dict(zip(info.metrics, await asyncio.gather(*(scrape(http, info, p) for p in info.metrics)), strict=True))
    for process, found in scrapes.items():
        builds = list(found.labels("dinhdanh_build_info"))
        assert [build["process"] for build in builds] == [process.removesuffix("_2")], (process, builds)
        assert {"process_cpu_seconds", "python_info"} <= set(found.families), process
    for process in SERVICES:
        assert "grpc_server_handled" in scrapes[process].families, process
        assert "grpc_server_handling_seconds" in scrapes[process].families, process
        assert "http_server_requests" not in scrapes[process].families, process
    for process in WEB:
        assert "http_server_requests" in scrapes[process].families, process
        assert "http_server_request_duration_seconds" in scrapes[process].families, process
        assert "grpc_server_handled" not in scrapes[process].families, process
    for process in POOLED:
        found = scrapes[process]
        assert found.value("dinhdanh_db_pool_max") > 0, process
        states = {labels["state"] for labels in found.labels("dinhdanh_db_pool_connections")}
        assert states == {"in_use", "idle"}, (process, states)
        assert found.value("dinhdanh_db_pool_connections", state="idle") >= 0, process
    identity = scrapes["identity"]
    assert {"dinhdanh_argon2_queue_length", "dinhdanh_argon2_wait_seconds", "dinhdanh_argon2_busy"} <= set(
        identity.families
    )
    assert "dinhdanh_argon2_queue_length" not in scrapes["vault"].families
    consent = {labels["decision"] for labels in scrapes["consent"].labels("dinhdanh_consent_decisions")}
    assert consent == set(DECISIONS)
    log = scrapes["log"]
    assert log.value("dinhdanh_log_append_lag_seconds") >= 0
    assert log.value("dinhdanh_log_unsequenced_events") >= 0
    assert "dinhdanh_log_append_lag_seconds" in log.families


async def test_only_metrics_is_served(http: httpx.AsyncClient, info: StackInfo) -> None:
    other = info.metrics["vault"].removesuffix("/metrics") + "/other"
    assert (await http.get(other)).status_code == 404


@pytest.fixture(scope="module")
def citizen(fresh_citizens: Iterator[Citizen]) -> Citizen:
    return next(fresh_citizens)


async def test_rpcs_are_counted_with_the_code_sent(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, citizen: Citizen
) -> None:
    token = await citizen_token(http, info, citizen)
    before = await scrape(http, info, "vault")
    async with channel_as(stack, "vault", "edge") as channel:
        vault = pb_grpc.VaultStub(channel)
        listed = [vault.ListDocuments(pb.ListDocumentsRequest(), metadata=bearer(token), timeout=20)]
        await asyncio.gather(*listed, *(vault.ListDocuments(pb.ListDocumentsRequest(), metadata=bearer(token),
                                                            timeout=20) for _ in range(CONCURRENT - 1)))  # fmt: skip
        refused = await asyncio.gather(
            *(vault.ListDocuments(pb.ListDocumentsRequest(), timeout=20) for _ in range(CONCURRENT)),
            return_exceptions=True,
        )
    codes = {error.code() for error in refused if isinstance(error, grpc.aio.AioRpcError)}
    assert len(refused) == CONCURRENT
    assert len(codes) == 1, refused  # every call refused, all alike
    code = codes.pop()
    assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    after = await scrape(http, info, "vault")
    method = {"grpc_service": VAULT, "grpc_method": "ListDocuments"}

    def moved(sample: str, **labels: str) -> float:
        return after.value(sample, **labels) - before.value(sample, **labels)

    assert moved("grpc_server_handled_total", **method, grpc_code="OK") == CONCURRENT
    assert moved("grpc_server_handled_total", **method, grpc_code=code.name) == CONCURRENT
    assert moved("grpc_server_handling_seconds_count", **method) == 2 * CONCURRENT
    assert moved("grpc_server_handling_seconds_bucket", **method, le="+Inf") == 2 * CONCURRENT
    for labels in after.labels("grpc_server_handled"):  # names of registered methods only, status names
        assert labels["grpc_code"] in grpc.StatusCode.__members__, labels
        assert labels["grpc_service"].startswith(("dinhdanh.", "grpc.")), labels


async def test_http_requests_are_counted_by_route_template(http: httpx.AsyncClient, info: StackInfo) -> None:
    issuer = info.oidc_issuer.rstrip("/")
    before = await scrape(http, info, "edge")
    replies = await asyncio.gather(*(http.get(f"{issuer}/.well-known/openid-configuration")
                                     for _ in range(CONCURRENT)))  # fmt: skip
    assert {reply.status_code for reply in replies} == {200}
    secret = uuid.uuid4().hex
    assert (await http.get(f"{issuer}/no/such/{secret}")).status_code == 404
    assert (await http.get(f"{issuer}/log/no-such-{secret}")).status_code == 404  # inside a Mount, no route
    tile = await http.get(f"{issuer}/log/tile/0/{secret}")
    status_list = await http.get(f"{issuer}/statuslists/{secret}")
    after = await scrape(http, info, "edge")

    def moved(sample: str, **labels: str) -> float:
        return after.value(sample, **labels) - before.value(sample, **labels)

    discovery = {"route": "/.well-known/openid-configuration", "method": "GET"}
    assert moved("http_server_requests_total", **discovery, status="200") == CONCURRENT
    assert moved("http_server_request_duration_seconds_count", **discovery) == CONCURRENT
    assert moved("http_server_requests_total", route="unmatched", method="GET", status="404") == 2
    tiles = {"route": "/log/tile/{rest:path}", "method": "GET", "status": str(tile.status_code)}
    assert moved("http_server_requests_total", **tiles) == 1
    lists = {"route": "/statuslists/{list_id}", "method": "GET", "status": str(status_list.status_code)}
    assert moved("http_server_requests_total", **lists) == 1
    for labels in after.labels("http_server_requests"):
        assert secret not in labels["route"], labels
        assert labels["route"] == "unmatched" or labels["route"].startswith("/"), labels


async def test_argon2_series_move_with_a_sign_in(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]
) -> None:
    before = await scrape(http, info, "identity")
    await citizen_token(http, info, next(fresh_citizens))  # a password set, then checked at sign-in
    after = await scrape(http, info, "identity")
    waited = after.value("dinhdanh_argon2_wait_seconds_count") - before.value("dinhdanh_argon2_wait_seconds_count")
    assert waited >= 2
    assert after.value("dinhdanh_argon2_wait_seconds_bucket", le="+Inf") == after.value(
        "dinhdanh_argon2_wait_seconds_count"
    )
    assert after.value("dinhdanh_argon2_queue_length") >= 0
    assert after.value("dinhdanh_argon2_busy_total") == before.value("dinhdanh_argon2_busy_total")


async def test_consent_decisions_are_counted(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizens: Iterator[Citizen]
) -> None:
    signed = await sign_in_citizen(http, info, next(fresh_citizens))
    agency = DemoAgency.of(info)
    consent_before, vault_before = await scrape(http, info, "consent"), await scrape(http, info, "vault")
    async with channel_as(stack, "vault", "edge") as channel:
        vault = pb_grpc.VaultStub(channel)
        document = await upload(vault, signed.token, [PDF], pb.DOCUMENT_TYPE_DIPLOMA, "Bằng", "bang.pdf")
    async with channel_as(stack, "consent", "edge") as channel:
        consents = Consents(channel)
        consent_id = await consents.grant(signed, agency, terms((document.id,)))
        token = await agency.token(info, consent_id)
        async with agency.vault(info) as vault:
            fetched = await download_shared(vault, token, document.id)
            assert fetched.code == grpc.StatusCode.OK, fetched
            refused = await download_shared(vault, token, str(uuid.uuid4()))
            assert refused.code == grpc.StatusCode.PERMISSION_DENIED, refused
        for action in ("Pause", "Resume", "Revoke"):
            await consents.change(signed, action, consent_id)
    consent_after, vault_after = await scrape(http, info, "consent"), await scrape(http, info, "vault")
    counted = "dinhdanh_consent_decisions_total"
    for decision in ("granted", "paused", "resumed", "revoked"):
        moved = consent_after.value(counted, decision=decision) - consent_before.value(counted, decision=decision)
        assert moved == 1, decision
    for decision in ("fetch_allowed", "fetch_refused"):
        moved = vault_after.value(counted, decision=decision) - vault_before.value(counted, decision=decision)
        assert moved == 1, decision
    shared = {"grpc_service": VAULT, "grpc_method": "DownloadShared"}
    for code in ("OK", "PERMISSION_DENIED"):  # a server-streaming RPC, and a refusal mapped from a domain error
        moved = vault_after.value("grpc_server_handled_total", **shared, grpc_code=code) - vault_before.value(
            "grpc_server_handled_total", **shared, grpc_code=code
        )
        assert moved == 1, code
    uploads = {"grpc_service": VAULT, "grpc_method": "Upload", "grpc_code": "OK"}  # client-streaming
    assert (
        vault_after.value("grpc_server_handled_total", **uploads)
        - vault_before.value("grpc_server_handled_total", **uploads)
        == 1
    )


def test_a_taken_or_malformed_metrics_address_fails_the_start_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SystemExit, match=f"vault: cannot serve metrics on {address}: "):
            metrics.serve(address, "vault")
    for malformed in ("19100", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(SystemExit, match="the metrics address must be host:port"):
            metrics.serve(malformed, "vault")


async def test_serve_on_port_zero_says_its_port(http: httpx.AsyncClient) -> None:
    port = metrics.serve("127.0.0.1:0", "test")
    assert port
    assert metrics.serve("127.0.0.1:0", "test") == port  # once per address and process
    reply = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert reply.status_code == 200
    assert 'dinhdanh_build_info{process="test",version=' in reply.text
    assert (await http.get(f"http://127.0.0.1:{port}/")).status_code == 404
