"""The operator CLI against the test stack, as a script would use it (``--json``)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from registry.citizen import Citizen
from stack.supervisor import Stack


def dinhdanh(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--var", str(stack.var), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr  # one JSON object
    return result.returncode, json.loads(result.stdout)


def test_lookup_a_citizen(stack: Stack, citizens: list[Citizen]) -> None:
    code, data = dinhdanh(stack, "registry", "lookup", citizens[5].id_number)
    assert code == 0
    assert data["full_name"] == citizens[5].full_name
    code, data = dinhdanh(stack, "registry", "lookup", "123")
    assert code == 1
    assert data["error"].startswith("INVALID_ARGUMENT")


def test_provision_verify_in_person_and_unlock(stack: Stack, fresh_citizen: Citizen) -> None:
    code, made = dinhdanh(stack, "accounts", "activate-test", fresh_citizen.id_number)
    assert code == 0
    assert len(made["totp_secret"]) == 32
    code, shown = dinhdanh(stack, "accounts", "show", fresh_citizen.id_number)
    assert (code, shown["assurance_level"], shown["totp_enrolled"]) == (0, 1, True)
    code, verified = dinhdanh(
        stack, "accounts", "verify-in-person", fresh_citizen.id_number, "--note", "Công an phường"
    )
    assert (code, verified["assurance_level"]) == (0, 2)
    code, unlocked = dinhdanh(stack, "accounts", "unlock", fresh_citizen.id_number)
    assert (code, unlocked["locked"]) == (0, False)


def test_totp_code_for_the_demo_citizen(stack: Stack) -> None:
    code, data = dinhdanh(stack, "totp", "code")
    assert code == 0
    assert len(data["code"]) == 6
    assert data["code"].isdigit()


def test_unknown_account_is_a_clear_error(stack: Stack, citizens: list[Citizen]) -> None:
    code, data = dinhdanh(stack, "accounts", "show", citizens[-1].id_number)
    assert code == 1
    assert data["error"] == "NOT_FOUND: no activated account with this ID number"


def human(stack: Stack, *args: str) -> str:
    """What a person sees (no ``--json``)."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--var", str(stack.var)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return " ".join(result.stdout.replace("│", " ").split())  # a table cell's wrapped lines read as one


def _no_python_dump(text: str) -> None:
    for sign in ("{'", "['", "': ", "SEX_", "None", "True", "False"):
        assert sign not in text, f"{sign!r} in:\n{text}"


def test_people_read_a_citizen_record_in_plain_words(stack: Stack, citizens: list[Citizen]) -> None:
    citizen = citizens[5]
    shown = human(stack, "registry", "lookup", citizen.id_number)
    _no_python_dump(shown)
    assert ("Nam (male)" if citizen.sex.name == "MALE" else "Nữ (female)") in shown
    assert citizen.permanent_address.province in shown
    assert citizen.date_of_birth.strftime("%d/%m/%Y") in shown


def test_people_read_clients_as_tables(stack: Stack) -> None:
    added = human(stack, "clients", "add-portal", "--name", "Cổng thử", "--redirect-uri", "https://thu.example/cb")
    _no_python_dump(added)
    assert "client secret" in added
    assert "https://thu.example/cb" in added
    listed = human(stack, "clients", "list")
    _no_python_dump(listed)
    assert "Cổng thử" in listed
    assert "registered clients" in listed


def test_a_portal_may_ask_for_the_least_unless_the_operator_adds_more(stack: Stack) -> None:
    """``clients add-portal`` grants openid and profile; ``--scope`` and ``--resource`` (repeatable) add the rest."""
    base = ("clients", "add-portal", "--name", "Cổng tối thiểu", "--redirect-uri", "https://toi-thieu.example/cb")
    code, least = dinhdanh(stack, *base)
    assert code == 0, least
    assert least["scopes"] == ["openid", "profile"]  # no national_id unless the operator adds it
    assert least["resources"] == []
    vault = "urn:dinhdanh:service:vault"
    code, more = dinhdanh(stack, *base, "--scope", "national_id", "--scope", "vault.read", "--resource", vault)
    assert code == 0, more
    assert (more["scopes"], more["resources"]) == (["openid", "profile", "national_id", "vault.read"], [vault])
    code, listed = dinhdanh(stack, "clients", "list")
    assert next(c for c in listed["clients"] if c["client_id"] == more["client_id"])["resources"] == [vault]
    for wrong, says in ((("--scope", "vault.issue"), "unknown portal scopes: vault.issue"),
                        (("--resource", "urn:x:elsewhere"), "unknown resources: urn:x:elsewhere")):  # fmt: skip
        code, refused = dinhdanh(stack, *base, *wrong)
        assert code == 1
        assert refused["error"].startswith(says), refused
