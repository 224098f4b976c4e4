"""Citizens browsing, downloading and uploading in their vault (issue 12 item 1), over gRPC.

One iteration of :class:`VaultUser` is one visit of the vault: ``vault.List`` (the first page of the citizen's
documents) and ``vault.Download`` of one of them (the whole stream, its size checked against the listed one) —
the SLO's vault fetch, p99 < 100 ms — and, one visit in :data:`UPLOAD_EVERY`, ``vault.Upload`` of a small
document (:data:`DOCUMENT`, about 1 KiB, a PDF; a vault with nothing in it gets one first). The citizen is
signed in when the user starts (``loadtest/scenarios/sso.py``), with a token for the vault.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from locust import task

from loadtest.grpc_calls import WrongResult
from loadtest.scenarios.base import CitizenUser, operator_channel
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc

UPLOAD_EVERY = 5
PAGE = 20
DOCUMENT = (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"% load test\n" * 80
            + b"trailer << /Root 1 0 R >>\n%%EOF\n")  # fmt: skip
TIMEOUT = 30.0


def upload_stream(data: bytes, title: str) -> Iterator[pb.UploadRequest]:
    """The metadata, one chunk, the end message with size and SHA-256."""
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title=title, filename="giay-to.pdf")
    yield pb.UploadRequest(metadata=meta)
    yield pb.UploadRequest(chunk=data)
    yield pb.UploadRequest(end=pb.UploadEnd(size_bytes=len(data), sha256=hashlib.sha256(data).digest()))


class VaultUser(CitizenUser):
    """A citizen visiting their vault: list, download, sometimes upload."""

    actor = "vault"

    def on_start(self) -> None:
        super().on_start()
        self.stub = pb_grpc.VaultStub(operator_channel("vault"))
        self.visits = 0

    def upload(self, metadata: tuple[tuple[str, str]]) -> None:
        def call() -> pb.Document:
            document = self.stub.Upload(upload_stream(DOCUMENT, "Giấy tờ (kiểm thử tải)"), metadata=metadata,
                                        timeout=TIMEOUT)  # fmt: skip
            if document.size_bytes != len(DOCUMENT):
                raise WrongResult(f"the vault stored {document.size_bytes} bytes of {len(DOCUMENT)}")
            return document

        self.timed("vault.Upload", call, size=lambda _d: len(DOCUMENT))

    def download(self, metadata: tuple[tuple[str, str]], document: pb.Document) -> None:
        def call() -> int:
            received, first = 0, True
            for reply in self.stub.Download(pb.DownloadRequest(id=document.id), metadata=metadata, timeout=TIMEOUT):
                if first != (reply.WhichOneof("item") == "metadata"):
                    raise WrongResult("the metadata must come first, once")
                first = False
                received += len(reply.chunk)
            if received != document.size_bytes:
                raise WrongResult(f"downloaded {received} bytes of {document.size_bytes}")
            return received

        self.timed("vault.Download", call, size=lambda n: n)

    @task
    def visit(self) -> None:
        metadata = self.metadata()
        if metadata is None:
            return
        self.visits += 1
        listed = self.timed("vault.List", lambda: self.stub.ListDocuments(
            pb.ListDocumentsRequest(page_size=PAGE), metadata=metadata, timeout=TIMEOUT))  # fmt: skip
        documents = list(listed.result.documents) if listed.result is not None else []
        if listed.result is not None and not documents:
            self.upload(metadata)  # an empty vault: the citizen's first paper
            return
        if documents:
            self.download(metadata, random.choice(documents))  # noqa: S311 - which document, not a secret
        if self.visits % UPLOAD_EVERY == 0:
            self.upload(metadata)
