"""Keys in a SoftHSM2 token (core/keys/pkcs11.py): signatures verify with the published JWK, the private key
never leaves the token, a wrong PIN stops a start with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from pkcs11 import Attribute, ObjectClass

from audit import checkpoint as notes
from core.keys import purposes
from core.keys.pkcs11 import Token, TokenError, TokenKeyProvider
from core.keys.signing import jose_key, private_key, public_key_of
from tests.hsm.conftest import PIN, SoftHSM

ROOT = Path(__file__).resolve().parents[2]


def test_an_ed25519_signature_verifies_with_the_public_key(token: Token) -> None:
    signer = token.generate("verify-EdDSA", "EdDSA")
    jwk = signer.public_jwk()
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    signature = signer.sign(b"a checkpoint")
    public_key_of(signer).verify(signature, b"a checkpoint")  # type: ignore[call-arg]
    with pytest.raises(InvalidSignature):
        public_key_of(signer).verify(signature, b"another checkpoint")  # type: ignore[call-arg]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_token_signature_verifies_with_the_published_jwk(token: Token, alg: str) -> None:
    signer = token.generate(f"verify-{alg}", alg)
    jwks = KeySet.import_key_set({"keys": [signer.public_jwk()]})
    encoded = jwt.encode({"alg": alg, "kid": signer.kid}, {"sub": "hsm"}, jose_key(signer), algorithms=[alg])
    assert jwt.decode(encoded, jwks, algorithms=[alg]).claims == {"sub": "hsm"}
    tampered = encoded[:-4] + ("AAAA" if not encoded.endswith("AAAA") else "BBBB")
    with pytest.raises(BadSignatureError):
        jwt.decode(tampered, jwks, algorithms=[alg])
    again = token.find(f"verify-{alg}")  # found by its label, the same key
    assert again is not None
    assert again.kid == signer.kid
    assert again.alg == alg


def test_the_private_key_is_not_extractable(token: Token) -> None:
    signer = token.generate("sealed-in", "ES256")
    found = token._call(lambda s: list(s.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                       Attribute.LABEL: "sealed-in"})))  # fmt: skip
    assert len(found) == 1
    private = found[0]
    assert token._call(lambda _: private[Attribute.SENSITIVE]) is True
    assert token._call(lambda _: private[Attribute.EXTRACTABLE]) is False
    with pytest.raises(pkcs11.AttributeSensitive):  # C_GetAttributeValue(CKA_VALUE): CKR_ATTRIBUTE_SENSITIVE
        token._call(lambda _: private[Attribute.VALUE])
    with pytest.raises(TypeError):  # nor through the library-facing adapter
        private_key(signer).private_bytes()  # type: ignore[call-arg]


def test_the_purpose_key_is_made_once_and_found_again(softhsm: SoftHSM, token: Token, tmp_path: Path) -> None:
    (tmp_path / purposes.AUDIT_PSEUDONYM).write_bytes(b"k" * 32)
    from core.keys.files import FileKeyProvider

    keys = TokenKeyProvider(FileKeyProvider.in_folder(tmp_path), token)
    first = keys.signer(purposes.LOG_SIGNING)
    assert first.alg == "EdDSA"
    assert keys.signer(purposes.LOG_SIGNING).kid == first.kid
    assert keys.signer(purposes.ISSUANCE_SIGNING).alg == "ES256"
    assert keys.key(purposes.AUDIT_PSEUDONYM) == b"k" * 32  # symmetric keys stay file-backed
    with pytest.raises(TokenError, match="already holds"):
        token.generate(purposes.LOG_SIGNING, "EdDSA")


def _start(softhsm: SoftHSM, pin_file: Path, keys_dir: Path) -> subprocess.CompletedProcess[str]:
    """What a service's start does with its settings: ``core.settings.key_provider`` (in a fresh process)."""
    code = "from core.settings import Settings, key_provider; key_provider(Settings()); print('opened')"
    env = {**os.environ, **softhsm.env(), "DINHDANH_PKCS11_PIN_FILE": str(pin_file),
           "DINHDANH_KEYS_DIR": str(keys_dir), "PYTHONPATH": str(ROOT)}  # fmt: skip
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_a_wrong_pin_is_a_clear_error_at_start(softhsm: SoftHSM, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000-0000\n")
    refused = _start(softhsm, wrong, tmp_path)
    assert refused.returncode != 0
    assert "the PIN of PKCS#11 token 'dinhdanh-test' was refused" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "0000-0000" not in refused.stderr + refused.stdout
    assert _start(softhsm, softhsm.pin_file, tmp_path).stdout.strip() == "opened"  # the right one opens it
    missing = _start(softhsm, tmp_path / "no-such-pin", tmp_path)
    assert missing.returncode != 0
    assert "cannot be read" in missing.stderr
    assert PIN not in missing.stderr


def test_hsm_init_makes_the_keys_once_and_prints_their_public_halves(softhsm: SoftHSM, tmp_path: Path) -> None:
    env = {**os.environ, **softhsm.env(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli.main", "keys", "hsm-init", "--purpose", "health-signing", "--purpose",
               "consent-signing", "--json"]  # fmt: skip
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False) for _ in "ab"]
    first, second = (json.loads(run.stdout) for run in runs)
    assert first["token"] == "dinhdanh-test"
    assert first["keys"]["health-signing"]["created"] is True
    assert second["keys"]["health-signing"]["created"] is False
    assert second["keys"]["health-signing"]["kid"] == first["keys"]["health-signing"]["kid"]
    assert "d" not in first["keys"]["consent-signing"]["public_jwk"]
    log = subprocess.run([*command[:6], "log-signing", "--json"], env=env, capture_output=True, text=True, timeout=60)
    notes.parse_vkey(json.loads(log.stdout)["keys"]["log-signing"]["vkey"])
    refused = subprocess.run([*command[:6], "totp-secret"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "not a signing purpose" in refused.stderr + refused.stdout
