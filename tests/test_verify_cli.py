"""`dinhdanh verify FILE|QR-TEXT` offline: the verdict line, the fields, --json, and the exit codes
(0 valid, 1 invalid/revoked/suspended, 2 unusable input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from cli.main import app
from issuance.pades import sign
from issuance.pdf import render_certificate
from issuance.presentations import present
from issuance.qr import render_qr
from issuance.status_list import Status
from tests.issuance.sd_jwt_helpers import AT, HOLDER_KEY, ISSUER_KEY, issued
from tests.issuance.test_pades import make_ca, make_signer
from tests.issuance.test_pdf import view
from tests.issuance.test_verify import AUDIENCE, NONCE, qr_text, status_token, tampered_char, with_qr_in_subject


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(ISSUER_KEY.jwks()))
    return path


def status_file(tmp_path: Path, value: Status) -> str:
    path = tmp_path / f"status-{value.name}.jwt"
    path.write_text(status_token(value) + "\n")
    return str(path)


def verify(*args: str) -> tuple[int, dict[str, Any], str]:
    runner = CliRunner()
    as_json = runner.invoke(app, ["verify", *args, "--at", AT.isoformat(), "--json"])
    assert as_json.stdout.count("\n") == 1, as_json.stdout
    human = runner.invoke(app, ["verify", *args, "--at", AT.isoformat()])
    assert human.exit_code == as_json.exit_code
    return as_json.exit_code, json.loads(as_json.stdout), human.stdout + human.stderr


def test_a_valid_qr_text_exits_0_and_shows_the_fields_with_vietnamese_labels(keys: Path, tmp_path: Path) -> None:
    code, out, human = verify(qr_text(), "--keys", str(keys), "--status-list", status_file(tmp_path, Status.VALID))
    assert (code, out["outcome"], out["status_checked"], out["kind"]) == (0, "valid", True, "qr")
    assert out["fields"]["holder_name"] == "Nguyễn Thị Minh Khai"
    assert human.startswith("VALID: ")
    assert "Họ và tên" in human
    assert "Nguyễn Thị Minh Khai" in human
    assert "Không có án tích" in human


def test_without_a_status_list_the_line_says_the_status_was_not_checked(keys: Path) -> None:
    code, out, human = verify(qr_text(), "--keys", str(keys))
    assert (code, out["outcome"], out["status_checked"]) == (0, "valid", False)
    assert "status not checked" in human.splitlines()[0]


def test_a_tampered_qr_exits_1_invalid(keys: Path) -> None:
    code, out, human = verify(tampered_char(qr_text(), 40), "--keys", str(keys))
    assert (code, out["outcome"]) == (1, "invalid")
    assert human.startswith("INVALID: ")


def test_revoked_and_suspended_exit_1_with_the_outcome_in_the_line(keys: Path, tmp_path: Path) -> None:
    credential = tmp_path / "certificate.sd-jwt"
    credential.write_text(issued())
    code, out, human = verify(str(credential), "--keys", str(keys), "--status-list",
                              status_file(tmp_path, Status.INVALID))  # fmt: skip
    assert (code, out["outcome"], out["kind"]) == (1, "revoked", "sd-jwt-vc")
    assert human.startswith("REVOKED: ")
    code, out, human = verify(qr_text(), "--keys", str(keys), "--status-list", status_file(tmp_path, Status.SUSPENDED))
    assert (code, out["outcome"]) == (1, "suspended")
    assert human.startswith("SUSPENDED: ")


def test_a_presentation_with_audience_and_nonce(keys: Path, tmp_path: Path) -> None:
    shown = tmp_path / "shown.txt"
    shown.write_text(present(issued(), HOLDER_KEY, disclose=["full_name"], audience=AUDIENCE, nonce=NONCE, at=AT))
    on_the_line = shown.read_text()
    code, out, _ = verify(on_the_line, "--keys", str(keys), "--audience", AUDIENCE, "--nonce", NONCE)
    assert (code, out["kind"], out["outcome"]) == (0, "sd-jwt-presentation", "valid")
    code, out, _ = verify(str(shown), "--keys", str(keys), "--audience", AUDIENCE, "--nonce", NONCE)
    assert (code, out["outcome"], out["fields"]) == (0, "valid", {"full_name": "Nguyễn Thị Minh Khai"})
    code, out, _ = verify(str(shown), "--keys", str(keys), "--audience", AUDIENCE, "--nonce", "other")
    assert (code, out["outcome"]) == (1, "invalid")
    code, out, _ = verify(str(shown), "--keys", str(keys))
    assert code == 2
    assert "audience and nonce" in out["error"]


def test_a_signed_pdf_against_its_trust_root_and_a_tampered_one(keys: Path, tmp_path: Path) -> None:
    ca = make_ca()
    root = tmp_path / "ca.pem"
    root.write_bytes(ca[0].public_bytes(Encoding.PEM))
    text = qr_text()
    signed = sign(with_qr_in_subject(render_certificate(view(), render_qr(text)), text), make_signer(ca))
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(signed)
    code, out, human = verify(str(pdf), "--keys", str(keys), "--trust-root", str(root), "--status-list",
                              status_file(tmp_path, Status.VALID))  # fmt: skip
    assert (code, out["outcome"], out["kind"], out["pdf"]["valid"]) == (0, "valid", "pdf", True)
    assert "Người ký" in human
    start = signed.index(b"stream", signed.index(b"/FlateDecode")) + 20
    tampered = bytearray(signed)
    tampered[start] ^= 0x01
    pdf.write_bytes(bytes(tampered))
    code, out, human = verify(str(pdf), "--keys", str(keys), "--trust-root", str(root))
    assert (code, out["outcome"]) == (1, "invalid")
    assert "altered" in human
    code, out, _ = verify(str(pdf), "--keys", str(keys))
    assert code == 2
    assert "trust root" in out["error"]


def test_unusable_input_exits_2(keys: Path, tmp_path: Path) -> None:
    code, out, _ = verify(str(tmp_path / "missing.pdf"), "--keys", str(keys))
    assert code == 2
    assert "neither a file nor" in out["error"]
    code, out, _ = verify(qr_text())
    assert code == 2
    assert "--keys" in out["error"]
    code, out, _ = verify("~/no-such-certificate.pdf", "--keys", str(keys))
    assert code == 2
    assert "neither a file nor" in out["error"]
    (tmp_path / "bad.json").write_text("{")
    code, out, _ = verify(qr_text(), "--keys", str(tmp_path / "bad.json"))
    assert code == 2
    assert "JWK Set" in out["error"]
    (tmp_path / "junk.bin").write_bytes(b"\x00\xff junk")
    code, out, _ = verify(str(tmp_path / "junk.bin"), "--keys", str(keys))
    assert code == 2
    code, out, _ = verify(qr_text(), "--keys", str(keys), "--status-list", str(keys))
    assert code == 2
    assert "status list" in out["error"]


def test_the_issuer_metadata_as_published_serves_as_the_keys(keys: Path, tmp_path: Path) -> None:
    """``/.well-known/jwt-vc-issuer`` saved as is (SD-JWT VC issuer metadata, its JWK Set under ``jwks``)."""
    metadata = tmp_path / "issuer.json"
    metadata.write_text(json.dumps({"issuer": "https://id.dinhdanh.gov.vn", "jwks": json.loads(keys.read_text())}))
    code, _out, human = verify(qr_text(), "--keys", str(metadata))
    assert code == 0, human
    metadata.write_text(json.dumps({"issuer": "https://id.dinhdanh.gov.vn", "jwks": {"keys": []}}))
    code, _out, human = verify(qr_text(), "--keys", str(metadata))
    assert code == 2, human  # the metadata's own keys, not a fallback
    assert "no P-256 signing key" in human
