"""``dinhdanh bench vault``: document upload and download through the vault beside raw S3, same run.

For each document size (100 KiB, 5 MiB), each phase alone for ``seconds`` with ``concurrency`` calls in
flight, the load generator on the same machine:
- vault Upload (client streaming, chunks of 256 KiB) and Download (server streaming) over mTLS with a
  citizen's access token: TLS, token check, content-type check, encryption, metadata commit;
- raw S3 PUT and GET of the same bytes with the ``minio`` client against the same SeaweedFS (bucket
  ``bench-raw``, emptied and removed afterwards);
- MiB/s, documents/s, p50/p99 latency, and the ratio vault/raw each way (target ≥ 0.8);
- the vault process's memory: RSS sampled every 50 ms during that size's phases (the maximum) and
  VmHWM from ``/proc/<pid>/status`` (a high-water mark since the process started, so it only grows);
- first, what one transfer holds: the peak RSS above the start during single uploads and downloads of
  5 MiB, then of 20 MiB (the largest document), one at a time.

The vault documents made are soft-deleted afterwards; their encrypted objects stay in the ``vault``
bucket until the vault's retention purge, as for any deleted document.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from bench.accounts import AccountPool, ensure_accounts, save_accounts
from bench.browserless import Browser, SignIn, sign_in
from bench.sso import REDIRECT, ensure_clients
from bench.stats import Tally
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from stack.info import StackInfo

VAULT = "urn:dinhdanh:service:vault"
RAW_BUCKET = "bench-raw"
CHUNK = 256 * 1024
MIB = 1024 * 1024
SIZES = {"100KiB": 100 * 1024, "5MiB": 5 * MIB}
PROBE_SIZES = {"5MiB": 5 * MIB, "20MiB": 20 * MIB}  # 20 MiB: the vault's default limit
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLE_EVERY = 0.05
TARGET_RATIO = 0.8

Op = Callable[[int, int], Awaitable[None]]


def png_like(size: int) -> bytes:
    """The PNG signature then random bytes: passes the vault's content-type detection, does not compress."""
    return PNG_SIGNATURE + os.urandom(size - len(PNG_SIGNATURE))


def upload_messages(data: bytes, title: str) -> list[pb.UploadRequest]:
    """A whole ``Upload`` stream of ``data``: metadata, ``CHUNK``-sized chunks, the end message."""
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title=title, filename="bench.png")
    chunks = (pb.UploadRequest(chunk=data[i : i + CHUNK]) for i in range(0, len(data), CHUNK))
    return [pb.UploadRequest(metadata=meta), *chunks, pb.UploadRequest(end=pb.UploadEnd(size_bytes=len(data)))]


async def citizen_token(info: StackInfo, secrets_folder: Path) -> str:
    """A bench citizen's access token for the vault: a portal sign-in with ``resource`` the vault."""
    clients = await ensure_clients(info, secrets_folder)
    portal = clients["portal"]
    flow = SignIn(info.oidc_issuer, portal["client_id"], portal["client_secret"], REDIRECT,
                  scope="openid vault.read vault.write", extra={"resource": VAULT})  # fmt: skip
    return await sign_in_token(info, secrets_folder, flow)


async def sign_in_token(info: StackInfo, secrets_folder: Path, flow: SignIn) -> str:
    """A bench citizen's access token: one of the bench accounts signs in through ``flow`` (authorization code
    with PKCE, OpenID Connect Core §3.1), the code redeemed at the token endpoint."""
    accounts = await ensure_accounts(info, secrets_folder, 1)
    pool = AccountPool(accounts)
    account = pool.take()
    while account is None:  # every account signed in during this TOTP step: wait for the next one
        await asyncio.sleep(1.0)
        account = pool.take()
    async with httpx.AsyncClient(timeout=30) as http:
        params = await sign_in(
            Browser(http), flow, account["id_number"], account["password"], AccountPool.code(account)
        )
        save_accounts(secrets_folder, accounts)
        if "code" not in params:
            raise RuntimeError(f"bench sign-in did not reach the redirect: {params}")
        reply = await flow.redeem(http, params["code"], params["_verifier"])
    if reply.status_code != 200:
        raise RuntimeError(f"token request refused: {reply.status_code} {reply.text[:200]}")
    return str(reply.json()["access_token"])


def vault_process(address: str) -> psutil.Process | None:
    """The ``-m services vault`` process listening on this stack's vault port (other stacks may run)."""
    port = int(address.rsplit(":", 1)[1])
    candidates = []
    for proc in psutil.process_iter():
        try:
            cmd = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "-m" in cmd[:-2] and cmd[cmd.index("-m") + 1] == "services" and cmd[-1] == "vault":
            candidates.append(proc)
    for proc in candidates:
        try:
            if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in proc.net_connections(kind="tcp")):  # fmt: skip
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def vm_hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        return None
    return None


class RssSampler:
    """The vault process's RSS every 50 ms in a thread (the event loop is busy with the load)."""

    def __init__(self, proc: psutil.Process | None) -> None:
        self._proc = proc
        self._stop = threading.Event()
        self.peak = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._proc is not None:
                    self.peak = max(self.peak, self._proc.memory_info().rss)
                    self.samples += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def drive(tally: Tally, seconds: float, concurrency: int, op: Op) -> float:
    """``concurrency`` workers loop ``op`` for ``seconds``, each call's latency or failure counted in ``tally``;
    returns the time it took (the workers finish the call in flight at the deadline)."""
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        round_ = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await op(index, round_)
            except grpc.aio.AioRpcError as error:
                tally.error(error.code().name)
                await asyncio.sleep(0.05)
            except Exception as error:  # a benchmark counts failures, it does not stop
                tally.error(type(error).__name__)
                await asyncio.sleep(0.05)
            else:
                tally.latencies.append(time.perf_counter() - started)
            round_ += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.perf_counter() - started


def transfers(tally: Tally, elapsed: float, size: int) -> dict[str, Any]:
    """Documents/s, MiB/s (of ``size``-byte documents), the count, p50/p99 and the errors of ``elapsed`` seconds."""
    figures = tally.summary(elapsed)
    count = int(figures["count"])  # type: ignore[arg-type]
    return {
        "documents_per_s": figures["per_second"],
        "mib_per_s": round(count * size / MIB / elapsed, 1) if elapsed else 0.0,
        "count": count,
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "errors": figures["errors"],
    }


async def phase(seconds: float, concurrency: int, size: int, op: Op) -> dict[str, Any]:
    """``concurrency`` workers loop ``op`` for ``seconds``; documents/s, MiB/s, p50/p99."""
    tally = Tally()
    return transfers(tally, await drive(tally, seconds, concurrency, op), size)


def ratio(vault: dict[str, Any], raw: dict[str, Any]) -> float:
    return round(vault["mib_per_s"] / raw["mib_per_s"], 3) if raw["mib_per_s"] else 0.0


async def measure_size(
    stub: pb_grpc.VaultStub,
    s3: Minio,
    threads: ThreadPoolExecutor,
    token: str,
    label: str,
    size: int,
    seconds: float,
    concurrency: int,
    proc: psutil.Process | None,
) -> dict[str, Any]:
    data = png_like(size)
    messages = upload_messages(data, f"Bench {label}")
    auth = (("authorization", f"Bearer {token}"),)
    ids: list[str] = []
    keys: list[str] = []
    loop = asyncio.get_running_loop()

    async def vault_up(_: int, __: int) -> None:
        document = await stub.Upload(iter(messages), metadata=auth, timeout=120)
        if document.size_bytes != size or document.content_type != "image/png":
            raise ValueError("unexpected document")
        ids.append(document.id)

    async def vault_down(index: int, round_: int) -> None:
        got = 0
        call = stub.Download(pb.DownloadRequest(id=ids[(index + round_ * concurrency) % len(ids)]), metadata=auth,
                             timeout=120)  # fmt: skip
        async for reply in call:
            if reply.WhichOneof("item") == "chunk":
                got += len(reply.chunk)
        if got != size:
            raise ValueError("short download")

    def raw_put_blocking() -> None:
        key = f"{label}/{uuid.uuid4()}"
        s3.put_object(RAW_BUCKET, key, io.BytesIO(data), len(data), content_type="image/png")
        keys.append(key)

    def raw_get_blocking(key: str) -> None:
        response = s3.get_object(RAW_BUCKET, key)
        try:
            got = sum(len(piece) for piece in response.stream(CHUNK))
        finally:
            response.close()
            response.release_conn()
        if got != size:
            raise ValueError("short download")

    async def raw_put(_: int, __: int) -> None:
        await loop.run_in_executor(threads, raw_put_blocking)

    async def raw_get(index: int, round_: int) -> None:
        await loop.run_in_executor(threads, raw_get_blocking, keys[(index + round_ * concurrency) % len(keys)])

    rss_before = proc.memory_info().rss if proc is not None else 0
    with RssSampler(proc) as sampler:
        upload = await phase(seconds, concurrency, size, vault_up)
        download = await phase(seconds, concurrency, size, vault_down) if ids else {}
    hwm = vm_hwm_mib(proc.pid) if proc is not None else None
    raw_up = await phase(seconds, concurrency, size, raw_put)
    raw_down = await phase(seconds, concurrency, size, raw_get) if keys else {}
    await cleanup(stub, auth, ids, s3, threads, keys)
    return {
        "document_bytes": size,
        "vault_upload": upload,
        "raw_s3_put": raw_up,
        "upload_ratio_vault_to_raw": ratio(upload, raw_up),
        "vault_download": download,
        "raw_s3_get": raw_down,
        "download_ratio_vault_to_raw": ratio(download, raw_down) if download and raw_down else 0.0,
        "vault_memory": {
            "rss_before_mib": round(rss_before / MIB, 1),
            "rss_peak_sampled_mib": round(sampler.peak / MIB, 1),
            "rss_samples": sampler.samples,
            "vm_hwm_mib_since_start": hwm,
        },
    }


async def cleanup(
    stub: pb_grpc.VaultStub,
    auth: tuple[tuple[str, str], ...],
    ids: list[str],
    s3: Minio,
    threads: ThreadPoolExecutor,
    keys: list[str],
) -> None:
    """Soft-delete the bench documents; remove the raw objects."""
    queue = iter(ids)

    async def deleter() -> None:
        for document_id in queue:
            with contextlib.suppress(grpc.aio.AioRpcError):  # best effort
                await stub.DeleteDocument(pb.DeleteDocumentRequest(id=document_id), metadata=auth, timeout=30)

    await asyncio.gather(*(deleter() for _ in range(8)))

    def remove() -> None:
        for _error in s3.remove_objects(RAW_BUCKET, [DeleteObject(k) for k in keys]):
            pass

    await asyncio.get_running_loop().run_in_executor(threads, remove)


async def memory_probe(stub: pb_grpc.VaultStub, token: str, proc: psutil.Process | None) -> dict[str, Any]:
    """The vault's peak RSS above its RSS at the start, during uploads and downloads one at a time of a 5 MiB
    then of a 20 MiB document (the largest): were memory held per document and not per chunk, the second
    figure would be about four times the first. After one warm-up transfer (first-use allocations), before
    the load phases swell the heap."""
    auth = (("authorization", f"Bearer {token}"),)
    grown: dict[str, Any] = {}
    start = 0
    for label, size in {"warm-up": 5 * MIB, **PROBE_SIZES}.items():
        messages = upload_messages(png_like(size), "Bench memory")
        with RssSampler(proc) as sampler:
            for _ in range(3):
                document = await stub.Upload(iter(messages), metadata=auth, timeout=120)
                async for _reply in stub.Download(pb.DownloadRequest(id=document.id), metadata=auth, timeout=120):
                    pass
                await stub.DeleteDocument(pb.DeleteDocumentRequest(id=document.id), metadata=auth, timeout=30)
        if label == "warm-up":  # first use: thread stacks, allocator arenas, TLS and cipher setup, lazy imports
            start = proc.memory_info().rss if proc is not None else 0
            continue
        grown[label] = round(max(sampler.peak - start, 0) / MIB, 1)
    return {"rss_after_warm_up_mib": round(start / MIB, 1), "peak_above_start_mib_one_transfer_at_a_time": grown}


async def run(info: StackInfo, var: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    token = await citizen_token(info, var / "secrets")
    proc = vault_process(info.services["vault"])
    s3 = info.s3_client()
    threads = ThreadPoolExecutor(concurrency + 1, thread_name_prefix="bench-raw")
    made_bucket = False
    try:
        if not await asyncio.to_thread(s3.bucket_exists, RAW_BUCKET):
            await asyncio.to_thread(s3.make_bucket, RAW_BUCKET)
            made_bucket = True
        sizes: dict[str, Any] = {}
        async with info.channel("vault") as channel:
            stub = pb_grpc.VaultStub(channel)
            memory = await memory_probe(stub, token, proc)
            for label, size in SIZES.items():
                sizes[label] = await measure_size(stub, s3, threads, token, label, size, seconds, concurrency, proc)
    finally:
        if made_bucket:
            with contextlib.suppress(S3Error, OSError):  # best effort: a leftover empty bucket is harmless
                await asyncio.to_thread(s3.remove_bucket, RAW_BUCKET)
        threads.shutdown(wait=False)
    return {
        "benchmark": "vault",
        "cores": os.cpu_count(),
        "vault_pid": proc.pid if proc is not None else None,
        "sizes": sizes,
        "vault_memory_per_transfer": memory,
        "chunk_bytes": CHUNK,
        "concurrency": concurrency,
        "seconds_per_phase": seconds,
        "targets": {"upload_ratio": TARGET_RATIO, "download_ratio": TARGET_RATIO},
    }
