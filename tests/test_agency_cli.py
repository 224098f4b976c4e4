"""``dinhdanh agency …``: the demo agency's side of consent from the command line (the README walk-through), against
the real stack, the CLI run as a subprocess the way a newcomer types it: the purpose catalog; a request → the citizen
approves (the consent gRPC with a citizen token) → the shared documents listed → a fetch writes the bytes the
citizen uploaded → the signed status verifies against GetSigningKeys; a refused fetch prints its reason code and
exits non-zero; bad input is one clear line."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consent.purposes import CATALOG
from consent.signing import STATUS_TYPE, verify_jwt
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import SignedIn, bearer, sign_in_citizen
from tests.conftest import channel_as
from tests.vault_helpers import upload

PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"
PDF = b"%PDF-1.7\n" + os.urandom(30_000) + b"\n%%EOF\n"


def cli(stack: Stack, *args: str, as_json: bool = True) -> subprocess.CompletedProcess[str]:
    extra = ["--json"] if as_json else []
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "cli.main", "agency", *args, "--var", str(stack.var), *extra],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip


def agency(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    """One ``--json`` run: its exit code and its one JSON object."""
    result = cli(stack, *args)
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


async def agency_async(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(agency, stack, *args)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """A person's error: non-zero, one line on stderr beginning ``error:``, no traceback, nothing on stdout."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
async def citizen(http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]) -> SignedIn:
    return await sign_in_citizen(http, info, next(fresh_citizens))


@pytest.fixture(scope="module")
async def papers(vault: vgrpc.VaultStub, citizen: SignedIn) -> dict[str, str]:
    diploma = await upload(vault, citizen.token, [PDF], vpb.DOCUMENT_TYPE_DIPLOMA, "Bằng tốt nghiệp", "bang.pdf")
    health = await upload(vault, citizen.token, [PDF[:3000] + b"%%EOF\n"], vpb.DOCUMENT_TYPE_HEALTH_BOOK,
                          "Sổ sức khỏe", "so.pdf")  # fmt: skip
    return {"diploma": diploma.id, "health": health.id}


async def approve(stack: Stack, citizen: SignedIn, consent_id: str) -> cpb.ConsentRecord:
    """The citizen's click, through the consent gRPC (the platform peer edge, the citizen's token)."""
    async with channel_as(stack, "consent", "edge") as channel:
        request = cpb.ConsentIdRequest(id=consent_id)
        return await cgrpc.ConsentStub(channel).Approve(request, metadata=bearer(citizen.token), timeout=20)


def test_purposes_as_json_and_as_a_table(stack: Stack) -> None:
    code, data = agency(stack, "purposes")
    assert code == 0, data
    listed = {p["code"]: p for p in data["purposes"]}
    assert listed.keys() == CATALOG.keys()
    employment = listed[PURPOSE]
    assert (employment["text_vi"], employment["text_en"]) == (CATALOG[PURPOSE].text_vi, CATALOG[PURPOSE].text_en)
    assert CATALOG[PURPOSE].legal_basis[0] in employment["legal_basis"]
    shown = cli(stack, "purposes", as_json=False)
    assert shown.returncode == 0, shown.stderr
    words = " ".join(shown.stdout.replace("│", " ").split())
    for code_ in CATALOG:
        assert code_ in words
    shown_words = set(words.split())
    assert set(CATALOG[PURPOSE].text_en.split()) <= shown_words  # a cell's text wraps beside the others
    assert set(CATALOG[PURPOSE].text_vi.split()) <= shown_words
    assert "{'" not in words
    assert "['" not in words


async def test_request_approve_list_fetch_status_and_refusal(
    stack: Stack, citizen: SignedIn, papers: dict[str, str], tmp_path: Path
) -> None:
    asking = (
        "--purpose",
        PURPOSE,
        "--document",
        papers["diploma"],
        "--days",
        "7",
        "--max-fetches",
        "2",
        "--per-day",
        "2",
    )
    code, asked = await agency_async(stack, "request", citizen.id_number, *asking)
    assert code == 0, asked
    assert (asked["status"], asked["purpose"], asked["document_ids"]) == ("PENDING", PURPOSE, [papers["diploma"]])
    assert (asked["max_fetches"], asked["per_day"], asked["data_life_days"]) == (2, 2, 30)
    consent_id = asked["id"]
    code, pending = await agency_async(stack, "status", consent_id)
    assert (code, pending["status"], pending["verified"]) == (0, "PENDING", True), pending

    assert (await approve(stack, citizen, consent_id)).status == cpb.CONSENT_STATUS_ACTIVE

    code, listed = await agency_async(stack, "documents", consent_id)
    assert code == 0, listed
    assert [d["id"] for d in listed["documents"]] == [papers["diploma"]]
    assert listed["documents"][0]["type"] == "DIPLOMA"

    out = tmp_path / "bang.pdf"
    code, fetched = await agency_async(stack, "fetch", consent_id, papers["diploma"], "--out", str(out))
    assert code == 0, fetched
    assert out.read_bytes() == PDF
    assert fetched["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (fetched["size_bytes"], fetched["out"]) == (len(PDF), str(out))

    code, status = await agency_async(stack, "status", consent_id)
    assert code == 0, status
    assert (status["status"], status["fetches"], status["verified"]) == ("ACTIVE", 1, True)
    async with channel_as(stack, "consent", "edge") as channel:
        keys = await cgrpc.ConsentStub(channel).GetSigningKeys(cpb.GetSigningKeysRequest(), timeout=20)
    claims = verify_jwt(status["jws"], json.loads(keys.jwks_json), STATUS_TYPE)
    assert (claims["sub"], claims["status"], claims["fetches"]) == (consent_id, "ACTIVE", 1)
    assert claims == status["claims"]

    code, token = await agency_async(stack, "token", consent_id)
    assert code == 0, token
    assert "access_token" not in token, "the token itself only with --raw"
    assert token["claims"]["authorization_details"] == [{"type": "consent", "consent_id": consent_id,
                                                         "purpose": PURPOSE}]  # fmt: skip
    assert token["claims"]["aud"] == ["urn:dinhdanh:service:vault"]
    assert "x5t#S256" in token["claims"]["cnf"]
    code, raw = await agency_async(stack, "token", consent_id, "--raw")
    assert code == 0, raw
    assert raw["access_token"].count(".") == 2, raw

    code, again = await agency_async(stack, "fetch", consent_id, papers["diploma"], "--out", str(tmp_path / "2.pdf"))
    assert code == 0, again
    late = tmp_path / "3.pdf"
    code, refused = await agency_async(stack, "fetch", consent_id, papers["diploma"], "--out", str(late))
    assert code != 0, refused
    assert refused["reason"] == "USES_EXHAUSTED", refused
    assert refused["error"].startswith("PERMISSION_DENIED: USES_EXHAUSTED"), refused
    assert not late.exists(), "nothing written for a refused fetch"
    said = await asyncio.to_thread(cli, stack, "fetch", consent_id, papers["diploma"], "--out", str(late),
                                   as_json=False)  # fmt: skip
    assert "USES_EXHAUSTED" in one_line_error(said)


async def test_request_by_type_lists_only_that_type(
    stack: Stack, citizen: SignedIn, papers: dict[str, str], tmp_path: Path
) -> None:
    code, asked = await agency_async(stack, "request", citizen.id_number, "--purpose", PURPOSE, "--type", "diploma")
    assert code == 0, asked
    assert asked["document_types"] == ["DIPLOMA"]
    await approve(stack, citizen, asked["id"])
    code, listed = await agency_async(stack, "documents", asked["id"])
    assert code == 0, listed
    assert [d["id"] for d in listed["documents"]] == [papers["diploma"]]
    code, refused = await agency_async(stack, "fetch", asked["id"], papers["health"], "--out", str(tmp_path / "no"))
    assert (code != 0, refused["reason"]) == (True, "DOCUMENT_NOT_IN_GRANT"), refused


def test_bad_input_is_one_clear_line(stack: Stack, citizens: list[Citizen], tmp_path: Path) -> None:
    someone = citizens[7].id_number
    cases: list[tuple[tuple[str, ...], str]] = [
        (("request", "123", "--purpose", PURPOSE, "--type", "DIPLOMA"), "12 digits"),
        (("request", someone, "--purpose", PURPOSE), "--type or --document"),
        (("request", someone, "--purpose", PURPOSE, "--type", "NOPE"), "DIPLOMA"),
        (("request", someone, "--purpose", PURPOSE, "--document", "not-a-uuid"), "UUID"),
        (("status", "not-a-uuid"), "UUID"),
        (("token", str(uuid.uuid4())), "invalid_authorization_details: unknown consent_id"),
        (("status", str(uuid.uuid4())), "NOT_FOUND"),
        (("documents", "xyz"), "UUID"),
        (
            ("fetch", str(uuid.uuid4()), str(uuid.uuid4()), "--out", str(tmp_path / "no")),
            "invalid_authorization_details",
        ),
        (("status", str(uuid.uuid4()), "--cert", str(tmp_path / "missing.pem")), "missing.pem"),
    ]
    for args, said in cases:
        code, data = agency(stack, *args)
        assert code != 0, (args, data)
        assert said in data["error"], (args, data)
        assert "\n" not in data["error"], data
    code, data = agency(stack, "request", someone, "--purpose", "NO_SUCH_PURPOSE", "--type", "DIPLOMA")
    assert code != 0, data
    assert data["error"].split(":")[0] in ("INVALID_ARGUMENT", "PERMISSION_DENIED"), data
    line = one_line_error(cli(stack, "status", "not-a-uuid", as_json=False))
    assert "UUID" in line


def test_notification_url_set_and_removed(stack: Stack) -> None:
    code, data = agency(stack, "notify", "ftp://example.org/hook")
    assert code != 0, data
    assert data["error"].startswith("INVALID_ARGUMENT"), data
    code, data = agency(stack, "notify", "http://127.0.0.1:9/consent-hook")
    assert (code, data) == (0, {"url": "http://127.0.0.1:9/consent-hook"})
    code, data = agency(stack, "notify", "")
    assert (code, data) == (0, {"url": ""})
