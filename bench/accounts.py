"""Bench accounts: activated citizens with TOTP, made once and kept in ``var/secrets``.

A TOTP code works once, so an account signs in at most once per 30-second step; the pool hands out
an account only when it has not signed in during the current step, and remembers the last step used
across runs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from identity import totp
from stack.info import StackInfo
from stack.provision import activate_with_totp

ACCOUNTS_FILE = "bench-accounts.json"


async def ensure_accounts(info: StackInfo, folder: Path, count: int) -> list[dict[str, str]]:
    """Bench accounts: seeded citizens with no account yet, activated with TOTP, remembered."""
    path = folder / ACCOUNTS_FILE
    accounts: list[dict[str, str]] = json.loads(path.read_text()) if path.exists() else []
    if len(accounts) >= count:
        return accounts
    wanted = await _citizens_without_account(info, count - len(accounts))
    password = "Bench-password-" + str(len(accounts))
    queue = iter(wanted)
    async with info.channel("registry") as registry, info.channel("identity") as identity:

        async def worker() -> None:
            for id_number in queue:
                try:
                    secret = await activate_with_totp(registry, identity, id_number, password)
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                        continue  # activated by an earlier run whose file was lost
                    raise
                accounts.append({"id_number": id_number, "password": password, "totp_secret": secret})

        await asyncio.gather(*(worker() for _ in range(8)))
    save_accounts(folder, accounts)
    return accounts


def save_accounts(folder: Path, accounts: list[dict[str, str]]) -> None:
    """Keep the accounts and the TOTP step each last used, so the next run does not replay a code."""
    path = folder / ACCOUNTS_FILE
    known = {a["id_number"]: a for a in (json.loads(path.read_text()) if path.exists() else [])}
    known.update({a["id_number"]: a for a in accounts})
    path.write_text(json.dumps(list(known.values())))
    path.chmod(0o600)


async def _citizens_without_account(info: StackInfo, count: int) -> list[str]:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.id_number FROM registry.citizens c LEFT JOIN identity.accounts a USING (id_number)"
            " WHERE a.id_number IS NULL ORDER BY c.id_number DESC LIMIT $1",
            count,
        )
    finally:
        await conn.close()
    return [row["id_number"] for row in rows]


class AccountPool:
    def __init__(self, accounts: list[dict[str, Any]]) -> None:
        self._accounts = accounts
        self._ring = itertools.cycle(accounts)

    def take(self) -> dict[str, Any] | None:
        """An account that has not signed in during this TOTP step, or None when the pool is spent."""
        step = totp.current_step()
        for _ in range(len(self._accounts)):
            account = next(self._ring)
            if int(account.get("last_step", 0)) < step:
                account["last_step"] = step + 1  # the next step's code: accepted (±1), never used before
                return account
        return None

    @staticmethod
    def code(account: dict[str, Any]) -> str:
        return totp.code_at(account["totp_secret"], int(account["last_step"]) * totp.STEP)
