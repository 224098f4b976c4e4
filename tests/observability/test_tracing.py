"""Traces (issue 12 item 3): edge → services → PostgreSQL/S3 with ``DINHDANH_TRACING=file:<dir>``, off by default.

One stack of this module's own, started with the setting in its environment (so every process it starts has it,
as ``DINHDANH_TRACING=file:… dinhdanh up`` would); the session stack, started without, shows tracing off."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import tracing
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from registry.generator import generate
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as, own_stack
from tests.oidc_helpers import person, portal_flow, signed_in
from tests.vault_helpers import PDF, citizen_token, download, upload
from tests.waiting import log_events, until

Span = dict[str, Any]
SEEDED = 12


@pytest.fixture(scope="module")
async def traced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, Path]]:
    spans = tmp_path_factory.mktemp("spans")
    before = os.environ.get(tracing.ENV)
    os.environ[tracing.ENV] = f"file:{spans}"
    try:
        async with own_stack(tmp_path_factory.mktemp("traced-var"), SEEDED) as running:
            _restore(before)  # every process has it by now; the session stack's must not
            yield running, spans
    finally:
        _restore(before)


def _restore(before: str | None) -> None:
    if before is None:
        os.environ.pop(tracing.ENV, None)
    else:
        os.environ[tracing.ENV] = before


def spans_of(folder: Path, process: str, trace_id: str | None = None) -> list[Span]:
    found = []
    for path in folder.glob(f"{process}-*.jsonl"):
        for line in path.read_text().splitlines():
            span = json.loads(line)
            if trace_id is None or span["trace_id"] == trace_id:
                found.append(span)
    return found


def under(span: Span, ancestor: Span, spans: list[Span]) -> bool:
    """``span`` descends from ``ancestor`` through the parents recorded in ``spans``."""
    by_id = {s["span_id"]: s for s in spans}
    while span["parent_span_id"] is not None:
        if span["parent_span_id"] == ancestor["span_id"]:
            return True
        if span["parent_span_id"] not in by_id:
            return False
        span = by_id[span["parent_span_id"]]
    return False


@pytest.fixture(scope="module")
def citizens() -> list[Citizen]:
    """Two of the traced stack's seeded citizens (the first is the demo citizen)."""
    return list(generate(SEEDED))[1:3]


async def test_a_sign_in_is_one_trace_from_the_edge_to_postgresql(
    traced: tuple[Stack, Path], citizens: list[Citizen]
) -> None:
    stack, folder = traced
    info = StackInfo.load(stack.info_path)
    who = await person(info, citizens[0])
    trace_id = secrets.token_hex(16)
    parent = f"00-{trace_id}-{secrets.token_hex(8)}-01"  # W3C trace context: the caller's trace is continued
    async with httpx.AsyncClient(timeout=20, headers={"traceparent": parent}) as http:
        flow = portal_flow(info)
        _, params = await signed_in(http, flow, who)
        tokens = await flow.redeem(http, params["code"], params["_verifier"])
        assert tokens.status_code == 200, tokens.text
        bearer = {"authorization": f"Bearer {tokens.json()['access_token']}"}
        userinfo = await http.get(f"{info.oidc_issuer}/userinfo", headers=bearer)
        assert userinfo.status_code == 200, userinfo.text

    await until(lambda: spans_of(folder, "registry", trace_id), "the registry's span of userinfo")
    await until(lambda: [s for s in spans_of(folder, "edge", trace_id) if s["name"] == "GET /userinfo"], "the edge's")
    edge = spans_of(folder, "edge", trace_id)
    identity = spans_of(folder, "identity", trace_id)
    registry = spans_of(folder, "registry", trace_id)
    assert {s["service"] for s in edge} == {"edge"}
    assert {"POST /login", "POST /login/totp", "POST /token", "GET /userinfo"} <= {s["name"] for s in edge}

    # identity's VerifyPassword continues the edge's client span, and its queries are spans under it
    (verify,) = [s for s in identity if s["name"] == "/dinhdanh.identity.v1.Identity/VerifyPassword"]
    assert verify["kind"] == "SERVER"
    edge_clients = {s["span_id"]: s for s in edge if s["kind"] == "CLIENT"}
    assert edge_clients[verify["parent_span_id"]]["name"] == verify["name"]
    queries = [s for s in identity if s["attributes"].get("db.system") == "postgresql"]
    assert any(under(q, verify, identity) for q in queries), [s["name"] for s in identity]

    lookups = [s for s in registry if s["kind"] == "SERVER"]
    assert lookups
    assert all(s["parent_span_id"] in edge_clients for s in lookups)
    assert any(s["attributes"].get("db.system") == "postgresql" for s in registry)

    # identity's log line of the attempt names the trace and its span (core/logs.py)
    (line,) = log_events(stack.var / "logs" / "identity.log", 0, "identity.password", trace_id=trace_id)
    assert line["span_id"] in {s["span_id"] for s in identity}

    # the query string (the authorization request, the code) is left out of the spans
    code = params["code"]
    assert all(code not in json.dumps(s) and "code_challenge" not in json.dumps(s) for s in edge)


async def test_a_vault_upload_and_download_trace_their_s3_requests(
    traced: tuple[Stack, Path], citizens: list[Citizen]
) -> None:
    stack, folder = traced
    info = StackInfo.load(stack.info_path)
    async with httpx.AsyncClient(timeout=20) as http:
        token = await citizen_token(http, info, citizens[1])
    async with channel_as(stack, "vault", "edge") as channel:
        vault = pb_grpc.VaultStub(channel)
        document = await upload(vault, token, [PDF], filename="traced.pdf")
        _, content = await download(vault, token, document.id)
    assert content == PDF

    def calls(method: str) -> list[Span]:
        return [s for s in spans_of(folder, "vault") if s["name"] == f"/dinhdanh.vault.v1.Vault/{method}"]

    for method in ("Upload", "Download"):
        (call,) = await until(lambda m=method: calls(m), f"the vault's {method} span")
        assert call["kind"] == "SERVER"
        assert call["parent_span_id"] is None  # this test's channel is not traced: the call starts the trace
        mine = spans_of(folder, "vault", call["trace_id"])
        s3 = [
            s for s in mine if s["kind"] == "CLIENT" and {"http.method", "http.request.method"} & set(s["attributes"])
        ]
        assert any(under(s, call, mine) for s in s3), [s["name"] for s in mine]
        assert any(s["attributes"].get("db.system") == "postgresql" for s in mine)


def test_a_malformed_setting_stops_the_start() -> None:
    for bad in ("zipkin", "file:", "file:   ", "OTLP"):
        with pytest.raises(SystemExit, match="DINHDANH_TRACING"):
            tracing.parse(bad)
    assert tracing.parse(" otlp ") == ("otlp", None)
    assert tracing.parse("file:var/spans") == ("file", Path("var/spans"))


def test_off_by_default(stack: Stack) -> None:
    """The session stack has no setting: no span files, and in a process with none, no SDK and no interceptors."""
    assert all(not p.env or not p.env.get(tracing.ENV) for p in stack.services.values())
    assert not list(stack.var.rglob("*.jsonl"))
    before = os.environ.pop(tracing.ENV, None)
    try:
        tracing.setup("test", "")
    finally:
        _restore(before)
    assert not tracing.enabled()
    assert tracing.server_interceptors() == []
    assert tracing.client_interceptors() == []
    app = object()
    assert tracing.asgi(app) is app  # type: ignore[arg-type]
