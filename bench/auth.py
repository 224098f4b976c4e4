"""``dinhdanh bench auth``: password + TOTP sign-ins per second through the identity service.

Each sign-in is two RPCs over mutual TLS (VerifyPassword, then VerifyTotp with the current code), as
the login pages make them. A TOTP code works once, so each bench account signs in at most once per
30-second step: the bench keeps a pool of accounts (made once, kept in ``var/secrets``) larger than
one step's worth of sign-ins. The raw Argon2id verification rate on all cores is measured in the same
run, before the load, and the ratio of the two is the figure that matters.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path

import asyncpg
import grpc

from bench.argon2_raw import raw_verify_rate
from bench.cpu import CpuMeter
from bench.stats import Tally
from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
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
    _save(folder, accounts)
    return accounts


def _save(folder: Path, accounts: list[dict[str, str]]) -> None:
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


async def _sign_ins(info: StackInfo, accounts: list[dict], seconds: float, concurrency: int) -> dict:
    """Sign in for ``seconds``; an account is used at most once per TOTP step (a code works once)."""
    tally = Tally()
    ring = itertools.cycle(accounts)

    def next_account() -> dict | None:
        step = totp.current_step()
        for _ in range(len(accounts)):
            account = next(ring)
            if int(account.get("last_step", 0)) < step:
                account["last_step"] = step + 1  # the code of the next step is the one to use
                return account
        return None

    async with info.channel("identity") as channel:
        stub = pb_grpc.IdentityStub(channel)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                account = next_account()
                if account is None:
                    tally.error("no account free this step (pool too small)")
                    await asyncio.sleep(0.1)
                    continue
                source = "bench-device-" + account["id_number"]
                started = time.perf_counter()
                try:
                    step = await stub.VerifyPassword(
                        pb.VerifyPasswordRequest(
                            id_number=account["id_number"], password=account["password"], source=source
                        ),
                        timeout=30,
                    )
                    code = totp.code_at(account["totp_secret"], (account["last_step"]) * totp.STEP)
                    await stub.VerifyTotp(
                        pb.VerifyTotpRequest(ticket=step.ticket, code=code, source=source), timeout=30
                    )
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        raise  # the stack is gone: stop, do not spin
                    tally.error(error.code().name)
                    continue
                tally.latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tally.summary(time.perf_counter() - started)


async def run(info: StackInfo, secrets_folder: Path, seconds: float, concurrency: int, raw_seconds: float) -> dict:
    raw_rate, cores = await asyncio.to_thread(raw_verify_rate, raw_seconds)
    accounts = await ensure_accounts(info, secrets_folder, max(200, int(raw_rate * 35)))
    meter = CpuMeter()
    result = await _sign_ins(info, accounts, seconds, concurrency)
    cpu = meter.seconds()
    _save(secrets_folder, accounts)
    hashing = sum(v for k, v in cpu.items() if k.endswith("worker pool"))
    return {
        "benchmark": "auth",
        "cores": cores,
        "raw_argon2id_verify_per_s": round(raw_rate, 1),
        "sign_ins_per_s": result["per_second"],
        "ratio": round(result["per_second"] / raw_rate, 3) if raw_rate else 0.0,
        "target_ratio": 0.85,
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "sign_ins": result["count"],
        "errors": result["errors"],
        "seconds": seconds,
        "concurrency": concurrency,
        "cpu_seconds": cpu,
        "cpu_ms_per_sign_in": {k: round(v * 1000 / max(1, result["count"]), 2) for k, v in cpu.items()},
        "argon2_share_of_cpu": round(hashing / max(1e-9, sum(cpu.values())), 3),
    }
