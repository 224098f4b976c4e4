"""``dinhdanh vault`` as scripts use it: ``upkeep --grace 0`` sweeps every pending upload, reports documents whose
object is missing, and every ``--json`` command answers one JSON object, usage errors included."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest

from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.identity_calls import refused
from tests.test_cli import dinhdanh
from tests.vault_helpers import PDF, download, rows, s3_objects, upload


async def test_upkeep_grace_0_sweeps_every_pending_upload(stack: Stack, info: StackInfo) -> None:
    name = str(uuid.uuid4())
    await rows(info, "INSERT INTO vault.pending_objects (object_name) VALUES ($1)", name)  # begun just now
    code, done = dinhdanh(stack, "vault", "upkeep", "--grace", "0")
    assert code == 0, done
    assert done["swept"] >= 1
    assert done["missing"] == 0
    assert not await rows(info, "SELECT 1 FROM vault.pending_objects WHERE object_name = $1", name)


async def test_upkeep_reports_a_document_whose_object_is_missing(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo
) -> None:
    document = await upload(vault, token, [PDF])
    (row,) = await rows(info, "SELECT object_name FROM vault.documents WHERE id = $1", uuid.UUID(document.id))
    assert stack.s3 is not None
    stack.s3.client().remove_object("vault", row["object_name"])  # lost behind the vault's back
    assert row["object_name"] not in s3_objects(stack)
    error = await refused(download(vault, token, document.id), grpc.StatusCode.DATA_LOSS)
    assert "missing" in (error.details() or "")
    code, done = dinhdanh(stack, "vault", "upkeep")
    assert code == 3, done
    assert done["missing"] >= 1
    assert f"{document.id} v1" in done["missing_documents"]
    await rows(info, "DELETE FROM vault.documents WHERE id = $1", uuid.UUID(document.id))  # leave the stack clean


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["vault", "upkeep", "--grace", "-1"], "--grace"),
        (["vault", "upkeep", "--no-such-option"], "No such option"),
        (["vault", "shred"], "Missing argument"),
        (["registry", "lookup"], "Missing argument"),
        (["accounts", "show"], "Missing argument"),
    ],
    ids=["out-of-range", "unknown-option", "vault-missing-argument", "registry-missing-argument", "accounts"],
)
def test_every_json_command_answers_usage_errors_in_json(tmp_path: Path, args: list[str], words: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--var", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    assert words in json.loads(result.stdout)["error"]
