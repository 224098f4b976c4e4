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

import grpc

from bench.argon2_raw import raw_verify_rate
from bench.stats import Tally
from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from registry.generator import generate
from stack.info import StackInfo
from stack.provision import SOURCE, activate_with_totp

ACCOUNTS_FILE = "bench-accounts.json"


async def ensure_accounts(info: StackInfo, folder: Path, count: int) -> list[dict[str, str]]:
    """Bench accounts: citizens 1000… of the seeded registry, activated with TOTP, remembered."""
    path = folder / ACCOUNTS_FILE
    accounts: list[dict[str, str]] = json.loads(path.read_text()) if path.exists() else []
    if len(accounts) >= count:
        return accounts[:count]
    have = {a["id_number"] for a in accounts}
    wanted = [c.id_number for c in itertools.islice(generate(1000 + count), 1000, None) if c.id_number not in have]
    password = "Bench-password-" + str(len(accounts))
    queue = iter(wanted[: count - len(accounts)])
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
    path.write_text(json.dumps(accounts))
    path.chmod(0o600)
    return accounts


async def _sign_ins(info: StackInfo, accounts: list[dict[str, str]], seconds: float, concurrency: int) -> dict:
    tally = Tally()
    pool = itertools.cycle(accounts)
    async with info.channel("identity") as channel:
        stub = pb_grpc.IdentityStub(channel)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                account = next(pool)
                started = time.perf_counter()
                try:
                    step = await stub.VerifyPassword(
                        pb.VerifyPasswordRequest(
                            id_number=account["id_number"], password=account["password"], source=SOURCE
                        ),
                        timeout=30,
                    )
                    await stub.VerifyTotp(
                        pb.VerifyTotpRequest(
                            ticket=step.ticket, code=totp.code_at(account["totp_secret"]), source=SOURCE
                        ),
                        timeout=30,
                    )
                except grpc.aio.AioRpcError as error:
                    tally.error(error.code().name)
                    continue
                tally.latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tally.summary(time.perf_counter() - started)


async def run(info: StackInfo, secrets_folder: Path, seconds: float, concurrency: int, raw_seconds: float) -> dict:
    raw_rate, cores = await asyncio.to_thread(raw_verify_rate, raw_seconds)
    accounts = await ensure_accounts(info, secrets_folder, max(200, int(raw_rate * 35)))
    result = await _sign_ins(info, accounts, seconds, concurrency)
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
    }
