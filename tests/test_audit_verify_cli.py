"""`dinhdanh audit verify` offline, with nothing but the verifier key: verdicts, what failed, exit codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import merkle, tiles
from audit.sequencer import Signer

ORIGIN = "example.test/log"


def audit(*args: str) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run([sys.executable, "-m", "cli.main", "audit", *args, "--json"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    human = subprocess.run([sys.executable, "-m", "cli.main", "audit", *args], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    return result.returncode, json.loads(result.stdout), human.stdout + human.stderr


def write_log(folder: Path, entries: list[bytes], signer: Signer) -> None:
    node = merkle.nodes_from_leaves([merkle.leaf_hash(e) for e in entries])
    for path in tiles.tile_set(len(entries)):
        first = path.index * 256
        data = (tiles.bundle_bytes(entries[first : first + path.width]) if path.level is None
                else tiles.tile_bytes([node(8 * path.level, first + i) for i in range(path.width)]))  # fmt: skip
        (folder / str(path)).parent.mkdir(parents=True, exist_ok=True)
        (folder / str(path)).write_bytes(data)
    (folder / "checkpoint").write_text(signer.sign(len(entries), merkle.root_at(len(entries), node)))


@pytest.fixture
def signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


def test_a_tile_set_and_its_checkpoint_verify(tmp_path: Path, signer: Signer) -> None:
    entries = [f'{{"n":{i}}}'.encode() for i in range(700)]
    write_log(tmp_path, entries, signer)
    (tmp_path / "key").write_text(signer.vkey + "\n")
    code, out, human = audit("verify", "--key", str(tmp_path / "key"), "--tiles", str(tmp_path))
    assert (code, out["verified"], out["entries"], out["size"]) == (0, True, 700, 700)
    assert human.startswith("OK: 700 entries")
    code, out, human = audit("verify", "--key", signer.vkey, "--checkpoint", str(tmp_path / "checkpoint"),
                             "--origin", ORIGIN)  # fmt: skip
    assert (code, out["size"]) == (0, 700)
    bundle = tmp_path / "tile" / "entries" / "001"
    bundle.write_bytes(bundle.read_bytes().replace(b'{"n":300}', b'{"n":301}'))
    code, out, human = audit("verify", "--key", signer.vkey, "--tiles", str(tmp_path))
    assert code == 1
    assert out["error"] == "tile/0/001: the leaf hash of entry 300 does not match the entry bundles"
    assert human.startswith("REFUSED: tile/0/001")


def test_another_key_or_a_wrong_origin_is_refused(tmp_path: Path, signer: Signer) -> None:
    write_log(tmp_path, [b"a", b"b", b"c"], signer)
    other = Signer(ORIGIN, Ed25519PrivateKey.generate())
    code, out, _ = audit("verify", "--key", other.vkey, "--checkpoint", str(tmp_path / "checkpoint"))
    assert code == 1
    assert "signature" in out["error"]
    code, out, _ = audit("verify", "--key", signer.vkey, "--checkpoint", str(tmp_path / "checkpoint"),
                         "--origin", "other.test/log")  # fmt: skip
    assert code == 1
    assert "origin" in out["error"]


def test_inclusion_and_consistency_proof_files(tmp_path: Path, signer: Signer) -> None:
    entries = [bytes([i]) for i in range(40)]
    node = merkle.nodes_from_leaves([merkle.leaf_hash(e) for e in entries])
    (tmp_path / "old").write_text(signer.sign(17, merkle.root_at(17, node)))
    (tmp_path / "new").write_text(signer.sign(40, merkle.root_at(40, node)))
    proof = {"index": 9, "tree_size": 40, "leaf": base64.b64encode(entries[9]).decode(),
             "hashes": [base64.b64encode(h).decode() for h in merkle.inclusion_proof(9, 40, node)]}  # fmt: skip
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    code, out, _ = audit("verify", "--key", signer.vkey, "--checkpoint", str(tmp_path / "new"), "--inclusion",
                         str(tmp_path / "proof.json"))  # fmt: skip
    assert (code, out["index"]) == (0, 9)
    proof["leaf"] = base64.b64encode(b"not it").decode()
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    code, out, _ = audit("verify", "--key", signer.vkey, "--checkpoint", str(tmp_path / "new"), "--inclusion",
                         str(tmp_path / "proof.json"))  # fmt: skip
    assert code == 1
    assert out["error"] == "inclusion proof: leaf 9 is not in the tree of the checkpoint (size 40)"
    hashes = [base64.b64encode(h).decode() for h in merkle.consistency_proof(17, 40, node)]
    (tmp_path / "consistency.json").write_text(json.dumps({"hashes": hashes}))
    code, out, _ = audit("verify", "--key", signer.vkey, "--consistency", str(tmp_path / "old"), str(tmp_path / "new"),
                         "--proof", str(tmp_path / "consistency.json"))  # fmt: skip
    assert (code, out["old_size"], out["new_size"]) == (0, 17, 40)
    forged = merkle.nodes_from_leaves([merkle.leaf_hash(bytes([i + 1])) for i in range(40)])
    (tmp_path / "forged").write_text(signer.sign(40, merkle.root_at(40, forged)))
    code, out, _ = audit("verify", "--key", signer.vkey, "--consistency", str(tmp_path / "old"),
                         str(tmp_path / "forged"), "--proof", str(tmp_path / "consistency.json"))  # fmt: skip
    assert code == 1
    assert out["error"] == "consistency: the tree of size 40 does not extend the tree of size 17"


def test_unusable_input_is_exit_code_2(tmp_path: Path, signer: Signer) -> None:
    code, out, _ = audit("verify", "--key", signer.vkey, "--checkpoint", str(tmp_path / "missing"))
    assert code == 2
    assert "cannot read" in out["error"]
    code, out, _ = audit("verify", "--checkpoint", str(tmp_path / "missing"))
    assert code == 2
    assert "--key" in out["error"]
