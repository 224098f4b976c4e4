"""``dinhdanh bench auth``: password + TOTP sign-ins per second through the identity service.

Each sign-in is two RPCs over mutual TLS (VerifyPassword, then VerifyTotp with the current code), as
the login pages make them. A TOTP code works once, so each bench account signs in at most once per
30-second step: the bench keeps a pool of accounts (made once, kept in ``var/secrets``) larger than
one step's worth of sign-ins. The raw Argon2id verification rate on all cores is measured in the same
run, before the load, and the ratio of the two is the figure that matters.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from bench.accounts import AccountPool, ensure_accounts, save_accounts
from bench.argon2_raw import raw_verify_rate
from bench.cpu import CpuMeter
from bench.stats import Tally
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from stack.info import StackInfo


async def _sign_ins(info: StackInfo, accounts: list[dict], seconds: float, concurrency: int) -> dict:
    """Sign in for ``seconds``; an account is used at most once per TOTP step (a code works once)."""
    tally = Tally()
    pool = AccountPool(accounts)
    async with info.channel("identity") as channel:
        stub = pb_grpc.IdentityStub(channel)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                account = pool.take()
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
                    code = AccountPool.code(account)
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
    save_accounts(secrets_folder, accounts)
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
